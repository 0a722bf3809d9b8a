"""Lab 08's approval check on a real registry (MLflow server on loopback, sqlite): the notebook's flow passes;
a flow that skips the self-approval attempt, or ships on the requester's own approval, fails with the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_workbench import procs, registry, tracking
from mlops_workbench.errors import RegistryError
from mlops_workbench.labs.checks import CheckFailed, Context, load_checks
from mlops_workbench.registry import approvals
from mlops_workbench.rollout import prepare
from mlops_workbench.workbench import Workbench

pytestmark = pytest.mark.slow
LAB = Path(__file__).resolve().parents[1] / "labs" / "08-strategies-governance"
CHECKS = {c.id: c for c in load_checks(LAB / "checks.py")}
MODEL, ME, REVIEWER = "iris-strategies", "me@example.com", "reviewer@example.com"
RULES = {"second_approval": True}


@pytest.fixture
def lab(tmp_path: Path):
    wb = Workbench.from_env(tmp_path)
    """A state folder with the lab's registered versions (production: stable), each registered by ME."""
    tracking.up(wb, port=procs.free_port(), timeout=300)
    try:
        versions = prepare.ensure_versions(wb, model_name=MODEL, roles=("stable", "candidate"))
        client = tracking.client(wb)
        for version in (versions.stable, versions.candidate):
            client.set_model_version_tag(MODEL, version, approvals.REGISTERED_BY, ME)
        registry.promote(wb, MODEL, versions.candidate, "staging", approver=ME, reason="smoke passed")
        ctx = Context(
            lab="08-strategies-governance",
            wb=wb,
            variables={"candidate_version": versions.candidate, "registrant": ME},
        )
        yield ctx, versions.candidate
    finally:
        procs.stop_all(wb)


def approve(ctx: Context, version: str, who: str) -> None:
    registry.approve(ctx.wb, MODEL, version, approver=who, reason="checked")


def ship(ctx: Context, version: str) -> None:
    registry.promote(ctx.wb, MODEL, version, "production", requester=ME, reason="ship", params=RULES)


def failure(ctx: Context) -> str:
    with pytest.raises(CheckFailed) as caught:
        CHECKS["second-approval"].func(ctx)
    return str(caught.value)


def test_the_notebooks_flow_passes_and_a_self_approved_promotion_is_refused(lab):
    ctx, version = lab
    assert "no refused self-approval" in failure(ctx)
    with pytest.raises(RegistryError, match="self-approval"):
        approve(ctx, version, ME)
    with pytest.raises(RegistryError, match="has no recorded approval"):
        ship(ctx, version)  # nobody else approved yet: refused, production untouched
    assert "nobody but 'me@example.com' approved" in failure(ctx)
    approve(ctx, version, REVIEWER)
    assert "no production promotion" in failure(ctx)
    ship(ctx, version)
    CHECKS["second-approval"].func(ctx)
