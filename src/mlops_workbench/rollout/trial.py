"""Trial runs of a rollout loop: run it on a runtime, then judge the state it leaves.

A rollout loop here is any function ``run(policy, router, metrics, promote, log=..., clock=..., sleep=...)``
returning ``"promoted"`` or ``"aborted"`` (lab 04's ``run_canary``). :func:`simulate` runs it on the
simulated runtime (:mod:`mlops_workbench.rollout.sim`, virtual clock, milliseconds); :func:`live` runs it
on running servers (a :class:`~mlops_workbench.rollout.backends.local.LocalBackend` with a canary
deployed) with a fault set on the canary from the start or from the last step on. :func:`problem`
says what is wrong with the end state: a healthy canary not promoted, a faulty one promoted, a weight
left above 0, or more requests answered by a faulty canary than the policy's bound allows.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_workbench.rollout import sim
from mlops_workbench.rollout.policy import Policy

if TYPE_CHECKING:
    from mlops_workbench.rollout.backends.local import LocalBackend
    from mlops_workbench.serving.client import RouterClient
    from mlops_workbench.serving.faults import Faults

SLACK_S = 5.0  # scrape and process lag allowed on top of a policy's detection bound
Loop = Callable[..., Any]


@dataclass
class Trial:
    """The end state of one run of a loop."""

    outcome: Any = None
    raised: str = ""
    promotions: int = 0
    weight: float | None = None
    onset: float | None = None  # when the fault started (None: no fault)
    restored: float | None = None  # when the weight went back to 0 (or the loop returned)
    served_since_onset: float | None = None  # canary requests from the onset on


def blast_bound(policy: Policy, rps: float) -> float:
    """Canary requests a loop that honours ``policy`` may let through after a fault's onset, with room for noise."""
    return rps * max(policy.weights) / 100.0 * (policy.detection_bound() + SLACK_S) * 1.5 + 10


def _quiet(*_args: Any, **_kwargs: Any) -> None:
    return None


def _paused(policy: Policy) -> float:
    """Seconds of all the policy's pauses; a pause without a duration is refused (no operator would end it)."""
    return sum(seconds for _, seconds in policy.pauses("run a trial rollout with it"))


def simulate(run: Loop, policy: Policy, scenario: sim.Scenario) -> Trial:
    """Run the loop on the simulated runtime (virtual clock)."""
    s = sim.Simulation(scenario, max_seconds=_paused(policy) + 120)
    trial = Trial()
    try:
        trial.outcome = run(policy, s.router, s.metrics, s.promote, log=_quiet, clock=s.clock, sleep=s.sleep)
    except Exception as err:  # noqa: BLE001 - the loop is a learner's code: graded by the state it leaves
        trial.raised = f"{type(err).__name__}: {err}"
    trial.promotions, trial.weight = len(s.promoted_at), s.weight_now
    trial.onset, trial.restored = s.fault_onset, s.restored_at()
    trial.served_since_onset = s.canary_requests_since(trial.onset) if trial.onset is not None else None
    return trial


class WatchedRouter:
    """A router client that calls ``on_set(weight)`` after each weight the loop sets."""

    def __init__(self, router: RouterClient, on_set: Callable[[float], None]) -> None:
        self._router, self._on_set = router, on_set

    def set_weight(self, canary: float) -> float:
        applied = self._router.set_weight(canary)
        self._on_set(float(canary))
        return applied

    def weight(self) -> float:
        return self._router.weight()


def live(run: Loop, policy: Policy, backend: LocalBackend, faults: Faults | None = None, late: bool = False) -> Trial:
    """Run the loop on ``backend``'s servers (canary deployed, load running); ``faults`` set on the canary from its
    first traffic, or (``late``) from the step that sets the policy's largest weight."""
    from mlops_workbench.serving.faults import Faults

    longest = _paused(policy) + 60  # refuses a pause without a duration before anything moves
    backend.set_weight(0)
    backend.inject_fault(faults if faults is not None and not late else Faults())
    trial = Trial()
    marks: dict[str, float] = {}

    def on_set(weight: float) -> None:
        if faults is None or "t" in marks or weight <= 0 or (late and weight < max(policy.weights)):
            return
        if late:
            backend.inject_fault(faults)
        marks.update(t=time.time(), canary=backend.traffic_totals()["canary"]["requests"])

    def promote() -> None:
        trial.promotions += 1

    def target() -> None:
        try:
            trial.outcome = run(
                policy, WatchedRouter(backend.router(), on_set), backend.metrics_source(), promote, log=_quiet
            )
        except Exception as err:  # noqa: BLE001 - the loop is a learner's code: graded by the state it leaves
            trial.raised = f"{type(err).__name__}: {err}"

    worker = threading.Thread(target=target, daemon=True, name="rollout-trial")
    worker.start()
    worker.join(longest)
    if worker.is_alive():
        backend.set_weight(0)
        trial.raised = f"TimeoutError: run_canary did not return within {longest:g}s"
    trial.restored, trial.weight = time.time(), backend.weight()
    if "t" in marks:
        trial.onset = marks["t"]
        trial.served_since_onset = backend.traffic_totals()["canary"]["requests"] - marks["canary"]
    return trial


def problem(trial: Trial, what: str, policy: Policy, rps: float, healthy: bool) -> str | None:
    """What is wrong with the end state of ``trial`` on ``what`` (a scenario's description), or None."""
    raised = f" (it raised {trial.raised})" if trial.raised else ""
    if healthy and (trial.raised or trial.promotions != 1 or trial.outcome != "promoted"):
        return (
            f"on {what} run_canary returned {trial.outcome!r} and called promote() {trial.promotions} time(s)"
            f"{raised}: walk every step, measure each metric every interval, and promote once when every metric "
            "had a successful measurement and none failed more than failureLimit."
        )
    if not healthy and trial.promotions:
        return (
            f"on {what} run_canary called promote(): a canary whose analysis fails or has too little data must "
            "never be promoted (missing data never promotes)."
        )
    if trial.weight != 0:
        return (
            f"on {what} the canary weight was left at {trial.weight}% after run_canary returned{raised}: set it "
            "back to 0 on every way out of the loop, errors included (try/finally)."
        )
    if not healthy and trial.outcome != "aborted" and not trial.raised:
        return f"on {what} run_canary returned {trial.outcome!r}: return 'aborted' when the canary is rolled back."
    if not healthy and trial.onset is not None and trial.served_since_onset is not None:
        bound = blast_bound(policy, rps)
        late = f" and restored {trial.restored - trial.onset:.1f}s after the fault" if trial.restored else ""
        if trial.served_since_onset > bound:
            return (
                f"on {what} the faulty canary answered {trial.served_since_onset:.0f} requests after the fault"
                f"{late}; a loop that measures every interval aborts within the policy's bound of "
                f"{policy.detection_bound():g}s (at most ~{bound:.0f} requests): measure during the pauses, not "
                "only at their end, and abort as soon as failed measurements exceed failureLimit."
            )
    return None
