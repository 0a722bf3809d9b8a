"""The quality gate: a challenger model version against the current ``production`` version.

Both are scored on the same fixed held-out set (params.yaml ``registry``:
``holdout_size``/``holdout_seed``, by default the train stage's test split).
The challenger passes when it

* gains at least ``min_gain`` on ``metric`` over production,
* loses no more than ``tolerance`` on every metric in ``non_regression``,
* and, with no production version yet, reaches ``min_accuracy``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from pydantic import BaseModel, Field

from mlops_workbench.paramspec import RegistryParams


class GateResult(BaseModel):
    """The verdict of :func:`quality_gate`, stored with every promotion (tags and audit log)."""

    passed: bool
    model: str
    candidate_version: str
    production_version: str | None
    metric: str
    min_gain: float
    candidate: dict[str, float]
    production: dict[str, float] | None
    reasons: list[str] = Field(description="why it failed (empty when it passed)")
    holdout_rows: int

    def summary(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        vs = f"production v{self.production_version}" if self.production_version else "no production version"
        score = f"{self.metric} {self.candidate.get(self.metric, float('nan')):.4f}"
        if self.production:
            score += f" vs {self.production.get(self.metric, float('nan')):.4f}"
        tail = f": {'; '.join(self.reasons)}" if self.reasons else ""
        return f"gate {verdict} for {self.model} v{self.candidate_version} against {vs} ({score}){tail}"


def holdout(params: RegistryParams) -> pd.DataFrame:
    """The fixed held-out set every gate uses (Iris, stratified split with the registry's size and seed)."""
    from mlops_workbench import data

    return data.split(data.load_iris_frame(), test_size=params.holdout_size, seed=params.holdout_seed)[1]


def score(model: Any, df: pd.DataFrame) -> dict[str, float]:
    """Accuracy and macro F1 of ``model`` on ``df`` (per-class details dropped)."""
    from mlops_workbench.evaluate import evaluate

    result = evaluate(model, df)
    return {"accuracy": float(result["accuracy"]), "f1_macro": float(result["f1_macro"])}


def judge(
    model: str,
    candidate_version: str,
    candidate: dict[str, float],
    production_version: str | None,
    production: dict[str, float] | None,
    params: RegistryParams,
    rows: int,
) -> GateResult:
    """Apply the gate's rules to two score dicts (pure logic, unit-tested without MLflow)."""
    reasons: list[str] = []
    if production is None:
        if candidate.get("accuracy", 0.0) < params.min_accuracy:
            reasons.append(
                f"accuracy {candidate.get('accuracy', 0.0):.4f} is below the floor {params.min_accuracy} "
                "required of a first production model"
            )
    else:
        gain = candidate[params.metric] - production[params.metric]
        if gain < params.min_gain - 1e-12:
            reasons.append(
                f"{params.metric} gain {gain:+.4f} over production v{production_version} "
                f"is below the required min_gain {params.min_gain:+.4f}"
            )
        for name in params.non_regression:
            drop = production[name] - candidate[name]
            if drop > params.tolerance + 1e-12:
                reasons.append(
                    f"{name} regresses from {production[name]:.4f} to {candidate[name]:.4f} "
                    f"(tolerance {params.tolerance})"
                )
    return GateResult(
        passed=not reasons,
        model=model,
        candidate_version=str(candidate_version),
        production_version=production_version,
        metric=params.metric,
        min_gain=params.min_gain,
        candidate=candidate,
        production=production,
        reasons=reasons,
        holdout_rows=rows,
    )
