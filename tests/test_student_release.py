"""`workbench labs release --student DIR` and `workbench grade --checks-from TREE`.

The student tree is scanned file by file against what the instructor tree holds: solution regions and their
lines, hidden check declarations and names. Lab 00 (the cheapest) is graded from the tree with its public checks,
then with the instructor's hidden ones.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from typer.testing import CliRunner

from mlops_workbench.cli.main import app
from mlops_workbench.labs.checks import load_checks
from mlops_workbench.labs.format import BEGIN, END, Lab, LabFormatError
from mlops_workbench.labs.student import (
    MARKER,
    audit,
    checks_tree,
    public_checks_source,
    release_student,
    student_makefile,
)

ROOT = Path(__file__).resolve().parents[1]
LABS = Lab.all(ROOT / "labs")
# Package files that share a line with a lab's solution, and why that is no answer handed over.
SHARED_LINES = {
    "src/mlops_workbench/ci/templates/ci_project/_github/workflows/ci.learner.yml": "lab 01: the learner's "
    "workflow skeleton, which gives the pinned actions the solution uses",
    "src/mlops_workbench/ci/templates/dvc_retrain/_github/workflows/retrain.yml": "lab 01: lab 07's retrain "
    "workflow pins the same actions, which lab 01's learner skeleton shows anyway",
    "src/mlops_workbench/ci/workflow.py": "lab 01: the validator's hints naming a step to add, which the public "
    "check shows the learner anyway",
    "src/mlops_workbench/registry/candidates.py": "lab 02: a one-line commit message of the package's own workspace",
    "src/mlops_workbench/versioning/lineage.py": "lab 02: the tag dictionary key the package writes itself",
    "src/mlops_workbench/versioning/stages.py": "lab 02: a docstring example calling versioning.reproduce",
    "src/mlops_workbench/k8s/render.py": "lab 05: the package's renderer (its functions are answer functions, "
    "scored 0 when a notebook calls them)",
    "src/mlops_workbench/k8s/promql.py": "lab 05: the package's PromQL for `workbench k8s render` (its functions are "
    "answer functions, scored 0 when a notebook calls them)",
    "src/mlops_workbench/rollout/analysis.py": 'lab 05: `if metric.kind == "errorRate":`, the local analysis\'s own '
    "dispatch on the metric kind",
    "src/mlops_workbench/rollout/controller.py": "lab 04: `except MetricsUnavailable as err:` around the local "
    "controller's metrics read",
    "src/mlops_workbench/rollout/replay.py": "lab 05: the same line in the replay",
    "src/mlops_workbench/drills/signature_mismatch.py": "lab 06: the drill's own reference fix, not a lab answer",
}


def solution_lines(lab: Lab) -> set[str]:
    """Distinctive lines inside the solution regions of ``lab`` that its learner notebook does not show."""
    shown = "\n".join(c.source for c in nbformat.read(lab.learner_path, as_version=4).cells)
    lines, inside = set(), False
    for cell in nbformat.read(lab.source, as_version=4).cells:
        for line in cell.source.splitlines():
            text = line.strip()
            if text.startswith((BEGIN, END)):
                inside = text.startswith(BEGIN)
            elif inside and len(text) >= 30 and not text.startswith(("#", "import ", "from ")) and text not in shown:
                lines.add(text)
    return lines


def texts(tree: Path) -> dict[str, str]:
    """Every file of ``tree`` as text; notebooks as their cells' sources (what a reader of the file sees)."""
    out = {}
    for path in sorted(p for p in tree.rglob("*") if p.is_file()):
        text = path.read_text(errors="replace")
        if path.suffix == ".ipynb":
            text += "\n" + "\n".join(c.source for c in nbformat.reads(text, as_version=4).cells)
        out[path.relative_to(tree).as_posix()] = text
    return out


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("student") / "release"
    release_student(ROOT, dest, LABS)
    return dest


def test_the_tree_holds_no_solution_region_and_no_solution_line(tree: Path) -> None:
    files = texts(tree)
    regions = [
        name for name, text in files.items() if any(line.strip().startswith((BEGIN, END)) for line in text.splitlines())
    ]
    assert regions == []
    sources = [
        name
        for name in files
        if name.endswith("lab.ipynb") and "workbench" not in json.loads((tree / name).read_text())["metadata"]
    ]
    assert sources == []  # every lab.ipynb is a learner notebook (its metadata names the lab)
    for lab in LABS:
        for line in solution_lines(lab):
            found = [name for name, text in files.items() if line in text and name not in SHARED_LINES]
            assert not found, f"{lab.id}'s solution line {line!r} is in {found}"
    scaffold = tree / "src/mlops_workbench/ci/templates/ci_project"
    assert (scaffold / "Dockerfile.learner").is_file() and not (scaffold / "tests/test_data.py").exists()


