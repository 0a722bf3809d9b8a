"""Post-mortems: what the drill's own run says happened, and how far the learner's answers agree. Pure functions of
the logs they are given.

The same definitions for every incident drill:

* ``version``: the faulty version (the bad promotion in the audit log, or the rollout's candidate);
* ``began_at``: the onset, when the system broke (that promotion's ``ts``, or the drill's ``fault`` event);
* ``restored_at``: when users were safe again (production off the faulty version, or the canary's weight back at
  0, or the rollout decided);
* ``requests_affected``: the requests the faulty version (or the unwatched canary) answered in between;
* ``share_affected``: their share of all requests answered in between (from the router's or server's counters);
* ``root_cause``: one of :class:`~mlops_workbench.drills.causes.RootCause`; one that only names what was seen
  earns :data:`SYMPTOM_SHARE` of its marks;
* ``changes``: what was changed, each of which the logs or the state must show; leaving out a change the repair
  needs (aborting a canary whose real cause is left in place) earns part of the marks.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mlops_workbench.drills.causes import Change, RootCause
from mlops_workbench.drills.postmortem_spec import FieldGrade, PostMortem, PostMortemGrade, PostMortemTruth

if TYPE_CHECKING:
    from mlops_workbench.registry.audit import AuditEntry
    from mlops_workbench.rollout.events import RolloutEvent

TIME_TOLERANCE_S = 5.0
"""Seconds a time may be off by (read from a log by hand)."""
COUNT_TOLERANCE = (2, 0.1)
"""Absolute count and relative share a request count may be off by."""
SHARE_TOLERANCE = 0.05
SYMPTOM_SHARE = 0.5
WEIGHTS = {
    "version": 1.0,
    "began_at": 1.0,
    "restored_at": 1.0,
    "requests_affected": 1.0,
    "share_affected": 1.0,
    "root_cause": 2.0,
    "changes": 2.0,
}


def _graded(field: str, share: float, message: str = "") -> FieldGrade:
    return FieldGrade(field=field, points=round(WEIGHTS[field] * share, 4), max_points=WEIGHTS[field], message=message)


def _open(field: str, evidence: str) -> FieldGrade:
    return _graded(field, 0.0, f"cannot be checked yet: the incident is not over ({evidence})")


def _time(field: str, answer: datetime, truth: datetime | None, evidence: str) -> FieldGrade:
    if truth is None:
        return _open(field, evidence)
    off = abs((answer - truth).total_seconds())
    if off <= TIME_TOLERANCE_S:
        return _graded(field, 1.0)
    return _graded(field, 0.0, f"{answer.isoformat()} is {off:.0f}s off what the run shows ({evidence})")


def _count(answer: int, truth: int | None, evidence: str) -> FieldGrade:
    if truth is None:
        return _open("requests_affected", evidence)
    absolute, relative = COUNT_TOLERANCE
    if abs(answer - truth) <= max(absolute, relative * truth):
        return _graded("requests_affected", 1.0)
    return _graded("requests_affected", 0.0, f"{answer} does not match the counters ({evidence})")


def _share(answer: float, truth: float | None, evidence: str) -> FieldGrade:
    if truth is None:
        return _open("share_affected", evidence)
    if abs(answer - truth) <= SHARE_TOLERANCE:
        return _graded("share_affected", 1.0)
    return _graded(
        "share_affected",
        0.0,
        f"{answer:.2f} is not the share the counters give (requests of the faulty "
        f"version over all requests between onset and restore; {evidence})",
    )


def _cause(answer: RootCause, truth: PostMortemTruth) -> FieldGrade:
    if answer == truth.root_cause:
        return _graded("root_cause", 1.0)
    if answer in truth.symptoms:
        return _graded(
            "root_cause",
            SYMPTOM_SHARE,
            f"'{answer.value}' names what was seen, not why it happened: ask what made it happen",
        )
    return _graded(
        "root_cause",
        0.0,
        f"'{answer.value}' is not what the run shows: look at what changed before the "
        "onset (the model, the data, the configuration around them)",
    )


def _changes(answer: list[Change], truth: PostMortemTruth) -> FieldGrade:
    unsupported = [c.value for c in answer if c not in truth.changes]
    if unsupported:
        return _graded(
            "changes", 0.0, f"the logs and the state show no {', '.join(unsupported)}: list only what you changed"
        )
    missing = [c for c in truth.required if c not in answer]
    if not missing:
        return _graded("changes", 1.0)
    done, needed = len(truth.required) - len(missing), ", ".join(c.value for c in missing)
    return _graded(
        "changes",
        done / len(truth.required),
        f"the repair also needs {needed}: what you list only stops the symptom"
        if done
        else f"none of the changes the repair needs: {needed}",
    )


def grade(record: PostMortem, truth: PostMortemTruth) -> PostMortemGrade:
    """Each answer of ``record`` against ``truth``, with points and, where it lost some, why."""
    return PostMortemGrade(
        fields=[
            _graded("version", 1.0)
            if record.version == truth.version
            else _graded(
                "version", 0.0, f"v{record.version} is not the version the run shows at fault ({truth.evidence})"
            ),
            _time("began_at", record.began_at, truth.began_at, truth.evidence),
            _time("restored_at", record.restored_at, truth.restored_at, truth.evidence),
            _count(record.requests_affected, truth.requests_affected, truth.evidence),
            _share(record.share_affected, truth.share_affected, truth.evidence),
            _cause(record.root_cause, truth),
            _changes(record.changes, truth),
        ]
    )


def failed(error: str) -> PostMortemGrade:
    """The grade of a post-mortem that could not be read."""
    return PostMortemGrade(
        fields=[FieldGrade(field=name, points=0.0, max_points=w) for name, w in WEIGHTS.items()], error=error
    )


def from_truth(truth: PostMortemTruth) -> PostMortem:
    """The post-mortem a careful learner files for ``truth`` (the reference repair writes it)."""
    return PostMortem(
        version=truth.version,
        began_at=truth.began_at,
        restored_at=truth.restored_at or truth.began_at,
        requests_affected=truth.requests_affected or 0,
        share_affected=truth.share_affected or 0.0,
        root_cause=truth.root_cause,
        changes=truth.required,
    )


def write(path: Path, record: PostMortem) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(record.model_dump(mode="json"), sort_keys=False))
    return path


def moment(ts: str | float) -> datetime:
    """An audit ``ts`` (ISO text) or an event ``t`` (unix seconds) as an aware datetime."""
    if isinstance(ts, (int, float)):
        return datetime.fromtimestamp(ts, tz=UTC)
    return datetime.fromisoformat(ts)


def registry_truth(
    entries: list[AuditEntry], onset_ts: str, bad: str, requests: int | None, **known: Any
) -> PostMortemTruth:
    """Truth for a registry incident: ``entries`` are the audit entries of the drill's model since the setup; one
    server on the production alias answered every request with the bad version until the restore."""
    onset = moment(onset_ts)
    restored = next((e for e in entries if e.changed_production and e.version != bad and moment(e.ts) >= onset), None)
    return PostMortemTruth(
        version=bad,
        began_at=onset,
        restored_at=moment(restored.ts) if restored else None,
        requests_affected=requests,
        share_affected=1.0 if requests else (None if requests is None else 0.0),
        evidence=f"registry audit log: v{bad} promoted at {onset_ts}, production moved off it "
        f"{'at ' + restored.ts if restored else 'not yet'}; the model server's "
        f'workbench_model_requests_total{{version="{bad}"}} counts its answers, and it answered every '
        "request until then",
        **known,
    )


def rollout_truth(events: list[RolloutEvent], rollout: str, candidate: str, **known: Any) -> PostMortemTruth:
    """Truth for a rollout incident, from the event log: the onset is the drill's ``fault`` event of ``rollout``."""
    from mlops_workbench.rollout.events import Decision, DecisionEvent, EventType, WeightEvent, of_rollout
    from mlops_workbench.rollout.timeline import blast_radius

    evs = of_rollout(events, rollout)
    onset = next((e for e in evs if e.type is EventType.FAULT), None)
    if onset is None:
        raise ValueError(f"rollout {rollout} has no fault event: the drill's setup did not finish")
    after = [e for e in evs if e.t >= onset.t and e is not onset]
    restored = next(
        (
            e
            for e in after
            if (isinstance(e, WeightEvent) and e.canary == 0)
            or (isinstance(e, DecisionEvent) and e.decision is Decision.PROMOTE)
        ),
        None,
    )
    radius = blast_radius(evs, onset, restored) if restored else None
    share = radius["canary_requests"] / radius["total_requests"] if radius and radius["total_requests"] else None
    return PostMortemTruth(
        version=candidate,
        began_at=moment(onset.t),
        restored_at=moment(restored.t) if restored else None,
        requests_affected=int(radius["canary_requests"]) if radius else None,
        share_affected=round(share, 4) if share is not None else None,
        evidence=f"rollout event log, rollout {rollout}: the fault event is the onset, the canary's weight back at 0 "
        "the restore; the router's counters in the fault and traffic events count the requests",
        **known,
    )
