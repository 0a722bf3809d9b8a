"""Lab 07's whole loop in the demo profile, timed phase by phase against the 90 s target.

Setup (tracking server, the project trained and released, production behind the router) is timed apart; the
loop is: a normal and a drifted month through the router, drift measured on the logged window, the drift alert
through Prometheus and Alertmanager (or the fallback) to the webhook, a data commit, the retrain (``dvc repro``,
registration with lineage, the gate on a fresh window), then the shadow and the demo canary to production.

Run: ``python -m benchmarks.monitor_loop``.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from mlops_workbench import tracking
from mlops_workbench.monitoring import labkit, rules, scenarios, stack
from mlops_workbench.monitoring.release import release_after_shadow
from mlops_workbench.monitoring.retrain import alert_cause, retrain
from mlops_workbench.monitoring.watch import Watch
from mlops_workbench.registry.verdicts import ShadowPolicy
from mlops_workbench.rollout.backends.local import LocalBackend
from mlops_workbench.rollout.load import BackgroundLoad
from mlops_workbench.workbench import Workbench

TARGET_S = 90.0
MODEL = "iris-bench"


def _rules(folder: Path) -> Path:
    """The packaged reference rules with a 2 s ``for:`` (the demo profile)."""
    data = yaml.safe_load(rules.REFERENCE.read_text())
    for rule in data["groups"][0]["rules"]:
        rule["for"] = "2s"
    path = folder / "rules.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def main() -> dict[str, Any]:
    times: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-monitor-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        os.environ["WORKBENCH_HOME"] = str(home)
        wb = Workbench.from_env(home)
        mark = time.monotonic()

        def lap(name: str) -> None:
            nonlocal mark
            now = time.monotonic()
            times[name] = round(now - mark, 1)
            mark = now

        try:
            prepared = labkit.prepare(wb, Path(tmp), MODEL)
            lap("setup")
            sent_1 = labkit.send_month(prepared.router, 1, 300, "month-1")
            truth = sent_1 | labkit.send_month(prepared.router, 2, 300, "month-2", labkit.LATER_MONTH)
            labkit.logged(wb, MODEL, "month-1", sent_1)
            window = labkit.logged(wb, MODEL, "month-2", {k: v for k, v in truth.items() if k not in sent_1})
            lap("traffic and drift")
            stack.up(wb, rules_path=_rules(Path(tmp)), watching=Watch(model=MODEL, last=300))
            alert = labkit.wait_for_alert(wb, "FeatureDriftHigh", timeout=120)
            stack.down(wb)
            lap("alert delivered")
            labelled = window.frame().assign(species=lambda f: f["request_id"].map(truth))
            labkit.commit_month(prepared.workspace, labelled, "month 2")
            fresh = scenarios.traffic(3, 150, labkit.LATER_MONTH)
            cause = alert_cause(alert.group_key, alert.firing, "FeatureDriftHigh")
            result = retrain(wb, prepared.workspace, fresh, cause, model_name=MODEL)
            lap("retrain")
            with BackgroundLoad(prepared.router, rps=40, seed=1):
                released = release_after_shadow(
                    wb,
                    result.version,
                    model_name=MODEL,
                    policy=ShadowPolicy(min_requests=150, min_agreement=0.9),
                    window_s=90,
                    rollout_policy="demo",
                    metrics="direct",
                )
            lap("shadow and canary")
        finally:
            stack.down(wb)
            LocalBackend(wb, model_name=MODEL).down()
            tracking.down(wb)
    loop = round(sum(v for k, v in times.items() if k != "setup"), 1)
    out = {"phases_s": times, "loop_s": loop, "target_s": TARGET_S, "within_target": loop <= TARGET_S}
    out["promoted"] = released.promoted
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
