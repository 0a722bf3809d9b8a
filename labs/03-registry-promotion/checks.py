"""Checks for lab 03: registered versions, the learner's gate rule, the learner's promote and rollback,
serving, refusal, rollback by alias.

Every check reads state the grader can see on its own: the MLflow registry (through
the tracking server under the state folder), the audit log, the running model server,
and the learner's files in the workspace: gate_rule.py (run on planted scores and lineage
here), promotion.py and rollback.py (run on hidden registries made per grading run from
``ctx.seed``: fresh registered models on the lab's own tracking server, graded by the
aliases, approval records and audit lines the learner's functions leave behind).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from mlops_workbench import procs, registry, tracking
from mlops_workbench.labs.checks import Context, check, fail, learner_function
from mlops_workbench.registry import approvals, audit
from mlops_workbench.registry.audit import AuditAction, AuditEntry, AuditOutcome
from mlops_workbench.registry.gate import GateResult, RegistryParams
from mlops_workbench.registry.sandbox import Sandbox
from mlops_workbench.serving import paths
from mlops_workbench.serving.client import ModelServerClient, Unreachable
from mlops_workbench.serving.record import last_served

SERVER = "lab03-serve"
LINEAGE = ("git.commit", "data.md5", "params.hash")
EXPERIMENT = "lab-03-registry"  # the notebook's `experiment` parameter


def model_name(ctx: Context) -> str:
    return str(ctx.params.get("registry", {}).get("model_name", "iris"))


def client(ctx: Context) -> Any:
    try:
        tracking.up(ctx.wb)
        return registry.client(ctx.wb)
    except (RuntimeError, registry.RegistryError) as exc:
        fail(f"The MLflow tracking server under the state folder does not answer ({exc}). Run the cell 'tracking'.")


def aliases(ctx: Context) -> dict[str, str]:
    c, name = client(ctx), model_name(ctx)
    try:
        return dict(c.get_registered_model(name).aliases)
    except Exception:
        fail(f"There is no registered model '{name}' yet: run the cell 'register' (Exercise 1).")


PROMOTE, ROLLBACK = AuditAction.PROMOTE, AuditAction.ROLLBACK
PROMOTED, REFUSED, ROLLED_BACK = AuditOutcome.PROMOTED, AuditOutcome.REFUSED, AuditOutcome.ROLLED_BACK


def log(ctx: Context, **match: Any) -> list[AuditEntry]:
    """Audit log entries of this lab's model whose fields hold the values given (``outcome=PROMOTED``)."""
    entries = [e for e in audit.read(ctx.wb) if e.model == model_name(ctx)]
    return [e for e in entries if all(getattr(e, field) == value for field, value in match.items())]


def outcomes(entries: list[AuditEntry]) -> list[str]:
    """The outcomes of ``entries`` as plain words, for a message."""
    return [str(e.outcome) for e in entries]


@check("versions-registered", points=1, cells=["register"])
def versions_registered(ctx: Context) -> None:
    """Two versions are registered from the lab's runs, with who registered them and the runs' lineage."""
    c, name = client(ctx), model_name(ctx)
    experiment = c.get_experiment_by_name(EXPERIMENT)
    runs = {r.info.run_id: r for r in c.search_runs([experiment.experiment_id])} if experiment else {}
    try:
        versions = c.search_model_versions(f"name='{name}'")
    except Exception:
        versions = []
    mine = [v for v in versions if v.run_id in runs]
    if len(mine) < 2:
        fail(
            f"'{name}' has {len(mine)} version(s) from runs of the experiment '{EXPERIMENT}': register both candidate "
            "runs with mlflow.register_model(tracking.logged_model_uri(run_id), model_name, tags=...)."
        )
    unsigned = [v.version for v in mine if not v.tags.get("registered_by")]
    if unsigned:
        fail(
            f"version(s) {unsigned} do not say who registered them: pass tags={{'registered_by': registrant}} to "
            "mlflow.register_model, so the approver can be checked against the registrant."
        )
    bare = [v.version for v in mine if any(t not in runs[v.run_id].data.tags for t in LINEAGE)]
    if bare:
        fail(
            f"version(s) {bare} come from runs without lineage {list(LINEAGE)}: register the runs that "
            "candidates.log_versioned_candidate logged (run_v1, run_v2), not new ones."
        )


