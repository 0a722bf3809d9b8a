"""Blue-green on the local backend: two full environments behind the router, an atomic switch, an instant way back.

``blue`` is the environment behind the router's ``stable`` upstream (it serves the production version) and
``green`` the one behind its ``canary`` upstream (the candidate): on the local backend, ``LocalBackend.up()``
starts blue and the router, ``LocalBackend.deploy_canary(version)`` starts green with no traffic. Where traffic
goes is the router's one number, the canary weight: 0 puts everything on blue, 100 everything on green, so a
switch is one admin call (:meth:`~mlops_workbench.serving.client.RouterClient.set_weight`), atomic for every
request after it.

:func:`smoke` runs smoke cases (rows and the class each should get) against an environment's own URL;
:func:`switch` puts all traffic on an environment only with a passing smoke result *of that environment, for the
version it serves now*, and refuses otherwise (traffic stays where it was); :func:`switch_back` returns all
traffic to blue at once. Every switch and every refusal is a line of the registry audit log (action ``switch``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from mlops_workbench.errors import InputError, ServiceError
from mlops_workbench.fielderrors import validated
from mlops_workbench.registry import approvals, audit
from mlops_workbench.registry.audit import AuditAction, AuditEntry, AuditOutcome
from mlops_workbench.serving.client import ModelServerClient, RouterClient
from mlops_workbench.strategies.abtest import FIX
from mlops_workbench.workbench import Workbench

Environment = Literal["blue", "green"]
ENVIRONMENTS: tuple[Environment, ...] = get_args(Environment)
ROLE: dict[Environment, str] = {"blue": "stable", "green": "canary"}
"""The router upstream each environment sits behind."""
WEIGHT: dict[Environment, float] = {"blue": 0.0, "green": 100.0}
"""The router's canary weight that sends all traffic to each environment."""


class SwitchRefused(InputError):
    """A switch that was not made: traffic stays where it was (the message says why and what to do)."""


class SmokeCase(BaseModel):
    """One smoke request: ``rows`` to predict and, optionally, the class the first row must get."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    rows: list[list[float]] = Field(min_length=1, description="feature rows, like [[5.1, 3.5, 1.4, 0.2]]")
    expect: str | None = Field(None, description="the class the first row must be predicted as (None: any 200)")


class SmokeCheck(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    case: int
    status: int = Field(description="HTTP status, 0 when no answer came")
    expected: str | None
    got: str | None
    passed: bool


class SmokeResult(BaseModel):
    """The smoke test of one environment: what it serves and how each case went."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    url: str
    model: str | None = Field(description="the registered model it serves (None when it did not answer)")
    version: str | None
    passed: bool
    checks: list[SmokeCheck]
    problem: str = ""
    at: str = Field(default_factory=audit.now)

    def summary(self) -> str:
        if self.problem:
            return f"smoke FAILED at {self.url}: {self.problem}"
        bad = [c for c in self.checks if not c.passed]
        head = f"smoke {'PASSED' if self.passed else 'FAILED'} at {self.url} (v{self.version}): "
        head += f"{len(self.checks) - len(bad)}/{len(self.checks)} cases passed"
        return head + "".join(
            f"; case {c.case}: status {c.status}, got {c.got!r}, expected {c.expected!r}" for c in bad
        )


def smoke(wb: Workbench, url: str, cases: Sequence[SmokeCase | Mapping[str, Any]]) -> SmokeResult:
    """Send each case to the model server at ``url`` (an environment's own URL, not the router's)."""
    if not cases:
        raise InputError("Give at least one smoke case: smoke(url, [{'rows': [[5.1, 3.5, 1.4, 0.2]], 'expect': ...}]).")
    parsed = [
        c if isinstance(c, SmokeCase) else validated(SmokeCase, c, f"smoke case {i}", FIX) for i, c in enumerate(cases)
    ]
    server = ModelServerClient.of(wb, url)
    try:
        served = server.version()
    except (ServiceError, InputError) as exc:
        return SmokeResult(url=url.rstrip("/"), model=None, version=None, passed=False, checks=[], problem=str(exc))
    checks = []
    for i, case in enumerate(parsed):
        reply = server.send(case.rows)
        got = reply.prediction()
        ok = reply.status == 200 and (case.expect is None or got == case.expect)
        checks.append(SmokeCheck(case=i, status=reply.status, expected=case.expect, got=got, passed=ok))
    return SmokeResult(
        url=url.rstrip("/"),
        model=served["name"],
        version=str(served["version"]),
        passed=all(c.passed for c in checks),
        checks=checks,
    )


