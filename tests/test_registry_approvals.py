"""Second-person approvals and the cost budget of the gate, against a real MLflow tracking server on loopback."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlops_workbench import procs, registry, tracking
from mlops_workbench.cli.main import app
from mlops_workbench.registry import RegistryError, approvals, audit
from mlops_workbench.registry.gate import COST_TAG, RegistryParams, judge
from mlops_workbench.workbench import Workbench

SCORES = {"accuracy": 0.95, "f1_macro": 0.95}


# ---------------------------------------------------------------- pure parts


def test_the_cost_budget_refuses_an_unmeasured_or_too_costly_candidate():
    within = judge("iris", "2", SCORES, None, None, RegistryParams(cost_budget=0.05), 30, cost_per_1k=0.04)
    assert within.passed and (within.cost_per_1k, within.cost_budget) == (0.04, 0.05)
    assert "cost 0.04 per 1,000 predictions" in within.summary()
    over = judge("iris", "2", SCORES, None, None, RegistryParams(cost_budget=0.05), 30, cost_per_1k=0.07)
    assert not over.passed and over.reasons == [
        "cost 0.07 per 1,000 predictions is above the cost_budget 0.05: make the model cheaper to serve, "
        "or raise registry.cost_budget in params.yaml if the budget is wrong"
    ]
    unmeasured = judge("iris", "2", SCORES, None, None, RegistryParams(cost_budget=0.05), 30)
    assert not unmeasured.passed and "no cost was measured for v2" in unmeasured.reasons[0]
    assert judge("iris", "2", SCORES, None, None, RegistryParams(), 30).passed, "no budget: cost is not judged"


def test_second_person_needs_someone_elses_approval():
    review = approvals.Review(approver="alice", at="2026-01-31T12:00:00.000+00:00", reason="checked")
    assert approvals.second_person("bob", review, "3") == ("alice", None)
    approver, why = approvals.second_person("alice", review, "3")
    assert approver == "alice" and why.startswith("self-approval: alice asks for the promotion of version 3")
    assert "workbench registry approve 3 --as NAME" in why
    assert "no recorded approval" in approvals.second_person("bob", None, "3")[1]


def test_an_approval_older_than_the_maximum_age_no_longer_counts():
    review = approvals.Review(approver="alice", at="2026-01-31T12:00:00.000+00:00", reason="checked")
    ten_days_on = datetime(2026, 2, 10, 12, 0, 1, tzinfo=UTC)
    assert approvals.second_person("bob", review, "3", 14, ten_days_on) == ("alice", None)
    assert approvals.second_person("bob", review, "3", None, ten_days_on) == ("alice", None), "null: never expires"
    approver, why = approvals.second_person("bob", review, "3", 7, ten_days_on)
    assert approver == "alice" and why == (
        "the approval of version 3 by alice was recorded 10.0 days ago (2026-01-31T12:00:00.000+00:00), more than "
        "registry.approval_max_age_days (7) allows: ask a reviewer to run `workbench registry approve 3 --as NAME "
        "--reason ...` again"
    )
    naive = review.model_copy(update={"at": "2026-01-31T12:00:00"})  # a tag set by hand, without a zone: UTC
    assert approvals.second_person("bob", naive, "3", 14, ten_days_on) == ("alice", None)
    garbled = review.model_copy(update={"at": "last Tuesday"})
    assert "a date that cannot be read ('last Tuesday')" in approvals.second_person("bob", garbled, "3", 14)[1]


def test_identity_is_the_explicit_name_else_git_email_else_login(tmp_path, monkeypatch):
    config = tmp_path / "gitconfig"
    config.write_text("[user]\n\temail = learner@example.org\n")
    monkeypatch.chdir(tmp_path)  # outside any repository: only the global config answers
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    assert approvals.identity(" alice ") == "alice"
    assert approvals.identity() == approvals.identity("") == "learner@example.org"
    config.write_text("")
    assert approvals.identity() == getpass.getuser()


# ---------------------------------------------------------------- real tracking server


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("approvals-home")
    tracking.up(Workbench.from_env(home), port=procs.free_port(), timeout=300)
    yield home
    procs.stop_all(Workbench.from_env(home))


@pytest.fixture(scope="module")
def run_id(home) -> str:
    import mlflow

    from mlops_workbench import data, train

    train_df, _ = data.split(data.load_iris_frame(), test_size=0.2, seed=42)
    mlflow.set_experiment("approvals-tests")
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(train.train(train_df, {"C": 1.0}), name="model")
    return run.info.run_id


@pytest.fixture
def governed(home, tmp_path, monkeypatch) -> Path:
    """A project whose params.yaml turns second-person approvals on, and the CLI pointed at it and at ``home``."""
    project = tmp_path / "project"
    (project / "labs").mkdir(parents=True)
    (project / "params.yaml").write_text("registry:\n  second_approval: true\n")
    monkeypatch.setenv("WORKBENCH_PROJECT", str(project))
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    monkeypatch.setenv("COLUMNS", "200")
    return project


def register(home: Path, run_id: str, name: str, registrant: str) -> str:
    import mlflow

    wb = Workbench.from_env(home)
    mlflow.set_tracking_uri(tracking.url(wb))
    mv = mlflow.register_model(f"runs:/{run_id}/model", name, tags={"registered_by": registrant})
    registry.record_digest(wb, name, mv.version)
    registry.client(wb).set_registered_model_alias(name, "staging", mv.version)
    return str(mv.version)


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["registry", *args])
    return result.exit_code, result.output


def test_promotion_needs_an_approval_by_someone_other_than_the_requester(home, run_id, governed, monkeypatch, wb):
    version = register(home, run_id, "governed", registrant="dana")
    name = ("--name", "governed")
    code, out = cli("promote", version, "--reason", "ship", "--as", "bob", *name)
    assert code == 2 and "no recorded approval" in out and "--as NAME" in out, out
    code, out = cli("approve", version, "--reason", "my own model", "--as", "dana", *name)
    assert code == 2 and "self-approval: dana registered version 1" in out, out
    code, out = cli("approve", version, "--reason", "looked fine", "--as", "bob", *name)
    assert code == 0 and "bob approved governed v1 for 'production'" in out, out
    code, out = cli("promote", version, "--reason", "ship", "--as", "bob", *name)
    assert code == 2 and "self-approval: bob asks for the promotion" in out, out
    assert dict(registry.client(wb).get_registered_model("governed").aliases) == {"staging": version}
    code, out = cli("approve", version, "--reason", "reviewed the gate and the lineage", "--as", "alice", *name)
    assert code == 0, out
    code, out = cli("promote", version, "--reason", "ship", "--as", "bob", *name)
    assert code == 0 and "v1 is now 'production'" in out, out
    mv = registry.client(wb).get_model_version("governed", version)
    assert mv.tags["approval.production.approver"] == "alice"
    trail = [(e.action, e.outcome, e.approver, e.requester) for e in audit.read(wb) if e.model == "governed"]
    assert trail == [
        ("promote", "refused", None, "bob"),
        ("approve", "refused", "dana", None),
        ("approve", "approved", "bob", None),
        ("promote", "refused", "bob", "bob"),
        ("approve", "approved", "alice", None),
        ("promote", "promoted", "alice", "bob"),
    ]
    from mlops_workbench.cli import registry as registry_cli

    monkeypatch.setattr(registry_cli.console, "width", 400)  # the console took its width when first imported
    shown = cli("audit", "--last", "6")[1]
    assert "requester" in shown and "│ alice " in shown and "│ bob " in shown


def test_a_stale_approval_is_refused_and_a_fresh_one_promotes(home, run_id, wb):
    version = register(home, run_id, "stale", registrant="dana")
    rules = {"second_approval": True, "approval_max_age_days": 14}
    registry.approve(wb, "stale", version, approver="alice", reason="checked the gate")
    month_ago = (datetime.now(UTC) - timedelta(days=30)).isoformat(timespec="milliseconds")
    registry.client(wb).set_model_version_tag("stale", version, approvals.review_tag("production", "at"), month_ago)
    with pytest.raises(
        RegistryError, match=r"recorded 30\.0 days ago .* more than registry.approval_max_age_days \(14\)"
    ):
        registry.promote(wb, "stale", version, "production", reason="ship", requester="bob", params=rules)
    assert dict(registry.client(wb).get_registered_model("stale").aliases) == {"staging": version}
    assert (audit.read(wb)[-1].action, audit.read(wb)[-1].outcome) == ("promote", "refused")
    registry.approve(wb, "stale", version, approver="alice", reason="checked the gate again")
    registry.promote(wb, "stale", version, "production", reason="ship", requester="bob", params=rules)
    assert registry.client(wb).get_registered_model("stale").aliases["production"] == version


def test_an_approval_of_a_missing_version_or_without_a_reason_is_refused(home, run_id, governed, wb):
    register(home, run_id, "missing", registrant="dana")
    with pytest.raises(RegistryError, match=r"has no version 9 \(versions: 1\)"):
        registry.approve(wb, "missing", 9, approver="alice", reason="r")
    with pytest.raises(RegistryError, match="needs a reason"):
        registry.approve(wb, "missing", 1, approver="alice", reason=" ")
    with pytest.raises(RegistryError, match="Unknown alias 'prod'"):
        registry.approve(wb, "missing", 1, approver="alice", reason="r", alias="prod")
    assert approvals.read_review(registry.client(wb), "missing", 1) is None


def test_without_second_approval_the_approver_alone_still_promotes(home, run_id, wb):
    version = register(home, run_id, "solo", registrant="dana")
    registry.promote(wb, "solo", version, "production", approver="erin", reason="one person")
    last = audit.read(wb)[-1]
    assert (last.outcome, last.approver, last.requester) == ("promoted", "erin", None)


def test_a_cost_budget_refuses_a_costly_candidate_and_leaves_the_aliases(home, run_id, wb):
    version = register(home, run_id, "costly", registrant="dana")
    budget = {"cost_budget": 0.05}
    with pytest.raises(RegistryError, match="no cost was measured for v1"):
        registry.promote(wb, "costly", version, "production", approver="erin", reason="r", params=budget)
    registry.client(wb).set_model_version_tag("costly", version, COST_TAG, "0.09")
    gate = registry.quality_gate(wb, "costly", version, params=budget, rule=lambda *_: [])
    assert not gate.passed and gate.cost_per_1k == 0.09, "a learner's rule does not lift the budget"
    with pytest.raises(RegistryError, match="above the cost_budget 0.05"):
        registry.promote(wb, "costly", version, "production", approver="erin", reason="r", params=budget)
    assert dict(registry.client(wb).get_registered_model("costly").aliases) == {"staging": version}
    registry.client(wb).set_model_version_tag("costly", version, COST_TAG, "0.03")
    registry.promote(wb, "costly", version, "production", approver="erin", reason="r", params=budget)
    assert audit.read(wb)[-1].gate.cost_per_1k == 0.03