def _rule(ctx: Context):
    return learner_function(ctx, "gate_rule.py", "gate_rule", "gate")


CLEAN = {"git.commit": "a" * 40, "git.dirty": "false", "data.md5": "b" * 32, "params.hash": "c" * 64}
PROD = {"accuracy": 0.90, "f1_macro": 0.90}
RULES = RegistryParams(
    metric="f1_macro", min_gain=0.01, non_regression=["accuracy", "f1_macro"], tolerance=0.0, min_accuracy=0.9
)
# (candidate, production, lineage, rules), should pass?, the fix when the rule gets it wrong
GATE_BASIC = [
    (
        ({"accuracy": 0.95, "f1_macro": 0.95}, PROD, CLEAN, RULES),
        True,
        "a challenger 0.05 better on every metric, with clean lineage, must pass (return [])",
    ),
    (
        ({"accuracy": 0.80, "f1_macro": 0.80}, PROD, CLEAN, RULES),
        False,
        "a challenger 0.10 worse must be refused: return a reason",
    ),
]
GATE_PLANTED = [
    (
        ({"accuracy": 0.95, "f1_macro": 0.95}, PROD, {**CLEAN, "git.dirty": "true"}, RULES),
        False,
        "a run logged from a dirty tree (git.dirty 'true') cannot be reproduced: refuse it",
    ),
    (
        ({"accuracy": 0.95, "f1_macro": 0.95}, PROD, {k: v for k, v in CLEAN.items() if k != "data.md5"}, RULES),
        False,
        "a run without data.md5 has missing lineage: refuse when git.commit, data.md5 or params.hash is absent",
    ),
    (
        ({"accuracy": 0.95, "f1_macro": 0.95}, PROD, {}, RULES),
        False,
        "a run with no lineage tags at all must be refused",
    ),
    (
        ({"accuracy": 0.93, "f1_macro": 0.93}, PROD, CLEAN, RULES.model_copy(update={"min_gain": 0.05})),
        False,
        "with rules.min_gain 0.05 a gain of 0.03 is not enough: read the thresholds from `rules`, do not hard-code them",
    ),
    (
        ({"accuracy": 0.89, "f1_macro": 0.99}, PROD, CLEAN, RULES),
        False,
        "accuracy drops 0.01 with tolerance 0: check every metric in rules.non_regression, not only rules.metric",
    ),
    (
        ({"accuracy": 0.89, "f1_macro": 0.99}, PROD, CLEAN, RULES.model_copy(update={"tolerance": 0.02})),
        True,
        "a drop of 0.01 is within rules.tolerance 0.02: allow drops up to the tolerance",
    ),
    (
        ({"accuracy": 0.85, "f1_macro": 0.85}, None, CLEAN, RULES),
        False,
        "with no production model (production is None) a first model below rules.min_accuracy 0.9 must be refused",
    ),
    (
        ({"accuracy": 0.95, "f1_macro": 0.95}, None, CLEAN, RULES),
        True,
        "with no production model (production is None) a first model above rules.min_accuracy must pass",
    ),
]


def _gate_cases(ctx: Context, cases: list) -> None:
    rule = _rule(ctx)
    for args, should_pass, fix in cases:
        try:
            reasons = rule(*args)
        except Exception as err:
            fail(f"gate_rule raised {type(err).__name__}: {err} on candidate {args[0]}, production {args[1]}: {fix}.")
        if not isinstance(reasons, list):
            fail(f"gate_rule returned {reasons!r}: return a list of reasons (strings), [] when the candidate passes.")
        if (not reasons) != should_pass:
            got = "passed" if not reasons else f"refused ({'; '.join(map(str, reasons))})"
            fail(
                f"gate_rule {got} candidate {args[0]} against production {args[1]} with lineage "
                f"{sorted(args[2])}: {fix}."
            )