class Switch(BaseModel):
    """A switch that was made: which environment is live now and what it serves."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    live: Environment
    url: str
    version: str
    replaced: str | None = Field(description="the version live before (None when it could not be read)")
    weight: float = Field(description="the router's canary weight now")


def environment(name: str) -> Environment:
    """``name`` as an :data:`Environment`, else InputError naming the two there are."""
    for env in ENVIRONMENTS:
        if name == env:
            return env
    raise InputError(f"Unknown environment {name!r}: blue-green has 'blue' (production) and 'green' (the candidate).")


def environments(router: RouterClient) -> dict[Environment, str]:
    """The URL of each environment, read from the router's upstreams."""
    upstreams = router.weights()["upstreams"]
    urls = {env: (upstreams.get(ROLE[env]) or "").rstrip("/") for env in ENVIRONMENTS}
    missing = [env for env, url in urls.items() if not url]
    if missing:
        raise InputError(
            f"The router at {router.url} has no upstream for {', '.join(missing)}: start it with --stable "
            "(blue) and --canary (green), as LocalBackend.up() does."
        )
    return urls


def live(router: RouterClient) -> Environment | None:
    """The environment with all the traffic now (None while the router splits it)."""
    weight = router.weight()
    return next((env for env in ENVIRONMENTS if WEIGHT[env] == weight), None)


def switch(
    wb: Workbench,
    router: RouterClient,
    smoke_result: SmokeResult,
    to: str = "green",
    by: str | None = None,
    reason: str = "blue-green switch",
) -> Switch:
    """Put all traffic on environment ``to`` in one router call, if ``smoke_result`` passed for what it serves now.

    Refused (:class:`SwitchRefused`, audited, traffic unchanged) when the smoke test failed, ran against another
    URL, or the environment now serves another version or does not answer."""
    target = environment(to)
    urls = environments(router)
    fields = _fields(smoke_result.model, target, by, reason)

    def refuse(why: str) -> SwitchRefused:
        audit.append(wb, AuditEntry(**fields, version=smoke_result.version, outcome=AuditOutcome.REFUSED, error=why))
        return SwitchRefused(f"Switch to {target} refused, traffic unchanged: {why}.")

    if smoke_result.url.rstrip("/") != urls[target]:
        raise refuse(f"the smoke test ran against {smoke_result.url}, but {target} is {urls[target]}: smoke {target}")
    if not smoke_result.passed:
        raise refuse(f"{smoke_result.summary()}; fix {target} and smoke it again")
    now = _version(wb, urls[target])
    if now is None or now != smoke_result.version:
        serves = f"now serves v{now}" if now else "does not answer now"
        raise refuse(f"{target} {serves}, the smoke test passed v{smoke_result.version}: smoke it again")
    return _move(wb, router, target, urls, fields)


def switch_back(wb: Workbench, router: RouterClient, by: str | None = None, reason: str = "switch back") -> Switch:
    """Put all traffic back on blue in one router call (refused, traffic unchanged, when blue does not answer)."""
    urls = environments(router)
    served = _served(wb, urls["blue"])
    fields = _fields(served[0] if served else None, "blue", by, reason)
    if served is None:
        why = f"blue at {urls['blue']} does not answer: start it again (LocalBackend.up()) before switching back"
        audit.append(wb, AuditEntry(**fields, outcome=AuditOutcome.REFUSED, error=why))
        raise SwitchRefused(f"Switch back to blue refused, traffic unchanged: {why}.")
    return _move(wb, router, "blue", urls, fields)


def _fields(model: str | None, target: Environment, by: str | None, reason: str) -> dict[str, Any]:
    return dict(
        action=AuditAction.SWITCH,
        model=model or "unknown",
        serving=target,
        approver=approvals.identity(by),
        reason=reason,
    )


def _served(wb: Workbench, url: str) -> tuple[str, str] | None:
    """(model name, version) the server at ``url`` serves, None when it does not answer."""
    try:
        found = ModelServerClient.of(wb, url).version()
    except (ServiceError, InputError):
        return None
    return found["name"], str(found["version"])


def _version(wb: Workbench, url: str) -> str | None:
    served = _served(wb, url)
    return served[1] if served else None


def _move(
    wb: Workbench, router: RouterClient, target: Environment, urls: dict[Environment, str], fields: dict[str, Any]
) -> Switch:
    before = live(router)
    replaced = _version(wb, urls[before]) if before is not None else None
    version = _version(wb, urls[target]) or "unknown"
    weight = router.set_weight(WEIGHT[target])  # the switch: one call, every later request sees it
    audit.append(wb, AuditEntry(**fields, version=version, replaced=replaced, outcome=AuditOutcome.SWITCHED))
    return Switch(live=target, url=urls[target], version=version, replaced=replaced, weight=weight)
