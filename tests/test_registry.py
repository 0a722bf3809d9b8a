"""Registry promotion against a real MLflow tracking server (sqlite backend) on loopback."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from mlops_workbench import procs, registry, tracking
from mlops_workbench.errors import InputError, TrackingServerDown
from mlops_workbench.registry import RegistryError, audit
from mlops_workbench.registry.gate import RegistryParams, judge
from mlops_workbench.workbench import Workbench

GOOD = {"model": "logistic_regression", "C": 1.0}  # held-out accuracy 0.93
ALSO_GOOD = {"model": "logistic_regression", "C": 10.0}  # 1.0
BAD = {"model": "logistic_regression", "C": 0.01}  # 0.80


# ---------------------------------------------------------------- pure gate logic


def test_judge_first_model_needs_the_accuracy_floor():
    params = RegistryParams(min_accuracy=0.9)
    assert judge("iris", "1", {"accuracy": 0.95, "f1_macro": 0.95}, None, None, params, 30).passed
    low = judge("iris", "1", {"accuracy": 0.8, "f1_macro": 0.8}, None, None, params, 30)
    assert not low.passed and "floor" in low.reasons[0]


def test_judge_min_gain_and_non_regression():
    prod = {"accuracy": 0.9, "f1_macro": 0.9}
    params = RegistryParams(min_gain=0.02, tolerance=0.0)
    small = judge("iris", "2", {"accuracy": 0.91, "f1_macro": 0.91}, "1", prod, params, 30)
    assert not small.passed and "min_gain" in small.reasons[0]
    good = judge("iris", "2", {"accuracy": 0.93, "f1_macro": 0.95}, "1", prod, params, 30)
    assert good.passed and good.reasons == []
    mixed = judge("iris", "2", {"accuracy": 0.85, "f1_macro": 0.95}, "1", prod, RegistryParams(), 30)
    assert not mixed.passed and any("accuracy regresses" in r for r in mixed.reasons)
    assert "FAILED" in mixed.summary() and "v1" in mixed.summary()


# ---------------------------------------------------------------- real tracking server


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("registry-home")
    tracking.up(Workbench.from_env(home), port=procs.free_port(), timeout=300)  # slow on a loaded 2-core machine
    yield home
    procs.stop_all(Workbench.from_env(home))


@pytest.fixture(scope="module")
def runs(home) -> dict[str, str]:
    """Three logged runs: two good models and a bad one."""
    import mlflow

    from mlops_workbench import data, train

    train_df, _ = data.split(data.load_iris_frame(), test_size=0.2, seed=42)
    mlflow.set_experiment("registry-tests")
    ids = {}
    for key, params in {"good": GOOD, "also_good": ALSO_GOOD, "bad": BAD}.items():
        with mlflow.start_run() as run:
            mlflow.sklearn.log_model(train.train(train_df, params), name="model")
        ids[key] = run.info.run_id
    return ids


def aliases(home: Path, name: str) -> dict[str, str]:
    return dict(registry.client(Workbench.from_env(home)).get_registered_model(name).aliases)


def stage_and_ship(home, name, version, reason="ship it"):
    registry.promote(Workbench.from_env(home), name, version, "staging", approver="alice", reason="candidate")
    return registry.promote(Workbench.from_env(home), name, version, "production", approver="bob", reason=reason)


def test_promotion_through_staging_records_approval_and_keeps_previous(home, runs, wb):
    v1 = registry.register(wb, runs["good"], "flow")
    v2 = registry.register(wb, runs["also_good"], "flow")
    assert (v1.version, v2.version) == ("1", "2") and v1.run_id == runs["good"]
    stage_and_ship(home, "flow", 1, reason="first model")
    assert aliases(home, "flow") == {"production": "1"}
    stage_and_ship(home, "flow", 2, reason="less regularised")
    assert aliases(home, "flow") == {"production": "2", "previous": "1"}
    mv = registry.get_alias(wb, "flow", "production")
    assert mv.version == "2"
    assert mv.tags["approval.production.approver"] == "bob"
    assert mv.tags["approval.production.reason"] == "less regularised"
    assert '"passed":true' in mv.tags["approval.production.gate"]
    log = [e for e in audit.read(wb) if e.model == "flow"]
    assert [(e.alias, e.version, e.outcome) for e in log] == [
        ("staging", "1", "promoted"),
        ("production", "1", "promoted"),
        ("staging", "2", "promoted"),
        ("production", "2", "promoted"),
    ]
    assert log[-1].replaced == "1" and log[-1].approver == "bob" and log[-1].gate.passed


def test_gate_refuses_a_worse_model_and_changes_nothing(home, runs, wb):
    registry.register(wb, runs["good"], "gated")
    registry.register(wb, runs["bad"], "gated")
    stage_and_ship(home, "gated", 1)
    result = registry.quality_gate(wb, "gated", 2)
    assert not result.passed and result.production_version == "1"
    assert result.candidate["accuracy"] < result.production["accuracy"]
    registry.promote(wb, "gated", 2, "staging", approver="alice", reason="try it")
    before = aliases(home, "gated")
    with pytest.raises(RegistryError, match="refused.*gate FAILED"):
        registry.promote(wb, "gated", 2, "production", approver="mallory", reason="trust me")
    assert aliases(home, "gated") == before == {"production": "1", "staging": "2"}
    assert "approval.production.at" not in registry.client(wb).get_model_version("gated", "2").tags
    last = audit.read(wb)[-1]
    assert (last.model, last.version, last.outcome, last.approver) == ("gated", "2", "refused", "mallory")


def test_production_requires_staging_first(home, runs, wb):
    registry.register(wb, runs["good"], "unstaged")
    with pytest.raises(RegistryError, match="never approved into staging"):
        registry.promote(wb, "unstaged", 1, "production", approver="bob", reason="skip")
    assert aliases(home, "unstaged") == {}


def test_rollback_with_and_without_previous(home, runs, wb):
    registry.register(wb, runs["good"], "rb")
    registry.register(wb, runs["also_good"], "rb")
    stage_and_ship(home, "rb", 1)
    with pytest.raises(RegistryError, match="no 'previous' version"):
        registry.rollback(wb, "rb")
    assert aliases(home, "rb") == {"production": "1"}
    stage_and_ship(home, "rb", 2)
    restored = registry.rollback(wb, "rb", approver="oncall", reason="p99 doubled")
    assert restored.version == "1" and aliases(home, "rb") == {"production": "1"}
    bad = registry.client(wb).get_model_version("rb", "2")
    assert bad.tags["rolled_back.reason"] == "p99 doubled"
    last = audit.read(wb)[-1]
    assert (last.action, last.outcome, last.version, last.replaced) == ("rollback", "rolled_back", "1", "2")
    with pytest.raises(RegistryError, match="no 'previous'"):
        registry.rollback(wb, "rb")


def test_unknown_model_version_and_alias_are_clear_errors(home, runs, wb):
    registry.register(wb, runs["good"], "known")
    with pytest.raises(RegistryError, match="no registered model 'nope'.*known"):
        registry.get_alias(wb, "nope", "production")
    with pytest.raises(RegistryError, match="no version 7.*versions: 1"):
        registry.promote(wb, "known", 7, "staging", approver="a", reason="r")
    with pytest.raises(RegistryError, match="Unknown alias 'prod'"):
        registry.promote(wb, "known", 1, "prod", approver="a", reason="r")
    with pytest.raises(RegistryError, match="no run 'deadbeef'"):
        registry.register(wb, "deadbeef", "known")
    assert registry.get_alias(wb, "known", "production") is None
    assert aliases(home, "known") == {}


def test_racing_promotions_end_consistent_and_are_both_logged(home, runs, wb):
    for key in ("good", "also_good", "good"):
        registry.register(wb, runs[key], "race")
    stage_and_ship(home, "race", 1)
    for v in (2, 3):
        registry.promote(wb, "race", v, "staging", approver="ci", reason="candidate")
    gates = {v: registry.quality_gate(wb, "race", v) for v in (2, 3)}
    barrier, errors = threading.Barrier(2), []

    def ship(v: int) -> None:
        barrier.wait()
        try:
            registry.promote(wb, "race", v, "production", approver=f"user{v}", reason="race", gate_result=gates[v])
        except RegistryError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=ship, args=(v,)) for v in (2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    attempts = [e for e in audit.read(wb) if e.model == "race" and e.version in ("2", "3") and e.alias == "production"]
    assert len(attempts) == 2
    promoted = [e for e in attempts if e.outcome == "promoted"]
    assert len(promoted) == 2 - len(errors) >= 1
    final = aliases(home, "race")
    assert final["production"] == promoted[-1]["version"]
    assert final["previous"] == promoted[-1]["replaced"] != final["production"]
    if errors:  # the loser's gate compared against a production that had moved
        assert "run the gate again" in errors[0]


def test_tracking_server_down_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{procs.free_port()}")
    with pytest.raises(TrackingServerDown, match="not reachable.*workbench mlflow up"):
        registry.promote(Workbench.from_env(tmp_path), "iris", 1, "staging", approver="a", reason="r")
    assert not audit.log_path(Workbench.from_env(tmp_path)).exists()


def test_registry_panel_rows_and_actions(home, runs, wb):
    from mlops_workbench.registry import panel as rp

    registry.register(wb, runs["good"], "panel")
    registry.register(wb, runs["also_good"], "panel")
    ok, message = rp.promote_action(wb, "panel", 2, "production", "carol", "skip staging")
    assert not ok and "never approved into staging" in message
    assert rp.rollback_action(wb, "panel", "carol", "nothing to undo")[0] is False
    assert rp.promote_action(wb, "panel", 1, "staging", "", "no name") == (False, rp.NO_APPROVER)
    for v in (1, 2):
        assert rp.promote_action(wb, "panel", v, "staging", "carol", "candidate")[0]
        if v == 2:  # the learner's own gate rules, not params.yaml's: v2 is no 0.5 better than v1
            strict = {"metric": "f1_macro", "min_gain": 0.5, "non_regression": [], "min_accuracy": 0.5}
            ok, message = rp.promote_action(wb, "panel", v, "production", "carol", "ship", rules=strict)
            assert not ok and "refused" in message, message
            assert audit.read(wb)[-1].gate.min_gain == 0.5
            # the learner's own gate rule function judges too: one that refuses everything refuses here
            ok, message = rp.promote_action(
                wb, "panel", v, "production", "carol", "ship", rule=lambda *args: ["refused by my own rule"]
            )
            assert not ok and "refused by my own rule" in message, message
        ok, message = rp.promote_action(wb, "panel", v, "production", "carol", f"ship v{v}")
        assert ok and "gate PASSED" in message, message
    rows = rp.version_rows(wb, "panel")
    assert [(r.version, r.aliases, r.approved_by, r.reason) for r in rows] == [
        ("2", ["production"], "carol", "ship v2"),
        ("1", ["previous"], "carol", "ship v1"),
    ]
    assert rows[0].metrics["accuracy"] == 1.0 and rows[0].run_id == runs["also_good"]
    assert rp.rollback_action(wb, "panel", "dave", "bad canary") == (True, "panel production rolled back to v1.")
    rows = rp.version_rows(wb, "panel")
    assert rows[0].rolled_back and rows[1].aliases == ["production"]
    table = rp.rows_html(rows)
    assert "<s>2</s>" in table and "<b>production</b>" in table
    widget = rp.panel(wb, "panel")
    assert "ship v1" in widget.children[0].value and list(widget.children[1].children[0].options) == ["2", "1"]
    assert widget.children[2].children[0].value == "", "the approver is typed by the learner, not the OS user"
    assert rp.panel(wb, "panel", approver="learner").children[2].children[0].value == "learner"


def test_registry_cli_lists_gates_promotes_and_shows_the_audit_log(home, runs, monkeypatch, wb):
    from typer.testing import CliRunner

    from mlops_workbench.cli.main import app

    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    monkeypatch.setenv("COLUMNS", "200")
    registry.register(wb, runs["good"], "cli")
    registry.register(wb, runs["bad"], "cli")
    runner = CliRunner()
    for version in ("1", "2"):
        assert (
            runner.invoke(
                app, ["registry", "promote", version, "--alias", "staging", "--reason", "try", "--name", "cli"]
            ).exit_code
            == 0
        )
    own = runner.invoke(app, ["registry", "promote", "1", "--reason", "mine", "--name", "cli"])
    assert own.exit_code == 2 and "separation of duties" in own.output, "the registrant may not approve by default"
    shipped = runner.invoke(
        app, ["registry", "promote", "1", "--reason", "first", "--name", "cli", "--approver", "sam"]
    )
    assert shipped.exit_code == 0 and "v1 is now 'production'" in shipped.output, shipped.output
    gate = runner.invoke(app, ["registry", "gate", "2", "--name", "cli"])
    assert gate.exit_code == 1 and "gate FAILED" in gate.output
    refused = runner.invoke(app, ["registry", "promote", "2", "--reason", "yolo", "--name", "cli", "--approver", "sam"])
    assert refused.exit_code == 2 and "refused" in refused.output and "gate" in refused.output.lower(), refused.output
    from mlops_workbench.cli import registry as registry_cli

    commit = "0123456789abcdef0123456789abcdef01234567"
    registry.client(wb).set_tag(runs["good"], "git.commit", commit)
    try:  # other tests share the run and expect it without lineage
        monkeypatch.setattr(registry_cli.console, "width", 400)  # the console took its width when first imported
        listing = runner.invoke(app, ["registry", "list", "--name", "cli"])
        assert listing.exit_code == 0 and "production" in listing.output and "staging" in listing.output
        assert runs["good"] in listing.output and f"git.commit={commit}" in listing.output  # run id, lineage uncut
        monkeypatch.setattr(registry_cli.console, "width", 90)
        narrow = runner.invoke(app, ["registry", "list", "--name", "cli"])
        assert narrow.exit_code == 0 and "…" not in narrow.output  # too narrow: cells wrap, nothing is cut off
    finally:
        registry.client(wb).delete_tag(runs["good"], "git.commit")
    assert "yolo" in runner.invoke(app, ["registry", "audit", "--last", "3"]).output
    missing = runner.invoke(app, ["registry", "rollback", "--name", "cli"])
    assert missing.exit_code == 2 and "no 'previous'" in missing.output


def test_separation_of_duties_refuses_the_registrant_and_the_audit_names_both(home, runs, wb):
    import mlflow

    mlflow.set_tracking_uri(tracking.url(wb))
    mv = mlflow.register_model(f"runs:/{runs['good']}/model", "duties", tags={"registered_by": "dana"})
    registry.record_digest(wb, "duties", mv.version)
    registry.client(wb).set_registered_model_alias("duties", "staging", mv.version)  # staging by MLflow's own API
    with pytest.raises(RegistryError, match="separation of duties: dana registered version 1"):
        registry.promote(wb, "duties", mv.version, "production", approver="dana", reason="my own model")
    assert aliases(home, "duties") == {"staging": "1"}
    registry.promote(wb, "duties", mv.version, "production", approver="erin", reason="reviewed")
    refused, shipped = [e for e in audit.read(wb) if e.model == "duties"]
    assert (refused.outcome, refused.registered_by, refused.approver) == ("refused", "dana", "dana")
    assert (shipped.outcome, shipped.registered_by, shipped.approver) == ("promoted", "dana", "erin")
    assert aliases(home, "duties") == {"production": "1"}


def test_a_gate_rule_replaces_the_built_in_rules_and_sees_the_lineage(home, runs, wb):
    import mlflow

    registry.register(wb, runs["good"], "ruled")
    mlflow.set_tracking_uri(tracking.url(wb))
    seen = {}

    def rule(candidate, production, lineage, params):
        seen.update(candidate=candidate, production=production, lineage=lineage, metric=params.metric)
        return [] if lineage.get("git.commit") else ["the candidate run has no lineage (git.commit)"]

    result = registry.quality_gate(wb, "ruled", 1, rule=rule)
    assert not result.passed and result.reasons == ["the candidate run has no lineage (git.commit)"]
    assert seen["production"] is None and seen["metric"] == "f1_macro" and "accuracy" in seen["candidate"]
    with pytest.raises(RegistryError, match="return a list of reasons"):
        registry.quality_gate(wb, "ruled", 1, rule=lambda *args: True)


def test_the_logged_model_uri_registers_without_mlflow_s_fallback_warning(home, runs, caplog, wb):
    import logging

    import mlflow

    uri = tracking.logged_model_uri(wb, runs["also_good"])
    assert uri.startswith("models:/m-")
    mlflow.set_tracking_uri(tracking.url(wb))
    with caplog.at_level(logging.WARNING, logger="mlflow"):
        mv = mlflow.register_model(uri, "logged-uri")
    assert mv.run_id == runs["also_good"]
    assert not [r for r in caplog.records if "no artifacts" in r.getMessage()], caplog.text
    with pytest.raises(InputError, match="logged no model named 'forest'.*name='forest'"):
        tracking.logged_model_uri(wb, runs["also_good"], name="forest")