@check("gate-rule-written", points=1, cells=["gate"])
def gate_rule_written(ctx: Context) -> None:
    """The gate rule passes a clearly better challenger and refuses a clearly worse one."""
    _gate_cases(ctx, GATE_BASIC)


@check("gate-rule-planted", points=3, hidden=True, cells=["gate"])
def gate_rule_planted(ctx: Context) -> None:
    """On planted scores and lineage: thresholds from the rules, non-regression, first model, lineage, dirty tree."""
    _gate_cases(ctx, GATE_PLANTED)


@check("gate-written", points=2, cells=["gate", "promote-code", "promote"])
def gate_written(ctx: Context) -> None:
    """The production promotion of the challenger was gated against the production version it replaced, and passed."""
    gates = [e.gate for e in log(ctx, action=PROMOTE, alias="production", outcome=PROMOTED) if e.gate]
    compared = [g for g in gates if g.production_version]
    if not compared:
        fail(
            "No production promotion was gated against an earlier production version: promote v1, then v2 to "
            "production with gate_result=registry.quality_gate(lab.wb, model_name, v2.version, rule=gate_rule)."
        )
    gate = compared[-1]
    gain = gate.candidate[gate.metric] - (gate.production or {}).get(gate.metric, float("nan"))
    if not gate.passed or not gain >= float(gate.min_gain) - 1e-9:
        fail("The recorded gate did not pass: promote the better candidate (better_C).")


@check("promoted-through-staging", points=2, cells=["promote-code", "promote"])
def promoted_through_staging(ctx: Context) -> None:
    """Two versions went staging -> production, each approved by someone other than its registrant."""
    shipped = log(ctx, action=PROMOTE, alias="production", outcome=PROMOTED)
    if len({e.version for e in shipped}) < 2:
        refused = log(ctx, action=PROMOTE, alias="production", outcome=REFUSED)
        if refused:
            fail(
                f"Your promote refused: {refused[-1].error}. Put the version in staging, pass the gate result "
                "of that version and approver=approver (not the registrant), then promote v1 then v2."
            )
        fail(
            "Fewer than two versions were promoted to production: promote v1 then v2 (each via staging) with your "
            "promote and record=audit.recorder(lab.wb), so each promotion writes its audit line."
        )
    c, name = client(ctx), model_name(ctx)
    for entry in shipped[-2:]:
        record = approvals.read(c, name, entry.version) or {}
        missing = [k for k in approvals.FIELDS if not record.get(k)]
        if missing:
            fail(
                f"v{entry.version} lacks the approval record {missing}: call approvals.record(client, name, "
                "version, approver=..., reason=..., gate=gate) in promote before moving the alias."
            )
        if not entry.registered_by or entry.registered_by == entry.approver:
            fail(
                f"the audit line of v{entry.version} does not show two different people (registered by "
                f"{entry.registered_by!r}, approved by {entry.approver!r}): register with "
                "tags={'registered_by': registrant} and approve as someone else."
            )
    if not any(e.replaced for e in shipped):
        fail("No promotion replaced an earlier production version, so nothing was kept as `previous`.")


def server_version(ctx: Context) -> dict[str, Any]:
    """The server's /version answer; from its log when the learner already stopped it (tidying up is fine)."""
    service = procs.get(ctx.wb, SERVER)
    if service is None:
        recorded = last_served(ctx.wb, SERVER)
        if recorded is None:
            fail(f"No model server '{SERVER}' ever ran: start it with serve.start_server(..., name='{SERVER}').")
        return recorded
    server = ModelServerClient.of(ctx.wb, service.url)
    try:
        info = server.version(timeout=10)
    except Unreachable as exc:
        fail(f"The model server at {service.url} does not answer ({exc.problem}): restart it.")
    answer = server.send([[5.1, 3.5, 1.4, 0.2]], timeout=10)
    if answer.status == 0:
        fail(f"The model server at {service.url} does not answer ({answer.problem}): restart it.")
    if answer.status != 200 or answer.json().get("predictions") != ["setosa"]:
        fail(f"The model server answered {answer.status} {answer.text[:200]} to a setosa flower.")
    return info


