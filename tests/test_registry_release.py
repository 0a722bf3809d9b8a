"""registry.release is the one staging-to-production walk: two promote() calls, staging first, production last."""

from __future__ import annotations

import pytest

from mlops_workbench import registry
from mlops_workbench.alias import Alias
from mlops_workbench.registry import aliases
from mlops_workbench.workbench import Workbench


@pytest.fixture
def calls(monkeypatch):
    seen: list[tuple] = []

    def promote(wb, name, version, alias, approver=None, reason="", **kwargs):
        seen.append((name, str(version), alias, approver, reason, {"home": wb.home, **kwargs}))  # the workbench it got
        if alias == Alias.STAGING and reason == "refuse me":
            raise registry.RegistryError("Promotion refused, nothing changed: test.")
        return f"v{version}@{alias}"

    monkeypatch.setattr(aliases, "promote", promote)
    return seen


def test_release_walks_staging_then_production_and_returns_the_production_record(calls, tmp_path):
    got = registry.release(
        Workbench.from_env(tmp_path), "iris", 3, approver="ann", reason="better recall", gate_result="G"
    )
    assert got == "v3@production"
    assert calls == [
        ("iris", "3", Alias.STAGING, "ann", "better recall", {"home": tmp_path}),
        ("iris", "3", Alias.PRODUCTION, "ann", "better recall", {"home": tmp_path, "gate_result": "G"}),
    ]


def test_the_staging_step_may_have_its_own_approver_and_reason(calls, wb):
    registry.release(
        wb, "iris", "4", approver="reviewer", reason="gated", staging_approver="on-call", staging_reason="candidate"
    )
    assert [(c[2], c[3], c[4]) for c in calls] == [
        (Alias.STAGING, "on-call", "candidate"),
        (Alias.PRODUCTION, "reviewer", "gated"),
    ]


def test_a_refused_staging_step_stops_the_walk(calls, wb):
    with pytest.raises(registry.RegistryError):
        registry.release(wb, "iris", "5", approver="ann", reason="x", staging_reason="refuse me")
    assert [c[2] for c in calls] == [Alias.STAGING]
