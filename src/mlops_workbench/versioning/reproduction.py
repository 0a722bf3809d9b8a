"""Reproduce a logged run from its lineage and say whether, and why not, it matches.

:func:`reproduce` clones the run's workspace at the recorded commit into a
scratch folder, pulls the data from the DVC remote, reruns the ``train`` stage
with ``dvc repro --force`` and compares every metric with the logged one. When
they differ it names the cause from the lineage: a dirty tree at logging time,
params that were never committed, data that changed, another environment.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from mlops_workbench import tracking
from mlops_workbench.errors import InputError
from mlops_workbench.versioning.lineage import env_fingerprint, package_code_hash, params_hash
from mlops_workbench.versioning.workspace import METRICS, Workspace, WorkspaceError, file_md5, run
from mlops_workbench.workbench import Workbench

if TYPE_CHECKING:
    from mlflow.entities import Run


class ReproductionError(InputError):
    """The run cannot be reproduced at all (unknown id, no lineage, commit or data gone)."""


class MetricComparison(BaseModel):
    """One metric of the original run next to its reproduction."""

    name: str
    original: float
    reproduced: float | None
    diff: float | None
    matched: bool


class ReproductionReport(BaseModel):
    """The outcome of :func:`reproduce`: ``matched`` is True when every metric is reproduced within tolerance."""

    run_id: str
    commit: str
    matched: bool
    metrics: list[MetricComparison]
    causes: list[str]
    reasons: list[str]
    workdir: str
    tolerance: float

    def summary(self) -> str:
        """A few lines for people: verdict, metrics, and the causes with their fixes."""
        verdict = "REPRODUCED exactly" if self.matched else "NOT reproduced"
        lines = [f"Run {self.run_id} at commit {self.commit[:10]}: {verdict}"]
        for m in self.metrics:
            got = "missing" if m.reproduced is None else f"{m.reproduced:.6g}"
            diff = "" if m.diff is None else f" (diff {m.diff:+.3g})"
            lines.append(
                f"  {'ok ' if m.matched else 'BAD'} {m.name}: original {m.original:.6g}, reproduced {got}{diff}"
            )
        lines += [f"  - {reason}" for reason in self.reasons]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _get_run(wb: Workbench, run_id: str) -> Run:
    from mlflow.exceptions import MlflowException

    uri = tracking.uri(wb)
    try:
        return tracking.client(wb).get_run(run_id)
    except MlflowException as exc:
        raise ReproductionError(
            f"No run with id {run_id!r} on the tracking server {uri} ({exc.error_code}): "
            "copy the id from the MLflow UI or from the value log_model_run returned."
        ) from None


def _checkout(tags: dict[str, str], workdir: Path) -> Workspace:
    """Clone the run's workspace at its commit into ``workdir`` and pull its data from the remote."""
    source, commit, data = tags["workspace.path"], tags["git.commit"], tags.get("data.path", "")
    if not (Path(source) / ".git").is_dir():
        raise ReproductionError(
            f"The run's workspace {source} is gone, so commit {commit[:10]} cannot be restored: "
            "reproduce runs logged from a workspace that still exists (or restore it from a clone)."
        )
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.parent.mkdir(parents=True, exist_ok=True)
    run(["git", "clone", "--quiet", "--no-checkout", source, str(workdir)], workdir.parent)
    ws = Workspace(workdir)
    try:
        ws.git("checkout", "--quiet", "--detach", commit)
    except WorkspaceError:
        raise ReproductionError(
            f"Commit {commit[:10]} of run is not in {source} any more (history rewritten or workspace reset): "
            "the run's code is lost; log runs only from commits you keep."
        ) from None
    if data:
        try:
            ws.dvc("pull", "--quiet", f"{data}.dvc")
        except WorkspaceError as exc:
            raise ReproductionError(
                f"Cannot pull {data} (md5 {tags.get('data.md5', '?')}) from the DVC remote: it was never pushed. "
                f"Run ws.dvc('push') in the workspace after `dvc add`. DVC said: {exc}"
            ) from None
    return ws