def test_the_tree_holds_no_hidden_check(tree: Path) -> None:
    files = texts(tree)
    for lab in LABS:
        instructor = lab.checks
        hidden = [c for c in instructor if c.visibility == "hidden"]
        student = load_checks(tree / "labs" / lab.id / "checks.py")
        assert [c.id for c in student] == [c.id for c in instructor if c.visibility == "public"]
        for check in hidden:  # its declaration anywhere; its function's name in the labs (the package may reuse it)
            assert not [name for name, text in files.items() if f'check("{check.id}"' in text], check.id
            needle = f"def {check.func.__name__}("
            assert not [name for name, text in files.items() if name.startswith("labs/") and needle in text], needle
        text = files[f"labs/{lab.id}/checks.py"]
        assert "hidden=True" not in text
        shipped = {p.name for p in (tree / "labs" / lab.id).iterdir() if p.name != "__pycache__"}  # other tests load
        assert shipped == {"lab.ipynb", "lab.yaml", "checks.py"}  # its checks
    assert (ROOT / "labs" / "02-versioning" / "scenarios.py").is_file()  # lab 02's hidden scenarios stay behind
    # data only the hidden checks used goes with them (lab 03's planted gate cases, lab 04's planted windows)
    assert "GATE_PLANTED" not in files["labs/03-registry-promotion/checks.py"]
    assert "PLANTED" not in files["labs/04-canary-rollback/checks.py"]
    assert json.loads(files[MARKER])["hidden_checks_removed"]["00-welcome"] == 1
    assert "seeded-sample" not in files[MARKER]  # not even its id


def test_the_tree_is_a_project_with_the_learner_notebooks(tree: Path) -> None:
    assert [lab.id for lab in Lab.all(tree / "labs")] == [lab.id for lab in LABS]
    for lab in LABS:
        released = lab.learner_path.read_text()
        assert (tree / "labs" / lab.id / "lab.ipynb").read_text() == released
        assert (tree / "notebooks" / f"{lab.id}.ipynb").read_text() == released
    for name in (
        "README.md",
        "pyproject.toml",
        "requirements.lock",
        "params.yaml",
        "src/mlops_workbench/__init__.py",
        "deploy/k8s/schemas/package.json",
    ):
        assert (tree / name).is_file(), name
    assert "make lab" in (tree / "README.md").read_text()
    if shutil.which("make"):
        ok = subprocess.run(["make", "-n", "setup", "lab"], cwd=tree, capture_output=True, text=True, check=False)
        assert ok.returncode == 0, ok.stderr
        assert "workbench lab" in ok.stdout
        demo = subprocess.run(["make", "-n", "demo"], cwd=tree, capture_output=True, text=True, check=False)
        assert demo.returncode != 0 and "demo" in demo.stderr


def test_the_tree_refuses_to_be_released_again_or_graded_with(tree: Path, tmp_path: Path) -> None:
    with pytest.raises(LabFormatError, match="student release"):
        release_student(tree, tmp_path / "again", LABS[:1])
    with pytest.raises(LabFormatError, match="no hidden checks"):
        checks_tree(tree)
    with pytest.raises(LabFormatError, match="holds no labs/"):
        checks_tree(tmp_path)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "work.ipynb").write_text("{}")
    with pytest.raises(LabFormatError, match="not an empty folder"):
        release_student(ROOT, tmp_path / "busy", LABS[:1])


def _run_in_tree(tree: Path, code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(tree / "src"), "WORKBENCH_PROJECT": str(tree)}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=tree, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_public_check_runs_from_the_tree_and_hidden_ones_are_gone(tree: Path, tmp_path: Path) -> None:
    code = f"""
import __main__, mlops_workbench
from mlops_workbench.errors import InputError
from mlops_workbench.labs.session import start
assert mlops_workbench.__file__.startswith({str(tree)!r}), mlops_workbench.__file__
lab = start("00", chdir=False)
__main__.n_samples = 150
assert lab.check("iris-rows").status == "passed"
__main__.n_samples = 149
assert lab.check("iris-rows").status == "failed"
try:
    lab.check("seeded-sample")
except InputError as exc:
    print("refused:", exc)
"""
    done = _run_in_tree(tree, code)
    assert done.returncode == 0, done.stderr
    assert "refused: No public check 'seeded-sample'" in done.stdout


def test_the_full_scaffold_is_not_in_the_tree(tree: Path, tmp_path: Path) -> None:
    code = f"""
from mlops_workbench.ci import scaffold
scaffold.scaffold_ci_project({str(tmp_path / "learner")!r}, learner=True)
scaffold.scaffold_ci_project({str(tmp_path / "full")!r})
"""
    done = _run_in_tree(tree, code)
    assert done.returncode != 0 and "lab 01's answers" in done.stderr and "learner=True" in done.stderr
    assert (tmp_path / "learner" / "iris_model" / "model.py").is_file() and not (tmp_path / "full").exists()


