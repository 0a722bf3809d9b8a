"""Canary rollout: policy, analysis, controller, router, Prometheus, load generator and runtimes.

The policy (:mod:`.policy`) and controller (:mod:`.controller`) are runtime-agnostic;
a runtime implements :class:`.backends.Backend` (``backends.local`` runs real
processes on loopback; a kind backend reuses the same policy and controller).
"""
