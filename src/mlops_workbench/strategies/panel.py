"""Lab 08's strategy panel: where the router sends traffic, what each version costs and who approved it.

For a model on the local backend, :func:`observe` reads one :class:`StrategyView`: the router's split (blue, its
``stable`` upstream, and green, its ``canary`` upstream: weight, URL, the version each serves and whether it
answers), every registered version with its accuracy, mean latency and cost per 1,000 predictions (the registry
panel's rows: run metrics and the tags :data:`~mlops_workbench.registry.gate.COST_TAG` and
:data:`~mlops_workbench.registry.gate.LATENCY_TAG`), its approvals and promotions from the audit log (who asked,
who approved, what was refused), and the GitOps sync state when a deployment repository is given. Whatever is
down becomes a sentence in ``problems``. :func:`switch_action` and :func:`switch_back_action` are the buttons:
the smoke test, the smoke-gated switch and the switch back of :mod:`~mlops_workbench.strategies.bluegreen`, each
answered as ``(done, message)``. :func:`view_html` draws the view; :class:`StrategyPanel` wires it to widgets.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from mlops_workbench import procs
from mlops_workbench.errors import WorkbenchError
from mlops_workbench.registry.audit import AuditAction, AuditEntry, AuditOutcome
from mlops_workbench.rollout.backends.local import ROUTER
from mlops_workbench.rollout.live import GREEN, RED, Live
from mlops_workbench.rollout.live import escape as _e
from mlops_workbench.rollout.live import sentence_html as _code
from mlops_workbench.serving.admin import Weights
from mlops_workbench.serving.client import ModelServerClient, RouterClient, Unreachable
from mlops_workbench.strategies import bluegreen
from mlops_workbench.strategies.bluegreen import ENVIRONMENTS, ROLE, Environment, SmokeCase
from mlops_workbench.strategies.simulated import FLOWERS
from mlops_workbench.workbench import Workbench

if TYPE_CHECKING:
    from mlops_workbench.gitops import DeploymentRepo

DEFAULT_SMOKE = [SmokeCase(rows=[rows[0]], expect=name) for name, rows in FLOWERS.items()]
"""One unmistakable flower of each Iris class, with the class it must get."""
NO_BACKEND = "no local backend runs for this state folder: `LocalBackend(lab.wb, model_name=...).up()` starts blue"


class _View(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Upstream(_View):
    """One environment behind the router."""

    environment: Environment
    role: str = Field(description="the router upstream it sits behind: stable (blue) or canary (green)")
    url: str
    weight: float = Field(description="its share of traffic, in percent")
    model: str | None
    version: str | None
    healthy: bool
    problem: str = ""


class VersionLine(_View):
    version: str
    aliases: list[str]
    serving: list[Environment] = Field(description="the environments that serve it now")
    accuracy: float | None
    accuracy_source: str | None = Field(
        None, description="registry (its run's or gate's metric) or held-out rows, live"
    )
    latency: str
    cost: str
    approvals: str


class StrategyView(_View):
    model: str
    at: str
    router: str | None
    live: Environment | None = Field(description="the environment with all the traffic (None: split, or unknown)")
    upstreams: list[Upstream]
    versions: list[VersionLine]
    gitops: str | None = Field(description="the deployment repository's sync state (None: no repository given)")
    problems: list[str]


def upstreams(weights: Weights, served: Mapping[str, Mapping[str, Any] | str]) -> list[Upstream]:
    """The two environments from the router's ``weights`` and what each upstream answered (``/version``), or why
    it did not (a sentence), by role."""
    found = []
    for env in ENVIRONMENTS:
        role = ROLE[env]
        answer = served.get(role, "not asked")
        ok = not isinstance(answer, str)
        found.append(
            Upstream(
                environment=env,
                role=role,
                url=weights["upstreams"].get(role) or "",
                weight=float(weights["stable"] if role == "stable" else weights["canary"]),
                model=str(answer["name"]) if not isinstance(answer, str) else None,
                version=str(answer["version"]) if not isinstance(answer, str) else None,
                healthy=ok,
                problem="" if ok else str(answer),
            )
        )
    return found


def live(ups: Sequence[Upstream]) -> Environment | None:
    """The environment with all the traffic (None while the router splits it)."""
    return next((u.environment for u in ups if u.weight == 100.0), None)


def approvals(entries: Iterable[AuditEntry], model: str) -> dict[str, str]:
    """Per version of ``model``, the last approval and the last promotion in the audit log, in words."""
    said: dict[str, dict[AuditAction, str]] = {}
    for e in entries:
        if e.model != model or e.version is None or e.action not in (AuditAction.APPROVE, AuditAction.PROMOTE):
            continue
        target = e.alias or "?"
        if e.outcome is AuditOutcome.REFUSED:
            what = "approval" if e.action is AuditAction.APPROVE else f"promotion to {target}"
            text = f"{what} refused: {e.error or e.reason or 'no reason given'}"
        elif e.action is AuditAction.APPROVE:
            text = f"approved for {target} by {e.approver}"
        elif e.requester:
            text = f"promoted to {target}: requested by {e.requester}, approved by {e.approver}"
        else:
            text = f"promoted to {target} by {e.approver}"
        said.setdefault(e.version, {})[e.action] = text
    return {
        v: "; ".join(by[a] for a in (AuditAction.APPROVE, AuditAction.PROMOTE) if a in by) for v, by in said.items()
    }


def view_html(view: StrategyView) -> str:
    """The panel as HTML: the split, the versions, GitOps, problems."""
    split = "".join(
        f"<tr data-env='{u.environment}'><td><b>{u.environment}</b> ({u.role})</td><td>{u.weight:g}%</td>"
        f"<td>{'v' + _e(u.version) if u.version else '-'}</td>"
        f"<td style='color:{GREEN if u.healthy else RED}'>{'answers' if u.healthy else _e(u.problem)}</td>"
        f"<td>{_e(u.url)}</td></tr>"
        for u in view.upstreams
    )
    head = "".join(f"<th>{h}</th>" for h in ("environment", "traffic", "serves", "health", "url"))
    now = f"<b>{view.live}</b> has all the traffic" if view.live else "the router splits the traffic"
    top = f"<p>{now} (router {_e(view.router)})</p>" if view.router else ""
    versions = "".join(
        f"<tr data-version='{_e(v.version)}'><td>v{_e(v.version)}</td><td><b>{_e(', '.join(v.aliases))}</b></td>"
        f"<td>{_e(', '.join(v.serving))}</td>"
        f"<td>{'-' if v.accuracy is None else f'{v.accuracy:.3f} ({_e(v.accuracy_source)})'}</td>"
        f"<td>{_e(v.latency) or '-'}</td>"
        f"<td>{_e(v.cost) or 'not measured'}</td><td>{_e(v.approvals)}</td></tr>"
        for v in view.versions
    )
    vhead = "".join(
        f"<th>{h}</th>"
        for h in ("version", "aliases", "serving", "accuracy", "mean latency", "cost / 1k predictions", "approvals")
    )
    gitops = f"<p>GitOps: <b>{_e(view.gitops)}</b></p>" if view.gitops else ""
    problems = "".join(f"<li>{_code(p)}</li>" for p in view.problems)
    return (
        f"<div class='workbench-strategy'><h4>{_e(view.model)}: release strategy at {_e(view.at)} UTC</h4>{top}"
        + (f"<table>{head}{split}</table>" if view.upstreams else "")
        + f"<table>{vhead}{versions}</table>{gitops}"
        + (f"<h5>could not read</h5><ul>{problems}</ul>" if problems else "")
        + "</div>"
    )


def router_of(wb: Workbench) -> RouterClient | None:
    """The local backend's router of ``wb`` (None when it does not run)."""
    service = procs.get(wb, ROUTER)
    return RouterClient.of(wb, service.url) if service is not None else None


