"""Checks for lab 03: registered versions, the learner's gate rule, promotion through staging, serving,
refusal, rollback by alias.

Every check reads state the grader can see on its own: the MLflow registry (through
the tracking server under the state folder), the audit log, the running model server,
and gate_rule.py in the workspace (run on planted scores and lineage here).
"""

from __future__ import annotations

from typing import Any

import httpx

from mlops_workbench import procs, registry, tracking
from mlops_workbench.labs.checks import Context, check, fail, learner_function
from mlops_workbench.registry import audit
from mlops_workbench.registry.gate import RegistryParams
from mlops_workbench.serving.record import last_served

SERVER = "lab03-serve"
LINEAGE = ("git.commit", "data.md5", "params.hash")
EXPERIMENT = "lab-03-registry"  # the notebook's `experiment` parameter


def model_name(ctx: Context) -> str:
    return str(ctx.params.get("registry", {}).get("model_name", "iris"))


def client(ctx: Context) -> Any:
    try:
        tracking.up(home=ctx.home)
        return registry.client(ctx.home)
    except (RuntimeError, registry.RegistryError) as exc:
        fail(f"The MLflow tracking server under the state folder does not answer ({exc}). Run the cell 'tracking'.")


def aliases(ctx: Context) -> dict[str, str]:
    c, name = client(ctx), model_name(ctx)
    try:
        return dict(c.get_registered_model(name).aliases)
    except Exception:
        fail(f"There is no registered model '{name}' yet: run the cell 'register' (Exercise 1).")


def log(ctx: Context, **match: Any) -> list[dict[str, Any]]:
    """Audit log entries of this lab's model matching every ``key=value``."""
    entries = [e for e in audit.read(home=ctx.home) if e.get("model") == model_name(ctx)]
    return [e for e in entries if all(e.get(k) == v for k, v in match.items())]


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
        fail(f"'{name}' has {len(mine)} version(s) from runs of the experiment '{EXPERIMENT}': register both candidate "
             "runs with mlflow.register_model(tracking.logged_model_uri(run_id), model_name, tags=...).")
    unsigned = [v.version for v in mine if not v.tags.get("registered_by")]
    if unsigned:
        fail(f"version(s) {unsigned} do not say who registered them: pass tags={{'registered_by': registrant}} to "
             "mlflow.register_model, so the approver can be checked against the registrant.")
    bare = [v.version for v in mine if any(t not in runs[v.run_id].data.tags for t in LINEAGE)]
    if bare:
        fail(f"version(s) {bare} come from runs without lineage {list(LINEAGE)}: register the runs that "
             "candidates.log_versioned_candidate logged (run_v1, run_v2), not new ones.")


def _rule(ctx: Context):
    return learner_function(ctx, "gate_rule.py", "gate_rule", "gate")


CLEAN = {"git.commit": "a" * 40, "git.dirty": "false", "data.md5": "b" * 32, "params.hash": "c" * 64}
PROD = {"accuracy": 0.90, "f1_macro": 0.90}
RULES = RegistryParams(metric="f1_macro", min_gain=0.01, non_regression=["accuracy", "f1_macro"], tolerance=0.0,
                       min_accuracy=0.9)
