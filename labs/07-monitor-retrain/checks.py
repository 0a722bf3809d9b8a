"""Checks for lab 07: the learner's drift test, accuracy join, alert rules and retrain, run on planted and hidden
cases; the alert the webhook received, the retrain's audit lines and tags, and the release's chain.

State read from disk: the files the learner wrote in the workspace (drift_check.py, log_accuracy.py,
alert_rules.yaml, retrain_commit.py), the prediction log, the webhook's received alerts, the registry audit log and
the registry itself (MLflow's client on the sqlite store, since the lab stops the server). The hidden checks draw
their cases from the grading run's seed (``scenarios.py``, beside this file, not shipped to learners).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from mlops_workbench import procs
from mlops_workbench.labs.checks import Context, check, fail, learner_function
from mlops_workbench.labs.learner_code import load_module
from mlops_workbench.monitoring import labkit, rulegrade, rules, webhook
from mlops_workbench.monitoring.chain import build_chain
from mlops_workbench.monitoring.rules import check as promtool_check  # a call named check(...) must be a @check
from mlops_workbench.registry import audit
from mlops_workbench.registry.audit import AuditAction, AuditOutcome

SHIFTED = labkit.LATER_MONTH.feature
RULES_FILE = "alert_rules.yaml"


def _scenarios() -> Any:
    return load_module(Path(__file__).with_name("scenarios.py"), "_workbench_lab07_scenarios")


def _client(ctx: Context) -> MlflowClient:
    db = ctx.wb.layout.mlflow_db
    if not db.exists():
        fail(f"No registry at {db}: run the cell 'prerequisites' first.")
    return MlflowClient(tracking_uri=f"sqlite:///{db}", registry_uri=f"sqlite:///{db}")


def _alias(ctx: Context, model: str, alias: str = "production") -> str | None:
    try:
        return str(_client(ctx).get_model_version_by_alias(model, alias).version)
    except MlflowException:
        return None


# --- Part 1: the drift test ------------------------------------------------------------------------------------------
def _drift(ctx: Context) -> Any:
    return learner_function(ctx, "drift_check.py", "drift_test", "write-drift")


def _run_drift(test: Any, reference: Any, frame: Any, what: str) -> tuple[dict[str, float], list[str], bool]:
    try:
        scores, drifted, alert = test(reference, frame[list(reference.feature_names)].copy())
    except Exception as err:  # noqa: BLE001 - the learner's code: any failure is a failed check
        fail(f"drift_test on {what} raised {type(err).__name__}: {err}. It must return (scores, drifted, alert).")
    if not isinstance(scores, dict) or not isinstance(drifted, dict) or set(drifted) != set(reference.feature_names):
        fail(
            f"drift_test on {what} returned {type(scores).__name__}, {type(drifted).__name__}: return a dict of "
            f"scores and a dict of verdicts, each keyed by every feature {reference.feature_names}, and the alert."
        )
    return scores, sorted(name for name, moved in drifted.items() if moved), bool(alert)


def _judge_month(test: Any, reference: Any, frame: Any, moved: str | None, what: str) -> str:
    """Empty when the verdict on the month is right, else why not."""
    _, flagged, alert = _run_drift(test, reference, frame, what)
    if moved is None and alert:
        return (
            f"on {what} your test alerted (flagged {flagged}): nothing moved, so the threshold sits inside the noise. "
            "Require a significant KS p-value (with a correction for testing four features) as well as a PSI large "
            "enough to matter, or raise the PSI threshold"
        )
    if moved is not None and (not alert or moved not in flagged):
        return (
            f"on {what} your test did not flag {moved} (it flagged {flagged or 'nothing'}): test every feature, not "
            "one, and check the threshold is not too strict for a move of most of a standard deviation"
        )
    if moved is not None and flagged != [moved]:
        return f"on {what} your test flagged {flagged}, but only {moved} moved: the other verdicts are false alarms"
    return ""


@check("drift-written", points=2, cells=["write-drift"])
def drift_written(ctx: Context) -> None:
    """drift_test stays quiet on a normal month and names petal_length when it moves by 0.6 cm."""
    from mlops_workbench.monitoring import scenarios
    from mlops_workbench.monitoring.scenarios import Shift

    test, reference = _drift(ctx), labkit.iris_reference()
    for frame, moved, what in (
        (scenarios.traffic(101, 300), None, "a normal month (seed 101)"),
        (
            scenarios.traffic(102, 300, Shift(feature="petal_length", amount=0.6)),
            "petal_length",
            "a month with petal_length moved by +0.6 cm (seed 102)",
        ),
    ):
        wrong = _judge_month(test, reference, frame, moved, what)
        if wrong:
            fail(wrong + ".")


@check("drift-live", points=1, cells=["use-drift"])
def drift_live(ctx: Context) -> None:
    """On the logged traffic: month 1 raises no alert, month 2 alerts on the sepal width alone."""
    before, after = ctx.var("alert_before"), ctx.var("alert_after")
    flagged = ctx.var("drifted_after", kind=list)
    if before:
        fail("your test alerted on month 1, a normal month: see 'drift-written' and raise the bar against noise.")
    if not after or flagged != [SHIFTED]:
        fail(f"on month 2 your test flagged {flagged}, alert={after}: only {SHIFTED} moved; it must be flagged alone.")


@check("drift-hidden", points=4, hidden=True, cells=["write-drift"], timeout=180)
def drift_hidden(ctx: Context) -> None:
    """Hidden months: each feature moved once (must be caught and named alone), and normal months (no alert)."""
    test, reference = _drift(ctx), labkit.iris_reference()
    problems = [
        wrong
        for month in _scenarios().months(ctx.rng("drift"))
        if (wrong := _judge_month(test, reference, month.frame, month.moved, month.describe()))
    ]
    if problems:
        fail(f"{len(problems)} hidden month(s) judged wrongly; first: " + problems[0] + ".")


# --- Part 2: accuracy from the log and the labels --------------------------------------------------------------------
def _accuracy(ctx: Context) -> Any:
    return learner_function(ctx, "log_accuracy.py", "accuracy_from_log", "write-accuracy")


def _run_accuracy(func: Any, predictions: Any, labels: Any, what: str) -> tuple[int, float]:
    try:
        labelled, accuracy = func(predictions.copy(), labels.copy())
        return int(labelled), float(accuracy)
    except Exception as err:  # noqa: BLE001 - the learner's code
        fail(f"accuracy_from_log on {what} failed ({type(err).__name__}: {err}): return (labelled, accuracy).")


@check("accuracy-joined", points=1, cells=["write-accuracy", "use-accuracy"])
def accuracy_joined(ctx: Context) -> None:
    """live_accuracy is month 2's accuracy over its labelled predictions, as the prediction log holds them."""
    from mlops_workbench.monitoring.drift import accuracy

    model = str(ctx.var("model_name"))
    want = accuracy(labkit.logged(ctx.wb, model, "month-2", int(ctx.var("rows")))).accuracy
    got = ctx.var("live_accuracy")
    if not isinstance(got, (int, float)) or not math.isclose(float(got), want, abs_tol=1e-9):
        fail(
            f"live_accuracy is {got!r}, but month 2's labelled predictions are {want:.4f} right: join predictions "
            "and labels on request_id and row and count only the rows that have a label."
        )


