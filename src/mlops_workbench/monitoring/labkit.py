"""Lab 07's fixtures: the learner's project with a model in production, the months of traffic, the data commit,
and the small wiring between the monitor service and the notebook.

:func:`prepare` builds the project (lab 02's git + DVC pipeline trained on Iris, registered and released) and
serves production behind the router; :func:`send_month` replays a seeded month of traffic through it and answers
the truth the label feed needs; :func:`commit_month` commits the labelled rows of a month as new data, the way a
data engineer would (``dvc add``, git commit, ``dvc push``). :func:`logged` waits until the prediction log holds a
month's requests, and :func:`wait_for_alert` until the webhook records a firing notification (the monitor service
scores the prediction log itself: :mod:`~mlops_workbench.monitoring.watch`). The learner's own procedures (drift test, accuracy, rules, retrain) are not here.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_workbench import data, registry, tracking, versioning
from mlops_workbench.alias import Alias
from mlops_workbench.errors import Failed, InputError
from mlops_workbench.monitoring import scenarios, webhook
from mlops_workbench.monitoring.predictions import PredictionLog, PredictionRecord, Window
from mlops_workbench.registry.candidates import candidate_workspace

if TYPE_CHECKING:
    import pandas as pd

    from mlops_workbench.datastats import ReferenceStats
    from mlops_workbench.versioning import Workspace
    from mlops_workbench.workbench import Workbench

PROJECT = "project"
"""The learner's git + DVC project, a folder of the lab workspace (the workspace itself holds the exercises)."""
LATER_MONTH = scenarios.Shift(feature="sepal_width", amount=0.6)
"""The notebook's later month: the sepal width device reads 0.6 cm more (about 1.4 standard deviations)."""


@dataclass(frozen=True)
class Prepared:
    """The lab's starting point: the project, the version in production, its reference and the router."""

    workspace: Workspace
    version: str
    reference: ReferenceStats
    router: str


def build_project(
    wb: Workbench, path: Path, model_name: str, frame: pd.DataFrame | None = None, *, gated: bool = True
) -> tuple[Workspace, str]:
    """The project at ``path`` trained on ``frame`` (default: Iris), logged with lineage, registered and released
    to production; (workspace, version). The folder is rebuilt from empty. ``gated=False`` points the alias at the
    version without the registry's gate (a grader's deliberately weak production)."""
    ws = candidate_workspace(wb, path, frame=frame)
    ws.dvc("repro", "--quiet")
    ws.commit("Train on the first month")
    run_id = versioning.log_model_run(wb, ws, experiment="monitor-retrain", run_name="first-month")
    version = str(registry.register(wb, run_id, model_name).version)
    if gated:
        registry.release(wb, model_name, version, approver="lead", reason="the first month in production")
    else:
        tracking.client(wb).set_registered_model_alias(model_name, Alias.PRODUCTION, version)
    return ws, version


def prepare(wb: Workbench, workspace: Path, model_name: str) -> Prepared:
    """Tracking server up, the project built and released, production served behind the router (fresh each run)."""
    from mlops_workbench.monitoring.reference import load
    from mlops_workbench.rollout.backends.local import LocalBackend

    backend = LocalBackend(wb, model_name=model_name, metrics="direct")
    backend.down()
    tracking.up(wb)
    ws, version = build_project(wb, workspace / PROJECT, model_name)
    router = backend.up()
    backend.warm_up("stable")
    return Prepared(workspace=ws, version=version, reference=load(wb, model_name, version), router=router)


def send_month(router: str, seed: int, rows: int, prefix: str, shift: scenarios.Shift | None = None) -> dict[str, str]:
    """Replay a seeded month (``shift`` moves one feature) through the router, one request a row named
    ``<prefix>-<i>``; returns ``{request id: true class}`` for the label feed."""
    from mlops_workbench.serving.client import RouterClient

    return scenarios.replay(RouterClient(router), scenarios.traffic(seed, rows, shift), prefix)


