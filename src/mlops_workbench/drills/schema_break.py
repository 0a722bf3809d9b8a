"""Drill ``schema-break``: CI went red after a data change upstream; the fix goes to the data, not the test."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from pydantic import Field

from mlops_workbench.data import FEATURES, LABEL, load_iris_frame, save_csv
from mlops_workbench.drills import localtests
from mlops_workbench.drills.base import Drill, DrillContext, GradedCheck
from mlops_workbench.drills.causes import Change, RootCause
from mlops_workbench.drills.spec import DrillSpec
from mlops_workbench.drills.variants import Variant
from mlops_workbench.labs.checks import fail
from mlops_workbench.versioning.workspace import Workspace, run

DATA = "data/iris.csv"
TESTS = "tests/test_data.py"
NEW_ROWS = 6
"""Measurements the delivery adds: reverting it loses them."""
TOLERANCE = 0.01
"""How far (cm) a repaired measurement may be from the delivered one (a unit conversion rounds)."""
TEST_SOURCE = '''"""CI: the training data satisfies the Iris schema (mlops_workbench.data.schema)."""
from mlops_workbench.data import load_csv


def test_data_matches_the_schema():
    df = load_csv("data/iris.csv")  # raises DataValidationError naming every broken rule
    assert len(df) >= 150, "the data lost rows"
'''


class DeliveryVariant(Variant):
    """How the new lab system writes the data: a renamed column, a unit factor, a prefix on the labels."""

    renamed: str = Field(description="the schema's name of the column the delivery renamed")
    renamed_to: str
    scale: float = Field(gt=0, description="delivered value = centimetres x scale")
    decimals: int = Field(ge=0)
    label_prefix: str = ""


class SchemaBreak(Drill):
    teardown = "delete-the-repository"
    variants = (
        DeliveryVariant(key="millimetres", renamed="petal_width", renamed_to="petal_width_mm", scale=10, decimals=1),
        DeliveryVariant(key="inches", renamed="sepal_length", renamed_to="sepal_length_in", scale=1 / 2.54, decimals=3),
        DeliveryVariant(key="uci-labels", renamed=LABEL, renamed_to="class", scale=1, decimals=1, label_prefix="Iris-"),
    )
    spec = DrillSpec(
        name="schema-break",
        number=4,
        symptom="CI red since the morning delivery",
        root_cause=RootCause.UPSTREAM_DATA,
        symptoms=[RootCause.CI_FAILURE],
        fixes=[Change.DATA_CONVERTED],
        incident=False,
        minutes=10,
        brief=(
            "CI of the training repository (the git repository `repo/` in {folder}) has been red since this "
            "morning's data delivery. Get `python -m pytest` there green again without touching the tests and "
            "without losing a single measurement."
        ),
        hints=[
            "Run `python -m pytest -q` in repo/: the error names every rule the data breaks.",
            "`git log -p --stat -- data/` shows what the delivery changed compared with the commit before it.",
            "Bring the data back to the form the tests expect with pandas (the names and the units or labels of the "
            "commit before), then commit it with a message that says so.",
        ],
        answer=(
            "The delivery changed the data's format (units, a column name or the label spelling, depending on the "
            "variant): the schema rejects it, as it should. The fix goes to the data (convert it back, commit with "
            "the reason), never to the test, and no row may be dropped to make it pass."
        ),
    )

    def services(self, ctx: DrillContext) -> list[str]:
        return []

    def setup(self, ctx: DrillContext, variant: DeliveryVariant) -> None:
        repo = ctx.folder / "repo"
        shutil.rmtree(repo, ignore_errors=True)
        (repo / "tests").mkdir(parents=True)
        run(["git", "init", "--quiet", "-b", "main"], repo)
        ws = Workspace(repo)
        save_csv(load_iris_frame(), repo / DATA)
        (repo / TESTS).write_text(TEST_SOURCE)
        localtests.write_config(repo)
        ws.commit("Iris data and its schema test")
        deliver(variant, measurements(ctx.fact("seed"))).to_csv(repo / DATA, index=False)
        ws.commit("Data delivery 2026-11: this month's measurements from the new lab system")
        ctx.save_facts(test_sha=_sha(repo / TESTS))

    def checks(self) -> list[GradedCheck]:
        return [
            GradedCheck("ci-green", _ci_green),
            GradedCheck("tests-untouched", _tests_untouched, guard=True),
            GradedCheck("data-complete", _data_complete, guard=True),
        ]

    def reference_fix(self, ctx: DrillContext) -> None:
        repo = ctx.folder / "repo"
        save_csv(undo(ctx.variant(DeliveryVariant), pd.read_csv(repo / DATA)), repo / DATA)
        Workspace(repo).commit("Bring the delivery back to the schema's names, units and labels")

    def destructive_fixes(self) -> dict[str, Callable[[DrillContext], None]]:
        return {
            "skip-the-test": lambda ctx: (ctx.folder / "repo" / TESTS).write_text(
                "import pytest\n\n\n@pytest.mark.skip(reason='flaky')\ndef test_data_matches_the_schema():\n    pass\n"
            ),
            "delete-the-repository": lambda ctx: shutil.rmtree(ctx.folder / "repo"),
            "drop-the-new-rows": _drop_new_rows,
            "revert-the-delivery": lambda ctx: Workspace(ctx.folder / "repo").git("revert", "--no-edit", "HEAD"),
        }


def measurements(seed: int) -> pd.DataFrame:
    """What the delivery holds, in the schema's form: the Iris rows and :data:`NEW_ROWS` new ones (seeded)."""
    import numpy as np

    iris = load_iris_frame()
    rng = np.random.default_rng(seed)
    new = iris.sample(NEW_ROWS, random_state=seed).reset_index(drop=True)
    new[FEATURES] = (new[FEATURES] + rng.normal(0, 0.1, (NEW_ROWS, len(FEATURES)))).clip(0.1, 9.9).round(1)
    return pd.concat([iris, new], ignore_index=True)