@check("accuracy-hidden", points=2, hidden=True, cells=["write-accuracy"])
def accuracy_hidden(ctx: Context) -> None:
    """Planted logs: requests of several rows, unlabelled rows, labels of other models' requests."""
    func, rng = _accuracy(ctx), ctx.rng("accuracy")
    for k in range(3):
        predictions, labels, labelled, right = _scenarios().planted_log(rng)
        got_n, got = _run_accuracy(func, predictions, labels, f"a hidden log #{k + 1}")
        if got_n != labelled or not math.isclose(got, right, abs_tol=1e-9):
            fail(
                f"on a hidden log ({len(predictions)} predictions, {labelled} labelled, some requests with several "
                f"rows) accuracy_from_log returned ({got_n}, {got:.4f}), expected ({labelled}, {right:.4f}): join on "
                "both request_id and row (a request may hold several rows), keep only predictions with a label."
            )


# --- Part 3: the alert rules and their delivery ----------------------------------------------------------------------
def _rules_path(ctx: Context) -> Path:
    path = ctx.workspace / RULES_FILE
    if not path.is_file():
        fail(f"{path} does not exist: write your rules in the cell 'write-rules'.")
    return path


@check("rules-valid", points=1, cells=["write-rules"])
def rules_valid(ctx: Context) -> None:
    """alert_rules.yaml passes `promtool check rules` and defines the three alerts."""
    path = _rules_path(ctx)
    try:
        result = promtool_check(path)
        names = {r.alert for r in rules.load(path).alerts}
    except rules.RulesError as err:
        fail(str(err))
    if not result.ok:
        fail("promtool check rules refused alert_rules.yaml: " + "; ".join(result.problems[:3]))
    missing = [a for a in rulegrade.ALERTS if a not in names]
    if missing:
        fail(f"alert_rules.yaml has no alert named {missing}: name them exactly {list(rulegrade.ALERTS)}.")


