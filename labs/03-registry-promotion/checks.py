"""Checks for lab 03: registered versions, the gate, promotion through staging, serving, refusal, rollback.

Every check reads state the grader can see on its own: the MLflow registry (through
the tracking server under the state folder), the audit log, and the running model server.
"""

from __future__ import annotations

from typing import Any

import httpx

from mlops_workbench import procs, registry, tracking
from mlops_workbench.labs.checks import Context, check, fail
from mlops_workbench.registry import audit
from mlops_workbench.serving.record import last_served

SERVER = "lab03-serve"
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
    """At least two versions of the model are registered from logged runs."""
    c, name = client(ctx), model_name(ctx)
    aliases(ctx)
    experiment = c.get_experiment_by_name(EXPERIMENT)
    runs = {r.info.run_id for r in c.search_runs([experiment.experiment_id])} if experiment else set()
    mine = [v for v in c.search_model_versions(f"name='{name}'") if v.run_id in runs]
    if len(mine) < 2:
        fail(f"'{name}' has {len(mine)} version(s) from runs of the experiment '{EXPERIMENT}': log two candidates "
             "with candidates.log_candidate(..., experiment=experiment) and register both runs.")


@check("gate-written", points=2, cells=["gate", "promote"])
def gate_written(ctx: Context) -> None:
    """The production promotion used a gate with a minimum gain of at least 0.01 on f1_macro, and passed."""
    gates = [e["gate"] for e in log(ctx, action="promote", alias="production", outcome="promoted") if e.get("gate")]
    compared = [g for g in gates if g.get("production_version")]
    if not compared:
        fail("No production promotion was gated against an earlier production version: promote v1, then v2 "
             "to production with gate_result=registry.quality_gate(model_name, v2.version, params=gate_rules).")
    gate = compared[-1]
    if gate.get("metric") != "f1_macro" or float(gate.get("min_gain", 0)) < 0.01:
        fail(f"The gate used metric={gate.get('metric')!r} and min_gain={gate.get('min_gain')}: set "
             "gate_rules to metric 'f1_macro' with min_gain of at least 0.01 and run the gate again.")
    gain = gate["candidate"]["f1_macro"] - gate["production"]["f1_macro"]
    if not gate.get("passed") or gain < float(gate["min_gain"]) - 1e-9:
        fail("The recorded gate did not pass: promote the better candidate (better_C).")


@check("promoted-through-staging", points=2, cells=["promote"])
def promoted_through_staging(ctx: Context) -> None:
    """Two versions went staging -> production with approvals; the replaced one is kept as `previous`."""
    shipped = log(ctx, action="promote", alias="production", outcome="promoted")
    if len({e["version"] for e in shipped}) < 2:
        fail("Fewer than two versions were promoted to production: promote v1 then v2 (each via staging).")
    staged = {e["version"] for e in log(ctx, action="promote", alias="staging", outcome="promoted")}
    skipped = [e["version"] for e in shipped if e["version"] not in staged]
    if skipped:
        fail(f"Version(s) {skipped} reached production without a staging approval: promote to 'staging' first.")
    c, name = client(ctx), model_name(ctx)
    for entry in shipped[-2:]:
        tags = c.get_model_version(name, entry["version"]).tags
        missing = [k for k in ("approver", "at", "reason", "gate") if not tags.get(f"approval.production.{k}")]
        if missing:
            fail(f"v{entry['version']} lacks the approval tags {missing}: promote with approver= and reason=.")
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
    """Production was rolled back to the previous version and the server follows it."""
    rollbacks = log(ctx, action="rollback", outcome="rolled_back")
    if not rollbacks:
        fail("The audit log has no rollback: call registry.rollback(model_name, approver=..., reason=...).")
    production = aliases(ctx).get("production")
    if production != rollbacks[-1]["version"]:
        fail(f"Production is v{production}, not v{rollbacks[-1]['version']} the rollback restored: "
             "something moved it again; roll back (or promote) deliberately.")
    info = server_version(ctx)
    if info.get("version") != production:
        fail(f"The server still serves v{info.get('version')} while production is v{production}: "
             "POST /admin/reload so it follows the alias.")
