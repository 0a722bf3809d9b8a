"""A grading's memo: work several checks need runs once, and lab 01's checks pytest one project state once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from mlops_workbench import tools
from mlops_workbench.ci import scaffold
from mlops_workbench.labs.checks import CheckFailed, Context, load_checks
from mlops_workbench.labs.memo import Memo
from mlops_workbench.workbench import Workbench

ROOT = Path(__file__).resolve().parents[1]


def test_once_computes_each_key_once_and_shares_errors():
    memo, calls = Memo(), []

    def compute(value):
        calls.append(value)
        return value

    assert memo.once("a", lambda: compute(1)) == 1
    assert memo.once("a", lambda: compute(2)) == 1, "a second caller gets the first answer"
    assert memo.once("b", lambda: compute(3)) == 3
    assert calls == [1, 3]

    def broken():
        calls.append("broken")
        raise ValueError("no")

    for _ in range(2):
        with pytest.raises(ValueError, match="no"):
            memo.once("c", broken)
    assert calls.count("broken") == 1


def test_a_caller_waits_for_the_computation_under_way():
    memo, release, entered, calls = Memo(), threading.Event(), threading.Event(), []

    def slow():
        calls.append("slow")
        entered.set()
        assert release.wait(20)
        return "answer"

    first = threading.Thread(target=lambda: memo.once("k", slow))
    first.start()
    assert entered.wait(20)
    got: list[str] = []
    second = threading.Thread(target=lambda: got.append(memo.once("k", lambda: "second computation")))
    second.start()
    second.join(0.2)
    assert second.is_alive(), "the second caller must wait for the first computation, not start its own"
    release.set()
    first.join(20)
    second.join(20)
    assert got == ["answer"] and calls == ["slow"]


def test_project_digest_follows_content_and_skips_caches(tmp_path):
    scaffold.scaffold_ci_project(tmp_path / "p", learner=True)
    project = tmp_path / "p"
    before = scaffold.project_digest(project)
    (project / "__pycache__").mkdir()
    (project / "__pycache__" / "x.pyc").write_bytes(b"cache")
    assert scaffold.project_digest(project) == before
    model = project / scaffold.MODEL_FILE
    model.write_text(model.read_text() + "\n")
    assert scaffold.project_digest(project) != before, "an edit of the code is another project state"
    model.write_text(model.read_text()[:-1])
    assert scaffold.project_digest(project) == before
    (project / "tests" / "extra.txt").write_text("")
    assert scaffold.project_digest(project) != before, "a new file is another project state"


@pytest.fixture
def lab01(tmp_path, monkeypatch):
    """Lab 01's checks on the reference project, with pytest stood in for: a run fails where a planted bug or an
    `assert False` is in the code, as the real tests would (the real runs are covered by test_scaffold)."""
    checks = {c.id: c for c in load_checks(ROOT / "labs" / "01-ci-basics" / "checks.py")}
    ctx = Context(lab="01-ci-basics", wb=Workbench.from_env(tmp_path))
    project = ctx.workspace / "iris-ci"
    scaffold.scaffold_ci_project(project)
    runs: list[tuple[Path, tuple[str, ...]]] = []
    planted = [bad for _what, _good, bad in scaffold.BUGS.values()]

    def pytest_stand_in(where, *paths, **_kwargs):
        runs.append((Path(where), paths))
        code = (Path(where) / scaffold.MODEL_FILE).read_text() + "".join((Path(where) / p).read_text() for p in paths)
        failed = "assert False" in code or any(bad in code for bad in planted)
        return tools.Ran(cmd=["pytest", *paths], returncode=int(failed), stdout="", stderr="")

    monkeypatch.setattr(scaffold, "run_tests", pytest_stand_in)
    return checks, ctx, project, runs


def test_lab01_pytests_the_same_project_state_once_per_grading(lab01):
    checks, ctx, project, runs = lab01
    checks["data-tests"].func(ctx)
    checks["tests-catch-data-bugs"].func(ctx)
    on_project = [paths for where, paths in runs if where == project]
    assert on_project == [("tests/test_data.py",)], "the second check reuses the first check's pytest run"
    assert len(runs) == 1 + 2, "each planted data bug still runs the tests on its own copy"
    fresh = Context(lab=ctx.lab, wb=ctx.wb)
    checks["data-tests"].func(fresh)
    assert len([1 for where, _ in runs if where == project]) == 2, "a new grading runs the tests again"


def test_lab01_memo_never_hides_an_edit_between_checks(lab01):
    checks, ctx, project, runs = lab01
    checks["data-tests"].func(ctx)
    test_file = project / "tests" / "test_data.py"
    test_file.write_text(test_file.read_text() + "\n\ndef test_broken():\n    assert False, 'edited'\n")
    with pytest.raises(CheckFailed, match="fails on the correct model"):
        checks["tests-catch-data-bugs"].func(ctx)
    assert len([1 for where, _ in runs if where == project]) == 2
