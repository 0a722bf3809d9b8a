"""Drill ``schema-break``: CI went red after a data change upstream; the fix goes to the data, not the test."""

from __future__ import annotations

import hashlib
import shutil
from typing import Callable

import pandas as pd

from mlops_workbench.ci.scaffold import run_tests
from mlops_workbench.data import FEATURES, load_iris_frame, save_csv
from mlops_workbench.drills import common
from mlops_workbench.drills.base import Drill, DrillContext, GradedCheck
from mlops_workbench.drills.spec import DrillSpec
from mlops_workbench.labs.checks import fail
from mlops_workbench.versioning.workspace import Workspace, run

DATA = "data/iris.csv"
TESTS = "tests/test_data.py"
TEST_SOURCE = '''"""CI: the training data satisfies the Iris schema (mlops_workbench.data.schema)."""
from mlops_workbench.data import load_csv


def test_data_matches_the_schema():
    df = load_csv("data/iris.csv")  # raises DataValidationError naming every broken rule
    assert len(df) == 150
'''


class SchemaBreak(Drill):
    spec = DrillSpec(
        name="schema-break",
        title="CI red after a data schema change",
        category="data",
        incident=False,
        minutes=10,
        brief=(
            "CI of the training repository (the git repository `repo/` in the drill folder) went red after the "
            "last data export. Find what changed (git log, the test's error), repair it where it belongs, and get "
            "`pytest tests/` green again without touching the tests and without dropping rows."
        ),
        hints=[
            "Run `python -m pytest -q tests/` in repo/: DataValidationError names every broken rule.",
            "`git log -p --stat -- data/` shows the export that changed the data (units and a column name).",
            "Convert the data back (pandas: rename the column, divide millimetres by 10) and commit it.",
        ],
        answer=(
            "The export switched the units to millimetres and renamed petal_width to petal_width_mm: the schema "
            "(four features in cm, fixed names) rejects it, as it should. The fix goes to the data (convert and "
            "rename back, commit with the reason), never to the test, and no row may be dropped to make it pass."
        ),
    )

    def services(self, ctx: DrillContext) -> list[str]:
        return []

    def setup(self, ctx: DrillContext) -> None:
        repo = ctx.folder / "repo"
        shutil.rmtree(repo, ignore_errors=True)
        (repo / "tests").mkdir(parents=True)
        run(["git", "init", "--quiet", "-b", "main"], repo)
        ws = Workspace(repo)
        save_csv(load_iris_frame(), repo / DATA)
        (repo / TESTS).write_text(TEST_SOURCE)
        common.pytest_config(repo)
        ws.commit("Iris data and its schema test")
        exported = load_iris_frame()
        exported[FEATURES] = (exported[FEATURES] * 10).round(1)
        exported = exported.rename(columns={"petal_width": "petal_width_mm"})
        exported.to_csv(repo / DATA, index=False)
        ws.commit("Data export 2026-11: measurements from the new lab system")
        ctx.save_facts(test_sha=_sha(repo / TESTS), rows=150)

    def checks(self) -> list[GradedCheck]:
        return [
            GradedCheck("ci-green", _ci_green),
            GradedCheck("tests-untouched", _tests_untouched, guard=True),
            GradedCheck("data-complete", _data_complete, guard=True),
        ]

    def reference_fix(self, ctx: DrillContext) -> None:
        repo = ctx.folder / "repo"
        df = pd.read_csv(repo / DATA).rename(columns={"petal_width_mm": "petal_width"})
        df[FEATURES] = df[FEATURES] / 10
        save_csv(df, repo / DATA)
        Workspace(repo).commit("Convert the export back to centimetres and the schema's column names")

    def destructive_fixes(self) -> dict[str, Callable[[DrillContext], None]]:
        return {
            "skip-the-test": lambda ctx: (ctx.folder / "repo" / TESTS).write_text(
                "import pytest\n\n\n@pytest.mark.skip(reason='flaky')\ndef test_data_matches_the_schema():\n    pass\n"),
            "delete-the-repository": lambda ctx: shutil.rmtree(ctx.folder / "repo"),
            "drop-the-bad-rows": _drop_rows,
        }


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _repo(ctx: DrillContext):
    repo = ctx.folder / "repo"
    if not (repo / ".git").is_dir():
        fail(f"{repo} is gone: the repository is the system under repair; `workbench drill reset` and start again.")
    return repo


def _ci_green(ctx: DrillContext) -> None:
    """`pytest tests/` passes in the repository."""
    proc = run_tests(_repo(ctx), "tests")
    if proc.returncode != 0:
        fail("CI is red: " + " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:]))
    if " passed" not in proc.stdout:
        fail("pytest ran no test at all: a CI without tests is not green.")


def _tests_untouched(ctx: DrillContext) -> None:
    """The tests are the ones CI had (the fix went to the data)."""
    path = _repo(ctx) / TESTS
    if not path.exists() or _sha(path) != ctx.fact("test_sha"):
        fail(f"{TESTS} was changed: repair the data (or the schema it encodes, on purpose), never the test. "
             f"Restore it with `git checkout HEAD~1 -- {TESTS}`.")


def _data_complete(ctx: DrillContext) -> None:
    """All 150 measurements are still there, in centimetres, equal to the original ones."""
    df = pd.read_csv(_repo(ctx) / DATA)
    if len(df) != ctx.fact("rows"):
        fail(f"{DATA} has {len(df)} rows instead of {ctx.fact('rows')}: convert the data, do not drop rows.")
    missing = [c for c in FEATURES if c not in df]
    original = load_iris_frame()
    if missing or (df[FEATURES] - original[FEATURES]).abs().max().max() > 1e-6:
        fail(f"{DATA} does not hold the original measurements in centimetres under the schema's names.")


def _drop_rows(ctx: DrillContext) -> None:
    repo = ctx.folder / "repo"
    df = pd.read_csv(repo / DATA).rename(columns={"petal_width_mm": "petal_width"})
    df[df[FEATURES].le(10).all(axis=1)].to_csv(repo / DATA, index=False)


DRILL = SchemaBreak()
