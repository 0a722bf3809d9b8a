"""Lineage of a model run: which code, data, params and environment produced it.

:func:`lineage_tags` reads a workspace (git commit and dirty files, the DVC
hash of the data, a hash of ``params.yaml``, a fingerprint of the installed
pinned packages); :func:`log_model_run` logs the workspace's trained model to
MLflow with those tags, the params, the metrics, and a signature and input
example. :func:`mlops_workbench.versioning.reproduction.reproduce` later rebuilds the run
from exactly these tags.
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from mlops_workbench import settings, tracking
from mlops_workbench.errors import InputError, NotFoundError
from mlops_workbench.versioning.workspace import DATA, METRICS, MODEL_FILE, Workspace, file_md5, stale_inputs
from mlops_workbench.workbench import Workbench

LINEAGE_TAGS = (
    "git.commit",
    "git.dirty",
    "git.dirty_files",
    "data.path",
    "data.md5",
    "data.modified",
    "data.remote",
    "dvc.stale",
    "params.hash",
    "env.fingerprint",
    "env.python",
    "env.package_code",
    "workspace.path",
)
"""Tags every run logged by :func:`log_model_run` carries."""
STAGE_MODULES = {
    "data.py": "data.py",
    "train.py": "train.py",
    "evaluate.py": "evaluate.py",
    "versioning.py": "versioning/stages.py",
}
"""Package modules the train stage runs (hashed name: path in the package): an editable install can change
them without a version bump. The hashed names and :data:`MOVED_MODULES` keep the hash of unchanged code
stable across the move into sub-packages, so runs logged before it do not read "package code changed"."""
MOVED_MODULES = {
    "mlops_workbench.versioning.workspace": "mlops_workbench.workspace",
    "mlops_workbench.versioning.lineage": "mlops_workbench.lineage",
    "mlops_workbench.versioning.reproduction": "mlops_workbench.reproduce",
}
"""Module paths as the stage modules spelled them before the move (new path: old path)."""


def params_hash(params: dict[str, Any]) -> str:
    """sha256 of the params as canonical JSON (key order and YAML formatting do not matter)."""
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()


def _pinned_names() -> list[str]:
    try:
        lock = settings.project_root() / "requirements.lock"
        lines = lock.read_text().splitlines()
        return [line.split("==")[0].strip() for line in lines if "==" in line and not line.startswith("#")]
    except (FileNotFoundError, OSError):
        requires = metadata.requires("mlops-workbench") or []
        return [r.split(";")[0].split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip() for r in requires]


@functools.lru_cache(maxsize=1)
def env_fingerprint() -> str:
    """sha256 over ``name==installed version`` of every pinned dependency (requirements.lock) and Python."""
    lines = [f"python=={platform.python_version()}"]
    for name in sorted(set(_pinned_names()), key=str.lower):
        try:
            lines.append(f"{name.lower()}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            lines.append(f"{name.lower()}==missing")
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def package_code_hash() -> str:
    """sha256 over the source of the package modules the train stage runs (:data:`STAGE_MODULES`)."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for name, relative in STAGE_MODULES.items():
        path = root / relative
        digest.update(name.encode() + b"\0" + (_canonical_source(path) if path.exists() else b"missing"))
    return digest.hexdigest()


def _canonical_source(path: Path) -> bytes:
    """The module's source with moved module paths spelled as before the move."""
    text = path.read_text()
    for new, old in MOVED_MODULES.items():
        text = text.replace(new, old)
    return text.encode()


def lineage_tags(ws: Workspace, data: str = DATA) -> dict[str, str]:
    """The lineage of the workspace's current state, as MLflow tags (all strings).

    ``git.dirty`` is "true" when inputs (code, params, .dvc files) differ from
    the commit; results DVC writes (dvc.lock, model, metrics) do not count.
    ``data.modified`` is "true" when the data file no longer matches its .dvc hash;
    ``dvc.stale`` lists inputs changed since the last ``dvc repro`` ("false" when none).
    """
    dirty = ws.changed_files()
    md5 = ws.dvc_md5(data)
    if md5 is None:
        raise InputError(f"{data} is not tracked by DVC in {ws.path}: run ws.dvc('add', '{data}') and commit.")
    actual = file_md5(ws.path / data) if (ws.path / data).exists() else "missing"
    commit = ws.head()
    return {
        "git.commit": commit,
        "git.dirty": str(bool(dirty)).lower(),
        "git.dirty_files": ",".join(dirty)[:4000],
        "data.path": data,
        "data.md5": md5,
        "data.modified": str(actual != md5).lower(),
        "data.remote": ws.remote_url(),
        "dvc.stale": ",".join(stale_inputs(ws))[:4000] or "false",
        "params.hash": params_hash(ws.params()),
        "env.fingerprint": env_fingerprint(),
        "env.python": platform.python_version(),
        "env.package_code": package_code_hash(),
        "workspace.path": str(ws.path),
        "mlflow.source.git.commit": commit,
    }


def flatten(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"C": 1}}`` -> ``{"train.C": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def log_model_run(
    wb: Workbench, ws: Workspace, experiment: str = "versioning", run_name: str | None = None, data: str = DATA
) -> str:
    """Log the workspace's trained model (after ``dvc repro``) as an MLflow run with full lineage; returns its id.

    Logs the lineage tags, ``params.yaml`` flattened as params, ``metrics.json``
    as metrics, the model (``name="model"``) with signature and input example and
    the reference statistics of its training split (tied to the data's DVC md5,
    calibrated on the test split), and params.yaml / dvc.lock / metrics.json as
    artifacts under ``lineage/``.
    """
    import joblib
    import mlflow

    from mlops_workbench.data import FEATURES, load_csv
    from mlops_workbench.versioning.stages import TEST_SPLIT, TRAIN_SPLIT  # it imports this module

    for needed, fix in ((MODEL_FILE, "run ws.dvc('repro') first"), (METRICS, "run ws.dvc('repro') first")):
        if not (ws.path / needed).exists():
            raise NotFoundError(f"{ws.path / needed} does not exist: {fix}.")
    tags = lineage_tags(ws, data)
    metrics = json.loads((ws.path / METRICS).read_text())
    model = joblib.load(ws.path / MODEL_FILE)
    example = load_csv(ws.path / data)[FEATURES].head(5)
    train_split, test_split = (ws.path / TRAIN_SPLIT, ws.path / TEST_SPLIT)
    training = load_csv(train_split) if train_split.exists() else load_csv(ws.path / data)
    holdout = load_csv(test_split) if test_split.exists() else None
    tracking.use(wb)
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.set_tags(tags)
        mlflow.log_params(flatten(ws.params()))
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))})
        tracking.log_sklearn_model(model, example, training=training, holdout=holdout, data_hash=tags["data.md5"])
        for name in ("params.yaml", "dvc.lock", METRICS):
            if (ws.path / name).exists():
                mlflow.log_artifact(str(ws.path / name), artifact_path="lineage")
    run_id: str = run.info.run_id
    return run_id


def run_lineage(wb: Workbench, run_id: str) -> dict[str, Any]:
    """The lineage tags, params and metrics of a logged run (for display and checks)."""
    run = tracking.client(wb).get_run(run_id)
    return {
        "run_id": run_id,
        "tags": {k: v for k, v in run.data.tags.items() if k in LINEAGE_TAGS},
        "params": dict(run.data.params),
        "metrics": dict(run.data.metrics),
    }
