"""Lab 03's hidden registry scenarios on a real MLflow server: the reference promote and rollback pass them on
several seeds, and each plausible wrong implementation fails with a message that names the fix."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from mlops_workbench import procs, registry, tracking
from mlops_workbench.labs.checks import CheckFailed, Context, load_checks
from mlops_workbench.registry import audit
from mlops_workbench.workbench import Workbench

LAB = Path(__file__).resolve().parents[1] / "labs" / "03-registry-promotion"
CHECKS = {c.id: c for c in load_checks(LAB / "checks.py")}
HIDDEN = ("promote-refuses-hidden", "promote-moves-hidden", "rollback-hidden")


def reference(cell: str) -> str:
    """The reference solution of a %%writefile cell, as the learner would write it."""
    nb = nbformat.read(LAB / "lab.ipynb", as_version=4)
    src = next(c.source for c in nb.cells if c.id == cell).split("\n", 1)[1]
    return "".join(line for line in src.splitlines(keepends=True) if "SOLUTION" not in line)


def mistake(cell: str, old: str, new: str) -> str:
    source = reference(cell)
    assert old in source, f"the reference {cell} no longer contains {old!r}"
    return source.replace(old, new)


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """A state folder with a tracking server and the lab's model 'iris' holding one version (the hidden
    registries copy its files)."""
    import mlflow

    from mlops_workbench import data, train

    home = tmp_path_factory.mktemp("lab03-scenarios")
    tracking.up(Workbench.from_env(home), port=procs.free_port(), timeout=300)
    tracking.use(Workbench.from_env(home))
    train_df, _ = data.split(data.load_iris_frame(), test_size=0.2, seed=42)
    mlflow.set_experiment("lab03-scenarios")
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(train.train(train_df, {"C": 1.0}), name="model")
    mlflow.register_model(
        tracking.logged_model_uri(Workbench.from_env(home), run.info.run_id), "iris", tags={"registered_by": "ds"}
    )
    yield home
    procs.stop_all(Workbench.from_env(home))


def graded(home: Path, seed: int, promotion: str | None = None, rollback: str | None = None) -> Context:
    ctx = Context(lab="03-registry-promotion", wb=Workbench.from_env(home), seed=seed)
    ctx.workspace.mkdir(parents=True, exist_ok=True)
    (ctx.workspace / "promotion.py").write_text(promotion or reference("promote-code"))
    (ctx.workspace / "rollback.py").write_text(rollback or reference("rollback-code"))
    return ctx


@pytest.mark.parametrize("seed", [0, 1, 20240917])
def test_reference_promote_and_rollback_pass_every_hidden_scenario(home, seed, wb):
    ctx = graded(home, seed)
    for check in HIDDEN:
        CHECKS[check].func(ctx)
    c = registry.client(wb)
    assert [m.name for m in c.search_registered_models()] == ["iris"], "hidden registries are removed afterwards"
    assert not [e for e in audit.read(wb) if "hidden" in str(e.get("model"))], "scratch audit logs only"


def test_hidden_registries_follow_the_seed(home):
    ctx = graded(home, 5)
    assert ctx.rng("rollback").random() == graded(home, 5).rng("rollback").random()
    assert ctx.rng("rollback").random() != graded(home, 6).rng("rollback").random()


PROMOTE_MISTAKES = {
    "promotes past the gate": (
        mistake("promote-code", "if not gate.passed or gate.candidate_version != version:", "if False:"),
        "promote-refuses-hidden",
        "gate.passed is False",
    ),
    "no separation of duties": (
        mistake("promote-code", "if not approver or approver == registrant:", "if False:"),
        "promote-refuses-hidden",
        "approver registered the version",
    ),
    "staging not required": (
        mistake("promote-code", 'if aliases.get("staging") != version:', "if False:"),
        "promote-refuses-hidden",
        "does not hold the 'staging' alias",
    ),
    "refusal not audited": (
        mistake("promote-code", '        record({**entry, "outcome": "refused", "error": "; ".join(refusals)})\n', ""),
        "promote-refuses-hidden",
        "audit line",
    ),
    "refusal raises the wrong error": (
        mistake("promote-code", 'raise RegistryError("Promotion refused', 'raise ValueError("Promotion refused'),
        "promote-refuses-hidden",
        "raised ValueError",
    ),
    "moves before deciding": (
        mistake(
            "promote-code",
            "    refusals = []\n",
            '    refusals = []\n    client.set_registered_model_alias(name, "production", version)\n',
        ),
        "promote-refuses-hidden",
        "aliases moved anyway",
    ),
    "promotion not audited": (
        mistake("promote-code", '    record({**entry, "outcome": "promoted"})\n', ""),
        "promote-moves-hidden",
        "audit lines",
    ),
    "previous not kept": (
        mistake("promote-code", 'client.set_registered_model_alias(name, "previous", current)', "pass"),
        "promote-moves-hidden",
        "did not name the version production held before",
    ),
    "no approval record": (
        mistake(
            "promote-code",
            "    approvals.record(client, name, version, approver=approver, reason=reason, gate=gate)\n",
            "",
        ),
        "promote-moves-hidden",
        "approval record",
    ),
}
ROLLBACK_MISTAKES = {
    "leaves both aliases on one version": (
        mistake("rollback-code", '    client.delete_registered_model_alias(name, "previous")\n', ""),
        "rollback-hidden",
        "both 'production' and 'previous'",
    ),
    "rollback not audited": (
        mistake("rollback-code", '    record({**entry, "outcome": "rolled_back"})\n', ""),
        "rollback-hidden",
        "audit lines",
    ),
    "no previous: moves nothing but says nothing": (
        mistake("rollback-code", "    if previous is None:\n", "    if previous is None:\n        return None\n"),
        "rollback-hidden",
        "went through",
    ),
}


@pytest.mark.parametrize("name", list(PROMOTE_MISTAKES) + list(ROLLBACK_MISTAKES))
def test_each_plausible_mistake_fails_its_hidden_check_with_the_fix(home, name, wb):
    source, check, match = {**PROMOTE_MISTAKES, **ROLLBACK_MISTAKES}[name]
    kind = "promotion" if name in PROMOTE_MISTAKES else "rollback"
    ctx = graded(home, 3, **{kind: source})
    with pytest.raises(CheckFailed, match=match) as failed:
        CHECKS[check].func(ctx)
    assert "lab03-hidden" not in str(failed.value), "the message must not reveal the hidden registry"
    assert [m.name for m in registry.client(wb).search_registered_models()] == ["iris"]


def test_the_stub_is_named_before_any_hidden_registry_is_made(home):
    stub = "def promote(*args, **kwargs):\n    raise NotImplementedError\n"
    with pytest.raises(CheckFailed, match="stub"):
        CHECKS["promote-refuses-hidden"].func(graded(home, 0, promotion=stub))