def deliver(variant: DeliveryVariant, df: pd.DataFrame) -> pd.DataFrame:
    """``df`` as the new lab system writes it."""
    out = df.copy()
    out[FEATURES] = (out[FEATURES] * variant.scale).round(variant.decimals)
    out[LABEL] = variant.label_prefix + out[LABEL]
    return out.rename(columns={variant.renamed: variant.renamed_to})


def undo(variant: DeliveryVariant, df: pd.DataFrame) -> pd.DataFrame:
    """The reference repair of a delivery: the schema's names, centimetres and labels again."""
    out = df.rename(columns={variant.renamed_to: variant.renamed})
    out[FEATURES] = (out[FEATURES] / variant.scale).round(1)
    out[LABEL] = out[LABEL].str.removeprefix(variant.label_prefix)
    return out


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _repo(ctx: DrillContext) -> Path:
    repo = ctx.folder / "repo"
    if not (repo / ".git").is_dir():
        fail(f"{repo} is gone: the repository is the system under repair; `workbench drill reset` and start again.")
    return repo


def _ci_green(ctx: DrillContext) -> None:
    """`pytest` passes in the repository."""
    proc = localtests.run(_repo(ctx))
    if proc.returncode != 0:
        fail("CI is red: " + " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:]))
    if " passed" not in proc.stdout:
        fail("pytest ran no test at all: a CI without tests is not green.")


def _tests_untouched(ctx: DrillContext) -> None:
    """The tests are the ones CI had (the fix went to the data)."""
    path = _repo(ctx) / TESTS
    if not path.exists() or _sha(path) != ctx.fact("test_sha"):
        fail(
            f"{TESTS} was changed: repair the data (or the schema it encodes, on purpose), never the test. "
            f"Restore it with `git checkout HEAD~1 -- {TESTS}`."
        )


def _data_complete(ctx: DrillContext) -> None:
    """Every delivered measurement is there, in the schema's names, units and labels."""
    df, expected = pd.read_csv(_repo(ctx) / DATA), measurements(ctx.fact("seed"))
    if len(df) != len(expected):
        fail(
            f"{DATA} has {len(df)} rows, the delivery {len(expected)}: convert the data, do not drop (or revert) rows."
        )
    missing = [c for c in [*FEATURES, LABEL] if c not in df]
    if (
        missing
        or (df[FEATURES] - expected[FEATURES]).abs().max().max() > TOLERANCE
        or not df[LABEL].equals(expected[LABEL])
    ):
        fail(f"{DATA} does not hold the delivered measurements in centimetres under the schema's names and labels.")


def _drop_new_rows(ctx: DrillContext) -> None:
    """Repair the rows the old data had and drop the delivery's new ones."""
    repo = ctx.folder / "repo"
    fixed = undo(ctx.variant(DeliveryVariant), pd.read_csv(repo / DATA))
    fixed.head(len(fixed) - NEW_ROWS).to_csv(repo / DATA, index=False)


DRILL = SchemaBreak()