@check("serving-production", points=2, cells=["serve"])
def serving_production(ctx: Context) -> None:
    """A model server loads models:/<model>@production and the learner queried it."""
    info = server_version(ctx)
    if info.get("alias") != "production" or info.get("name") != model_name(ctx):
        fail(f"The server serves {info.get('model_uri')}: serve models:/{model_name(ctx)}@production instead.")
    answer = ctx.var("answer")
    if not isinstance(answer, dict) or len(answer.get("predictions", [])) != 2:
        fail("`answer` should be the JSON of POST /predict for the two flowers: {'predictions': [...], ...}.")


@check("worse-model-refused", points=2, cells=["promote-code", "refuse"])
def worse_model_refused(ctx: Context) -> None:
    """The gate refused a worse model and production did not move to it."""
    refused = [
        e
        for e in log(ctx, action=PROMOTE, alias="production", outcome=REFUSED)
        if e.gate and not e.gate.passed and e.gate.production_version
    ]
    if not refused:
        fail(
            "The audit log has no production promotion refused by the gate: try to promote the worse_C "
            "candidate (via staging) with its gate result; your promote writes a 'refused' line before it raises."
        )
    if aliases(ctx).get("production") in {e.version for e in refused}:
        fail("A refused version holds the production alias: roll back or promote a good version.")
    refusal = ctx.var("refusal")
    if not refusal or "refused" not in str(refusal):
        fail(
            "`refusal` should hold the message of the RegistryError your promote raised: "
            "RegistryError('Promotion refused, nothing changed: <why>')."
        )


@check("rolled-back", points=2, cells=["rollback-code", "rollback"])
def rolled_back(ctx: Context) -> None:
    """Production points back at the version v2 replaced, by alias, and the server follows it."""
    replaced = [e for e in log(ctx, action=PROMOTE, alias="production", outcome=PROMOTED) if e.replaced]
    if not replaced:
        fail(
            "No promotion replaced an earlier production version, so there is nothing to roll back to: promote v1, "
            "then v2."
        )
    last = replaced[-1]
    now = aliases(ctx)
    production = now.get("production")
    if production == last.version:
        fail(
            f"Production is still v{production}: your rollback points the 'production' alias at the version held by "
            "'previous' with client.set_registered_model_alias; run it with rollback(client, model_name, ...)."
        )
    if production != str(last.replaced):
        fail(
            f"Production is v{production}, but the version before v{last.version} was v{last.replaced}: roll "
            "back to what the alias 'previous' points at, not to another version."
        )
    if now.get("previous") == production:
        fail(
            f"v{production} holds both 'production' and 'previous': after moving production back, delete 'previous' "
            "with client.delete_registered_model_alias(name, 'previous')."
        )
    if not log(ctx, action=ROLLBACK, outcome=ROLLED_BACK, version=production):
        fail(
            "The audit log has no line for this rollback: rollback writes record({**entry, 'outcome': "
            "'rolled_back'}) after moving the aliases (pass it record=audit.recorder(lab.wb) as its audit writer)."
        )
    info = server_version(ctx)
    if info.get("version") != production:
        fail(
            f"The server still serves v{info.get('version')} while production is v{production}: "
            f"ModelServerClient.of(lab.wb, service.url).reload() (POST {paths.RELOAD} with the state folder's admin token)."
        )


HIDDEN_TIMEOUT = 300.0


def _sandbox(ctx: Context, case: str, versions: int, registrant: str) -> Sandbox:
    c = client(ctx)
    sources = c.search_model_versions(f"name='{model_name(ctx)}'")
    if not sources:
        fail("The hidden registries reuse your registered model's files: register v1 and v2 first (Exercise 1).")
    return Sandbox(c, f"lab03-hidden-{ctx.seed}-{case}", sources[0], versions, registrant)


