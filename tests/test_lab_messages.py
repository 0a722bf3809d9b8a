"""Lab checks name the real cause of a failure (issue 12), from fake state on disk (no processes)."""

from __future__ import annotations

from mlops_workbench.labs.checks import Context
from mlops_workbench.labs.format import Lab
from mlops_workbench.labs.grade import run_check
from mlops_workbench.workbench import Workbench


def lab_check(lab: str, check_id: str):
    return next(c for c in Lab.find(lab).checks if c.id == check_id)


def test_a_healthy_rollout_the_loop_did_not_promote_is_named_with_where_to_look(tmp_path):
    checks = {c.id: c for c in Lab.find("04-canary-rollback").checks}
    ctx = Context(
        lab="04-canary-rollback",
        wb=Workbench.from_env(tmp_path),
        live=False,
        variables={"healthy_version": "2", "model_name": "iris-canary", "healthy_outcome": "aborted"},
    )
    result = run_check(checks["healthy-promoted"], ctx)
    assert result.status == "failed", result.message
    assert result.message.startswith("run_canary returned 'aborted' for the healthy candidate v2"), result.message
    assert "read the measurements it printed" in result.message


def test_lab03_grades_a_stopped_server_from_its_log(tmp_path):
    from mlops_workbench.serving.record import last_served

    checks = {c.id: c for c in Lab.find("03-registry-promotion").checks}
    server_version = checks["serving-production"].func.__globals__["server_version"]
    ctx = Context(lab="03-registry-promotion", wb=Workbench.from_env(tmp_path), live=False)
    never = run_check(
        checks["serving-production"],
        Context(
            lab="03-registry-promotion", wb=Workbench.from_env(tmp_path), variables={"answer": {"predictions": [1, 2]}}
        ),
    )
    assert never.status == "failed" and "ever ran" in never.message
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "lab03-serve.log").write_text(
        "serving models:/iris@production (version 2) on http://127.0.0.1:41000\n"
        "2026-01-01 10:00:00 WARNING mlops_workbench.serving.server: reloaded models:/iris@production: version 2 -> 1\n"
    )
    info = server_version(ctx)  # the learner stopped lab03-serve at the end: grade what it served
    assert info == last_served(Workbench.from_env(tmp_path), "lab03-serve")
    assert (info["name"], info["alias"], info["version"], info["recorded"]) == ("iris", "production", "1", True)
