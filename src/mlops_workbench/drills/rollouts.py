"""Shared parts of the rollout drills: two healthy versions, a policy file, a controller in a process of its
own (so a drill can kill it), the drill's ``fault`` event, and the guards for the traffic path."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import Any, Iterator

from mlops_workbench import procs
from mlops_workbench.drills import common
from mlops_workbench.drills.base import DrillContext, DrillError
from mlops_workbench.labs.checks import fail
from mlops_workbench.rollout import ops
from mlops_workbench.rollout import state as st
from mlops_workbench.rollout.backends.local import ROUTER, SERVICES, STABLE, LocalBackend
from mlops_workbench.rollout.events import EventLog
from mlops_workbench.serving.client import RouterClient


def policy_yaml(pause: str, metric: dict[str, Any], min_sample: int = 10, weight: int = 25) -> str:
    import yaml

    return yaml.safe_dump({"name": "drill", "steps": [{"setWeight": weight}, {"pause": {"duration": pause}}],
                           "analysis": {"minSampleSize": min_sample, "metrics": [
                               {"name": "error-rate", "kind": "errorRate", "condition": {"max": 0.05, "alpha": 0.05},
                                **metric}]}}, sort_keys=False)


def versions(ctx: DrillContext) -> tuple[str, str]:
    """A stable version (made production) and a healthy candidate of the drill's model."""
    stable = common.log_version(ctx, "good")
    common.ship(ctx, stable, "stable release")
    return stable, common.log_version(ctx, "good")


def start_controller(ctx: DrillContext, candidate: str, policy: str, metrics: str,
                     timeout: float = 600.0) -> tuple[subprocess.Popen, st.RolloutState]:
    """``workbench rollout start`` in a process of its own; returns once the canary takes traffic."""
    path = ctx.folder / "policy.yaml"
    path.write_text(policy)
    before = st.load(ctx.home)
    cmd = [sys.executable, "-m", "mlops_workbench.cli.main", "rollout", "start", "--candidate", candidate,
           "--policy", str(path), "--metrics", metrics, "--model", ctx.model_name]
    with open(ctx.folder / "controller.log", "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, "WORKBENCH_HOME": str(ctx.home)}, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = st.load(ctx.home)
        fresh = state is not None and (before is None or state.id != before.id)
        if fresh and state.weight > 0:
            return proc, state
        if proc.poll() is not None:
            raise DrillError(f"the rollout controller exited ({proc.returncode}) before the canary took traffic; "
                             f"see {ctx.folder / 'controller.log'}")
        time.sleep(0.2)
    proc.kill()
    raise DrillError(f"the canary took no traffic within {timeout:.0f}s; see {ctx.folder / 'controller.log'}")


def fault(ctx: DrillContext, rollout: str, what: str) -> dict[str, Any]:
    """Log the incident's onset in the rollout event log (with the router's counters for the blast radius)."""
    totals = LocalBackend(ctx.home, model_name=ctx.model_name).traffic_totals()
    return EventLog(ctx.home, rollout=rollout).emit("fault", totals=totals, drill=ctx.name, what=what)


def router_url(ctx: DrillContext) -> str:
    service = procs.get(ROUTER, ctx.home)
    if service is None or procs.get(STABLE, ctx.home) is None:
        fail("The router or the stable server is down: users get nothing. Never stop the traffic path to end a "
             "rollout; abort the rollout (`workbench rollout abort --reason ...`) instead.")
    return service.url


def guard_users_served(ctx: DrillContext) -> None:
    """Requests through the router are answered 200."""
    url = router_url(ctx)
    statuses = common.send_traffic(url, 10, seed=11)
    if any(s != 200 for s in statuses):
        fail(f"Requests through the router fail ({statuses}): users must be served while you repair the rollout.")


def services(_ctx: DrillContext) -> list[str]:
    return list(SERVICES)


def reset(ctx: DrillContext) -> None:
    """Stop the rollout processes (aborting an unattended rollout first)."""
    try:
        ops.down(ctx.home)
    except Exception:  # noqa: BLE001 - resetting anyway
        procs.stop_all(ctx.home)


def router_weight(ctx: DrillContext) -> float:
    return RouterClient(router_url(ctx), home=ctx.home).weight()


@contextmanager
def load(ctx: DrillContext, url: str, rps: float, seed: int, duration: float = 900.0) -> Iterator[subprocess.Popen]:
    """``workbench load`` in a process of its own (a thread would compete with the controller for the GIL)."""
    cmd = [sys.executable, "-m", "mlops_workbench.cli.main", "load", "--url", url, "--rps", str(rps),
           "--duration", str(duration), "--seed", str(seed)]
    with open(ctx.folder / "load.log", "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
