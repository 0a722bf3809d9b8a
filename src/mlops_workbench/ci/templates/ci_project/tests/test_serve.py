"""The HTTP API answers health checks and rejects malformed rows with 422 (given as an example test)."""

from fastapi.testclient import TestClient
from iris_model import load_data, save_model, serve, train_model


def client(tmp_path) -> TestClient:
    X, y = load_data()
    serve._model = None
    save_model(train_model(X, y), tmp_path / "model.joblib")
    serve._model = serve.load_model(tmp_path / "model.joblib")
    return TestClient(serve.app)


def test_health(tmp_path):
    assert client(tmp_path).get("/health").json() == {"status": "ok"}


def test_predict_answers_one_label_per_row(tmp_path):
    answer = client(tmp_path).post("/predict", json={"instances": [[5.1, 3.5, 1.4, 0.2], [6.0, 2.9, 4.5, 1.5]]})
    assert answer.status_code == 200 and len(answer.json()["predictions"]) == 2


def test_malformed_rows_get_422(tmp_path):
    assert client(tmp_path).post("/predict", json={"instances": [[1.0, 2.0]]}).status_code == 422
