"""Out-of-process grading against adversarial submissions of lab 00 (real papermill runs)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

from mlops_workbench.labs.batch import grade_many, validate
from mlops_workbench.labs.format import Lab
from mlops_workbench.labs.grade import fresh_workbench, grade
from mlops_workbench.labs.release import learner_notebook
from mlops_workbench.labs.report import validate_report
from mlops_workbench.procs import RUN_TOKEN_ENV, alive
from mlops_workbench.workbench import Workbench

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def lab(tmp_path) -> Lab:
    """A copy of lab 00 with short time limits, so timeouts are quick to provoke."""
    folder = tmp_path / "labs" / "00-welcome"
    shutil.copytree(ROOT / "labs" / "00-welcome", folder)
    spec = yaml.safe_load((folder / "lab.yaml").read_text())
    spec["timeouts"] = {"cell": 30, "lab": 150}
    (folder / "lab.yaml").write_text(yaml.safe_dump(spec))
    return Lab(folder)


def solution(lab: Lab) -> nbformat.NotebookNode:
    return nbformat.read(lab.source, as_version=4)


def cell(nb, cell_id):
    return next(c for c in nb.cells if c.get("id") == cell_id)


def save(nb, path: Path) -> Path:
    nbformat.write(nb, path)
    return path


def statuses(report) -> dict[str, str]:
    return {c.id: c.status for c in report.checks}


def test_solution_full_marks_and_learner_version_zero(lab, tmp_path, wb):
    result = validate(wb, lab, tmp_path / "v")
    assert result.problems == []
    assert not result.solution.integrity, "the solution lacks only the generated header cell, which is no problem"
    assert result.solution.score == result.solution.max_score == 5
    assert result.solution.passed
    assert result.learner.score == 0 and not result.learner.passed
    assert set(statuses(result.learner).values()) == {"blocked"}  # every exercise cell raised NotImplementedError
    for report in (result.solution, result.learner):
        validate_report(report.model_dump(mode="json"))


def test_endless_loop_deleted_duplicated_edited_cells_and_huge_output(lab, tmp_path):
    nb = solution(lab)
    # a loop that never ends; it sleeps, so that waiting out the 30 s limit does not also burn a core of the suite
    cell(nb, "iris-rows").source = "import time\nwhile True:\n    time.sleep(0.2)"
    cell(nb, "check-rows").source = "print('I edited a read-only cell')"
    cell(nb, "seeded-sample").source = "print('x' * 3_000_000)\nraise ValueError('y' * 100_000)"
    nb.cells = [c for c in nb.cells if c.get("id") != "state-folder"]
    nb.cells.insert(5, nbformat.from_dict(json.loads(json.dumps(cell(nb, "hello-file")))))
    sub = tmp_path / "sub.ipynb"
    sub.write_text(json.dumps(nb))  # nbformat.write would rename the duplicated id
    report = grade(fresh_workbench(Workbench.from_env(), tmp_path / "out"), sub, tmp_path / "out", lab)
    got = statuses(report)
    assert got["hello-file"] == "passed"  # one broken cell never stops the other checks
    assert got["iris-rows"] == "timeout"
    assert got["seeded-sample"] == "blocked"
    assert got["state-folder"] == "blocked" and "missing" in report.checks[3].message
    problems = {(i.cell, i.problem) for i in report.integrity}
    assert {("state-folder", "deleted"), ("hello-file", "duplicated"), ("check-rows", "edited-read-only")} <= problems
    executed = nbformat.read(tmp_path / "out" / "executed.ipynb", as_version=4)
    assert "I edited a read-only cell" not in json.dumps(executed.cells), "read-only cells run as released"
    assert all(len(c.message) < 2500 for c in report.checks)
    assert all(len(c.error or "") < 2500 for c in report.cells)
    validate_report(json.loads((tmp_path / "out" / "report.json").read_text()))


def test_kernel_that_dies_blocks_only_what_follows(lab, tmp_path):
    nb = solution(lab)
    cell(nb, "seeded-sample").source = "import os\nos._exit(1)"
    report = grade(
        fresh_workbench(Workbench.from_env(), tmp_path / "out"), save(nb, tmp_path / "sub.ipynb"), tmp_path / "out", lab
    )
    got = statuses(report)
    assert report.execution_status == "kernel-died"
    assert got["hello-file"] == got["iris-rows"] == "passed"
    assert got["seeded-sample"] == "blocked" and "kernel died" in report.checks[2].message
    assert got["state-folder"] == "blocked"


def test_system_exit_is_an_error_in_that_cell(lab, tmp_path):
    nb = solution(lab)
    cell(nb, "iris-rows").source = "raise SystemExit(3)"
    report = grade(
        fresh_workbench(Workbench.from_env(), tmp_path / "out"), save(nb, tmp_path / "sub.ipynb"), tmp_path / "out", lab
    )
    got = statuses(report)
    assert got["iris-rows"] == "blocked" and "SystemExit" in report.checks[1].message
    assert got["hello-file"] == got["seeded-sample"] == got["state-folder"] == "passed"


def test_redefined_check_and_fake_results_do_not_change_the_grade(lab, tmp_path):
    nb = learner_notebook(lab)
    cheat = nbformat.v4.new_code_cell(
        "import json, os, pathlib\n"
        "def check(*args, **kwargs):\n    print('all passed!')\n"
        "home = pathlib.Path(os.environ['WORKBENCH_HOME'])\n"
        "(home / 'results').mkdir(exist_ok=True)\n"
        "fake = {'lab': '00-welcome', 'score': 5, 'max_score': 5, 'passed': True}\n"
        "for p in (home / 'results' / '00-welcome.json', pathlib.Path('report.json')):\n"
        "    p.write_text(json.dumps(fake))\n"
    )
    cheat.id = "cheat"
    nb.cells.insert(3, cheat)
    out = tmp_path / "out"
    report = grade(fresh_workbench(Workbench.from_env(), out), save(nb, tmp_path / "sub.ipynb"), out, lab)
    assert report.score == 0 and not report.passed
    assert json.loads((out / "report.json").read_text())["score"] == 0
    assert json.loads((out / "home" / "results" / "00-welcome.json").read_text())["passed"] is False


def test_lab_timeout_stops_the_kernel_and_reports_the_rest(lab, tmp_path):
    spec = yaml.safe_load((lab.folder / "lab.yaml").read_text())
    spec["timeouts"] = {"cell": 120, "lab": 45}
    (lab.folder / "lab.yaml").write_text(yaml.safe_dump(spec))
    lab = Lab(lab.folder)
    nb = solution(lab)
    pid_file = tmp_path / "kernel.pid"
    cell(nb, "seeded-sample").source = (
        f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        "while True:\n    try:\n        time.sleep(1)\n    except KeyboardInterrupt:\n        pass"
    )
    report = grade(
        fresh_workbench(Workbench.from_env(), tmp_path / "out"), save(nb, tmp_path / "sub.ipynb"), tmp_path / "out", lab
    )
    got = statuses(report)
    assert report.execution_status == "timeout"
    assert got["hello-file"] == "passed"
    assert got["seeded-sample"] == got["state-folder"] == "timeout"
    pid = int(pid_file.read_text())
    assert not alive(pid), f"the kernel of a timed-out run must be killed; it still runs: {describe(pid)}"


def describe(pid: int) -> str:
    """What a failure message needs to tell a missed kill from a slow one: the process's state and run token."""
    try:
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError as exc:
        return f"unreadable ({exc})"
    token = [v.decode() for v in environ if v.startswith(RUN_TOKEN_ENV.encode())]
    return f"{[line for line in status if line.startswith(('Name', 'State', 'PPid'))]}, token {token}"


