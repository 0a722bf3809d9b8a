"""HTTP API for the model: ``uvicorn iris_model.serve:app`` (GET /health, POST /predict)."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from iris_model.model import load_model, predict

app = FastAPI(title="iris-model")
_model = None


class Instances(BaseModel):
    instances: list[list[float]]


def model():
    global _model
    if _model is None:
        _model = load_model()
    return _model


@app.get("/health")
def health() -> dict:
    return {"status": "ok"}


@app.post("/predict")
def predict_endpoint(body: Instances) -> dict:
    try:
        return {"predictions": predict(model(), body.instances)}
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