def _gate(h: Sandbox, rng: Any, version: str, passed: bool) -> GateResult:
    """A gate result for ``version`` against the sandbox's production, with seeded scores that fit the verdict."""
    production = h.aliases().get("production")
    base, delta = round(rng.uniform(0.80, 0.93), 4), round(rng.uniform(0.02, 0.06), 4) * (1 if passed else -1)
    cand = {"accuracy": round(base + delta, 4), "f1_macro": round(base + delta, 4)}
    return GateResult(
        passed=passed,
        model=h.name,
        candidate_version=version,
        production_version=production,
        metric="f1_macro",
        min_gain=0.01,
        candidate=cand,
        production={"accuracy": base, "f1_macro": base} if production else None,
        reasons=[] if passed else [f"f1_macro gain {delta:+.4f} is below min_gain 0.01"],
        holdout_rows=30,
    )


def _people(rng: Any) -> tuple[str, str]:
    return rng.choice(["ana", "bo", "chen"]) + "-builds", rng.choice(["eli", "fay", "gus"]) + "-reviews"


def _attempt(call: Callable[[], Any]) -> BaseException | None:
    try:
        call()
    except Exception as err:  # noqa: BLE001 - the learner's code may raise anything
        return err
    return None


def _said(h: Sandbox, err: BaseException) -> str:
    return f"{type(err).__name__}: {str(err).replace(h.name, '<model>')[:300]}"


def _expect_refusal(h: Sandbox, what: str, call: Callable[[], Any], version: str | None, fix: str) -> None:
    before, lines = h.aliases(), len(h.lines())
    err = _attempt(call)
    if err is None:
        fail(f"On a hidden registry, {what} went through: {fix}.")
    if not isinstance(err, registry.RegistryError):
        fail(
            f"On a hidden registry, {what} raised {_said(h, err)}. Refuse with "
            "raise RegistryError('... refused, nothing changed: <why>') (from mlops_workbench.registry)."
        )
    if h.aliases() != before:
        fail(
            f"On a hidden registry, {what} was refused but aliases moved anyway: decide first, and move no alias "
            "before every condition holds."
        )
    if version is not None and approvals.read(h.client, h.name, version):
        fail(
            f"On a hidden registry, {what} was refused but the version got an approval record: call "
            "approvals.record only once the promotion is allowed."
        )
    new = h.lines()[lines:]
    if len(new) != 1 or new[0].outcome is not REFUSED or not new[0].error:
        fail(
            f"On a hidden registry, {what} left {len(new)} audit line(s) {outcomes(new)}: a "
            "refusal writes exactly one, record({**entry, 'outcome': 'refused', 'error': why}), before raising."
        )


def _promoted(h: Sandbox, version: str, replaced: str | None, approver: str, lines: int) -> None:
    now = h.aliases()
    if now.get("production") != version:
        fail(
            "On a hidden registry, a promotion that should pass (staged, gate passed, a second person approving) "
            "did not move 'production' to the version: point it there with client.set_registered_model_alias."
        )
    if now.get("previous") != replaced:
        fail(
            "On a hidden registry, after a promotion 'previous' did not name the version production held before "
            "(nothing before a first promotion): set it to the replaced version before moving 'production'."
        )
    record = approvals.read(h.client, h.name, version) or {}
    if record.get("approver") != approver or not all(record.get(k) for k in approvals.FIELDS):
        fail(
            "On a hidden registry, a promoted version has no complete approval record naming its approver: call "
            "approvals.record(client, name, version, approver=approver, reason=reason, gate=gate)."
        )
    new = h.lines()[lines:]
    if [(e.outcome, e.version, e.replaced) for e in new] != [(PROMOTED, version, replaced)]:
        fail(
            f"On a hidden registry, a promotion left audit lines {outcomes(new)}: write exactly one, "
            "record({**entry, 'outcome': 'promoted'}), naming the version and the one it replaced."
        )