# (candidate, production, lineage, rules), should pass?, the fix when the rule gets it wrong
GATE_BASIC = [
    (({"accuracy": 0.95, "f1_macro": 0.95}, PROD, CLEAN, RULES), True,
     "a challenger 0.05 better on every metric, with clean lineage, must pass (return [])"),
    (({"accuracy": 0.80, "f1_macro": 0.80}, PROD, CLEAN, RULES), False,
     "a challenger 0.10 worse must be refused: return a reason"),
]
GATE_PLANTED = [
    (({"accuracy": 0.95, "f1_macro": 0.95}, PROD, {**CLEAN, "git.dirty": "true"}, RULES), False,
     "a run logged from a dirty tree (git.dirty 'true') cannot be reproduced: refuse it"),
    (({"accuracy": 0.95, "f1_macro": 0.95}, PROD, {k: v for k, v in CLEAN.items() if k != "data.md5"}, RULES), False,
     "a run without data.md5 has missing lineage: refuse when git.commit, data.md5 or params.hash is absent"),
    (({"accuracy": 0.95, "f1_macro": 0.95}, PROD, {}, RULES), False,
     "a run with no lineage tags at all must be refused"),
    (({"accuracy": 0.93, "f1_macro": 0.93}, PROD, CLEAN, RULES.model_copy(update={"min_gain": 0.05})), False,
     "with rules.min_gain 0.05 a gain of 0.03 is not enough: read the thresholds from `rules`, do not hard-code them"),
    (({"accuracy": 0.89, "f1_macro": 0.99}, PROD, CLEAN, RULES), False,
     "accuracy drops 0.01 with tolerance 0: check every metric in rules.non_regression, not only rules.metric"),
    (({"accuracy": 0.89, "f1_macro": 0.99}, PROD, CLEAN, RULES.model_copy(update={"tolerance": 0.02})), True,
     "a drop of 0.01 is within rules.tolerance 0.02: allow drops up to the tolerance"),
    (({"accuracy": 0.85, "f1_macro": 0.85}, None, CLEAN, RULES), False,
     "with no production model (production is None) a first model below rules.min_accuracy 0.9 must be refused"),
    (({"accuracy": 0.95, "f1_macro": 0.95}, None, CLEAN, RULES), True,
     "with no production model (production is None) a first model above rules.min_accuracy must pass"),
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
            fail(f"gate_rule {got} candidate {args[0]} against production {args[1]} with lineage "
                 f"{sorted(args[2])}: {fix}.")


@check("gate-rule-written", points=1, cells=["gate"])
def gate_rule_written(ctx: Context) -> None:
    """The gate rule passes a clearly better challenger and refuses a clearly worse one."""
    _gate_cases(ctx, GATE_BASIC)


@check("gate-rule-planted", points=3, hidden=True, cells=["gate"])
def gate_rule_planted(ctx: Context) -> None:
    """On planted scores and lineage: thresholds from the rules, non-regression, first model, lineage, dirty tree."""
    _gate_cases(ctx, GATE_PLANTED)


def _refusals(ctx: Context, words: str) -> list[dict[str, Any]]:
    return [e for e in log(ctx, action="promote", alias="production", outcome="refused") if words in e.get("error", "")]


@check("gate-written", points=2, cells=["gate", "promote"])
def gate_written(ctx: Context) -> None:
    """The production promotion of the challenger was gated against the production version it replaced, and passed."""
    gates = [e["gate"] for e in log(ctx, action="promote", alias="production", outcome="promoted") if e.get("gate")]
    compared = [g for g in gates if g.get("production_version")]
    if not compared:
        fail("No production promotion was gated against an earlier production version: promote v1, then v2 to "
             "production with gate_result=registry.quality_gate(model_name, v2.version, rule=gate_rule).")
    gate = compared[-1]
    gain = gate["candidate"][gate["metric"]] - gate["production"][gate["metric"]]
    if not gate.get("passed") or gain < float(gate["min_gain"]) - 1e-9:
        fail("The recorded gate did not pass: promote the better candidate (better_C).")


@check("promoted-through-staging", points=2, cells=["promote"])
def promoted_through_staging(ctx: Context) -> None:
    """Two versions went staging -> production, each approved by someone other than its registrant."""
    shipped = log(ctx, action="promote", alias="production", outcome="promoted")
    if len({e["version"] for e in shipped}) < 2:
        if _refusals(ctx, "never approved into staging"):
            fail("A production promotion was refused because the version was not in staging: point the 'staging' "
                 "alias at it first with client.set_registered_model_alias(model_name, 'staging', version).")
        if _refusals(ctx, "separation of duties"):
            fail("A production promotion was refused for separation of duties: the registrant may not approve; "
                 "promote with approver=approver (the reviewer), not the registrant.")
        fail("Fewer than two versions were promoted to production: promote v1 then v2 (each via staging).")
    c, name = client(ctx), model_name(ctx)
    for entry in shipped[-2:]:
        tags = c.get_model_version(name, entry["version"]).tags
        missing = [k for k in ("approver", "at", "reason", "gate") if not tags.get(f"approval.production.{k}")]
        if missing:
            fail(f"v{entry['version']} lacks the approval tags {missing}: promote with approver= and reason=.")
        if not entry.get("registered_by") or entry["registered_by"] == entry.get("approver"):
            fail(f"the audit line of v{entry['version']} does not show two different people (registered by "
                 f"{entry.get('registered_by')!r}, approved by {entry.get('approver')!r}): register with "
                 "tags={'registered_by': registrant} and approve as someone else.")
    if not any(e.get("replaced") for e in shipped):
        fail("No promotion replaced an earlier production version, so nothing was kept as `previous`.")


def server_version(ctx: Context) -> dict[str, Any]:
    """The server's /version answer; from its log when the learner already stopped it (tidying up is fine)."""
    service = procs.get(SERVER, ctx.home)
    if service is None:
        recorded = last_served(SERVER, ctx.home)
        if recorded is None:
            fail(f"No model server '{SERVER}' ever ran: start it with serve.start_server(..., name='{SERVER}').")
        return recorded
    try:
        info = httpx.get(service.url + "/version", timeout=10).json()
        answer = httpx.post(service.url + "/predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]]}, timeout=10)
    except httpx.HTTPError as exc:
        fail(f"The model server at {service.url} does not answer ({type(exc).__name__}): restart it.")
    if answer.status_code != 200 or answer.json().get("predictions") != ["setosa"]:
        fail(f"The model server answered {answer.status_code} {answer.text[:200]} to a setosa flower.")
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


@check("worse-model-refused", points=2, cells=["refuse"])
def worse_model_refused(ctx: Context) -> None:
    """The gate refused a worse model and production did not move to it."""
    refused = [e for e in log(ctx, action="promote", alias="production", outcome="refused")
               if e.get("gate") and not e["gate"]["passed"] and e["gate"].get("production_version")]
    if not refused:
        fail("The audit log has no production promotion refused by the gate: try to promote the worse_C "
             "candidate (via staging) with its gate result.")
    if aliases(ctx).get("production") in {e["version"] for e in refused}:
        fail("A refused version holds the production alias: roll back or promote a good version.")
    refusal = ctx.var("refusal")
    if not refusal or "refused" not in str(refusal):
        fail("`refusal` should hold the message of the RegistryError raised by the refused promotion.")


@check("rolled-back", points=2, cells=["rollback"])
def rolled_back(ctx: Context) -> None:
    """Production points back at the version v2 replaced, by alias, and the server follows it."""
    replaced = [e for e in log(ctx, action="promote", alias="production", outcome="promoted") if e.get("replaced")]
    if not replaced:
        fail("No promotion replaced an earlier production version, so there is nothing to roll back to: promote v1, "
             "then v2.")
    last = replaced[-1]
    production = aliases(ctx).get("production")
    if production == last["version"]:
        fail(f"Production is still v{production}: point the 'production' alias at the version held by 'previous' "
             "(client.get_model_version_by_alias(model_name, 'previous')) with client.set_registered_model_alias.")
    if production != str(last["replaced"]):
        fail(f"Production is v{production}, but the version before v{last['version']} was v{last['replaced']}: roll "
             "back to what the alias 'previous' points at, not to another version.")
    info = server_version(ctx)
    if info.get("version") != production:
        fail(f"The server still serves v{info.get('version')} while production is v{production}: "
             "ModelServerClient(service.url).reload() (POST /admin/reload with the state folder's admin token).")
