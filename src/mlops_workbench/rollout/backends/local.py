"""The local runtime: real processes on loopback, all through :mod:`mlops_workbench.procs`.

``rollout-stable`` serves ``models:/<name>@production``; ``rollout-canary`` serves
the candidate version on a reserved port; ``rollout-router`` splits traffic;
``rollout-prometheus`` (when the binary exists) scrapes all three. ``rollout-shadow``
serves a version the router mirrors requests to (its answers discarded) before it
becomes a canary. Ports are kept in ``<home>/rollout/local.json`` so every command
finds the same setup.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, TypeVar, get_args

from mlops_workbench import paramspec, procs
from mlops_workbench.alias import Alias
from mlops_workbench.errors import InputError, ServiceError
from mlops_workbench.rollout import prometheus
from mlops_workbench.rollout.metrics import DirectSource, MetricsSource, PrometheusSource, Snapshot, parse_router
from mlops_workbench.serving import paths
from mlops_workbench.serving.client import ModelServerClient, RouterClient
from mlops_workbench.serving.faults import Faults
from mlops_workbench.workbench import Workbench

T = TypeVar("T")

STABLE, CANARY, ROUTER, SHADOW = "rollout-stable", "rollout-canary", "rollout-router", "rollout-shadow"
SERVICES = (SHADOW, CANARY, ROUTER, prometheus.SERVICE, STABLE)
MetricsMode = Literal["auto", "prometheus", "direct"]
METRICS_MODES: tuple[MetricsMode, ...] = get_args(MetricsMode)


class LocalBackend:
    """Stable + canary ``workbench serve`` processes behind ``workbench router`` (and Prometheus)."""

    def __init__(
        self,
        wb: Workbench,
        model_name: str | None = None,
        seed: int = 0,
        metrics: MetricsMode = "auto",
        scrape_interval: str = "1s",
        canary_faults: Faults | None = None,
    ) -> None:
        if metrics not in METRICS_MODES:  # a typo ('prom') would silently mean 'auto'
            raise InputError(
                f"metrics mode {metrics!r} is not one of {', '.join(METRICS_MODES)}: "
                "pass auto (Prometheus if installed), prometheus or direct."
            )
        model_name = model_name or paramspec.model_name()
        self.wb = wb
        self.model_name = model_name
        self.seed = seed
        self.metrics_mode = metrics
        self.scrape_interval = scrape_interval
        self.canary_faults = canary_faults  # scenario option: faults the canary starts with
        self._ports_file = self.wb.layout.rollout_ports

    # --- setup -----------------------------------------------------------------------------------
    def ports(self) -> dict[str, int]:
        """Reserved ports (router, stable, canary, shadow), kept per state folder. While the router is down (it
        points at the other two), a port another program took meanwhile is replaced by a free one."""
        ports = json.loads(self._ports_file.read_text()) if self._ports_file.exists() else {}
        changed = False
        router_down = procs.get(self.wb, ROUTER) is None
        for role, service in (("router", ROUTER), ("stable", STABLE), ("canary", CANARY), ("shadow", SHADOW)):
            port = ports.get(role)
            taken = router_down and procs.get(self.wb, service) is None and port and procs.port_in_use(port)
            if port is None or taken:
                ports[role], changed = procs.free_port(), True
        if changed:
            self._ports_file.parent.mkdir(parents=True, exist_ok=True)
            self._ports_file.write_text(json.dumps(ports))
        return ports

    def url(self, role: str) -> str:
        return f"http://127.0.0.1:{self.ports()[role]}"

    @property
    def router_url(self) -> str:
        return self.url("router")

    def up(self) -> str:
        """Start stable, router (and Prometheus unless metrics='direct'); returns the router URL.

        The missing ones start side by side: none needs another to answer first (the router forwards to ports
        reserved beforehand, Prometheus scrapes whatever answers), and each spends most of its start importing
        and loading, so on two cores the three together take about as long as stable alone."""
        ports = self.ports()
        starts: list[Callable[[], object]] = []
        if procs.get(self.wb, STABLE) is None:
            starts.append(self.serve_stable)
        if procs.get(self.wb, ROUTER) is None:
            urls = {role: self.url(role) for role in ("stable", "canary")}  # read before anything starts
            starts.append(lambda: self._start_router(ports["router"], urls["stable"], urls["canary"]))
        if self.metrics_mode != "direct" and (self.metrics_mode == "prometheus" or prometheus.available()):
            targets = {role: f"127.0.0.1:{ports[role]}" for role in ("stable", "canary")}
            router = f"127.0.0.1:{ports['router']}"
            starts.append(lambda: prometheus.up(self.wb, router, targets, scrape_interval=self.scrape_interval))
        together(starts)
        return self.router_url

    def _start_router(self, port: int, stable: str, canary: str) -> None:
        cmd = procs.workbench_cmd(
            "router",
            "--stable",
            stable,
            "--canary",
            canary,
            "--weight",
            "0",
            "--port",
            str(port),
            "--seed",
            str(self.seed),
        )
        procs.start(self.wb, ROUTER, cmd, port, health_path=paths.HEALTH, timeout=60)

    def serve_stable(self, model_uri: str | None = None) -> None:
        """(Re)start stable on its reserved port serving ``model_uri`` (default: the production alias).

        A running stable is stopped first, so while the new one loads the router's stable share gets no answer;
        a GitOps sync pins a version this way (``models:/iris/3``)."""
        from mlops_workbench.serving.server import start_server

        procs.stop(self.wb, STABLE)
        start_server(
            self.wb,
            model_uri or f"models:/{self.model_name}@{Alias.PRODUCTION}",
            port=self.ports()["stable"],
            name=STABLE,
            model_name=self.model_name,
        )

    def down(self) -> list[str]:
        """Stop every rollout process (canary first, stable last)."""
        return [name for name in SERVICES if procs.stop(self.wb, name)]

    def metrics_source(self) -> MetricsSource:
        """PromQL against the running Prometheus, else direct scraping of /metrics."""
        prom = prometheus.url(self.wb)
        if prom and self.metrics_mode != "direct":
            return PrometheusSource(prom)
        return DirectSource(self.router_url, {"stable": self.url("stable"), "canary": self.url("canary")})

    # --- the Backend protocol ---------------------------------------------------------------------
    def deploy_canary(self, version: str, faults: Faults | None = None) -> None:
        self.stop_canary()
        # the labs and drills inject faults into the canary
        self._serve("canary", CANARY, version, faults=faults or self.canary_faults, allow_faults=True)

    def _serve(self, role: str, service: str, version: str, **options: Any) -> None:
        """Start ``workbench serve`` of ``version`` as ``service`` on the port of ``role``, then warm it up."""
        from mlops_workbench.serving.server import start_server

        start_server(
            self.wb,
            f"models:/{self.model_name}/{version}",
            port=self.ports()[role],
            name=service,
            model_name=self.model_name,
            **options,
        )
        self.warm_up(role)

    def deploy_shadow(self, version: str) -> None:
        """Serve ``version`` as the shadow and make the router mirror every prediction request to it."""
        self.stop_shadow()
        self._serve("shadow", SHADOW, version)
        self.router().set_shadow(self.url("shadow"), str(version))

    def stop_shadow(self) -> None:
        """Stop mirroring (when the router runs) and stop the shadow server."""
        try:
            if procs.get(self.wb, ROUTER):
                self.router().clear_shadow()
        finally:
            procs.stop(self.wb, SHADOW)

    def warm_up(self, role: str, n: int = 20) -> None:
        """Send ``n`` realistic requests straight to a fresh server so first-request costs stay out of the analysis."""
        import numpy as np

        from mlops_workbench.rollout.load import iris_like

        rows = iris_like(np.random.default_rng(12345), n).tolist()
        server = ModelServerClient.of(self.wb, self.url(role))
        for row in rows:
            if server.send([row]).status == 0:
                return  # no answer: the server is not up, there is nothing to warm

    def router(self) -> RouterClient:
        return RouterClient.of(self.wb, self.router_url)

    def set_weight(self, percent: float) -> None:
        self.router().set_weight(percent)

    def weight(self) -> float:
        return self.router().weight()

    def canary_alive(self) -> bool:
        return procs.get(self.wb, CANARY) is not None

    def stop_canary(self) -> None:
        try:
            if procs.get(self.wb, ROUTER):
                self.set_weight(0)
        finally:
            procs.stop(self.wb, CANARY)

    def promote(self, version: str) -> None:
        """Stable reloads the production alias (now ``version``); then the canary is retired."""
        try:
            served = str(ModelServerClient.of(self.wb, self.url("stable")).reload().get("version", ""))
            problem = ""
        except ServiceError as exc:
            served, problem = "", f"{exc}; "
        if served != str(version):
            raise ServiceError(
                f"stable did not switch to version {version} (serves {served or 'unknown'}): "
                f"{problem}check {self.wb.layout.log(STABLE)}"
            )
        self.stop_canary()

    def traffic_totals(self) -> dict[str, dict[str, float]]:
        """Cumulative requests and errors per version, read from the router (the source of truth)."""
        snap = Snapshot(t=0.0)
        parse_router(self.router().metrics(), snap)
        out: dict[str, dict[str, float]] = {}
        for version in ("stable", "canary"):
            reqs = sum(v for (ver, _), v in snap.requests.items() if ver == version)
            errs = sum(v for (ver, s), v in snap.requests.items() if ver == version and s.startswith("5"))
            fails = snap.failures.get(version, 0.0)
            out[version] = {"requests": reqs + fails, "errors": errs + fails}
        return out

    # --- faults -----------------------------------------------------------------------------------
    def inject_fault(self, faults: Faults) -> Faults:
        """Apply ``faults`` to the running canary (``POST /admin/faults``)."""
        return ModelServerClient.of(self.wb, self.url("canary")).set_faults(faults)


def together(starts: Sequence[Callable[[], T]]) -> list[T]:
    """Run ``starts`` at the same time, each in a thread of its own, wait for all of them and return their results
    in the order given; the first error (in that order) is raised once every one has ended, so nothing is left
    starting behind the caller."""
    if len(starts) < 2:
        return [start() for start in starts]
    with ThreadPoolExecutor(max_workers=len(starts), thread_name_prefix="workbench-up") as pool:
        futures = [pool.submit(start) for start in starts]
    return [future.result() for future in futures]
