"""In-notebook feedback: check() runs public checks on live state, never hidden ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_workbench.errors import InputError
from mlops_workbench.labs import session


@pytest.fixture
def live(home, monkeypatch, tmp_path):
    namespace: dict = {}
    monkeypatch.setattr(session, "_user_namespace", lambda: namespace)
    monkeypatch.chdir(tmp_path)
    lab = session.start("00-welcome")
    return lab, namespace


def test_start_creates_and_enters_the_workspace(live, home):
    lab, _ = live
    assert lab.workspace == home / "workspaces" / "00-welcome"
    assert Path.cwd() == lab.workspace


def test_check_passes_and_fails_on_live_state(live):
    lab, ns = live
    failing = lab.check("iris-rows")
    assert failing.status == "failed" and "n_samples" in failing.message
    ns["n_samples"] = 150
    assert lab.check("iris-rows").status == "passed"


def test_hidden_checks_never_run_in_the_notebook(live):
    lab, _ = live
    with pytest.raises(InputError, match="public checks"):
        lab.check("seeded-sample")
    assert "seeded-sample" not in {r.id for r in lab.check_all()}


def test_check_all_reports_every_public_check(live, home):
    lab, ns = live
    ns.update(name="ada", n_samples=150, state_folder=str(home))
    (lab.workspace / "hello.txt").write_text("Hello from ada")
    assert {r.id: r.status for r in lab.check_all()} == {
        "hello-file": "passed",
        "iris-rows": "passed",
        "state-folder": "passed",
    }


def test_check_results_add_no_repr_under_the_friendly_line(live):
    from IPython.core.formatters import DisplayFormatter

    lab, ns = live
    ns["n_samples"] = 150
    fmt = DisplayFormatter()
    one, every = lab.check("iris-rows"), lab.check_all()
    assert one.status == "passed" and one.score == one.max_score  # still a full CheckResult for code
    for value in (one, every):
        assert fmt.format(value) == ({}, {}), "the coloured line was shown already; no repr below it"
