"""Router overhead: p50 and p99 through the router against the model server directly, same run.

A real ``workbench serve`` (a model saved to a temp folder, no tracking server
needed) and a real router in front of it (weight 0: all to stable). Open-loop
load alternates direct / routed rounds so both see the same machine state;
the ratios routed/direct are reported against the target of 1.3x.

Run: ``python -m benchmarks.router [RPS] [SECONDS_PER_ROUND]``.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from mlops_workbench import procs
from mlops_workbench.rollout.load import run
from mlops_workbench.workbench import Workbench

TARGET = 1.3


def _model(folder: Path) -> Path:
    import mlflow.sklearn

    from mlops_workbench.data import load_iris_frame
    from mlops_workbench.train import train

    path = folder / "model"
    mlflow.sklearn.save_model(train(load_iris_frame(), {"model": "logistic_regression"}), str(path))
    return path


def main(rps: float = 50.0, seconds: float = 8.0, *, rounds: int = 3) -> dict[str, Any]:
    from mlops_workbench.serving.server import start_server

    with tempfile.TemporaryDirectory() as tmp:
        wb = Workbench.from_env(Path(tmp) / "home")
        try:
            server = start_server(wb, str(_model(Path(tmp))), name="bench-server")
            port = procs.free_port()
            cmd = procs.workbench_cmd("router", "--stable", server.url, "--port", str(port))
            router = procs.start(wb, "bench-router", cmd, port)
            run(server.url, rps, 2, seed=99)  # warm up both paths
            run(router.url, rps, 2, seed=98)
            lat: dict[str, list[float]] = {"direct": [], "router": []}
            for i in range(rounds):
                for name, url in (("direct", server.url), ("router", router.url)):
                    result = run(url, rps, seconds, seed=i)
                    lat[name] += [o.latency * 1000 for o in result.outcomes if o.status == 200]
        finally:
            procs.stop_all(wb)
    out: dict[str, Any] = {"rps": rps, "seconds_per_round": seconds, "rounds": rounds, "target_ratio": TARGET}
    for q in (50, 99):
        direct, routed = (float(np.percentile(lat[k], q)) for k in ("direct", "router"))
        out[f"p{q}_direct_ms"], out[f"p{q}_router_ms"] = round(direct, 2), round(routed, 2)
        out[f"p{q}_ratio"] = round(routed / direct, 3)
    out["within_target"] = out["p50_ratio"] < TARGET and out["p99_ratio"] < TARGET
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main(*(float(a) for a in sys.argv[1:3]))
