"""`make lab` works on copies of the notebooks under the state folder: the checkout stays clean, a learner's work is
never overwritten, and a newer release is offered beside it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mlops_workbench import settings
from mlops_workbench.cli import services
from mlops_workbench.jupyter.lab import command
from mlops_workbench.labs.copies import prepare
from mlops_workbench.workbench import Workbench

ROOT = Path(__file__).resolve().parents[1]


def git(project: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    return subprocess.run(["git", *args], cwd=project, env=env, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git checkout with the project's notebooks, labs, params.yaml and .gitignore, committed."""
    path = tmp_path / "checkout"
    shutil.copytree(ROOT / "notebooks", path / "notebooks")
    shutil.copytree(ROOT / "labs", path / "labs", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("params.yaml", ".gitignore"):
        shutil.copy2(ROOT / name, path / name)
    git(path, "init", "-q")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "release")
    monkeypatch.setenv("WORKBENCH_PROJECT", str(path))
    monkeypatch.delenv("WORKBENCH_HOME", raising=False)  # the default: .workbench/ in the checkout
    return path


def answer(path: Path, cell_id: str, source: str) -> None:
    """Type ``source`` into cell ``cell_id`` and save, as JupyterLab does."""
    nb = json.loads(path.read_text())
    next(c for c in nb["cells"] if c.get("id") == cell_id)["source"] = source
    path.write_text(json.dumps(nb, indent=1))


def test_working_through_a_lab_leaves_the_checkout_clean(project: Path) -> None:
    wb = Workbench.from_env()  # the default state folder: .workbench/ in the checkout
    assert git(project, "status", "--porcelain") == ""
    copies = prepare(wb)
    layout = wb.layout
    assert layout.root == project / ".workbench"
    assert {c.lab for c in copies} == {p.stem for p in (project / "notebooks").glob("*.ipynb")}
    assert all(c.status == "copied" and c.path == layout.notebook(c.lab) for c in copies)
    mine = layout.notebook("00-welcome")
    answer(mine, "iris-rows", "n_samples = 150")
    (layout.workspace("00-welcome")).mkdir(parents=True)
    (layout.workspace("00-welcome") / "hello.txt").write_text("hello")
    again = {c.lab: c for c in prepare(wb)}
    assert again["00-welcome"].status == "current" and again["00-welcome"].message is None
    assert "n_samples = 150" in mine.read_text()
    assert git(project, "status", "--porcelain") == ""
    assert (project / "notebooks" / "00-welcome.ipynb").read_text() == (
        ROOT / "notebooks" / "00-welcome.ipynb"
    ).read_text()


def test_a_newer_release_is_offered_beside_changed_work_and_replaces_untouched_copies(project: Path) -> None:
    wb = Workbench.from_env()  # the default state folder: .workbench/ in the checkout
    prepare(wb)
    layout = wb.layout
    mine, untouched = layout.notebook("00-welcome"), layout.notebook("01-ci-basics")
    answer(mine, "iris-rows", "n_samples = 150")
    work = mine.read_text()
    for name in ("00-welcome", "01-ci-basics"):  # the teacher's next release
        answer(project / "notebooks" / f"{name}.ipynb", "lab-header", "*a newer release*")
    git(project, "commit", "-qam", "newer release")
    results = {c.lab: c for c in prepare(wb)}
    offered = results["00-welcome"]
    assert offered.status == "newer" and mine.read_text() == work
    assert offered.update == layout.notebook_update("00-welcome")
    assert offered.update.read_text() == (project / "notebooks" / "00-welcome.ipynb").read_text()
    assert str(offered.update) in offered.message and "kept" in offered.message
    assert results["01-ci-basics"].status == "updated" and "a newer release" in untouched.read_text()
    assert prepare(wb)[0].status == "newer" and mine.read_text() == work  # asked again until the learner decides
    offered.update.unlink()  # "to stay on yours, delete the .new notebook"
    assert prepare(wb)[0].status == "current" and mine.read_text() == work
    assert not offered.update.exists() and git(project, "status", "--porcelain") == ""


def test_a_deleted_copy_starts_over_from_the_release(project: Path) -> None:
    wb = Workbench.from_env()  # the default state folder: .workbench/ in the checkout
    prepare(wb)
    layout = wb.layout
    answer(layout.notebook("00-welcome"), "iris-rows", "n_samples = 150")
    answer(project / "notebooks" / "00-welcome.ipynb", "lab-header", "*newer*")
    assert prepare(wb)[0].status == "newer"
    layout.notebook("00-welcome").unlink()
    again = prepare(wb)[0]
    assert again.status == "copied" and not layout.notebook_update("00-welcome").exists()
    assert again.path.read_text() == (project / "notebooks" / "00-welcome.ipynb").read_text()


def test_workbench_lab_opens_the_copies(project: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    ran: list[list[str]] = []
    monkeypatch.setattr(os, "execv", lambda exe, argv: ran.append(argv))
    services.lab(port=8999, browser=False)
    assert f"--ServerApp.root_dir={project}" in ran[-1]
    assert "--ServerApp.default_url=/lab/tree/.workbench/notebooks" in ran[-1]
    assert "00-welcome: your copy is" in capsys.readouterr().out
    assert Workbench.from_env().layout.notebook("00-welcome").is_file() and git(project, "status", "--porcelain") == ""


def test_a_state_folder_outside_the_project_roots_jupyterlab_there(tmp_path: Path) -> None:
    home = tmp_path / "elsewhere"
    argv = command(ROOT, start=settings.layout(home).notebooks, port=8999, open_browser=False)
    assert f"--ServerApp.root_dir={home.resolve()}" in argv and "--ServerApp.default_url=/lab/tree/notebooks" in argv
    assert "--ServerApp.default_url=/lab/tree/notebooks" in command(ROOT, port=8999)
