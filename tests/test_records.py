"""The typed records of the two append-only logs: the registry audit log and the rollout event log."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mlops_workbench.errors import InputError
from mlops_workbench.records import SCHEMA_VERSION
from mlops_workbench.registry import audit
from mlops_workbench.registry.audit import AuditAction, AuditOutcome
from mlops_workbench.rollout import events
from mlops_workbench.rollout.events import Decision, EventLog, EventType
from mlops_workbench.workbench import Workbench

OLD_AUDIT_LINE = {
    "ts": "2026-01-01T10:00:00.000+00:00",
    "action": "promote",
    "model": "iris",
    "version": "2",
    "alias": "production",
    "approver": "bob",
    "registered_by": "ann",
    "reason": "better",
    "outcome": "promoted",
    "replaced": "1",
    "at": "2026-01-01T10:00:00.000+00:00",
    "gate": None,
}
OLD_EVENT_LINES = [
    {
        "t": 1.0,
        "type": "start",
        "rollout": "r1",
        "candidate": "2",
        "stable": "1",
        "policy": "p",
        "steps": [{"setWeight": 5}],
        "bound_s": 12.0,
    },
    {"t": 2.0, "type": "weight", "rollout": "r1", "canary": 5, "reason": "step 0"},
    {"t": 3.0, "type": "decision", "rollout": "r1", "decision": "abort", "reason": "error-rate"},
]


# --- the audit log -------------------------------------------------------------------------------------------------


def test_an_audit_entry_round_trips_through_the_log(tmp_path):
    written = audit.append(
        Workbench.from_env(tmp_path),
        {
            "action": "rollback",
            "model": "iris",
            "version": 1,
            "alias": "production",
            "outcome": "rolled_back",
            "replaced": "2",
        },
    )
    assert written.version == "1", "a version number is stored as text, the way MLflow names versions"
    line = json.loads(audit.log_path(Workbench.from_env(tmp_path)).read_text())
    assert line["v"] == SCHEMA_VERSION and line["ts"] == written.ts
    assert "error" not in line, "a line holds the fields it was given, not every field as null"
    [read] = audit.read(Workbench.from_env(tmp_path))
    assert read == written
    assert read.action is AuditAction.ROLLBACK and read.outcome is AuditOutcome.ROLLED_BACK
    assert read.changed_production


def test_an_audit_line_written_before_records_were_versioned_still_reads(tmp_path):
    path = audit.log_path(Workbench.from_env(tmp_path))
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(OLD_AUDIT_LINE) + "\n")
    [entry] = audit.read(Workbench.from_env(tmp_path))
    assert entry.v == 1 and entry.replaced == "1" and entry.gate is None
    assert entry.line() == {"v": 1, **OLD_AUDIT_LINE}


def test_an_unknown_audit_key_is_refused_by_name_and_nothing_is_written(tmp_path):
    with pytest.raises(InputError, match=r"aprover: no such field.*Did you mean 'approver'"):
        audit.append(Workbench.from_env(tmp_path), {**OLD_AUDIT_LINE, "aprover": "bob"})
    with pytest.raises(InputError, match=r"outcome: .*'promoted', 'refused', 'rolled_back', .* or 'out_of_band'"):
        audit.append(Workbench.from_env(tmp_path), {**OLD_AUDIT_LINE, "outcome": "shipped"})
    assert not audit.log_path(Workbench.from_env(tmp_path)).exists()


def test_the_closed_sets_of_the_audit_log():
    assert {a.value for a in AuditAction} == {
        "promote",
        "rollback",
        "serve",
        "reload",
        "gitops_sync",
        "gitops_rollback",
        "retrain",  # lab 07: the steps of a retrain and re-release
        "gate",
        "shadow",
        "canary",
        "approve",  # lab 08: second-person approvals, blue-green switches
        "switch",
        "alias_created",  # MLflow's registry webhooks: alias changes made outside the workbench
        "alias_deleted",
    }
    assert {o.value for o in AuditOutcome} == {
        "promoted",
        "refused",
        "rolled_back",
        "synced",
        "failed",
        "started",
        "validated",
        "reproduced",
        "registered",
        "rejected",
        "passed",
        "approved",
        "switched",
        "out_of_band",
    }


@pytest.mark.parametrize(
    "line, says",
    [
        ("{not json\n", "is not JSON"),
        ('["a list"]\n', "is not a JSON object"),
        (json.dumps({**OLD_AUDIT_LINE, "colour": "red"}) + "\n", "colour: no such field"),
        (json.dumps({k: v for k, v in OLD_AUDIT_LINE.items() if k != "outcome"}) + "\n", "outcome: missing"),
    ],
)
def test_a_bad_audit_line_is_named_with_its_fields_and_the_fix(tmp_path, line, says):
    path = audit.log_path(Workbench.from_env(tmp_path))
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(OLD_AUDIT_LINE) + "\n" + line)
    with pytest.raises(InputError) as err:
        audit.read(Workbench.from_env(tmp_path))
    message = str(err.value)
    assert f"{path} line 2" in message and says in message and "append-only" in message
    assert "\n" not in message


def test_an_audit_entry_reads_like_its_json_line_for_notebooks(tmp_path):
    audit.append(Workbench.from_env(tmp_path), OLD_AUDIT_LINE)
    [entry] = audit.read(Workbench.from_env(tmp_path))
    assert entry["version"] == "2" and entry.get("model") == "iris" and entry.get("error") is None
    frame = pd.DataFrame(audit.read(Workbench.from_env(tmp_path)))
    assert frame.loc[0, "outcome"] == "promoted" and frame.loc[0, "ts"] == OLD_AUDIT_LINE["ts"]


# --- the rollout event log -----------------------------------------------------------------------------------------


def test_each_event_type_has_its_own_model(tmp_path, wb):
    log = EventLog(wb, path=tmp_path / "events.jsonl", rollout="r1")
    emitted = [
        log.emit("start", candidate="2", stable="1", policy="p", steps=[], bound_s=12.0),
        log.emit("weight", canary=5, reason="step 0"),
        log.emit("measurement", metric="error-rate", kind="errorRate", phase="failed", value=0.3, t=None),
        log.emit("traffic", totals={"canary": {"requests": 3, "errors": 1}}),
        log.emit("fault", totals=None, error_rate=0.5, latency_ms=0.0, crash_after=None, seed=0),
        log.emit("decision", decision="abort", reason="error-rate failed"),
        log.emit("phase", phase="Aborted", reason="error-rate failed"),
        log.emit("registry", action="rollback", version="2", reason="router down"),
    ]
    assert [e.type for e in emitted] == list(EventType)
    assert all(type(e) is events.MODELS[e.type] and e.rollout == "r1" for e in emitted)
    assert events.read(wb, path=log.path) == emitted
    assert emitted[5].decision is Decision.ABORT
    assert {d.value for d in Decision} == {"promote", "abort", "inconclusive", "continue"}


def test_an_event_line_written_before_records_were_versioned_still_reads(tmp_path, wb):
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in OLD_EVENT_LINES))
    read = events.read(wb, path=path)
    assert [e.v for e in read] == [1, 1, 1] and read[1].canary == 5 and read[2].decision is Decision.ABORT
    assert [e.line() for e in read] == [{"v": 1, **e} for e in OLD_EVENT_LINES]
    assert events.read(wb, path=path, rollout="r2") == []


def test_emit_refuses_a_key_its_type_does_not_have_and_writes_nothing(tmp_path, wb):
    log = EventLog(wb, path=tmp_path / "events.jsonl", rollout="r1")
    with pytest.raises(InputError, match=r"not a valid 'weight' event: decision: no such field"):
        log.emit("weight", canary=5, decision="abort")
    with pytest.raises(InputError, match=r"not a valid 'decision' event: decision: missing"):
        log.emit("decision", reason="forgot the decision")
    with pytest.raises(InputError, match=r"type 'rollback', not one of start, weight"):
        log.emit("rollback")
    assert not log.path.exists() or log.path.read_text() == ""


def test_a_torn_last_event_line_is_skipped_but_a_bad_event_is_named(tmp_path, wb):
    path = tmp_path / "events.jsonl"
    good = "".join(json.dumps(e) + "\n" for e in OLD_EVENT_LINES)
    path.write_text(good + '{"t": 4.0, "type": "wei')
    assert len(events.read(wb, path=path)) == 3, "a writer still at work on the last line"
    path.write_text(good + json.dumps({"t": 4.0, "type": "weight", "rollout": "r1", "canary": 0, "colour": 1}) + "\n")
    with pytest.raises(InputError, match=rf"{path} line 4 is not a valid 'weight' event: colour: no such field"):
        events.read(wb, path=path)
    path.write_text('{"t": 4.0, "type": "wei\n' + good)
    with pytest.raises(InputError, match=rf"{path} line 1 is not JSON"):
        events.read(wb, path=path)