@check("rules-decide", points=4, hidden=True, cells=["write-rules"], timeout=180)
def rules_decide(ctx: Context) -> None:
    """promtool test rules on hidden healthy, drifting, erroring and slow series: each alert fires when it should."""
    path = _rules_path(ctx)
    try:
        problems = rulegrade.grade(path, ctx.rng("rules"))
    except rules.RulesError as err:
        fail(str(err))
    if problems:
        fail("your rules decide wrongly on hidden series: " + "; ".join(problems[:2]) + ".")


@check("alert-delivered", points=2, cells=["deliver"])
def alert_delivered(ctx: Context) -> None:
    """The webhook recorded a firing InputDrift notification naming the sepal width."""
    records = webhook.read(ctx.wb.layout.alerts_received)
    firing = [
        r for r in records if r.status == "firing" and r.notification.common_labels.get("alertname") == "InputDrift"
    ]
    if not firing:
        fail("the webhook received no firing InputDrift notification: run the cell 'deliver' with your rules.")
    features = {a.labels.get("feature") for r in firing for a in r.notification.alerts}
    if SHIFTED not in features:
        fail(f"the InputDrift alerts name features {sorted(map(str, features))}, not {SHIFTED}: keep the label.")


# --- Part 4: the retrain on a data commit ----------------------------------------------------------------------------
def _retrain(ctx: Context) -> Any:
    return learner_function(ctx, "retrain_commit.py", "retrain_on_commit", "write-retrain")


def _lines(ctx: Context, model: str, version: str) -> list[audit.AuditEntry]:
    return [e for e in audit.read(ctx.wb) if e.model == model and e.version == version]


@check("retrain-registered", points=2, cells=["write-retrain", "use-retrain"])
def retrain_registered(ctx: Context) -> None:
    """The retrained version is registered with its lineage (data commit, alert) in tags and audit, gate passed."""
    model, version = str(ctx.var("model_name")), str(ctx.var("retrained_version"))
    commit = str(ctx.var("data_commit"))
    lines = _lines(ctx, model, version)
    registered = [e for e in lines if e.action == AuditAction.RETRAIN and e.outcome == AuditOutcome.REGISTERED]
    if not registered or registered[-1].lineage is None:
        fail(f"the audit log has no retrain line 'registered' for version {version} with its lineage: append one.")
    lineage = registered[-1].lineage
    if lineage.git_commit != commit or lineage.cause.kind != "alert" or not lineage.cause.group_key:
        fail(
            f"the lineage of version {version} says commit {lineage.git_commit[:12]}, cause "
            f"{lineage.cause.describe()}: it must name the data commit {commit[:12]} and the alert group."
        )
    if not lineage.run_id:
        fail("the 'registered' line's lineage has no run_id: add the MLflow run to it (lineage.model_copy).")
    if not any(e.action == AuditAction.GATE and e.gate is not None for e in lines):
        fail(f"no gate line for version {version}: judge it with registry.quality_gate and append the verdict.")
    tags = _client(ctx).get_model_version(model, version).tags
    if tags.get("retrain.data_commit") != commit or tags.get("retrain.alert_group") != lineage.cause.group_key:
        fail(f"version {version}'s tags {tags} lack retrain.data_commit={commit[:12]}... or retrain.alert_group.")


@contextmanager
def _tracking(ctx: Context) -> Iterator[None]:
    """The tracking server of the lab's state folder, started for the check when it is not running."""
    from mlops_workbench import tracking

    running = procs.get(ctx.wb, tracking.SERVICE) is not None
    tracking.up(ctx.wb)
    try:
        yield
    finally:
        if not running:
            tracking.down(ctx.wb)


@check("retrain-hidden", points=4, hidden=True, cells=["write-retrain"], timeout=600)
def retrain_hidden(ctx: Context) -> None:
    """Hidden data commits: a good one (registered with lineage, gate passed), one breaking the schema (nothing
    registered) and one whose candidate loses the gate (registered, gate failed); production never moves."""
    from mlops_workbench import registry
    from mlops_workbench.monitoring.retrain import alert_cause

    retrain, sc, rng = _retrain(ctx), _scenarios(), ctx.rng("retrain")
    model = f"{ctx.var('model_name')}-grader"
    cause = alert_cause(f'{{}}:{{alertname="InputDrift",grader="{rng.randrange(10**6)}"}}', ["f00d"], "InputDrift")
    with _tracking(ctx), tempfile.TemporaryDirectory(prefix="lab07-retrain-") as scratch:
        ws, production = labkit.build_project(ctx.wb, Path(scratch) / "project", model, sc.weak_month(), gated=False)
        broken, what = sc.broken_frame(rng)
        cases = [
            ("good", sc.good_data(rng.randrange(10**6)), "a good data commit (labels corrected, new flowers)"),
            ("bad", broken, f"a data commit with {what}"),
            ("losing", sc.mislabelled(), "a data commit whose labels are wrong (its candidate loses the gate)"),
        ]
        for kind, frame, what in cases:
            sha = labkit.commit_frame(ws, frame, what)
            known = {str(v.version) for v in registry.list_versions(ctx.wb, model)}
            window = sc.fresh_window(rng.randrange(10**6))
            try:
                answer, error = retrain(ws, window, cause, model, ctx.wb), None
            except Exception as err:  # noqa: BLE001 - the learner's code: judged by what it left behind
                answer, error = None, err
            new = sorted({str(v.version) for v in registry.list_versions(ctx.wb, model)} - known)
            if _alias(ctx, model) != production:
                fail(f"on {what} (hidden) production moved: the retrain must not move any alias.")
            wrong = _retrain_problem(ctx, kind, what, model, sha, cause, answer, error, new)
            if wrong:
                fail(wrong)


