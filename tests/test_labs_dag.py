"""The lab DAG: which labs share a state folder, how the pipeline schedules labs (fake runs), and the grader's
block on a lab whose dependency failed."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import yaml

from mlops_workbench import settings
from mlops_workbench.labs.dag import schedule, state_groups
from mlops_workbench.labs.format import Lab
from mlops_workbench.labs.grade import grade
from mlops_workbench.labs.pipeline import stages, state_folder
from mlops_workbench.labs.report import Report
from mlops_workbench.workbench import Workbench


def labs(root: Path, deps: dict[str, list[str]], run_seconds: dict[str, int] | None = None) -> list[Lab]:
    for lab_id, depends_on in deps.items():
        spec = {"title": lab_id, "level": "beginner", "objectives": ["learn"], "minutes": 5, "depends_on": depends_on}
        (root / lab_id).mkdir(parents=True)
        (root / lab_id / "lab.yaml").write_text(
            yaml.safe_dump({**spec, "run_seconds": (run_seconds or {}).get(lab_id, 60)})
        )
    return Lab.all(root)


def test_labs_linked_by_depends_on_share_a_state_group_and_the_others_have_their_own(tmp_path):
    found = labs(
        tmp_path, {"00-a": [], "01-b": [], "02-c": ["01-b"], "03-d": ["02-c"], "04-e": [], "05-f": ["04-e", "00-a"]}
    )
    assert state_groups(found) == {
        "00-a": "00-a",
        "01-b": "01-b",
        "02-c": "01-b",
        "03-d": "01-b",
        "04-e": "00-a",
        "05-f": "00-a",
    }


def test_each_shipped_lab_runs_in_its_own_state_folder_apart_from_the_learners(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))
    wb = Workbench.from_env()
    shipped = Lab.all()
    folders = {state_folder(wb, lab) for lab in shipped}
    assert len(folders) == len(shipped), "every lab builds its own state, so no two share a folder"
    assert all(f.parent == wb.layout.pipeline for f in folders)
    deps = {name: spec["deps"] for name, spec in stages(shipped)["stages"].items()}
    assert not any(d.endswith("report.json") for ds in deps.values() for d in ds), "no stage waits for another"


def test_independent_labs_run_side_by_side_but_never_more_than_jobs_at_once(tmp_path):
    found = labs(tmp_path, {f"0{i}-lab": [] for i in range(5)})
    meet = threading.Barrier(2, timeout=20)  # the first two labs break it unless they overlap
    lock, running, most = threading.Lock(), [0], [0]

    def run(lab: Lab) -> bool:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        if lab.id in ("00-lab", "01-lab"):
            meet.wait()
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return True

    assert schedule(found, run, jobs=2) == {lab.id: "passed" for lab in found}
    assert most[0] == 2


def test_a_lab_starts_only_after_every_lab_it_depends_on_passed(tmp_path):
    found = labs(tmp_path, {"00-a": ["02-c"], "01-b": [], "02-c": ["01-b"]})
    finished: list[str] = []
    order: list[tuple[str, list[str]]] = []

    def run(lab: Lab) -> bool:
        order.append((lab.id, list(finished)))
        time.sleep(0.02)
        finished.append(lab.id)
        return True

    assert schedule(found, run, jobs=3) == {"00-a": "passed", "01-b": "passed", "02-c": "passed"}
    assert order == [("01-b", []), ("02-c", ["01-b"]), ("00-a", ["01-b", "02-c"])]


def test_labs_after_a_failure_are_skipped_and_independent_ones_still_run(tmp_path):
    found = labs(tmp_path, {"00-a": [], "01-b": ["00-a"], "02-c": ["01-b"], "03-d": []})
    ran: list[str] = []

    def run(lab: Lab) -> bool:
        ran.append(lab.id)
        return lab.id != "00-a"

    outcome = schedule(found, run, jobs=1)
    assert outcome == {"00-a": "failed", "01-b": "skipped", "02-c": "skipped", "03-d": "passed"}
    assert ran == ["00-a", "03-d"]


def test_ready_labs_start_longest_first_then_in_id_order_one_at_a_time_with_one_job(tmp_path):
    found = labs(
        tmp_path, {"02-c": [], "00-a": [], "01-b": [], "03-d": ["02-c"]}, run_seconds={"01-b": 90, "03-d": 300}
    )
    ran: list[str] = []
    assert schedule(found, lambda lab: ran.append(lab.id) is None, jobs=1) == {
        "00-a": "passed",
        "01-b": "passed",
        "02-c": "passed",
        "03-d": "passed",
    }
    assert ran == ["01-b", "00-a", "02-c", "03-d"], "the longest ready lab first; 03-d waits for 02-c however long"


def test_grading_blocks_a_lab_whose_dependency_failed_without_running_it(tmp_path):
    copy = tmp_path / "labs" / "01-next"
    shutil.copytree(Lab.find("00-welcome").folder, copy)
    (copy / "lab.yaml").write_text(
        (copy / "lab.yaml").read_text().replace("depends_on: []", "depends_on: [00-welcome]")
    )
    lab, home = Lab(copy), tmp_path / "home"
    result = settings.layout(home).results / "00-welcome.json"
    result.parent.mkdir(parents=True)
    failed = Report(
        lab="00-welcome", submission="x.ipynb", score=1, max_score=5, pass_mark=0.8, passed=False, checks=[]
    )
    result.write_text(failed.model_dump_json())
    report = grade(Workbench.from_env(home), lab.source, tmp_path / "out", lab)
    assert not report.passed and report.execution_status == "not-run" and report.cells == []
    assert {c.status for c in report.checks} == {"blocked"} and "00-welcome must pass first" in report.error
    assert not settings.layout(home).workspace(lab.id).exists(), "a blocked lab never runs"
