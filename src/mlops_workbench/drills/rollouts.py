"""Shared parts of the rollout drills' setups and repairs: two healthy versions, a policy, a controller in a
process of its own (so a drill can kill it), the drill's ``fault`` event, load, and a new rollout under load.
Their checks and post-mortem truth are in :mod:`mlops_workbench.drills.rollout_checks`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
from pydantic import Field

from mlops_workbench import procs
from mlops_workbench.drills import common
from mlops_workbench.drills.base import DrillContext, DrillError
from mlops_workbench.drills.variants import Variant
from mlops_workbench.rollout import events, ops
from mlops_workbench.rollout import policy as pol
from mlops_workbench.rollout import state as st
from mlops_workbench.rollout.backends.local import SERVICES, LocalBackend, MetricsMode, together
from mlops_workbench.rollout.events import EventLog


class CanaryVariant(Variant):
    """The canary's traffic share when things went wrong."""

    weight: float = Field(gt=0, lt=100)


WEIGHTS = tuple(CanaryVariant(key=f"canary-at-{weight}", weight=weight) for weight in (10, 25, 50))
"""The variants of a rollout drill that differ in the canary's weight."""


def policy_yaml(pause: str, metric: dict[str, Any], min_sample: int = 10, weight: float = 25) -> str:
    import yaml

    return yaml.safe_dump(
        {
            "name": "drill",
            "steps": [{"setWeight": weight}, {"pause": {"duration": pause}}],
            "analysis": {
                "minSampleSize": min_sample,
                "metrics": [
                    {"name": "error-rate", "kind": "errorRate", "condition": {"max": 0.05, "alpha": 0.05}, **metric}
                ],
            },
        },
        sort_keys=False,
    )


def versions(ctx: DrillContext, metrics: MetricsMode) -> tuple[str, str, str]:
    """A stable version (made production) and a healthy candidate of the drill's model, and the router's URL.

    Stable, the router (and Prometheus unless ``metrics`` is direct) start on the production version while the
    candidate is trained and registered: they need nothing of it, and the two waits overlap."""
    (stable,) = common.good_releases(ctx, 1)
    backend = LocalBackend(ctx.wb, model_name=ctx.model_name, metrics=metrics)
    candidate, router = together([lambda: common.log_version(ctx), backend.up])
    return stable, candidate, router


def start_controller(
    ctx: DrillContext,
    candidate: str,
    policy: str,
    metrics: MetricsMode,
    timeout: float = 600.0,
    policy_file: str = ".setup-policy.yaml",
) -> tuple[procs.Handle, st.RolloutState]:
    """``workbench rollout start`` in a process of its own (``policy`` written to ``policy_file`` in the drill
    folder); returns once the canary takes traffic. Its pid goes to the facts, so that a reset can stop it."""
    path = ctx.folder / policy_file
    path.write_text(policy)
    before = st.load(ctx.wb)
    cmd = procs.workbench_cmd(
        "rollout",
        "start",
        "--candidate",
        candidate,
        "--policy",
        str(path),
        "--metrics",
        metrics,
        "--model",
        ctx.model_name,
    )
    proc = procs.spawn(cmd, log=ctx.folder / "controller.log", env=ctx.wb.child_env())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = st.load(ctx.wb)
        if state is not None and (before is None or state.id != before.id) and state.weight > 0:
            ctx.save_facts(controller_pid=proc.pid)
            return proc, state
        if proc.poll() is not None:
            raise DrillError(
                f"the rollout controller exited ({proc.returncode}) before the canary took traffic; "
                f"see {ctx.folder / 'controller.log'}"
            )
        time.sleep(0.2)
    proc.stop(grace=0)
    raise DrillError(f"the canary took no traffic within {timeout:.0f}s; see {ctx.folder / 'controller.log'}")


def fault(ctx: DrillContext, rollout: str) -> events.RolloutEvent:
    """Log the incident's onset in the rollout event log (with the router's counters for the blast radius); it
    says nothing about what broke."""
    totals = LocalBackend(ctx.wb, model_name=ctx.model_name).traffic_totals()
    return EventLog(ctx.wb, rollout=rollout).emit("fault", totals=totals, drill=ctx.handle, what="incident onset")


def wait_for(
    ctx: DrillContext, rollout: str, pred: Callable[[events.RolloutEvent], bool], timeout: float = 60.0
) -> None:
    """Wait until the event log holds an event of ``rollout`` that ``pred`` accepts."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(pred(e) for e in events.read(ctx.wb, rollout=rollout)):
            return
        time.sleep(0.2)
    raise DrillError(
        f"rollout {rollout}: the expected event did not come within {timeout:.0f}s; see "
        f"{ctx.folder / 'controller.log'} and start the drill again"
    )


def roll_out_again(ctx: DrillContext, policy: Path, metrics: MetricsMode, rps: float = 20, seed: int = 6) -> None:
    """A new rollout of the candidate with ``policy`` under load, to its decision (what the repairs do)."""
    router = LocalBackend(ctx.wb, model_name=ctx.model_name, metrics=metrics).up()
    with load(ctx, router, rps, seed=seed):
        ops.start(ctx.wb, pol.load(policy), ctx.fact("candidate"), metrics=metrics, model_name=ctx.model_name)


def services(_ctx: DrillContext) -> list[str]:
    return list(SERVICES)


def _is_controller(pid: int) -> bool:
    """Whether ``pid`` still runs a rollout controller (not a process that took the number since)."""
    try:
        return procs.alive(pid) and "rollout" in psutil.Process(pid).cmdline()
    except psutil.Error:
        return False


def reset(ctx: DrillContext) -> None:
    """Stop the setup's controller if it still runs, then the rollout processes (aborting an unattended rollout
    first)."""
    pid = ctx.facts().get("controller_pid")
    if pid and _is_controller(pid):
        procs.end(pid, grace=0)
    try:
        ops.down(ctx.wb)
    except Exception:  # noqa: BLE001 - resetting anyway
        procs.stop_all(ctx.wb)


@contextmanager
def load(ctx: DrillContext, url: str, rps: float, seed: int, duration: float = 900.0) -> Iterator[procs.Handle]:
    """``workbench load`` in a process of its own (a thread would compete with the controller for the GIL),
    stopped when the block ends."""
    cmd = procs.workbench_cmd("load", "--url", url, "--rps", str(rps), "--duration", str(duration), "--seed", str(seed))
    proc = procs.spawn(cmd, log=ctx.folder / "load.log", new_group=False)
    try:
        yield proc
    finally:
        proc.stop(grace=30)
