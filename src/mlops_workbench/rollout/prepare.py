"""Idempotent prerequisites for rollouts (lab 04 and tests): tracking server, model versions, production alias.

:func:`ensure_versions` registers, once per state folder, three versions of the
model, each tagged ``workbench.rollout.role``: ``stable`` (a strongly regularised
logistic regression, made ``production``), ``candidate`` (a healthy, better one that passes
the registry's quality gate), ``next`` (another healthy release, for the fault drill) and ``bad`` (trained
on labels where every versicolor was relabelled virginica: it answers 200 but its
predictions are skewed: the "bad model" fault). Reruns reuse what exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlops_workbench import paramspec, tracking
from mlops_workbench.alias import Alias
from mlops_workbench.data import FEATURES, load_iris_frame
from mlops_workbench.registry import integrity
from mlops_workbench.workbench import Workbench

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

ROLE_TAG = "workbench.rollout.role"
ROLES = ("stable", "candidate", "next", "bad")
LAB_MODEL = "iris-canary"  # lab 04 uses its own registered model, so earlier labs' versions never interfere


@dataclass(frozen=True)
class Versions:
    """Registry versions (as strings) of the three rollout models."""

    stable: str
    candidate: str
    next: str | None = None
    bad: str | None = None


def _train(role: str) -> tuple[Pipeline, pd.DataFrame]:
    """The model of ``role`` and the rows it was fitted on."""
    from mlops_workbench.data import LABEL, load_iris_frame
    from mlops_workbench.train import TrainParams, train

    df = load_iris_frame()
    if role == "bad":
        df = df.copy()
        df.loc[df[LABEL] == "versicolor", LABEL] = "virginica"
    strength = {"stable": 0.5, "next": 2.0}.get(role, 1.0)  # the candidate beats stable on the quality gate
    return train(df, TrainParams.from_dict({"model": "logistic_regression", "C": strength, "seed": 42})), df


def _register(wb: Workbench, role: str, model_name: str) -> str:
    import mlflow

    tracking.use(wb)
    mlflow.set_experiment("rollout-models")
    with mlflow.start_run(run_name=f"rollout-{role}"):
        mlflow.set_tag(ROLE_TAG, role)
        model, rows = _train(role)
        version = integrity.log_registered(wb, model, load_iris_frame()[FEATURES].head(5), model_name, training=rows)
    tracking.client(wb).set_model_version_tag(model_name, version, ROLE_TAG, role)
    return version


def ensure_versions(wb: Workbench, model_name: str | None = None, roles: tuple[str, ...] = ROLES) -> Versions:
    """Start the tracking server, make sure the versions of ``roles`` exist and ``production`` is set."""
    from mlflow.exceptions import MlflowException

    from mlops_workbench import registry

    model_name = model_name or paramspec.model_name()
    tracking.up(wb, timeout=300)  # generous: a busy machine can take minutes to start mlflow
    client = tracking.client(wb)
    found: dict[str, str] = {}
    try:
        for mv in client.search_model_versions(f"name='{model_name}'"):
            role = (mv.tags or {}).get(ROLE_TAG)
            if role in ROLES and role not in found:
                found[role] = str(mv.version)
    except MlflowException:
        pass
    for role in ("stable", "candidate", *roles):
        if role not in found:
            found[role] = _register(wb, role, model_name)
    versions = Versions(**found)
    try:
        current = client.get_model_version_by_alias(model_name, Alias.PRODUCTION)
    except MlflowException:
        current = None
    if current is None:
        registry.release(
            wb,
            model_name,
            versions.stable,
            approver="workbench-setup",
            reason="initial production version for the canary lab",
        )
    return versions


def reset_production(wb: Workbench, version: str, model_name: str | None = None) -> None:
    """Point ``production`` back at ``version`` (used to rerun the lab from its start)."""
    from mlflow.exceptions import MlflowException

    model_name = model_name or paramspec.model_name()
    tracking.up(wb)
    client = tracking.client(wb)
    try:
        current = client.get_model_version_by_alias(model_name, Alias.PRODUCTION)
    except MlflowException:
        current = None
    if current is None or str(current.version) != str(version):  # a lab reset, not a promotion: no gate
        client.set_registered_model_alias(model_name, Alias.PRODUCTION, str(version))
