"""Release of learner notebooks from the instructor sources."""

from __future__ import annotations

import inspect
import json
import os
import shutil
import subprocess
import sys

import nbformat
import pytest
import yaml

from mlops_workbench import settings
from mlops_workbench.labs.format import BEGIN, Lab, LabFormatError, has_solution, read_notebook
from mlops_workbench.labs.pipeline import GIT_IDENTITY, write_dvc_yaml
from mlops_workbench.labs.release import HIDDEN_STUB, STUB, learner_notebook, record_outputs, release, strip_solutions

LABS = Lab.all()


def test_strip_keeps_code_outside_regions_and_indentation():
    src = "import os\ndef f():\n    # BEGIN SOLUTION\n    return 1\n    # END SOLUTION\nprint(f)"
    assert strip_solutions(src) == f"import os\ndef f():\n    {STUB}\nprint(f)"


@pytest.mark.parametrize(
    "src, problem",
    [
        ("# BEGIN SOLUTION\nx = 1", "never closed"),
        ("x = 1\n# END SOLUTION", "without a"),
        ("# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION", "second"),
    ],
)
def test_unbalanced_regions_are_named(src, problem):
    with pytest.raises(LabFormatError, match=problem):
        strip_solutions(src, where="lab.ipynb cell 'x'")


def test_notebooks_and_dvc_yaml_are_in_sync_with_labs():
    assert release(LABS, check=True) == [], "notebooks/ is stale: run `workbench labs release` and commit"
    assert not write_dvc_yaml(LABS, check=True), "dvc.yaml is stale: run `workbench labs release` and commit"


def test_bytecode_written_beside_the_package_leaves_the_lab_stages_up_to_date(tmp_path):
    """Every lab stage depends on src/mlops_workbench, where Python caches bytecode as the labs import it: with the
    project's .dvcignore, a new .pyc there leaves `dvc status` clean, so a second `make demo` reruns nothing."""
    env = {**os.environ, **GIT_IDENTITY, "DVC_NO_ANALYTICS": "1"}
    package = tmp_path / "src" / "mlops_workbench"
    package.mkdir(parents=True)
    (package / "stage.py").write_text("print('stage')\n")
    shutil.copy(settings.project_root() / ".dvcignore", tmp_path / ".dvcignore")
    (tmp_path / "dvc.yaml").write_text(
        yaml.safe_dump(
            {
                "stages": {
                    "lab": {
                        "cmd": "python src/mlops_workbench/stage.py > out.txt",
                        "deps": ["src/mlops_workbench"],
                        "outs": ["out.txt"],
                    }
                }
            }
        )
    )
    dvc = [sys.executable, "-m", "dvc"]
    for cmd in (["git", "init", "-q"], [*dvc, "init", "-q"], [*dvc, "repro", "-q"]):
        subprocess.run(cmd, cwd=tmp_path, env=env, check=True, capture_output=True)
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "stage.cpython-311.pyc").write_bytes(b"compiled")
    status = subprocess.run(
        [*dvc, "status", "--json"], cwd=tmp_path, env=env, check=True, capture_output=True, text=True
    ).stdout
    assert json.loads(status or "{}") == {}


@pytest.mark.parametrize("lab", LABS, ids=[lab.id for lab in LABS])
def test_learner_version_has_no_solutions_outputs_or_instructor_cells(lab):
    source = read_notebook(lab.source)
    nb = learner_notebook(lab)
    text = nbformat.writes(nb)
    assert BEGIN not in text
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    instructor = {c.id for c in source.cells if "instructor" in c.metadata.get("tags", [])}
    assert not instructor & {c.id for c in nb.cells}
    solution_cells = [c for c in source.cells if has_solution(c)]
    assert solution_cells, f"{lab.id} has no exercises"
    assert sum(c.source.count(STUB) + c.source.count(HIDDEN_STUB) for c in nb.cells) >= len(solution_cells)
    public = {cid for check in lab.checks if check.visibility == "public" for cid in check.cells}
    for c in nb.cells:  # "run check() below" only where a public check exists (lab 00 Exercise 3 is hidden-only)
        assert STUB not in c.source or c.id in public, (
            f"{lab.id} cell {c.id} tells the learner to run a check() it has not"
        )
    sources = "\n".join(c.source for c in nb.cells)
    for check in (c for c in lab.checks if c.visibility == "hidden"):
        body = [
            line.strip()
            for line in inspect.getsource(check.func).splitlines()[1:]
            if len(line.strip()) > 25 and not line.strip().startswith(("import ", "from "))
        ]  # imports tell nothing
        assert not [line for line in body if line in sources], f"hidden check {check.id} leaked into the notebook"


@pytest.mark.parametrize("lab", LABS, ids=[lab.id for lab in LABS])
def test_lab_format(lab):
    nb = read_notebook(lab.source)
    assert nb.metadata.kernelspec.name == "python3"
    assert sum("parameters" in c.metadata.get("tags", []) for c in nb.cells) == 1
    ids = [c.id for c in nb.cells]
    assert len(ids) == len(set(ids)), "cell ids must be unique"
    for check in lab.checks:
        assert set(check.cells) <= set(ids), f"check {check.id} names cells that do not exist"
    assert lab.spec.depends_on == [d for d in lab.spec.depends_on if Lab.find(d)]


