"""Post-mortems: what the logs say happened, and whether the learner's record agrees.

Definitions (the same for every incident drill):

* onset: the moment the system broke (the bad promotion in the audit log, or the drill's ``fault`` event in
  the rollout event log);
* time to detect: onset to the first action on the incident (a registry action on the drill's model, or a
  rollout decision or controller restart);
* time to restore: onset to the moment users were safe again (production moved off the bad version, or the
  canary's weight back to 0 or the rollout decided);
* blast radius: requests the faulty version (or the unsupervised canary) answered in between.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from mlops_workbench.drills.spec import Category, PostMortem, PostMortemTruth

TIME_TOLERANCE = (3.0, 0.1)
"""Absolute seconds and relative share a time may be off by (reading the log by hand rounds)."""
COUNT_TOLERANCE = (2, 0.1)


def _close(value: float, truth: float, tolerance: tuple[float, float]) -> bool:
    absolute, relative = tolerance
    return abs(value - truth) <= max(absolute, relative * abs(truth))


def compare(record: PostMortem, truth: PostMortemTruth) -> list[str]:
    """Every field of ``record`` that disagrees with ``truth``, as a sentence naming the evidence."""
    problems: list[str] = []
    if record.root_cause != truth.root_cause:
        problems.append(f"root_cause '{record.root_cause}' is not what broke (look at what changed: the model, the "
                        "data, or the configuration of the system around them)")
    for field, tolerance in (("time_to_detect_s", TIME_TOLERANCE), ("time_to_restore_s", TIME_TOLERANCE),
                             ("blast_radius", COUNT_TOLERANCE)):
        actual = getattr(truth, field)
        if actual is None:
            problems.append(f"{field} cannot be checked: the incident is not over yet ({truth.evidence})")
        elif not _close(float(getattr(record, field)), float(actual), tolerance):
            problems.append(f"{field} {getattr(record, field)} does not match the logs ({truth.evidence})")
    return problems


def write(path: Path, record: PostMortem) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(record.model_dump(), sort_keys=False))
    return path


def _seconds(ts: str) -> float:
    return datetime.fromisoformat(ts).timestamp()


def registry_truth(entries: list[dict[str, Any]], onset_ts: str, bad_version: str, blast: int | None,
                   category: Category) -> PostMortemTruth:
    """Truth for a registry incident: ``entries`` are the audit entries of the drill's model after the setup."""
    onset = _seconds(onset_ts)
    acted = next((e for e in entries if _seconds(e["ts"]) >= onset), None)
    restored = next((e for e in entries if e.get("alias") == "production" and e.get("version") != bad_version
                     and e.get("outcome") in ("rolled_back", "promoted")), None)
    return PostMortemTruth(
        time_to_detect_s=round(_seconds(acted["ts"]) - onset, 3) if acted else None,
        time_to_restore_s=round(_seconds(restored["ts"]) - onset, 3) if restored else None,
        blast_radius=blast, root_cause=category,
        evidence=f"registry audit log: v{bad_version} promoted at {onset_ts}; the model server's "
                 f"workbench_model_requests_total{{version=\"{bad_version}\"}} counts its answers",
    )


def rollout_truth(events: list[dict[str, Any]], rollout: str, category: Category) -> PostMortemTruth:
    """Truth for a rollout incident, from the event log: onset is the drill's ``fault`` event of ``rollout``."""
    from mlops_workbench.rollout.timeline import blast_radius

    evs = [e for e in events if e.get("rollout") == rollout]
    onset = next((e for e in evs if e["type"] == "fault"), None)
    if onset is None:
        return PostMortemTruth(time_to_detect_s=None, time_to_restore_s=None, blast_radius=None,
                               root_cause=category, evidence=f"no fault event for rollout {rollout}")
    after = [e for e in evs if e["t"] >= onset["t"] and e is not onset]
    acted = next((e for e in after if e["type"] == "decision" or
                  (e["type"] == "phase" and e.get("phase") == "Resumed")), None)
    restored = next((e for e in after if (e["type"] == "weight" and e.get("canary") == 0) or
                     (e["type"] == "decision" and e.get("decision") == "promote")), None)
    radius = blast_radius(evs, onset, restored) if restored else None
    return PostMortemTruth(
        time_to_detect_s=round(acted["t"] - onset["t"], 3) if acted else None,
        time_to_restore_s=round(restored["t"] - onset["t"], 3) if restored else None,
        blast_radius=int(radius["canary_requests"]) if radius else None, root_cause=category,
        evidence=f"rollout event log, rollout {rollout}: the fault event is the onset; blast radius is the "
                 "canary's requests between onset and restore (router counters in fault/traffic events)",
    )
