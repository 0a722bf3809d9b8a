"""The `workbench labs` and `workbench grade` commands in a small copy of the project."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlops_workbench.cli.main import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture
def project(tmp_path, monkeypatch, home) -> Path:
    """A project with only lab 00, released."""
    dest = tmp_path / "project"
    shutil.copytree(ROOT / "labs" / "00-welcome", dest / "labs" / "00-welcome")
    shutil.copy(ROOT / "params.yaml", dest / "params.yaml")
    monkeypatch.setenv("WORKBENCH_PROJECT", str(dest))
    assert runner.invoke(app, ["labs", "release"]).exit_code == 0
    return dest


def test_release_check_fails_when_notebooks_are_stale(project):
    assert runner.invoke(app, ["labs", "release", "--check"]).exit_code == 0
    learner = project / "notebooks" / "00-welcome.ipynb"
    nb = json.loads(learner.read_text())
    nb["cells"][0]["source"] = "# edited by hand"
    learner.write_text(json.dumps(nb))
    result = runner.invoke(app, ["labs", "release", "--check"])
    assert result.exit_code == 1
    assert "stale notebooks/00-welcome.ipynb" in result.output and "workbench labs release" in result.output
    assert json.loads(learner.read_text())["cells"][0]["source"] == "# edited by hand", "--check writes nothing"


def test_list_shows_points_and_unknown_lab_is_named(project):
    result = runner.invoke(app, ["labs", "list"])
    assert result.exit_code == 0 and "00-welcome" in result.output
    result = runner.invoke(app, ["labs", "validate", "42"])
    assert result.exit_code == 2 and "No lab called '42'" in result.output


@pytest.mark.slow
def test_grade_exit_code_follows_the_pass_mark(project, tmp_path):
    solution = project / "labs" / "00-welcome" / "lab.ipynb"
    learner = project / "notebooks" / "00-welcome.ipynb"
    out = tmp_path / "grades"
    result = runner.invoke(app, ["grade", str(solution), str(learner), "--out", str(out), "--jobs", "2"])
    assert result.exit_code == 1, result.output
    reports = sorted(out.glob("*/report.json"))
    assert len(reports) == 2
    assert sorted(json.loads(p.read_text())["score"] for p in reports) == [0, 5]
    result = runner.invoke(app, ["grade", str(solution), "--out", str(tmp_path / "solo")])
    assert result.exit_code == 0, result.output
    folder = next((tmp_path / "solo").glob("*/report.html")).parent
    assert f"reports: {folder / 'report.html'}" in " ".join(result.output.split()), "grade says where the reports went"


SEEDED_CHECK = """

@check("seeded-scenario", points=1, hidden=True)
def seeded_scenario(ctx: Context) -> None:
    \"\"\"A check whose hidden case comes from the grading run's seed.\"\"\"
    fail(f"case {ctx.rng('case').randrange(10**9)}")
"""


@pytest.mark.slow
def test_grade_records_its_seed_and_seed_replays_the_hidden_scenarios(project, tmp_path):
    with (project / "labs" / "00-welcome" / "checks.py").open("a") as handle:
        handle.write(SEEDED_CHECK)
    solution = project / "labs" / "00-welcome" / "lab.ipynb"
    copies = [shutil.copy(solution, tmp_path / f"{name}.ipynb") for name in ("first", "second")]
    result = runner.invoke(
        app, ["grade", *map(str, copies), "--lab", "00", "--out", str(tmp_path / "seven"), "--seed", "7"]
    )
    assert "seed 7 (workbench grade --seed 7 replays them)" in " ".join(result.output.split()), result.output

    def graded(folder: Path) -> list[tuple[int, str]]:
        reports = [json.loads(p.read_text()) for p in sorted(folder.glob("*/report.json"))]
        return [(r["seed"], next(c["message"] for c in r["checks"] if c["id"] == "seeded-scenario")) for r in reports]

    seven = graded(tmp_path / "seven")
    assert len(seven) == 2 and seven[0] == seven[1] and seven[0][0] == 7, "the same seed gives the same case"
    runner.invoke(app, ["grade", str(copies[0]), "--lab", "00", "--out", str(tmp_path / "fresh")])
    ((seed, message),) = graded(tmp_path / "fresh")
    assert isinstance(seed, int) and 0 <= seed < 1_000_000
    assert (seed == 7) == (message == seven[0][1]), "a fresh seed draws its own case"


def test_down_stops_one_named_service_and_names_the_running_ones(home, wb):
    import sys

    from mlops_workbench import procs

    for name in ("svc-a", "a-much-longer-service-name-b"):
        port = procs.free_port()
        procs.start(
            wb, name, [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"], port, health_path="/"
        )
    listing = runner.invoke(app, ["ps"]).output.splitlines()
    assert listing[0].split() == ["NAME", "PID", "URL", "LOG"] and len(listing) == 3
    starts = {
        line.index(word)
        for line, word in zip(listing, ["PID", *(line.split()[1] for line in listing[1:])], strict=True)
    }
    assert len(starts) == 1, listing  # the pid column starts at the same place on every line, whatever the names
    result = runner.invoke(app, ["down", "svc-a"])
    assert result.exit_code == 0 and "stopped svc-a" in result.output
    assert procs.get(wb, "svc-a") is None and procs.get(wb, "a-much-longer-service-name-b") is not None
    result = runner.invoke(app, ["down", "lab03-serve"])
    assert result.exit_code == 1 and "No service 'lab03-serve'" in result.output and "service-name-b" in result.output
    result = runner.invoke(app, ["down"])
    assert result.exit_code == 0 and "service-name-b" in result.output and procs.running(wb) == []