def _diagnose(tags: dict[str, str], ws: Workspace, data_path: str) -> tuple[list[str], list[str]]:
    """Causes (short codes) and reasons (sentences with the fix) visible in the lineage and the checkout."""
    causes: list[str] = []
    reasons: list[str] = []
    commit = tags["git.commit"][:10]
    if tags.get("git.dirty") == "true":
        files = tags.get("git.dirty_files") or (
            "which files, the run does not say: it has no `git.dirty_files` tag; log `git status --porcelain` "
            "output in it next time"
        )
        causes.append("dirty-tree")
        reasons.append(
            f"The run was logged from a working tree with uncommitted or untracked changes ({files}); "
            f"those changes are not in commit {commit}, so they cannot be restored. Fix: put the change "
            "under version control (params.yaml / code), commit, rerun `dvc repro` and log a new run."
        )
    if params_hash(ws.params()) != tags.get("params.hash"):
        causes.append("params-changed")
        reasons.append(
            f"params.yaml at commit {commit} differs from the params the run used (hash "
            f"{tags.get('params.hash', '?')[:10]}): preprocessing or training settings were changed outside "
            "version control. Fix: commit params.yaml before logging."
        )
    if tags.get("data.modified") == "true":
        causes.append("data-modified")
        reasons.append(
            f"{data_path} had changed since its last `dvc add` when the run was logged: the data the run "
            "used was never versioned, so this run cannot be reproduced. Fix: if the change was a mistake, "
            "restore the versioned data (`dvc checkout`); if it was meant, version it (`dvc add`, commit the .dvc "
            "file, `dvc push`); either way retrain and log a new run."
        )
    if tags.get("dvc.stale", "false") != "false":
        causes.append("stale-outputs")
        reasons.append(
            f"The logged model and metrics were older than their inputs ({tags['dvc.stale']} changed since the "
            "last `dvc repro`). Fix: run ws.dvc('repro') before log_model_run."
        )
    pulled = ws.path / data_path
    if data_path and pulled.exists() and file_md5(pulled) != tags.get("data.md5"):
        causes.append("data-hash")
        reasons.append(f"The data pulled for {data_path} does not have the recorded md5 {tags.get('data.md5')}.")
    if tags.get("env.fingerprint") and tags["env.fingerprint"] != env_fingerprint():
        causes.append("environment")
        reasons.append(
            "The installed packages differ from those of the run (env fingerprint): library changes can "
            "change results. Fix: reinstall the pinned set (`make setup`)."
        )
    if tags.get("env.package_code") and tags["env.package_code"] != package_code_hash():
        causes.append("package-code")
        reasons.append(
            "The mlops_workbench code the stage runs (data, train, evaluate, versioning) changed since the run. "
            "Fix: reproduce with the package version of the run (check out the project at that time)."
        )
    return causes, reasons


def reproduce(wb: Workbench, run_id: str, tolerance: float = 1e-9, workdir: Path | None = None) -> ReproductionReport:
    """Restore the exact code and data of ``run_id``, retrain, and compare its metrics with the logged ones.

    The scratch checkout goes to ``workdir`` (default ``<home>/reproductions/<run_id>``)
    and the report is also written there as ``reproduction.json``. Raises
    :class:`ReproductionError` when the run is unknown or lacks lineage.
    """
    run_info = _get_run(wb, run_id)
    tags = dict(run_info.data.tags)
    missing = [key for key in ("git.commit", "workspace.path", "params.hash") if key not in tags]
    if missing:
        raise ReproductionError(
            f"Run {run_id} has no lineage ({', '.join(missing)} missing): it was not logged with "
            "versioning.log_model_run, so there is nothing to restore. Log runs with log_model_run(ws)."
        )
    workdir = Path(workdir) if workdir else wb.layout.reproduction(run_id)
    ws = _checkout(tags, workdir)
    ws.dvc("repro", "--force", "--quiet")
    reproduced = json.loads((ws.path / METRICS).read_text()) if (ws.path / METRICS).exists() else {}
    comparisons = []
    for name, original in sorted(run_info.data.metrics.items()):
        value = reproduced.get(name)
        diff = None if value is None else float(value) - original
        ok = value is not None and math.isclose(float(value), original, rel_tol=0, abs_tol=tolerance)
        comparisons.append(MetricComparison(name=name, original=original, reproduced=value, diff=diff, matched=ok))
    matched = bool(comparisons) and all(c.matched for c in comparisons)
    causes, reasons = _diagnose(tags, ws, tags.get("data.path", ""))
    if not matched and not causes:
        causes.append("nondeterministic")
        reasons.append(
            "Same commit, params, data and environment, yet different metrics: training is not deterministic. "
            "Fix: seed every random component (params.yaml train.seed)."
        )
    report = ReproductionReport(
        run_id=run_id,
        commit=tags["git.commit"],
        matched=matched,
        metrics=comparisons,
        causes=causes,
        reasons=reasons,
        workdir=str(workdir),
        tolerance=tolerance,
    )
    (workdir / "reproduction.json").write_text(report.model_dump_json(indent=2))
    return report
