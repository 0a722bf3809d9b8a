"""The checked post-mortem: structured answers graded one by one against the truth a drill reads from its own run
(audit log, rollout event log, counters); a root cause or a repair that only stops the symptom earns part."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml

from mlops_workbench import drills
from mlops_workbench.drills import grading, postmortem
from mlops_workbench.drills.base import DrillError
from mlops_workbench.drills.causes import Change, RootCause
from mlops_workbench.drills.postmortem_spec import PostMortem, PostMortemTruth
from mlops_workbench.registry.audit import AuditEntry
from mlops_workbench.rollout import events
from mlops_workbench.workbench import Workbench

ONSET = datetime(2026, 11, 4, 10, 2, 13, tzinfo=UTC)
TRUTH = PostMortemTruth(
    version="3",
    began_at=ONSET,
    restored_at=ONSET + timedelta(seconds=95),
    requests_affected=40,
    share_affected=0.25,
    root_cause=RootCause.ANALYSIS_CONFIG,
    symptoms=[RootCause.ROLLOUT_STUCK],
    changes=[Change.ROLLOUT_ABORTED, Change.POLICY_CORRECTED, Change.ROLLOUT_REPEATED],
    required=[Change.ROLLOUT_ABORTED, Change.POLICY_CORRECTED, Change.ROLLOUT_REPEATED],
    evidence="test log",
)


def answer(**changed) -> PostMortem:
    fields = {
        "version": "v3",
        "began_at": "2026-11-04T10:02:15Z",
        "restored_at": "2026-11-04T10:03:47+00:00",
        "requests_affected": 41,
        "share_affected": 0.27,
        "root_cause": "analysis-config",
        "changes": ["rollout-aborted", "policy-corrected", "rollout-repeated"],
    }
    return PostMortem.model_validate({**fields, **changed})


def points(grade) -> dict[str, float]:
    return {f.field: f.points / f.max_points for f in grade.fields}


def test_a_post_mortem_that_matches_the_run_earns_every_point():
    grade = postmortem.grade(answer(), TRUTH)
    assert grade.share == 1 and grade.problems == [] and answer().version == "3"


def test_each_wrong_answer_loses_its_own_points_and_names_the_evidence():
    grade = postmortem.grade(
        answer(version=2, began_at="2026-11-04T09:50:00Z", requests_affected=10, share_affected=0.9), TRUTH
    )
    lost = {field for field, share in points(grade).items() if share == 0}
    assert lost == {"version", "began_at", "requests_affected", "share_affected"}
    assert all("test log" in p for p in grade.problems if not p.startswith("share")) and 0 < grade.share < 1


def test_a_symptom_for_a_root_cause_or_a_repair_that_only_stops_it_earns_part():
    symptom = points(postmortem.grade(answer(root_cause="rollout-stuck"), TRUTH))
    assert symptom["root_cause"] == postmortem.SYMPTOM_SHARE
    wrong = points(postmortem.grade(answer(root_cause="model-quality"), TRUTH))
    assert wrong["root_cause"] == 0
    aborted_only = TRUTH.model_copy(update={"changes": [Change.ROLLOUT_ABORTED]})
    grade = postmortem.grade(answer(changes=["rollout-aborted"]), aborted_only)
    assert points(grade)["changes"] == pytest.approx(1 / 3, abs=1e-3)
    assert "only stops the symptom" in " ".join(grade.problems)


def test_a_change_the_run_does_not_show_earns_nothing():
    truth = TRUTH.model_copy(update={"changes": [Change.ROLLOUT_ABORTED]})
    grade = postmortem.grade(answer(changes=["rollout-aborted", "policy-corrected"]), truth)
    assert points(grade)["changes"] == 0 and "show no policy-corrected" in " ".join(grade.problems)


def test_an_open_incident_cannot_be_checked_yet():
    grade = postmortem.grade(answer(), TRUTH.model_copy(update={"restored_at": None, "requests_affected": None}))
    assert points(grade)["restored_at"] == 0 and any("not over" in p for p in grade.problems)


def test_a_post_mortem_needs_zoned_times_known_causes_and_no_prose():
    for bad in (
        {"began_at": "2026-11-04T10:02:15"},
        {"root_cause": "gremlins"},
        {"share_affected": 1.5},
        {"changes": []},
        {"changes": ["rolled-back", "rolled-back"]},
        {"lesson": "prose is not graded"},
    ):
        with pytest.raises(ValueError):
            answer(**bad)


def test_truth_from_the_audit_log_and_the_event_log():
    entries = [
        AuditEntry(
            ts="2026-01-01T10:00:20.000+00:00",
            action="promote",
            model="iris",
            alias="staging",
            version="1",
            outcome="promoted",
        ),
        AuditEntry(
            ts="2026-01-01T10:00:50.000+00:00",
            action="rollback",
            model="iris",
            alias="production",
            version="1",
            outcome="rolled_back",
        ),
    ]
    known = {"root_cause": RootCause.MODEL_QUALITY, "changes": [], "required": [Change.ROLLED_BACK]}
    truth = postmortem.registry_truth(entries, "2026-01-01T10:00:00.000+00:00", "2", 40, **known)
    assert (truth.restored_at - truth.began_at).total_seconds() == 50 and truth.share_affected == 1.0
    assert postmortem.registry_truth([], "2026-01-01T10:00:00.000+00:00", "2", 0, **known).restored_at is None

    def totals(c, s):
        return {"canary": {"requests": c, "errors": 0}, "stable": {"requests": s, "errors": 0}}

    evs = [
        events.parse(e)
        for e in (
            {"t": 100.0, "type": "start", "rollout": "r1"},
            {"t": 110.0, "type": "fault", "rollout": "r1", "totals": totals(5, 15)},
            {"t": 130.0, "type": "decision", "rollout": "r1", "decision": "abort"},
            {"t": 130.5, "type": "weight", "rollout": "r1", "canary": 0},
            {"t": 130.6, "type": "traffic", "rollout": "r1", "totals": totals(20, 60)},
        )
    ]
    truth = postmortem.rollout_truth(evs, "r1", "4", **known)
    assert (truth.restored_at - truth.began_at).total_seconds() == 20.5 and truth.requests_affected == 15
    assert truth.share_affected == pytest.approx(15 / 60) and truth.version == "4"


def test_record_writes_a_validated_postmortem(home, wb):
    fields = answer().model_dump(mode="json")
    path = drills.record(wb, "bad-model", **fields)
    assert yaml.safe_load(path.read_text())["requests_affected"] == 41
    with pytest.raises(ValueError):
        drills.record(wb, "bad-model", **{**fields, "root_cause": "gremlins"})
    with pytest.raises(DrillError, match="takes no record"):
        drills.record(wb, "schema-break", cause="x")


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "version: 3\nbegan_at: yesterday\nrestored_at: 2026-11-04T10:00:00Z\nrequests_affected: [1, 2]\n"
            "share_affected: 0.5\nroot_cause: model-quality\nchanges: [rolled-back]\n",
            ["2 bad field(s)", "began_at: ", "'yesterday'", "requests_affected: ", "is not a whole number"],
        ),
        ("- 1\n- 2\n", ["must be a YAML mapping of the fields version, began_at", "not list"]),
        ("", ["not an empty file"]),
        (
            "version: 3\nbegan_at: 2026-11-04T10:00:00Z\nrestored_at: 2026-11-04T10:01:00Z\nrequests_affected: 3\n"
            "share_affected: 1\nroot_cause: aliens\nchanges: [rolled-back]\nlesson: x\n",
            ["root_cause: Input should be 'model-quality'", "'aliens'", "lesson: no such field"],
        ),
    ],
)
def test_a_bad_postmortem_fails_only_its_check_naming_each_field(tmp_path, text, expected):
    from drill_fakes import FakeDrill

    drill = FakeDrill("hostile", serve=False)
    drill.spec = drill.spec.model_copy(update={"incident": True})
    ctx = drill.context(Workbench.from_env(tmp_path / "home"))
    ctx.save_facts(ready=True)
    (ctx.folder / "fixed").write_text("yes")
    ctx.postmortem_path.write_text(text)
    outcomes = {o.id: o for o in grading.outcomes(drill, ctx)}
    assert outcomes["fixed"].passed and not outcomes["postmortem"].passed
    for words in expected:
        assert words in outcomes["postmortem"].message, words
    assert "could not read" not in outcomes["postmortem"].message, "a failed check, not a crash"
    assert ctx.postmortem_path.read_text() == text


def test_recording_a_bad_postmortem_names_each_field_and_writes_nothing(home, wb):
    from mlops_workbench.errors import InputError

    with pytest.raises(InputError) as caught:
        drills.record(
            wb,
            "bad-model",
            **{**answer().model_dump(mode="json"), "began_at": "yesterday", "requests_affected": [1, 2]},
        )
    assert "'yesterday'" in str(caught.value) and "requests_affected: " in str(caught.value)
    assert not drills.get("bad-model").context(wb).postmortem_path.exists()
