"""The I/O side of the reconciler: read what the local runtime serves, change it, ask the registry.

:class:`Runtime` is all the reconciler needs; :class:`LocalRuntime` does it with the real pieces: the live state
comes from the router's weights and each model server's ``/version`` (through
:mod:`mlops_workbench.serving.client`), changes go through
:class:`~mlops_workbench.rollout.backends.local.LocalBackend` (the same processes and ports ``workbench rollout``
uses), versions come from the registry. Unit tests pass a fake.
"""

from __future__ import annotations

from typing import Protocol

from mlops_workbench import procs, tracking
from mlops_workbench.gitops.plan import Action, LiveState, Served
from mlops_workbench.rollout.backends.local import CANARY, ROUTER, STABLE, LocalBackend
from mlops_workbench.serving.client import ModelServerClient, Unreachable
from mlops_workbench.workbench import Workbench


class Runtime(Protocol):
    """What the reconciler reads and changes."""

    def live(self) -> LiveState:
        """What runs now (servers that do not answer count as not running)."""

    def apply(self, action: Action, model: str) -> None:
        """Make one change; a failure raises a :class:`~mlops_workbench.errors.WorkbenchError`."""

    def registered(self, model: str) -> set[str]:
        """The registered versions of ``model`` (RegistryError for a model that is not registered)."""

    def busy(self) -> str | None:
        """Why the runtime must not be changed now (a canary rollout under way), or None."""


class LocalRuntime:
    """The local runtime of state folder of ``wb``: ``rollout-stable``, ``rollout-canary``, ``rollout-router``."""

    def __init__(self, wb: Workbench) -> None:
        self.wb = wb

    def backend(self, model: str | None = None) -> LocalBackend:
        return LocalBackend(self.wb, model_name=model, metrics="direct")

    def _served(self, service: str, role: str, backend: LocalBackend) -> Served | None:
        if procs.get(self.wb, service) is None:
            return None
        try:
            answer = ModelServerClient.of(self.wb, backend.url(role)).version()
        except Unreachable:
            return None
        return Served(version=str(answer["version"]), uri=str(answer["model_uri"]))

    def live(self) -> LiveState:
        backend = self.backend()
        router, weight = procs.get(self.wb, ROUTER) is not None, None
        if router:
            try:
                weight = backend.weight()
            except Unreachable:
                router = False
        return LiveState(
            router=router,
            stable=self._served(STABLE, "stable", backend),
            canary=self._served(CANARY, "canary", backend),
            weight=weight,
        )

    def apply(self, action: Action, model: str) -> None:
        backend = self.backend(model)
        match action.kind:
            case "serve_stable":
                backend.serve_stable(action.uri)
            case "start_router":
                backend.up()
            case "deploy_canary":
                assert action.version is not None
                backend.deploy_canary(action.version)
            case "set_weight":
                assert action.weight is not None
                backend.set_weight(action.weight)
            case "stop_canary":
                backend.stop_canary()

    def registered(self, model: str) -> set[str]:
        from mlops_workbench import registry

        tracking.up(self.wb)
        return {str(v.version) for v in registry.list_versions(self.wb, model)}

    def busy(self) -> str | None:
        from mlops_workbench.rollout import state as st

        rollout = st.load(self.wb)
        if rollout is not None and st.controller_alive(rollout):
            return (
                f"canary rollout {rollout.id} of version {rollout.candidate} is under way and drives the same router: "
                "wait for it to end or stop it (`workbench rollout abort`), then sync"
            )
        return None