def test_batch_keeps_every_result_when_one_submission_is_broken(lab, tmp_path, wb):
    good = save(solution(lab), tmp_path / "good.ipynb")
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{ this is not json")
    no_kernel = solution(lab)
    no_kernel.metadata.pop("kernelspec")
    nokernel = save(no_kernel, tmp_path / "nokernel.ipynb")
    reports = grade_many(wb, [good, bad, nokernel], tmp_path / "out", lab=lab, jobs=2)
    assert reports[good].passed and reports[good].score == 5
    assert "bad.ipynb is not valid notebook JSON" in reports[bad].error
    assert "kernel" in reports[nokernel].error and "nokernel.ipynb" in reports[nokernel].error
    assert {c.status for c in reports[bad].checks} == {"error"}
    for folder in (tmp_path / "out").iterdir():
        assert {"report.json", "report.html", "junit.xml", "gradescope.json"} <= {p.name for p in folder.iterdir()}


def test_cells_saved_without_ids_are_normalized_graded_and_reported(lab, tmp_path, wb):
    # what older editors and scripts save: the learner's added cells carry no "id" (here in nbformat 4.5)
    nb = json.loads(nbformat.writes(solution(lab)))
    note = {"cell_type": "markdown", "metadata": {}, "source": "my notes"}
    scratch = {"cell_type": "code", "metadata": {}, "source": "scratch = 1", "outputs": [], "execution_count": None}
    nb["cells"][3:3] = [note, scratch]
    sub = tmp_path / "00-welcome.ipynb"
    sub.write_text(json.dumps(nb))
    out = tmp_path / "out"
    report = grade_many(wb, [sub], out, lab=lab, jobs=1)[sub]
    assert report.error is None and report.lab == "00-welcome"
    assert report.score == report.max_score  # the solution still scores full marks
    added = [i for i in report.integrity if i.problem == "id-added"]
    assert [i.cell for i in added] == ["added-3", "added-4"] and "no id" in added[0].message
    assert not [i for i in report.integrity if i.problem == "duplicated"]
    written = next(out.glob("*/report.json"))
    validate_report(json.loads(written.read_text()))


def test_grading_stops_what_the_notebook_started_and_keeps_what_ran_before(lab, tmp_path):
    """The pipeline's stages share one MLflow server in their state folder: grading a stage must not stop it,
    while every service the notebook started is stopped."""
    from mlops_workbench import procs

    home, pid_file = tmp_path / "home", tmp_path / "notebook-service.pid"
    http_server = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1"]
    port = procs.free_port()
    shared = procs.start(Workbench.from_env(home), "shared", [*http_server, str(port)], port, health_path="/")
    nb = solution(lab)
    nb.cells.append(
        nbformat.v4.new_code_cell(
            "from pathlib import Path\nfrom mlops_workbench import procs\nfrom mlops_workbench.workbench import Workbench\n"
            f"svc = procs.start(Workbench.from_env(), 'from-notebook', {http_server!r} + [str(p := procs.free_port())], p, health_path='/')\n"
            f"Path({str(pid_file)!r}).write_text(str(svc.pid))"
        )
    )
    try:
        report = grade(Workbench.from_env(home), save(nb, tmp_path / "sub.ipynb"), tmp_path / "out", lab)
        assert report.score == report.max_score, report.checks
        notebook_pid = int(pid_file.read_text())
        assert not alive(notebook_pid) and procs.get(Workbench.from_env(home), "from-notebook") is None
        assert [s.name for s in procs.running(Workbench.from_env(home))] == ["shared"] and alive(shared.pid)
    finally:
        procs.stop_all(Workbench.from_env(home))