def wrong_sample_submission(path: Path) -> Path:
    """Lab 00's solution with a sample that is not the seeded draw: the public checks pass, the hidden one fails."""
    nb = nbformat.read(Lab.find("00", ROOT / "labs").source, as_version=4)
    cell = next(c for c in nb.cells if c.get("id") == "seeded-sample")
    cell.source = "sample = [1, 2, 3, 4, 5]"
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
def test_grade_in_the_tree_uses_public_checks_and_checks_from_adds_the_hidden(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    submission = wrong_sample_submission(tmp_path / "00-welcome.ipynb")
    monkeypatch.chdir(tree)
    monkeypatch.setenv("WORKBENCH_PROJECT", str(tree))
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    public = runner.invoke(app, ["grade", str(submission), "--out", str(tmp_path / "public"), "--seed", "3"])
    report = json.loads(next((tmp_path / "public").glob("*/report.json")).read_text())
    assert public.exit_code == 0, public.output
    assert {c["id"]: c["status"] for c in report["checks"]} == {
        "hello-file": "passed",
        "iris-rows": "passed",
        "state-folder": "passed",
    }
    assert report["score"] == report["max_score"] == 3

    hidden = runner.invoke(
        app, ["grade", str(submission), "--out", str(tmp_path / "hidden"), "--seed", "3", "--checks-from", str(ROOT)]
    )
    report = json.loads(next((tmp_path / "hidden").glob("*/report.json")).read_text())
    statuses = {c["id"]: (c["status"], c["visibility"]) for c in report["checks"]}
    assert statuses["seeded-sample"] == ("failed", "hidden"), hidden.output
    assert report["score"] == 3 and report["max_score"] == 5 and hidden.exit_code == 1
    refused = runner.invoke(app, ["grade", str(submission), "--checks-from", str(tree)])
    assert refused.exit_code == 2 and "no hidden checks" in refused.output


CHECKS = '''"""Checks."""

import json
from pathlib import Path, PurePath

from mlops_workbench.labs.checks import Context, check, fail

SHARED = 3
PLANTED = [(1, 2)]  # only the hidden check uses it


def shared(ctx):
    return SHARED


def planted_cases():
    return PLANTED


@check("public-one", points=1)
def public_one(ctx: Context) -> None:
    """A public check."""
    if shared(ctx) != Path("x").name:
        fail("no")


# the hidden check below grades planted cases
@check("hidden-one", points=2, hidden=True)
def hidden_one(ctx: Context) -> None:
    """A hidden check."""
    assert json.dumps(planted_cases()) and PurePath("y")
'''


def test_public_checks_source_drops_hidden_checks_and_what_only_they_use(tmp_path: Path) -> None:
    path = tmp_path / "checks.py"
    path.write_text(CHECKS)
    text, removed = public_checks_source(path)
    assert removed == ["hidden-one"]
    for gone in ("hidden", "PLANTED", "planted_cases", "import json", "PurePath", "grades planted"):
        assert gone not in text, gone
    assert "from pathlib import Path\n" in text and "SHARED = 3" in text and "def shared(" in text
    compile(text, "checks.py", "exec")
    path.write_text(CHECKS.replace("    if shared(ctx)", "    hidden_one(ctx)\n    if shared(ctx)"))
    with pytest.raises(LabFormatError, match="defined by a hidden check"):
        public_checks_source(path)
    path.write_text(CHECKS.replace("hidden=True", "hidden=bool(1)"))
    with pytest.raises(LabFormatError, match="as literals"):
        public_checks_source(path)
    path.write_text(CHECKS + "\ncheck('late', hidden=True)(public_one)\n")
    with pytest.raises(LabFormatError, match="outside a decorator"):
        public_checks_source(path)


def test_student_makefile_keeps_setup_and_lab_only() -> None:
    text = student_makefile((ROOT / "Makefile").read_text())
    assert "\nsetup:" in text and "\nlab: setup" in text and "\ndemo:" not in text and "\ntest:" not in text
    assert (
        ".PHONY: setup lab lock clean" in text
        and "\nlint:" not in text
        and "bench" not in text.split(".PHONY")[1].splitlines()[0]
    )


def test_audit_refuses_an_instructor_file_in_a_lab_folder(tmp_path: Path) -> None:
    folder = tmp_path / "labs" / "02-versioning"
    folder.mkdir(parents=True)
    (folder / "scenarios.py").write_text('"""Hidden scenarios."""\n')
    (folder / "lab.yaml").write_text("title: t\n")
    assert audit(tmp_path) == [
        "labs/02-versioning/scenarios.py is an instructor file (a student lab folder holds "
        "only lab.ipynb, lab.yaml, checks.py)"
    ]