def served_accuracy(wb: Workbench, url: str) -> float:
    """The share of the gate's held-out rows that the model server at ``url`` predicts right (one request, sent as
    a probe: the held-out rows stay out of the prediction log)."""
    from mlops_workbench.data import FEATURES, LABEL
    from mlops_workbench.paramspec import RegistryParams
    from mlops_workbench.registry.gate import holdout

    held = holdout(RegistryParams.load())
    predicted = ModelServerClient.of(wb, url).predict(held[FEATURES].values.tolist(), probe=True)["predictions"]
    return sum(str(p) == str(t) for p, t in zip(predicted, held[LABEL], strict=True)) / len(held)


def observe(
    wb: Workbench,
    model: str,
    repo: DeploymentRepo | None = None,
    measured: dict[tuple[str, str], float] | None = None,
) -> StrategyView:
    """Read everything the panel shows about ``model`` now; what is down or unreadable becomes a problem.

    A version whose run logged no accuracy gets the accuracy of the environment serving it on the gate's held-out
    rows, kept in ``measured`` by (URL, version) so a live panel asks each server once."""
    from mlops_workbench import gitops
    from mlops_workbench.registry import audit
    from mlops_workbench.registry.panel import version_rows

    problems: list[str] = []
    router, ups = router_of(wb), []
    if router is None:
        problems.append(NO_BACKEND)
    else:
        try:
            weights = router.weights()
            ups = upstreams(weights, _served(wb, weights))
        except WorkbenchError as exc:
            problems.append(f"the router at {router.url} did not answer: {exc}")
    measured = {} if measured is None else measured
    lines: list[VersionLine] = []
    try:
        said = approvals(audit.read(wb), model)
        for row in version_rows(wb, model):
            envs = [u for u in ups if u.model == model and u.version == row.version]
            accuracy, source = row.metrics.get("accuracy"), "registry"
            if accuracy is None and any(u.healthy for u in envs):
                url = next(u.url for u in envs if u.healthy)
                try:
                    if (url, row.version) not in measured:
                        measured[(url, row.version)] = served_accuracy(wb, url)
                    accuracy, source = measured[(url, row.version)], "held-out rows, live"
                except WorkbenchError as exc:
                    problems.append(f"the accuracy of v{row.version} at {url} could not be measured: {exc}")
            lines.append(
                VersionLine(
                    version=row.version,
                    aliases=row.aliases,
                    serving=[u.environment for u in envs],
                    accuracy=accuracy,
                    accuracy_source=source if accuracy is not None else None,
                    latency=row.latency(),
                    cost=row.cost(),
                    approvals=said.get(row.version, ""),
                )
            )
    except WorkbenchError as exc:
        problems.append(f"the registry cannot be read: {exc}")
    state = None
    if repo is not None:
        try:
            state = gitops.status(wb, repo).line()
        except WorkbenchError as exc:
            problems.append(f"the deployment repository cannot be read: {exc}")
    return StrategyView(
        model=model,
        at=time.strftime("%H:%M:%S", time.gmtime()),
        router=router.url if router else None,
        live=live(ups),
        upstreams=ups,
        versions=lines,
        gitops=state,
        problems=problems,
    )