def _retrain_problem(
    ctx: Context, kind: str, what: str, model: str, sha: str, cause: Any, answer: Any, error: Any, new: list[str]
) -> str:
    if kind == "bad":
        if error is None and not (isinstance(answer, tuple) and answer and answer[0] is None):
            return f"on {what} (hidden) retrain_on_commit returned {answer!r}: validate the data first and raise."
        if new:
            return f"on {what} (hidden) version {new} was registered: nothing may be trained on data that fails."
        return ""
    if error is not None:
        return f"on {what} (hidden) retrain_on_commit raised {type(error).__name__}: {error}"
    if len(new) != 1 or not isinstance(answer, tuple) or str(answer[0]) != new[0]:
        return f"on {what} (hidden) it returned {answer!r} and registered {new}: register one version, return it."
    version, passed = new[0], bool(answer[1])
    if passed != (kind == "good"):
        return f"on {what} (hidden) it returned passed={passed}: return the gate's verdict on the window given."
    lines = _lines(ctx, model, version)
    registered = [e for e in lines if e.action == AuditAction.RETRAIN and e.outcome == AuditOutcome.REGISTERED]
    if not registered or registered[-1].lineage is None or registered[-1].lineage.git_commit != sha:
        return f"on {what} (hidden) the 'registered' audit line of version {version} lacks the data commit's lineage."
    if registered[-1].lineage.cause != cause:
        return f"on {what} (hidden) the lineage's cause is not the cause passed in: use the `cause` argument."
    gates = [e for e in lines if e.action == AuditAction.GATE and e.gate is not None]
    if not gates or gates[-1].gate.passed != passed:
        return f"on {what} (hidden) no gate line records the verdict for version {version}."
    tags = _client(ctx).get_model_version(model, version).tags
    if tags.get("retrain.data_commit") != sha:
        return f"on {what} (hidden) version {version} has no tag retrain.data_commit={sha[:12]}."
    return ""


# --- Part 5: the release and its chain -------------------------------------------------------------------------------
@check("released-with-lineage", points=3, cells=["release"])
def released_with_lineage(ctx: Context) -> None:
    """Shadow passed, canary passed, production is the retrained version, and its chain starts at the alert."""
    model, version = str(ctx.var("model_name")), str(ctx.var("retrained_version"))
    lines = _lines(ctx, model, version)
    steps = [(str(e.action), str(e.outcome)) for e in lines]
    for step in (("shadow", "passed"), ("canary", "passed")):
        if step not in steps:
            fail(f"the audit log has no {step[0]} '{step[1]}' line for version {version} (it has {steps}).")
    canary = [e for e in lines if e.action == AuditAction.CANARY][-1]
    if canary.lineage is None or not canary.lineage.rollout:
        fail("the canary's audit line carries no lineage with its rollout: release a version your retrain registered.")
    if _alias(ctx, model) != version:
        fail(f"production of {model} is not version {version}: the canary should have promoted it.")
    chain = build_chain(model, version, audit.read(ctx.wb), canary.lineage.run_id, {}, {})
    if not chain.cause.startswith("alert") or str(ctx.var("data_commit")) not in chain.data:
        fail(
            f"the chain of version {version} reads cause '{chain.cause}', data '{chain.data}': it must start at "
            "the alert and name the data commit."
        )


@check("nothing-running", points=1, cells=["cleanup"])
def nothing_running(ctx: Context) -> None:
    """No process of the lab is left running."""
    left = [s.name for s in procs.running(ctx.wb)]
    if left:
        fail(f"still running: {', '.join(left)}: stop the stack, the backend and the tracking server in 'cleanup'.")
