"""Retrain's pure parts: new-data detection against the last finished retrain, the retrain tags, the lineage chain
built from audit entries and formatted, and the audit records that carry it."""

from __future__ import annotations

import pytest

from mlops_workbench.errors import InputError
from mlops_workbench.monitoring.chain import build_chain, format_chain
from mlops_workbench.monitoring.release import retrain_record
from mlops_workbench.monitoring.retrain import (
    DATA_COMMIT,
    DataState,
    alert_cause,
    cause_of,
    is_new_data,
    last_retrain,
    retrain_tags,
)
from mlops_workbench.monitoring.shadow import ShadowPolicy, ShadowStats, shadow_verdict
from mlops_workbench.registry import audit
from mlops_workbench.registry.audit import AuditAction, AuditEntry, AuditOutcome, Lineage
from mlops_workbench.registry.gate import GateResult
from mlops_workbench.workbench import Workbench

WS = "/state/workspaces/07-monitor-retrain"
ALERT = alert_cause('{}:{alertname="InputDrift"}', ["3f1c", "9ab2"], "InputDrift")


def lineage(md5: str = "a" * 32, attempt: str = "att1", cause=DATA_COMMIT, **more) -> Lineage:
    return Lineage(attempt=attempt, cause=cause, workspace=WS, git_commit="c" * 40, data_md5=md5, **more)


def line(action, outcome, lin=None, model="iris", version=None, **more) -> AuditEntry:
    return AuditEntry(action=action, model=model, version=version, outcome=outcome, lineage=lin, **more)


def state(md5: str | None) -> DataState:
    return DataState(commit="d" * 40, data_path="data/iris.csv", data_md5=md5, locked_md5=None)


def test_data_no_retrain_has_seen_is_new():
    assert is_new_data(state("a" * 32), None)
    assert is_new_data(state("b" * 32), lineage("a" * 32))
    assert not is_new_data(state("a" * 32), lineage("a" * 32)), "a commit that changes no data is not new data"
    assert not is_new_data(state(None), None), "nothing tracked is never new"


def test_the_last_retrain_is_the_last_finished_one_of_this_model_and_workspace():
    entries = [
        line(AuditAction.RETRAIN, AuditOutcome.STARTED, lineage("1" * 32, "a1")),
        line(AuditAction.RETRAIN, AuditOutcome.REGISTERED, lineage("1" * 32, "a1"), version="2"),
        line(AuditAction.RETRAIN, AuditOutcome.REJECTED, lineage("2" * 32, "a2")),
        line(AuditAction.RETRAIN, AuditOutcome.STARTED, lineage("3" * 32, "a3")),  # crashed half-way: still pending
        line(AuditAction.RETRAIN, AuditOutcome.REGISTERED, lineage("4" * 32, "a4"), model="other", version="1"),
        line(AuditAction.PROMOTE, AuditOutcome.PROMOTED, version="2", alias="production"),
    ]
    last = last_retrain(entries, "iris", WS)
    assert last is not None and last.attempt == "a2" and last.data_md5 == "2" * 32
    assert is_new_data(state("3" * 32), last) and not is_new_data(state("2" * 32), last)
    assert last_retrain(entries, "iris", "/another/workspace") is None
    assert last_retrain([], "iris", WS) is None


def test_retrain_tags_name_the_cause_and_the_data_commit():
    tags = retrain_tags(lineage(cause=ALERT))
    assert tags == {
        "retrain.attempt": "att1",
        "retrain.cause": "alert",
        "retrain.data_commit": "c" * 40,
        "retrain.data_md5": "a" * 32,
        "retrain.alert_group": '{}:{alertname="InputDrift"}',
        "retrain.fingerprints": "3f1c,9ab2",
    }
    assert "retrain.alert_group" not in retrain_tags(lineage())
    assert ALERT.describe() == 'alert InputDrift group {}:{alertname="InputDrift"} (fingerprints 3f1c, 9ab2)'
    assert DATA_COMMIT.describe() == "data-commit"


def test_audit_lines_keep_lineage_and_shadow_verdict_typed(tmp_path):
    verdict = shadow_verdict(ShadowStats(model_version="5", outcomes={"agree": 120.0}), ShadowPolicy())
    audit.append(
        Workbench.from_env(tmp_path),
        line(AuditAction.SHADOW, AuditOutcome.PASSED, lineage(cause=ALERT), version="5", shadow=verdict),
    )
    (back,) = audit.read(Workbench.from_env(tmp_path))
    assert back.shadow == verdict and back.lineage.cause == ALERT and back.action is AuditAction.SHADOW
    with pytest.raises(InputError, match="lineage"):
        audit.entry({"action": "retrain", "model": "iris", "outcome": "started", "lineage": {"cause": "alert"}})
    with pytest.raises(InputError, match="kind"):
        audit.entry(
            {
                "action": "retrain",
                "model": "iris",
                "outcome": "started",
                "lineage": {"attempt": "a", "cause": {"kind": "cron"}, "workspace": WS, "git_commit": "c"},
            }
        )


GATE = GateResult(
    passed=True,
    model="iris",
    candidate_version="5",
    production_version="4",
    metric="f1_macro",
    min_gain=0.0,
    candidate={"accuracy": 0.98, "f1_macro": 0.98},
    production={"accuracy": 0.93, "f1_macro": 0.92},
    reasons=[],
    holdout_rows=60,
)


