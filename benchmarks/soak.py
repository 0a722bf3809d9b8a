"""Lab 04 under CPU pressure: healthy rollouts must promote, faulty ones must still abort in time.

A learner's laptop is busy (a browser, an IDE, an indexer). This soak runs the lab's
rollout policy (``benchmarks/lab04-policy.yaml``: the solution of the lab's Exercise 1, a real
5% first step;
kept out of the package, which learners get) at the lab's 60 rps on the local runtime while another process keeps a core
busy (more with BURNERS), and counts:

* healthy rollouts (seeded, no fault) that end promoted: the target is >= 19 of 20;
* faulty rollouts (30% errors injected once the canary takes traffic) that end aborted
  with the canary back at 0% within the policy's detection bound (+5 s of scrape lag,
  the same slack lab 04's check allows).

Run: ``python -m benchmarks.soak [HEALTHY_RUNS] [FAULTY_RUNS] [BURNERS] [POLICY]`` (defaults 20,
5, one busy process, ``lab04``: that file; or a packaged profile or a policy file). Prints one line per rollout, then the ratios as JSON.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import signal
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.rollback import FAULTS, _inject_when_exposed
from mlops_workbench import tracking
from mlops_workbench.rollout import events, ops, prepare, timeline
from mlops_workbench.rollout.backends.local import LocalBackend
from mlops_workbench.rollout.load import BackgroundLoad
from mlops_workbench.rollout.policy import Policy, load
from mlops_workbench.rollout.state import RolloutPhase
from mlops_workbench.workbench import Workbench

if TYPE_CHECKING:
    from multiprocessing.synchronize import Event

RPS = 60.0  # lab 04's parameter
SLACK_S = 5.0  # lab 04's check allows this much scrape lag on top of the bound


def _burn(stop: Event) -> None:
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x = (x * 31 + 7) % 1_000_003


class CpuLoad:
    """``n`` processes that keep one core each busy until the block ends."""

    def __init__(self, n: int) -> None:
        self.stop = mp.Event()
        self.procs = [mp.Process(target=_burn, args=(self.stop,), daemon=True) for _ in range(n)]

    def __enter__(self) -> CpuLoad:
        for p in self.procs:
            p.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for p in self.procs:
            p.join(10)


def _rollout(wb: Workbench, versions: prepare.Versions, policy: Policy, seed: int, fault: str | None) -> dict[str, Any]:
    prepare.reset_production(wb, versions.stable)
    ctl = ops.controller(wb, seed=seed)
    if fault:
        _inject_when_exposed(wb, FAULTS[fault])
    with BackgroundLoad(LocalBackend(wb).router_url, RPS, seed=seed):
        state = ctl.start(policy, versions.candidate)
    out: dict[str, Any] = {"seed": seed, "fault": fault, "phase": state.phase, "reason": state.reason}
    if fault:
        inc = timeline.incident(events.read(wb, rollout=state.id))
        restore = inc["time_to_restore_s"]
        out.update(
            time_to_restore_s=restore,
            bound_s=policy.detection_bound(),
            within_bound=restore is not None and restore <= policy.detection_bound() + SLACK_S,
        )
    return out


LAB04_POLICY = Path(__file__).with_name("lab04-policy.yaml")


def main(
    healthy: int = 20, faulty: int = 5, burners: int | None = None, *, policy_name: str = "lab04"
) -> dict[str, Any]:
    burners = 1 if burners is None else burners
    policy = load(LAB04_POLICY if policy_name == "lab04" else policy_name)
    policy.pauses("soak-test it")  # a pause without a duration would hold every rollout for an operator
    runs: list[dict[str, Any]] = []
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a killed soak still stops its services
    with tempfile.TemporaryDirectory() as tmp, CpuLoad(burners):
        wb = Workbench.from_env(Path(tmp))
        try:
            versions = prepare.ensure_versions(wb, roles=("stable", "candidate"))
            for i in range(healthy + faulty):
                fault = "error" if i >= healthy else None
                run = _rollout(wb, versions, policy, seed=100 + i, fault=fault)
                print(json.dumps(run), flush=True)
                runs.append(run)
        finally:
            ops.down(wb)
            tracking.down(wb)
    good = [r for r in runs if not r["fault"]]
    bad = [r for r in runs if r["fault"]]
    promoted = sum(r["phase"] == RolloutPhase.PROMOTED for r in good)
    caught = sum(r["phase"] == RolloutPhase.ABORTED and r["within_bound"] for r in bad)
    causes = Counter(r["reason"].split(":")[0] for r in good if r["phase"] != RolloutPhase.PROMOTED)
    out = {
        "policy": policy_name,
        "rps": RPS,
        "burners": burners,
        "healthy_promoted": f"{promoted}/{len(good)}",
        "faulty_aborted_within_bound": f"{caught}/{len(bad)}",
        "healthy_target_met": promoted >= len(good) - len(good) // 20,
        "false_alarm_causes": dict(causes),
        "worst_time_to_restore_s": max((r["time_to_restore_s"] or 0.0 for r in bad), default=None),
    }
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    args = sys.argv[1:]
    counts = [int(a) for a in args[:3]]
    if len(args) > 3:
        main(*counts, policy_name=args[3])
    else:
        main(*counts)