def logged(
    wb: Workbench, model_name: str, prefix: str, expected: Collection[str] | int, *, timeout: float = 30.0
) -> Window:
    """The window of the prediction log holding the requests named ``<prefix>-*`` (labels joined, if any), once
    it holds every one of ``expected`` (the request ids :func:`send_month` answered, or how many there are): the
    recorder writes off the request path, a little after the answer. ``.frame()`` gives one row per prediction.
    Raises :class:`Failed` naming what is missing when the log has not caught up within ``timeout`` seconds."""
    want = expected if isinstance(expected, int) else len(expected)
    ids = None if isinstance(expected, int) else frozenset(expected)
    if want < 1 or (ids is not None and any(not i.startswith(f"{prefix}-") for i in ids)):
        raise InputError(
            f"expected={expected!r}: pass what send_month(..., {prefix!r}) returned (request ids starting "
            f"{prefix}-), or how many requests it answered."
        )
    deadline = time.monotonic() + timeout
    while True:
        rows = _logged_rows(wb, model_name, prefix)
        missing = want - len(rows) if ids is None else len(ids - {r.request_id for r in rows})
        if missing <= 0:
            return Window(model=model_name, version=None, start=rows[0].ts, end=rows[-1].ts, rows=rows)
        if time.monotonic() >= deadline:
            raise Failed(_not_logged(model_name, prefix, want, missing, rows, ids, timeout))
        time.sleep(0.05)


def _logged_rows(wb: Workbench, model_name: str, prefix: str) -> list[PredictionRecord]:
    log = PredictionLog(wb)
    try:
        return [r for r in log.query(model=model_name) if r.request_id.startswith(f"{prefix}-")]
    finally:
        log.close()


def _not_logged(
    model_name: str,
    prefix: str,
    want: int,
    missing: int,
    rows: list[PredictionRecord],
    ids: frozenset[str] | None,
    timeout: float,
) -> str:
    absent = sorted(ids - {r.request_id for r in rows})[:3] if ids is not None else []
    which = f" (first: {', '.join(absent)})" if absent else ""
    return (
        f"The prediction log holds {len(rows)} of the {want} predictions of model {model_name} named {prefix}-* "
        f"after {timeout:.0f} s: {missing} never arrived{which}. The model servers record them: check that they "
        f"still run (`workbench ps`) and serve {model_name}, then send the month again."
    )


def commit_frame(ws: Workspace, frame: pd.DataFrame, message: str) -> str:
    """Commit ``frame`` as the project's whole data, unchecked, the way a data engineer would (write the CSV,
    ``dvc add``, git commit, ``dvc push``); the commit's sha. Validation is the retrain's job."""
    frame.to_csv(ws.path / versioning.DATA, index=False)
    ws.dvc("add", versioning.DATA)
    sha = ws.commit(message)
    ws.dvc("push", "--quiet")
    return sha


def commit_month(ws: Workspace, rows: pd.DataFrame, message: str) -> str:
    """Append labelled ``rows`` (features and species) to the project's data as a data commit; its sha."""
    import pandas as pd

    current = data.load_csv(ws.path / versioning.DATA)
    merged = pd.concat([current, rows[[*data.FEATURES, data.LABEL]]], ignore_index=True)
    return commit_frame(ws, merged, message)


def iris_reference() -> ReferenceStats:
    """Reference statistics of a model trained as the project trains (Iris, the default split and params): what
    the grader measures hidden months against, pure and without a registry."""
    from mlops_workbench import train
    from mlops_workbench.datastats import compute
    from mlops_workbench.registry.candidates import candidate_params

    params = candidate_params()
    training, holdout = data.split(data.load_iris_frame(), test_size=params.test_size, seed=params.seed)
    return compute(training, train.train(training, params), holdout=holdout)


def wait_for_alert(wb: Workbench, alertname: str, timeout: float = 120.0) -> webhook.AlertRecord:
    """The first firing notification of ``alertname`` the webhook recorded, waiting up to ``timeout`` seconds."""
    path = wb.layout.alerts_received
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for record in webhook.read(path):
            if record.status == "firing" and record.notification.common_labels.get("alertname") == alertname:
                return record
        time.sleep(0.5)
    raise Failed(
        f"No firing {alertname} notification reached the webhook within {timeout:.0f} s: check that your rule "
        "is named so, that the drift score is above its threshold, and `workbench monitor status`."
    )
