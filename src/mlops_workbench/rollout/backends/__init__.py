"""Runtimes a rollout drives. :class:`Backend` is all the controller needs from one."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Backend(Protocol):
    """The small runtime interface behind the controller (local processes now, kind later)."""

    model_name: str
    """The registered model whose versions this runtime serves."""

    def deploy_canary(self, version: str) -> None:
        """Start serving model ``version`` as the canary (with weight 0)."""

    def set_weight(self, percent: float) -> None:
        """Send ``percent`` of the traffic to the canary, the rest to stable."""

    def weight(self) -> float:
        """The canary's current traffic share in percent."""

    def canary_alive(self) -> bool:
        """Whether the canary can still serve (process up)."""

    def stop_canary(self) -> None:
        """Take the canary out of service (idempotent)."""

    def promote(self, version: str) -> None:
        """Make stable serve ``version`` (after the registry alias moved), then retire the canary."""

    def traffic_totals(self) -> dict[str, dict[str, float]]:
        """Cumulative ``requests`` and ``errors`` served per role (``stable``, ``canary``), for blast radius."""