def _served(wb: Workbench, weights: Weights) -> dict[str, Mapping[str, Any] | str]:
    found: dict[str, Mapping[str, Any] | str] = {}
    for role, url in weights["upstreams"].items():
        if not url:
            found[role] = "no upstream"
            continue
        try:
            found[role] = dict(ModelServerClient.of(wb, url).version(timeout=3.0))
        except Unreachable as exc:
            found[role] = f"does not answer ({exc.kind})"
        except WorkbenchError as exc:
            found[role] = f"answers with an error: {exc}"
    return found


def switch_action(
    wb: Workbench,
    router: RouterClient,
    cases: Sequence[SmokeCase | Mapping[str, Any]] = DEFAULT_SMOKE,
    by: str | None = None,
    reason: str = "blue-green switch from the strategy panel",
) -> tuple[bool, str]:
    """Smoke green, then put all traffic on it if it passed (else refused, traffic unchanged, audited)."""
    try:
        green = bluegreen.environments(router)["green"]
        result = bluegreen.smoke(wb, green, cases)
        moved = bluegreen.switch(wb, router, result, "green", by=by, reason=reason)
    except WorkbenchError as exc:
        return False, str(exc)
    before = f" (v{moved.replaced} before)" if moved.replaced else ""
    return True, f"green is live: all traffic on v{moved.version}{before}; {result.summary()}"


def switch_back_action(
    wb: Workbench, router: RouterClient, by: str | None = None, reason: str = "switch back from the strategy panel"
) -> tuple[bool, str]:
    """All traffic back on blue (refused, traffic unchanged, when blue does not answer)."""
    try:
        moved = bluegreen.switch_back(wb, router, by=by, reason=reason)
    except WorkbenchError as exc:
        return False, str(exc)
    return True, f"blue is live: all traffic on v{moved.version}"


class StrategyPanel(Live):
    """The strategy panel of ``model`` (and the deployment ``repo``), redrawn every ``refresh_s`` seconds, with the
    blue-green switch and switch back; ``cases`` are green's smoke cases, ``by`` who switches (empty: you)."""

    thread_name = "workbench-strategy-panel"

    def __init__(
        self,
        wb: Workbench,
        model: str,
        repo: DeploymentRepo | None = None,
        cases: Sequence[SmokeCase | Mapping[str, Any]] = DEFAULT_SMOKE,
        by: str = "",
        refresh_s: float = 2.0,
    ) -> None:
        import ipywidgets as w

        super().__init__(refresh_s)
        self.wb, self.model, self.repo, self.cases = wb, model, repo, list(cases)
        self.measured: dict[tuple[str, str], float] = {}
        self.board, self.note = w.HTML(), w.HTML()
        self.by = w.Text(value=by, description="by", placeholder="your name (empty: git config user.email)")
        self.switch = w.Button(description="Switch to green", button_style="warning")
        self.back = w.Button(description="Switch back to blue", button_style="danger")
        refresh = w.Button(description="Refresh now")
        self.switch.on_click(lambda _: self._act(lambda r: switch_action(wb, r, self.cases, self.by.value or None)))
        self.back.on_click(lambda _: self._act(lambda r: switch_back_action(wb, r, self.by.value or None)))
        refresh.on_click(lambda _: self.tick())
        self.widget = w.VBox([self.board, w.HBox([self.by, self.switch, self.back, refresh]), self.note])

    def _act(self, action: Any) -> None:
        router = router_of(self.wb)
        ok, message = action(router) if router is not None else (False, NO_BACKEND)
        self.note.value = f"<span style='color:{GREEN if ok else RED}'>{_code(message)}</span>"
        self.tick()

    def refresh(self) -> StrategyView:
        view = observe(self.wb, self.model, self.repo, self.measured)
        self.board.value = view_html(view)
        return view

    def tick(self) -> None:
        try:
            self.refresh()
        except Exception as err:  # noqa: BLE001 - say it in the panel; the next tick tries again
            self.note.value = f"<span style='color:{RED}'>refresh failed: {_e(err)}</span>"
