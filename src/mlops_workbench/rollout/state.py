"""Persisted rollout state (``<home>/rollout/state.json``) and operator requests (``request.json``).

The controller rewrites the state atomically after every step and measurement,
so a controller that is killed can be restarted and resume (or abort safely).
``workbench rollout abort|promote|continue`` from another shell drop a request file that
the running controller picks up on its next tick.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, get_args

from mlops_workbench.errors import InputError
from mlops_workbench.settings import DEFAULT_MODEL_NAME
from mlops_workbench.workbench import Workbench


class RolloutPhase(StrEnum):
    """Where a rollout is: progressing through its steps, or done (promoted, aborted, inconclusive)."""

    PROGRESSING = "Progressing"
    PROMOTED = "Promoted"
    ABORTED = "Aborted"
    INCONCLUSIVE = "Inconclusive"


TERMINAL = (RolloutPhase.PROMOTED, RolloutPhase.ABORTED, RolloutPhase.INCONCLUSIVE)
RESUMED = "Resumed"
"""The ``phase`` of the event a restarted controller logs; a marker in the event log, never a state's phase."""
PAUSED = "Paused"
"""The ``phase`` of the event logged when a rollout starts holding at an indefinite pause for an operator (Argo's
``Paused``); a marker in the event log, never a state's phase."""


@dataclass
class RolloutState:
    """Everything needed to resume a rollout."""

    id: str
    candidate: str
    policy: dict[str, Any]
    stable_version: str | None = None
    model_name: str = DEFAULT_MODEL_NAME
    phase: RolloutPhase = RolloutPhase.PROGRESSING
    step: int = 0
    step_started: float = 0.0
    weight: float = 0.0
    started: float = field(default_factory=time.time)
    analysis_started: float | None = None
    phases: dict[str, list[str]] = field(default_factory=dict)
    next_due: dict[str, float] = field(default_factory=dict)
    controller_pid: int | None = None
    heartbeat: float = 0.0
    reason: str = ""
    finished: float | None = None
    waiting_since: float | None = None
    """When the rollout began holding at an indefinite pause for an operator's ``continue`` (None: not holding)."""

    def __post_init__(self) -> None:
        self.phase = RolloutPhase(self.phase)  # loaded from JSON as a plain string

    @classmethod
    def new(cls, candidate: str, policy: dict[str, Any], stable_version: str | None = None) -> RolloutState:
        rid = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
        return cls(id=rid, candidate=str(candidate), policy=policy, stable_version=stable_version)

    @property
    def done(self) -> bool:
        return self.phase in TERMINAL

    @property
    def waiting(self) -> str | None:
        """What the rollout waits for while it holds at an indefinite pause (None: it is not holding)."""
        return None if self.done or self.waiting_since is None else waiting_text(self.step)


def waiting_text(step: int) -> str:
    """What a rollout holding at ``step`` (a pause without a duration) waits for, and how to move it on."""
    return (
        f"step {step}: paused until an operator runs `workbench rollout continue --reason ...` "
        "(the analysis keeps measuring and can still abort)"
    )


def state_path(wb: Workbench) -> Path:
    return wb.layout.rollout_state


def save(wb: Workbench, state: RolloutState) -> None:
    path = state_path(wb)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(state), indent=1))
    os.replace(tmp, path)


def load(wb: Workbench) -> RolloutState | None:
    path = state_path(wb)
    if not path.exists():
        return None
    return RolloutState(**json.loads(path.read_text()))


RequestAction = Literal["abort", "promote", "continue"]
"""What an operator can ask the running controller to do: abort, promote fully now, or end the current pause."""
REQUEST_ACTIONS: tuple[RequestAction, ...] = get_args(RequestAction)


def request_action(name: object) -> RequestAction:
    """``name`` as a request action; anything unknown reads as ``abort`` (the safe way out)."""
    return next((action for action in REQUEST_ACTIONS if action == name), "abort")


def request(wb: Workbench, action: str, reason: str = "") -> None:
    """Ask the running controller to ``abort``, ``promote`` (fully, now) or ``continue`` (end the current pause)."""
    if action not in REQUEST_ACTIONS:
        raise InputError(f"unknown request {action!r}: use 'abort', 'promote' or 'continue'")
    path = wb.layout.rollout_request
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"action": action, "reason": reason}))


def take_request(wb: Workbench) -> dict[str, str] | None:
    """The pending operator request, removed once read."""
    path = wb.layout.rollout_request
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    path.unlink(missing_ok=True)
    pending: dict[str, str] = data  # written by request() above
    return pending


def controller_alive(state: RolloutState, stale_after: float = 5.0) -> bool:
    """A controller is driving this rollout: its process lives and it saved the state recently."""
    from mlops_workbench.procs import alive

    pid = state.controller_pid
    if not pid:
        return False
    fresh = time.time() - state.heartbeat < stale_after
    return fresh and alive(pid) and not state.done