def chain_entries() -> list[AuditEntry]:
    done = lineage(cause=ALERT, run_id="r" * 32)
    verdict = shadow_verdict(ShadowStats(model_version="5", outcomes={"agree": 150.0}), ShadowPolicy())
    return [
        line(AuditAction.RETRAIN, AuditOutcome.STARTED, lineage(cause=ALERT), reason="cause: alert"),
        line(AuditAction.RETRAIN, AuditOutcome.VALIDATED, lineage(cause=ALERT), reason="passes the schema"),
        line(AuditAction.RETRAIN, AuditOutcome.REPRODUCED, lineage(cause=ALERT), reason="dvc repro"),
        line(AuditAction.RETRAIN, AuditOutcome.REGISTERED, done, version="5", reason="results committed as e1"),
        line(AuditAction.GATE, AuditOutcome.PASSED, done, version="5", gate=GATE, reason="fresh window of 60 rows"),
        line(AuditAction.PROMOTE, AuditOutcome.PROMOTED, version="3", alias="production"),  # another version
        line(AuditAction.SHADOW, AuditOutcome.PASSED, done, version="5", shadow=verdict),
        line(AuditAction.PROMOTE, AuditOutcome.PROMOTED, version="5", alias="staging", approver="rollout-controller"),
        line(
            AuditAction.PROMOTE,
            AuditOutcome.PROMOTED,
            version="5",
            alias="production",
            approver="rollout-controller",
            replaced="4",
            reason="canary rollout: all steps passed",
            gate=GATE,  # the promotion relies on the retrain's verdict
        ),
        line(AuditAction.CANARY, AuditOutcome.PASSED, done.model_copy(update={"rollout": "ro1"}), version="5"),
        line(AuditAction.ROLLBACK, AuditOutcome.ROLLED_BACK, version="4", alias="production", replaced="5"),
    ]


def test_the_chain_runs_from_the_alert_to_the_rollout():
    tags = {"git.commit": "c" * 40, "data.md5": "a" * 32, "data.path": "data/iris.csv"}
    chain = build_chain("iris", "5", chain_entries(), "r" * 32, tags, {"accuracy": 0.975, "f1_macro": 0.9749})
    assert chain.cause.startswith("alert InputDrift group")
    assert chain.data == f"commit {'c' * 40} of {WS}, data/iris.csv md5 {'a' * 32}"
    assert chain.run == f"{'r' * 32} (accuracy=0.9750, f1_macro=0.9749)"
    steps = [(s.step, s.outcome) for s in chain.steps]
    assert steps == [
        ("retrain", "started"),
        ("retrain", "validated"),
        ("retrain", "reproduced"),
        ("retrain", "registered"),
        ("gate", "passed"),
        ("shadow", "passed"),
        ("promote", "promoted"),
        ("promote", "promoted"),
        ("canary", "passed"),
        ("rollback", "rolled_back"),
    ], "the lines of the attempt and of version 5, none of version 3"
    text = "\n".join(format_chain(chain))
    assert "fresh window of 60 rows: gate PASSED for iris v5 against production v4" in text
    assert "shadow PASSED for version 5 (150 mirrored requests" in text
    assert "production by rollout-controller, replacing version 4: canary rollout: all steps passed" in text
    assert "production back to version 4 from 5" in text
    assert text.splitlines()[0] == "iris version 5: lineage"


def test_a_version_no_retrain_made_says_so_and_shows_the_run_lineage():
    chain = build_chain("iris", "3", chain_entries(), "q" * 32, {"git.commit": "e" * 40, "data.md5": "f" * 32}, {})
    assert chain.cause == "not recorded (no retrain registered this version)"
    assert chain.data == f"commit {'e' * 40}, data md5 {'f' * 32}" and chain.run == "q" * 32
    assert [(s.step, s.outcome) for s in chain.steps] == [("promote", "promoted")]
    bare = build_chain("iris", "9", [], None, {}, {})
    assert format_chain(bare)[1:] == [
        "  cause    not recorded (no retrain registered this version)",
        "  data     not recorded",
        "  run      not recorded",
        "  (no audit step names this version)",
    ]


def test_the_retrain_record_of_a_version_is_found_in_the_audit_log():
    found, gate = retrain_record(chain_entries(), "iris", "5")
    assert found is not None and found.run_id == "r" * 32 and found.cause == ALERT
    assert gate == GATE, "the gate line's verdict on the fresh window"
    assert retrain_record(chain_entries(), "iris", "3") == (None, None)


def test_an_alertmanager_notification_is_the_cause_of_its_retrain():
    from mlops_workbench.monitoring.webhook import Notification

    alert = {
        "labels": {"alertname": "InputDrift"},
        "startsAt": "2026-01-01T00:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
    }
    notification = Notification.model_validate(
        {
            "version": "4",
            "groupKey": '{}:{alertname="InputDrift"}',
            "status": "firing",
            "receiver": "workbench",
            "groupLabels": {"alertname": "InputDrift"},
            "commonLabels": {"alertname": "InputDrift", "severity": "page"},
            "externalURL": "http://127.0.0.1:9093",
            "alerts": [
                {**alert, "status": "firing", "fingerprint": "9ab2"},
                {**alert, "status": "firing", "fingerprint": "3f1c"},
                {**alert, "status": "resolved", "fingerprint": "0000"},
            ],
        }
    )
    assert cause_of(notification) == ALERT, "the firing fingerprints, sorted, and the alert's name"
