"""How the grader schedules checks: isolated ones side by side, the others one at a time, results in order."""

from __future__ import annotations

import threading

from mlops_workbench.labs.checks import Check, Context, fail, load_checks
from mlops_workbench.labs.grade import CHECK_JOBS, run_checks
from mlops_workbench.labs.report import CheckResult
from mlops_workbench.workbench import Workbench


def make(id: str, func, isolated: bool = False) -> Check:
    return Check(id=id, func=func, isolated=isolated, timeout=30.0)


def test_isolated_checks_run_side_by_side_before_the_others(tmp_path):
    meet = threading.Barrier(CHECK_JOBS, timeout=20)  # breaks (and errors both checks) unless they overlap
    done: list[str] = []

    def side(name):
        def run(_ctx):
            meet.wait()
            done.append(name)

        return run

    def after_isolated(_ctx):
        assert sorted(done) == ["a", "b"], f"ran before the isolated checks finished: {done}"

    checks = [
        make("first", after_isolated),
        make("a", side("a"), isolated=True),
        make("b", side("b"), isolated=True),
        make("failing", lambda _ctx: fail("fix it")),
    ]
    results = run_checks(checks, Context(lab="x", wb=Workbench.from_env(tmp_path)))
    assert [r.id for r in results] == ["first", "a", "b", "failing"]
    assert [r.status for r in results] == ["passed", "passed", "passed", "failed"]
    assert results[3].message == "fix it"


def test_other_checks_run_one_at_a_time_and_blocked_ones_never_run(tmp_path):
    running, most, ran = [0], [0], []
    lock = threading.Lock()

    def counted(name):
        def run(_ctx):
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
            threading.Event().wait(0.05)
            with lock:
                running[0] -= 1
            ran.append(name)

        return run

    checks = [make(name, counted(name)) for name in ("a", "b", "c")]
    stop = CheckResult(
        id="b",
        description="b",
        status="blocked",
        score=0.0,
        max_score=1.0,
        visibility="public",
        message="cell 'x' failed",
    )
    results = run_checks(
        checks, Context(lab="x", wb=Workbench.from_env(tmp_path)), lambda c: stop if c.id == "b" else None
    )
    assert [r.status for r in results] == ["passed", "blocked", "passed"]
    assert ran == ["a", "c"] and most[0] == 1


def test_checks_declare_whether_they_are_isolated(tmp_path):
    path = tmp_path / "lab" / "checks.py"
    path.parent.mkdir()
    path.write_text(
        "from mlops_workbench.labs.checks import check\n\n"
        "@check('side', isolated=True)\ndef side(ctx):\n    pass\n\n"
        "@check('plain')\ndef plain(ctx):\n    pass\n"
    )
    assert {c.id: c.isolated for c in load_checks(path)} == {"side": True, "plain": False}


def test_rng_is_the_same_for_the_same_lab_label_and_seed(tmp_path):
    def draws(lab: str, label: str, seed: int) -> list[int]:
        rng = Context(lab=lab, wb=Workbench.from_env(tmp_path), seed=seed).rng(label)
        return [rng.randrange(10**9) for _ in range(3)]

    assert draws("02-versioning", "edit", 7) == draws("02-versioning", "edit", 7)
    assert draws("02-versioning", "edit", 7) != draws("02-versioning", "edit", 8)
    assert draws("02-versioning", "edit", 7) != draws("02-versioning", "other", 7), "each scenario draws on its own"
    assert draws("02-versioning", "edit", 7) != draws("03-registry-promotion", "edit", 7)
    assert Context(lab="x", wb=Workbench.from_env(tmp_path)).seed == 0, "live check() calls use seed 0"


def test_a_check_built_elsewhere_belongs_to_the_checks_file_that_declares_it(tmp_path):
    """A check made by a helper module or a functools.partial is the lab's, not the helper's (and does not crash)."""
    helper = tmp_path / "shared_helper_for_checks.py"
    helper.write_text(
        "def make(name):\n    def run(ctx):\n        pass\n    run.__doc__ = name\n    return run\n\n"
        "def plain(ctx, name):\n    pass\n"
    )
    lab = tmp_path / "98-shared"
    lab.mkdir()
    (lab / "checks.py").write_text(
        "import functools, importlib.util, sys\n"
        "from mlops_workbench.labs.checks import check\n"
        f"spec = importlib.util.spec_from_file_location('shared_helper_for_checks', {str(helper)!r})\n"
        "shared = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(shared)\n"
        "check('made')(shared.make('made elsewhere'))\n"
        "check('partial')(functools.partial(shared.plain, name='x'))\n"
        "@check('own')\ndef own(ctx):\n    pass\n"
    )
    assert [c.id for c in load_checks(lab / "checks.py")] == ["made", "partial", "own"]
    assert [c.id for c in load_checks(lab / "checks.py")] == ["made", "partial", "own"]  # a reload starts afresh


def test_isolated_checks_start_longest_time_limit_first(tmp_path):
    """The two longest isolated checks take the two workers; the short one waits for a free worker."""
    started: list[str] = []
    lock = threading.Condition()

    def side(name):
        def run(_ctx):
            with lock:
                started.append(name)
                lock.notify_all()
                assert lock.wait_for(lambda: len(started) >= CHECK_JOBS, timeout=20), "the workers never overlapped"

        return run

    checks = [
        Check(id=n, func=side(n), isolated=True, timeout=t) for n, t in (("short", 10), ("long", 30), ("mid", 20))
    ]
    results = run_checks(checks, Context(lab="x", wb=Workbench.from_env(tmp_path)))
    assert [r.status for r in results] == ["passed"] * 3, [r.message for r in results]
    assert sorted(started[:CHECK_JOBS]) == ["long", "mid"] and started[CHECK_JOBS:] == ["short"], started