def test_lab_yaml_errors_name_the_field(tmp_path):
    folder = tmp_path / "labs" / "09-bad"
    folder.mkdir(parents=True)
    (folder / "lab.yaml").write_text("title: x\nlevel: expert\nobjectives: []\nminutes: 0\n")
    with pytest.raises(LabFormatError) as err:
        _ = Lab(folder).spec
    for field in ("level", "objectives", "minutes"):
        assert field in str(err.value)


def test_unreadable_notebooks_name_the_file_and_the_fix(tmp_path):
    broken = tmp_path / "broken.ipynb"
    broken.write_text('{"cells": [')
    with pytest.raises(LabFormatError, match="broken.ipynb is not valid notebook JSON"):
        read_notebook(broken)
    nb = nbformat.v4.new_notebook()
    no_kernel = tmp_path / "nokernel.ipynb"
    no_kernel.write_text(json.dumps(nb))
    with pytest.raises(LabFormatError, match="nokernel.ipynb has kernel None.*Change Kernel"):
        read_notebook(no_kernel)


@pytest.mark.parametrize("lab", LABS, ids=[lab.id for lab in LABS])
def test_learner_notebook_opens_with_time_level_and_points(lab):
    first = learner_notebook(lab).cells[0]
    assert first.cell_type == "markdown" and first.id == "lab-header"
    assert f"about {lab.spec.minutes} min" in first.source
    assert lab.spec.level.capitalize() in first.source
    assert f"{lab.max_score:g} points" in first.source


def test_readme_lab_table_shows_each_time_estimate():
    readme = (LABS[0].folder.parent.parent / "README.md").read_text()
    for lab in LABS:
        number, slug = lab.id.split("-", 1)
        row = next((line for line in readme.splitlines() if line.startswith(f"| {number} {slug} |")), None)
        assert row is not None, f"README's lab table has no row for {lab.id}"
        assert f"| {lab.spec.minutes} min |" in row, f"README shows another time for {lab.id} than lab.yaml"


def _nb(*cells: tuple[str, list[str], list]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}})
    for cell_id, tags, outputs in cells:
        cell = nbformat.v4.new_code_cell("print(1)", id=cell_id, metadata={"tags": tags})
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text) for text in outputs]
        nb.cells.append(cell)
    return nb


def test_record_copies_only_the_tagged_outputs_into_the_source(tmp_path):
    folder = tmp_path / "labs" / "09-rec"
    folder.mkdir(parents=True)
    nbformat.write(_nb(("seeded", ["nbval-check-output"], ["old\n"]), ("noisy", [], ["stale\n"])), folder / "lab.ipynb")
    executed = tmp_path / "executed.ipynb"
    ran = _nb(("seeded", [], ["0.967\n"]), ("noisy", [], ["run 3f2a\n"]))
    ran.cells[0].outputs.append(
        nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"})
    )
    nbformat.write(ran, executed)
    assert record_outputs(Lab(folder), executed) == ["seeded"]
    cells = {c.id: c for c in read_notebook(folder / "lab.ipynb").cells}
    assert cells["seeded"].outputs[0].text == "0.967\n"
    assert cells["seeded"].outputs[1].data == {"text/plain": "<Figure>"}  # nbval compares no images: none kept
    assert cells["noisy"].outputs == [] and cells["noisy"].execution_count is None
    assert cells["seeded"].execution_count == 1  # nbval compares only cells that ran in the reference


def test_record_refuses_a_run_that_did_not_reach_a_tagged_cell(tmp_path):
    folder = tmp_path / "labs" / "09-rec"
    folder.mkdir(parents=True)
    nbformat.write(_nb(("seeded", ["nbval-check-output"], ["old\n"])), folder / "lab.ipynb")
    executed = tmp_path / "executed.ipynb"
    nbformat.write(_nb(("seeded", [], [])), executed)
    with pytest.raises(
        LabFormatError, match=r"no outputs for the tagged cells \['seeded'\].*workbench labs run 09-rec"
    ):
        record_outputs(Lab(folder), executed)
    assert [o.text for o in read_notebook(folder / "lab.ipynb").cells[0].outputs] == ["old\n"]


def test_every_lab_with_seeded_results_commits_outputs_for_nbval():
    """Labs 00-04 and 08 print seeded results; their tagged cells carry the outputs nbval compares."""
    for lab in [lab for lab in LABS if lab.id[:2] in {"00", "01", "02", "03", "04", "08"}]:
        cells = read_notebook(lab.source).cells
        tagged = [c for c in cells if "nbval-check-output" in c.metadata.get("tags", [])]
        assert tagged, f"{lab.id}: tag its deterministic cells nbval-check-output and run workbench labs record"
        assert all(c.outputs for c in tagged), f"{lab.id}: run workbench labs record {lab.id[:2]}"
        assert not any(c.get("outputs") for c in cells if c not in tagged), f"{lab.id}: untagged cells keep outputs"
