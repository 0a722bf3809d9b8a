"""Lab 03's gate-rule checks on planted work: the reference rule passes, each plausible mistake is named."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from mlops_workbench.labs.checks import CheckFailed, Context, load_checks
from mlops_workbench.workbench import Workbench

LAB = Path(__file__).resolve().parents[1] / "labs" / "03-registry-promotion"
CHECKS = {c.id: c for c in load_checks(LAB / "checks.py")}


def reference_rule() -> str:
    nb = nbformat.read(LAB / "lab.ipynb", as_version=4)
    src = next(c.source for c in nb.cells if c.id == "gate").split("\n", 1)[1]  # drop the %%writefile line
    return "".join(line for line in src.splitlines(keepends=True) if "SOLUTION" not in line)


def workspace(tmp_path: Path, rule: str) -> Context:
    ctx = Context(lab="03-registry-promotion", wb=Workbench.from_env(tmp_path))
    ctx.workspace.mkdir(parents=True)
    (ctx.workspace / "gate_rule.py").write_text(rule)
    return ctx


def mistake(old: str, new: str) -> str:
    source = reference_rule()
    assert old in source, f"the reference rule no longer contains {old!r}"
    return source.replace(old, new)


def test_reference_rule_passes_both_gate_checks(tmp_path):
    ctx = workspace(tmp_path, reference_rule())
    CHECKS["gate-rule-written"].func(ctx)
    CHECKS["gate-rule-planted"].func(ctx)


@pytest.mark.parametrize(
    "rule, match",
    [
        (mistake('if lineage.get("git.dirty") == "true":', "if False:"), "dirty tree"),
        (mistake("if missing:", "if False:"), "missing lineage|no lineage tags"),
        (mistake("if gain < rules.min_gain:", "if gain < 0.01:"), "read the thresholds from `rules`"),
        (mistake("for name in rules.non_regression:", "for name in [rules.metric]:"), "non_regression"),
        (mistake("> rules.tolerance:", "> 0:"), "within rules.tolerance"),
        (mistake('if candidate["accuracy"] < rules.min_accuracy:', "if False:"), "first model below"),
    ],
)
def test_each_gate_mistake_fails_the_hidden_check_with_its_fix(tmp_path, rule, match):
    ctx = workspace(tmp_path, rule)
    CHECKS["gate-rule-written"].func(ctx)  # the easy public cases still pass
    with pytest.raises(CheckFailed, match=match):
        CHECKS["gate-rule-planted"].func(ctx)


def test_stub_and_wrong_return_type_are_named(tmp_path):
    with pytest.raises(CheckFailed, match="stub"):
        CHECKS["gate-rule-written"].func(workspace(tmp_path, "def gate_rule(*a):\n    raise NotImplementedError\n"))
    with pytest.raises(CheckFailed, match="return a list of reasons"):
        CHECKS["gate-rule-written"].func(workspace(tmp_path / "b", "def gate_rule(*a):\n    return True\n"))