@check("promote-refuses-hidden", points=3, hidden=True, cells=["promote-code"], timeout=HIDDEN_TIMEOUT)
def promote_refuses_hidden(ctx: Context) -> None:
    """On hidden registries: a candidate that loses the gate, a missing approval, an unstaged version are refused."""
    promote = learner_function(ctx, "promotion.py", "promote", "promote-code")
    rng = ctx.rng("promote-refuses")
    for case in rng.sample(["gate", "approval", "staging"], 3):
        registrant, reviewer = _people(rng)
        with _sandbox(ctx, case, rng.randint(2, 4), registrant) as h:
            prod, cand = rng.sample(h.versions, 2)
            h.set(production=prod, staging=cand if case != "staging" else prod)
            approver = {"approval": rng.choice([registrant, "", None])}.get(case, reviewer)
            call = partial(
                promote,
                h.client,
                h.name,
                cand,
                _gate(h, rng, cand, passed=case != "gate"),
                approver=approver,
                reason="hidden check",
                record=h.record,
            )
            _expect_refusal(
                h,
                "a promotion that must be refused",
                call,
                cand,
                {
                    "gate": "refuse a candidate whose gate result did not pass (gate.passed is False)",
                    "approval": "refuse when there is no approver or the approver registered the version",
                    "staging": "refuse a version that does not hold the 'staging' alias",
                }[case],
            )


@check("promote-moves-hidden", points=3, hidden=True, cells=["promote-code"], timeout=HIDDEN_TIMEOUT)
def promote_moves_hidden(ctx: Context) -> None:
    """On a hidden registry: a first promotion, then a second that keeps the first as `previous`."""
    promote = learner_function(ctx, "promotion.py", "promote", "promote-code")
    rng = ctx.rng("promote-moves")
    registrant, reviewer = _people(rng)
    with _sandbox(ctx, "moves", rng.randint(2, 4), registrant) as h:
        first, second = rng.sample(h.versions, 2)
        for version, replaced in ((first, None), (second, first)):
            h.set(staging=version)
            gate, lines = _gate(h, rng, version, passed=True), len(h.lines())
            if (
                err := _attempt(
                    partial(
                        promote,
                        h.client,
                        h.name,
                        version,
                        gate,
                        approver=reviewer,
                        reason="hidden check",
                        record=h.record,
                    )
                )
            ) is not None:
                fail(
                    f"On a hidden registry, a promotion that should pass (staged, gate passed, a second person "
                    f"approving) raised {_said(h, err)}."
                )
            _promoted(h, version, replaced, reviewer, lines)


@check("rollback-hidden", points=3, hidden=True, cells=["rollback-code"], timeout=HIDDEN_TIMEOUT)
def rollback_hidden(ctx: Context) -> None:
    """On hidden registries: a rollback to `previous` (aliases and audit consistent) and one with no `previous`."""
    rollback = learner_function(ctx, "rollback.py", "rollback", "rollback-code")
    rng = ctx.rng("rollback")
    for case in rng.sample(["back", "none"], 2):
        registrant, reviewer = _people(rng)
        with _sandbox(ctx, f"rollback-{case}", rng.randint(3, 5), registrant) as h:
            old, bad, staged = rng.sample(h.versions, 3)
            h.set(production=bad, staging=staged, **({"previous": old} if case == "back" else {}))
            call = partial(rollback, h.client, h.name, approver=reviewer, reason="hidden check", record=h.record)
            if case == "none":
                _expect_refusal(
                    h,
                    "a rollback with no 'previous' version",
                    call,
                    None,
                    "refuse (raise RegistryError) when the alias 'previous' is not set",
                )
                continue
            if (err := _attempt(call)) is not None:
                fail(f"On a hidden registry, a rollback with a 'previous' version raised {_said(h, err)}.")
            now = h.aliases()
            if now.get("production") != old:
                fail(
                    "On a hidden registry, production did not go back to the version 'previous' held: point "
                    "'production' at it with client.set_registered_model_alias."
                )
            if now.get("previous") == now.get("production"):
                fail(
                    "On a hidden registry, the rollback left one version holding both 'production' and 'previous': "
                    "delete 'previous' (client.delete_registered_model_alias) once production is back."
                )
            if now.get("staging") != staged:
                fail("On a hidden registry, the rollback moved 'staging': touch only 'production' and 'previous'.")
            if [(e.outcome, e.version, e.replaced) for e in h.lines()] != [(ROLLED_BACK, old, bad)]:
                fail(
                    f"On a hidden registry, a rollback left audit lines {outcomes(h.lines())}: "
                    "write exactly one, record({**entry, 'outcome': 'rolled_back'}), naming the version restored "
                    "and the one it replaced."
                )
