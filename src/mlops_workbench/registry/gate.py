"""The quality gate: a challenger model version against the current ``production`` version.

Both are scored on the same fixed held-out set (params.yaml ``registry``:
``holdout_size``/``holdout_seed``, by default the train stage's test split).
The challenger passes when it

* gains at least ``min_gain`` on ``metric`` over production,
* loses no more than ``tolerance`` on every metric in ``non_regression``,
* and, with no production version yet, reaches ``min_accuracy``;
* with a ``cost_budget``, costs at most that much per 1,000 predictions, as measured on a running server and
  recorded on the version (tag :data:`COST_TAG`, written by :mod:`mlops_workbench.strategies.cost`). A candidate
  whose cost was never measured does not pass a budget: missing data never promotes.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from pydantic import BaseModel, Field

from mlops_workbench.paramspec import RegistryParams

COST_TAG = "cost.per_1k_predictions"
"""Version tag: the measured cost per 1,000 predictions (a number, in the currency of :data:`COST_CURRENCY_TAG`)."""
COST_CURRENCY_TAG = "cost.currency"
LATENCY_TAG = "latency.mean_ms"
"""Version tag: the mean prediction latency (milliseconds) its server measured while its cost was measured."""


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
    cost_per_1k: float | None = Field(None, description="the candidate's measured cost per 1,000 predictions")
    cost_budget: float | None = Field(None, description="the budget it was held to (None: no budget)")

    def summary(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        vs = f"production v{self.production_version}" if self.production_version else "no production version"
        score = f"{self.metric} {self.candidate.get(self.metric, float('nan')):.4f}"
        if self.production:
            score += f" vs {self.production.get(self.metric, float('nan')):.4f}"
        if self.cost_per_1k is not None:
            score += f", cost {self.cost_per_1k:.4g} per 1,000 predictions"
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
    cost_per_1k: float | None = None,
) -> GateResult:
    """Apply the gate's rules to two score dicts and the candidate's measured cost (pure logic, unit-tested without
    MLflow)."""
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
    reasons += cost_reasons(candidate_version, cost_per_1k, params)
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
        cost_per_1k=cost_per_1k,
        cost_budget=params.cost_budget,
    )


def measured_cost(tags: dict[str, str], tag: str = COST_TAG) -> float | None:
    """The cost per 1,000 predictions recorded in a version's ``tags`` (None when none, or not a number); with
    ``tag`` another measured number, such as :data:`LATENCY_TAG`."""
    try:
        return float(tags[tag])
    except (KeyError, ValueError):
        return None


def cost_reasons(version: str, cost_per_1k: float | None, params: RegistryParams) -> list[str]:
    """Why the candidate breaks the cost budget (empty without a budget, or within it)."""
    budget = params.cost_budget
    if budget is None:
        return []
    if cost_per_1k is None:
        return [
            f"no cost was measured for v{version}, and the gate has a cost_budget of {budget:g} per 1,000 "
            "predictions: serve it, measure it with strategies.cost.measure(...) and record(...), then gate again"
        ]
    if cost_per_1k > budget:
        return [
            f"cost {cost_per_1k:.4g} per 1,000 predictions is above the cost_budget {budget:g}: make the model "
            "cheaper to serve, or raise registry.cost_budget in params.yaml if the budget is wrong"
        ]
    return []
