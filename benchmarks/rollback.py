"""Rollback timing: time from fault onset to canary weight 0, against the policy's bound.

Runs the demo policy on the local runtime (real mlflow, servers, router,
Prometheus when installed) with a healthy canary, injects a fault once the canary
takes traffic, and reads the event log: time to detect, time to restore, the
policy's bound (initialDelay + interval x (failureLimit + 1) + window) and the
blast radius (canary errors over all requests during the incident).

Run: ``python -m benchmarks.rollback [error|latency] [RPS]``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from mlops_workbench import tracking
from mlops_workbench.rollout import events, ops, prepare, timeline
from mlops_workbench.rollout import state as st
from mlops_workbench.rollout.backends.local import LocalBackend
from mlops_workbench.rollout.load import BackgroundLoad
from mlops_workbench.rollout.policy import builtin
from mlops_workbench.serving.faults import Faults
from mlops_workbench.workbench import Workbench

FAULTS = {"error": Faults(error_rate=0.3, seed=1), "latency": Faults(latency_ms=300)}


def _inject_when_exposed(wb: Workbench, faults: Faults, delay: float = 3.0) -> threading.Thread:
    def go() -> None:
        deadline = time.time() + 300
        while time.time() < deadline:
            s = st.load(wb)
            if s and s.weight > 0 and not s.done:
                time.sleep(delay)
                ops.inject_fault(wb, faults)
                return
            time.sleep(0.2)

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    return thread


def main(kind: str = "error", rps: float = 40.0) -> dict[str, Any]:
    policy = builtin("demo")
    with tempfile.TemporaryDirectory() as tmp:
        wb = Workbench.from_env(Path(tmp))
        try:
            versions = prepare.ensure_versions(wb, roles=("stable", "candidate"))
            ctl = ops.controller(wb)
            _inject_when_exposed(wb, FAULTS[kind])
            with BackgroundLoad(LocalBackend(wb).router_url, rps, seed=11):
                state = ctl.start(policy, versions.candidate)
            inc = timeline.incident(events.read(wb, rollout=state.id))
        finally:
            ops.down(wb)
            tracking.down(wb)
    radius = inc.get("blast_radius") or {}
    out = {
        "fault": kind,
        "rps": rps,
        "phase": state.phase,
        "reason": state.reason,
        "time_to_detect_s": inc["time_to_detect_s"],
        "time_to_restore_s": inc["time_to_restore_s"],
        "bound_s": policy.detection_bound(),
        "within_bound": inc["time_to_restore_s"] is not None and inc["time_to_restore_s"] <= policy.detection_bound(),
        "canary_requests": radius.get("canary_requests"),
        "canary_errors": radius.get("canary_errors"),
        "total_requests": radius.get("total_requests"),
        "blast_radius": radius.get("canary_error_share"),
    }
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "error", float(sys.argv[2]) if len(sys.argv) > 2 else 40.0)
