"""The lineage chain of a model version, read back: what caused it, which data commit and run made it, and every
audit step it went through (retrain, gate, shadow, canary, promotions). ``workbench registry lineage VERSION``
prints it.

:func:`build_chain` and :func:`format_chain` are pure (audit entries and MLflow tags in, lines out);
:func:`lineage_chain` reads the registry and the audit log.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

from mlops_workbench import paramspec
from mlops_workbench.errors import RegistryError
from mlops_workbench.registry import audit
from mlops_workbench.registry.audit import AuditAction, AuditEntry, AuditOutcome, Lineage
from mlops_workbench.workbench import Workbench

UNKNOWN = "not recorded"


class ChainStep(BaseModel):
    """One audit line of the chain."""

    model_config = ConfigDict(extra="forbid")
    ts: str
    step: str
    outcome: str
    text: str


class LineageChain(BaseModel):
    """Where a version comes from (cause, data, run) and the audit steps it went through, oldest first."""

    model_config = ConfigDict(extra="forbid")
    model: str
    version: str
    cause: str
    data: str
    run: str
    steps: list[ChainStep]


def _belongs(e: AuditEntry, model: str, version: str, attempt: str | None) -> bool:
    if e.model != model:
        return False
    if attempt is not None and e.lineage is not None and e.lineage.attempt == attempt:
        return True
    return e.version == version or (e.action == AuditAction.ROLLBACK and e.replaced == version)


def _text(e: AuditEntry) -> str:
    """What one audit line says, in a few words."""
    who = f" by {e.approver}" if e.approver else ""
    why = f": {e.error or e.reason}" if e.error or e.reason else ""
    if e.action == AuditAction.PROMOTE:
        replaced = f", replacing version {e.replaced}" if e.replaced else ""
        return f"{e.alias}{who}{replaced}{why}"
    if e.action == AuditAction.ROLLBACK:
        return f"{e.alias} back to version {e.version} from {e.replaced}{who}{why}"
    if e.shadow is not None:
        return e.shadow.summary()
    if e.gate is not None:
        head = f"{e.reason}: " if e.reason else ""
        return head + e.gate.summary()
    if e.outcome == AuditOutcome.REGISTERED:
        return f"registered as version {e.version} ({e.reason})" if e.reason else f"registered as version {e.version}"
    return e.error or e.reason or ""


def build_chain(
    model: str,
    version: str,
    entries: list[AuditEntry],
    run_id: str | None,
    run_tags: Mapping[str, str],
    run_metrics: Mapping[str, float],
) -> LineageChain:
    """The chain of ``version`` from the audit log's entries and its run's tags and metrics (pure)."""
    version = str(version)
    registered = [
        e
        for e in entries
        if e.model == model and e.version == version and e.outcome == AuditOutcome.REGISTERED and e.lineage
    ]
    lineage: Lineage | None = registered[-1].lineage if registered else None
    attempt = lineage.attempt if lineage else None
    steps = [
        ChainStep(ts=e.ts, step=str(e.action), outcome=str(e.outcome), text=_text(e))
        for e in entries
        if _belongs(e, model, version, attempt)
    ]
    if lineage is not None:
        cause = lineage.cause.describe()
    else:
        cause = run_tags.get("retrain.cause") or f"{UNKNOWN} (no retrain registered this version)"
    commit = lineage.git_commit if lineage else run_tags.get("git.commit")
    md5 = lineage.data_md5 if lineage else run_tags.get("data.md5")
    workspace = lineage.workspace if lineage else run_tags.get("workspace.path")
    data = UNKNOWN
    if commit:
        where = f" of {workspace}" if workspace else ""
        data = f"commit {commit}{where}, {run_tags.get('data.path', 'data')} md5 {md5 or UNKNOWN}"
    scores = ", ".join(f"{k}={v:.4f}" for k, v in sorted(run_metrics.items()))
    run = f"{run_id} ({scores})" if run_id and scores else run_id or UNKNOWN
    return LineageChain(model=model, version=version, cause=cause, data=data, run=run, steps=steps)


def format_chain(chain: LineageChain) -> list[str]:
    """The chain as lines of text: the facts, then one line per audit step."""
    lines = [
        f"{chain.model} version {chain.version}: lineage",
        f"  cause    {chain.cause}",
        f"  data     {chain.data}",
        f"  run      {chain.run}",
    ]
    if not chain.steps:
        lines.append("  (no audit step names this version)")
    for s in chain.steps:
        lines.append(f"  {s.ts}  {s.step:<8} {s.outcome:<10} {s.text}".rstrip())
    return lines


def lineage_chain(wb: Workbench, version: str | int, model_name: str | None = None) -> LineageChain:
    """The chain of ``version`` of ``model_name``: its MLflow run and the audit log (RegistryError when unknown)."""
    from mlops_workbench import registry

    model = model_name or paramspec.model_name()
    versions = registry.list_versions(wb, model)
    found = next((v for v in versions if str(v.version) == str(version)), None)
    if found is None:
        known = ", ".join(str(v.version) for v in reversed(versions)) or "none"
        raise RegistryError(
            f"Model '{model}' has no version {version} (versions: {known}): pass one of them, e.g. "
            f"`workbench registry lineage {versions[0].version if versions else 1}`."
        )
    tags: dict[str, str] = {}
    metrics: dict[str, float] = {}
    if found.run_id:
        run = registry.client(wb).get_run(found.run_id)
        tags, metrics = dict(run.data.tags), dict(run.data.metrics)
    return build_chain(model, str(found.version), audit.read(wb), found.run_id, tags, metrics)
