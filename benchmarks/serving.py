"""Model server throughput and latency: ``workbench serve`` against ``mlflow models serve``, same run.

One model is logged and registered on a real tracking server in a temp state
folder; both servers serve ``models:/iris@production`` on 127.0.0.1 with one
worker each. A closed-loop load (``concurrency`` client threads, ``requests`` requests,
MLflow's ``dataframe_split`` payload on ``/invocations``) runs against each in
alternating rounds so both see the same machine state. Prints throughput, p50
and p99 for each and the ratios (target: ours >= 3x MLflow's throughput, lower p99).

Run: ``python -m benchmarks.serving [REQUESTS] [CONCURRENCY]``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson

from mlops_workbench import procs, tracking
from mlops_workbench.rollout import prepare
from mlops_workbench.workbench import Workbench

TARGET_THROUGHPUT_RATIO = 3.0
ROWS = [[5.1, 3.5, 1.4, 0.2]]
MODEL = "iris"


def _load(url: str, requests: int, concurrency: int, payload: dict[str, Any]) -> tuple[float, list[float], int]:
    """Send ``requests`` POSTs from ``concurrency`` threads (one keep-alive httpx.Client each).

    Returns (seconds, latencies in ms, failures). Sync clients in threads cost the
    load generator about half the CPU of one AsyncClient, which matters on a small
    machine where client and servers share the cores.
    """
    body = orjson.dumps(payload)
    headers = {"content-type": "application/json"}
    latencies: list[float] = []
    failures = 0
    per_client = [requests // concurrency + (i < requests % concurrency) for i in range(concurrency)]
    barrier = threading.Barrier(concurrency + 1)

    def client(n: int) -> None:
        nonlocal failures
        with httpx.Client(base_url=url, timeout=30.0) as http:
            http.get("/health")  # open the connection before the clock starts
            barrier.wait()
            mine = []
            for _ in range(n):
                start = time.perf_counter()
                response = http.post("/invocations", content=body, headers=headers)
                mine.append((time.perf_counter() - start) * 1000)
                failures += response.status_code != 200
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(n,)) for n in per_client]
    for t in threads:
        t.start()
    barrier.wait()
    start, cpu = time.perf_counter(), time.process_time()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if os.environ.get("BENCH_DEBUG"):
        print(f"{url}: client CPU {100 * (time.process_time() - cpu) / wall:.0f}% of wall time")
    return wall, latencies, failures


def _group_cpu(pgid: int) -> float:
    """CPU seconds used so far by every process in the process group ``pgid`` (Linux /proc)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _mlflow_serve(wb: Workbench, uri: str) -> procs.Service:
    port = procs.free_port()
    mlflow_bin = str(Path(sys.executable).with_name("mlflow"))
    cmd = [mlflow_bin, "models", "serve", "-m", uri, "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # it execs `uvicorn` by name
    return procs.start(
        wb,
        "bench-mlflow-serve",
        cmd,
        port,
        health_path="/health",
        timeout=300,
        env={"MLFLOW_TRACKING_URI": tracking.url(wb), "PATH": path},
    )


def main(requests: int = 2000, concurrency: int = 8, rounds: int = 2) -> dict[str, Any]:
    from mlops_workbench.data import FEATURES
    from mlops_workbench.serving.server import start_server

    payload = {"dataframe_split": {"columns": FEATURES, "data": ROWS}}
    stats: dict[str, dict[str, list[Any]]] = {
        k: {"seconds": [], "lat": [], "failures": [], "cpu": []} for k in ("ours", "mlflow")
    }
    with tempfile.TemporaryDirectory() as tmp:
        wb = Workbench.from_env(Path(tmp) / "home")
        try:
            prepare.ensure_versions(wb, MODEL, roles=("stable",))  # tracking server; `stable` is production
            uri = f"models:/{MODEL}@production"
            servers = {
                "ours": start_server(wb, uri, name="bench-ours", timeout=300),
                "mlflow": _mlflow_serve(wb, uri),
            }
            for url in (s.url for s in servers.values()):
                answer = httpx.post(url + "/invocations", json=payload, timeout=30).json()
                assert answer == {"predictions": ["setosa"]}, answer
                _load(url, min(200, requests), concurrency, payload)  # warm up
            for _ in range(rounds):
                for name, service in servers.items():
                    cpu = _group_cpu(service.pid)
                    seconds, lat, failures = _load(service.url, requests, concurrency, payload)
                    stats[name]["cpu"].append(_group_cpu(service.pid) - cpu)
                    stats[name]["seconds"].append(seconds)
                    stats[name]["lat"] += lat
                    stats[name]["failures"].append(failures)
        finally:
            procs.stop_all(wb)
    out: dict[str, Any] = {"requests_per_round": requests, "concurrency": concurrency, "rounds": rounds}
    for name, s in stats.items():
        out[f"{name}_rps"] = round(requests * rounds / sum(s["seconds"]), 1)
        out[f"{name}_p50_ms"] = round(float(np.percentile(s["lat"], 50)), 2)
        out[f"{name}_p99_ms"] = round(float(np.percentile(s["lat"], 99)), 2)
        out[f"{name}_failures"] = sum(s["failures"])
        out[f"{name}_cpu_ms_per_request"] = round(1000 * sum(s["cpu"]) / (requests * rounds), 3)
    out["throughput_ratio"] = round(out["ours_rps"] / out["mlflow_rps"], 2)
    out["p99_ratio"] = round(out["ours_p99_ms"] / out["mlflow_p99_ms"], 3)
    out["cpu_ratio"] = round(out["mlflow_cpu_ms_per_request"] / out["ours_cpu_ms_per_request"], 2)
    out["target_met"] = out["throughput_ratio"] >= TARGET_THROUGHPUT_RATIO and out["p99_ratio"] < 1
    _print(out)
    return out


def _print(out: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"/invocations, {out['requests_per_round']} requests x {out['rounds']} rounds, "
        f"concurrency {out['concurrency']}"
    )
    for col in ("server", "req/s", "p50 ms", "p99 ms", "server CPU ms/req", "failures"):
        table.add_column(col, justify="right")
    for name, label in (("ours", "workbench serve"), ("mlflow", "mlflow models serve")):
        table.add_row(
            label,
            str(out[f"{name}_rps"]),
            str(out[f"{name}_p50_ms"]),
            str(out[f"{name}_p99_ms"]),
            str(out[f"{name}_cpu_ms_per_request"]),
            str(out[f"{name}_failures"]),
        )
    Console().print(table)
    verdict = "met" if out["target_met"] else "NOT met"
    print(
        f"throughput ratio {out['throughput_ratio']}x (target >= {TARGET_THROUGHPUT_RATIO}x), "
        f"p99 ratio {out['p99_ratio']} (target < 1): {verdict}; "
        f"MLflow uses {out['cpu_ratio']}x our server CPU per request"
    )


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    main(*args)
