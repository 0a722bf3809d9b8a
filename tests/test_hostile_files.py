"""Hostile files outside the servers: policies, lab specs, params, drill records, manifests and notebooks.

Each is refused quickly with the project's bad-input error (or, for a drill record, the failed check), in words
that name the file, the problem and the fix, and nothing changes: the file is left as it was and nothing is
written beside it. The inputs are built here (10 MB, 10,000 levels deep, a billion laughs, a recursive alias).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
import yaml

from mlops_workbench import paramspec, safeyaml, settings
from mlops_workbench.drills.base import DrillContext
from mlops_workbench.drills.spec import PostMortem
from mlops_workbench.errors import EXIT_ERROR, InputError
from mlops_workbench.k8s import validate as k8s
from mlops_workbench.labs import format as fmt
from mlops_workbench.labs.checks import CheckFailed
from mlops_workbench.labs.grade import grade
from mlops_workbench.labs.run import _collect
from mlops_workbench.labs.submission import detect_lab
from mlops_workbench.rollout import policy
from mlops_workbench.versioning.workspace import Workspace
from mlops_workbench.workbench import Workbench

ROOT = Path(__file__).resolve().parents[1]
SECONDS = 5.0
"""Ample for any refusal here; a recursive parse of these inputs takes far longer or never ends."""


def _billion_laughs(levels: int = 9) -> str:
    lines = ['lol0: &lol0 "lol"']
    lines += [f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * 10)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


HOSTILE: dict[str, tuple[Callable[[], str], str]] = {
    "10mb": (lambda: "name: big\nnote: " + "x" * (10 << 20) + "\n", "MB"),
    "deep-flow-lists": (lambda: "[" * 10_000 + "]" * 10_000, "deeper"),
    "deep-flow-mappings": (lambda: "{a: " * 10_000 + "1" + "}" * 10_000, "deeper"),
    "deep-block-lists": (lambda: "- " * 10_000 + "x\n", "deeper"),
    "deep-block-mappings": (lambda: "".join(" " * i + "a:\n" for i in range(1_000)), "deeper"),
    "billion-laughs": (_billion_laughs, "alias"),
    "recursive-alias": (lambda: "a: &a [*a]\n", "alias"),
    "alias": (lambda: "steps: *elsewhere\n", "alias"),
}


def _drill_record(path: Path) -> object:
    return DrillContext("hostile", Workbench.from_env(path.parent / "home")).read_record(path, PostMortem)


READERS: dict[str, tuple[str, Callable[[Path], object], type[Exception]]] = {
    "policy": ("policy.yaml", policy.load, policy.PolicyError),
    "lab-spec": ("lab.yaml", lambda path: fmt.Lab(path.parent).spec, fmt.LabFormatError),
    "params": ("params.yaml", lambda path: paramspec.load_params(path=path), InputError),
    "workspace-params": ("params.yaml", lambda path: Workspace(path.parent).params(), InputError),
    "manifest": ("rollout-strategy.yaml", lambda path: k8s.load_files([path]), InputError),
    "drill-record": ("postmortem.yaml", _drill_record, CheckFailed),
}


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.mark.parametrize("case", HOSTILE)
@pytest.mark.parametrize("reader", READERS)
def test_hostile_yaml_is_refused_by_name_quickly_and_changes_nothing(tmp_path, reader, case):
    name, read, error = READERS[reader]
    make, word = HOSTILE[case]
    path = tmp_path / name
    path.write_text(make())
    before = _snapshot(tmp_path)
    started = time.monotonic()
    with pytest.raises(error) as caught:
        read(path)
    assert time.monotonic() - started < SECONDS
    message = str(caught.value)
    assert word in message and name in message, message
    assert "Traceback" not in message and len(message) < 2000
    assert _snapshot(tmp_path) == before, "a refused file must change nothing"


def test_a_10mb_file_is_refused_before_it_is_parsed(tmp_path, monkeypatch):
    path = tmp_path / "policy.yaml"
    path.write_text(HOSTILE["10mb"][0]())

    def never(*_args, **_kwargs):
        raise AssertionError("the parser ran on a file over the size limit")

    monkeypatch.setattr(yaml, "parse", never)
    monkeypatch.setattr(yaml, "load_all", never)
    with pytest.raises(policy.PolicyError, match=r"10\.0 MB, over the 1\.0 MB limit"):
        policy.load(path)


@pytest.mark.parametrize("case", [c for c in HOSTILE if c != "10mb"])
def test_the_pure_python_parser_is_guarded_the_same_way(case, monkeypatch):
    """Without libyaml, PyYAML's own parser walks the events; the loader that follows recurses."""
    monkeypatch.setattr(safeyaml, "_LOADER", yaml.SafeLoader)
    make, word = HOSTILE[case]
    with pytest.raises(safeyaml.YamlInputError, match=word):
        safeyaml.load(make(), what="test input")


@pytest.mark.parametrize(
    "text, words",
    [
        ("a: [1, 2\n", "not valid YAML"),
        ("when: 2024-02-30\n", "cannot read"),
        ("n: " + "9" * 5000 + "\n", "4300"),
        ("a: !!python/object:os.system x\n", "tags"),
        ("{[1]: 2}\n", "as keys"),
        ("a: \x00\n", "UTF-8"),
        ("a: 1\n---\nb: 2\n", "2 YAML documents"),
    ],
)
def test_other_broken_yaml_is_an_input_error_with_its_fix(text, words):
    with pytest.raises(InputError, match=words):
        safeyaml.load(text, what="test input")


def test_the_cli_prints_one_line_exits_2_and_starts_nothing(home, tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(_billion_laughs())
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlops_workbench.cli.main",
            "rollout",
            "start",
            "--candidate",
            "2",
            "--policy",
            str(bomb),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == EXIT_ERROR and "Traceback" not in out.stderr + out.stdout
    assert "anchor '&lol0'" in out.stderr and "bomb.yaml" in out.stderr
    assert not settings.layout(home).rollout.exists(), "no rollout state may be written"


# --- the repository's own files load unchanged ------------------------------------------------------------------


NORMAL = sorted(
    [*ROOT.glob("labs/*/lab.yaml"), *ROOT.glob("src/mlops_workbench/rollout/policies/*.yaml"), ROOT / "params.yaml"]
)


@pytest.mark.parametrize("path", NORMAL, ids=lambda p: str(p.relative_to(ROOT)))
def test_normal_files_load_exactly_as_before(path):
    assert safeyaml.load(path, what=str(path)) == yaml.safe_load(path.read_text())


def test_normal_files_pass_their_readers():
    assert len(NORMAL) >= 10
    assert all(lab.spec.title for lab in fmt.Lab.all())
    assert all(policy.builtin(name).steps for name in policy.builtin_names())
    assert paramspec.load_params() == yaml.safe_load((ROOT / "params.yaml").read_text())
    stack = k8s.stack_files()
    assert k8s.load_files(stack) == [d for p in stack for d in yaml.safe_load_all(p.read_text()) if d is not None]


# --- notebooks with giant outputs --------------------------------------------------------------------------------


def _sparse(path: Path, size: int) -> Path:
    """A file of ``size`` bytes that takes no disk space (and no time to write)."""
    with path.open("wb") as handle:
        handle.truncate(size)
    return path


def _with_giant_output(path: Path, megabytes: int = 11) -> tuple[Path, int, str]:
    """The learner's lab 00 notebook with a stream output of ``megabytes`` in its first code cell."""
    nb = json.loads((ROOT / "notebooks" / "00-welcome.ipynb").read_text())
    number, cell = next((i, c) for i, c in enumerate(nb["cells"], start=1) if c["cell_type"] == "code")
    cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "y" * (megabytes << 20)}]
    path.write_text(json.dumps(nb))
    return path, number, cell["id"]


def test_a_notebook_over_the_size_limit_is_refused_unread(tmp_path):
    path = _sparse(tmp_path / "00-welcome.ipynb", fmt.MAX_NOTEBOOK_BYTES + 1)
    with pytest.raises(fmt.LabFormatError) as caught:
        fmt.read_notebook(path)
    assert "over the 50.0 MB limit" in str(caught.value) and "Edit > Clear Outputs of All Cells" in str(caught.value)
    assert detect_lab(path).id == "00-welcome", "a huge file is never parsed to find its lab"


def test_one_giant_output_is_refused_naming_its_cell(tmp_path):
    path, number, cell_id = _with_giant_output(tmp_path / "00-welcome.ipynb")
    with pytest.raises(fmt.LabFormatError) as caught:
        fmt.read_notebook(path)
    message = str(caught.value)
    assert f"cell {number} (id '{cell_id}')" in message and "11.0 MB" in message
    assert "Edit > Clear Outputs of All Cells" in message


@pytest.mark.parametrize("giant", ["file", "output"])
def test_grading_a_giant_notebook_reports_the_problem_and_runs_nothing(tmp_path, giant):
    submission = tmp_path / "00-welcome.ipynb"
    if giant == "file":
        _sparse(submission, fmt.MAX_NOTEBOOK_BYTES + 1)
    else:
        _with_giant_output(submission)
    before = _snapshot(tmp_path)
    out = tmp_path / "graded"
    report = grade(Workbench.from_env(tmp_path / "home"), submission, out, fmt.Lab.find("00"))
    assert not report.passed and report.score == 0 and "Clear Outputs of All Cells" in (report.error or "")
    assert {c.status for c in report.checks} == {"error"} and report.execution_status == "not-run"
    assert (out / "report.json").is_file() and not (out / "executed.ipynb").exists()
    assert {k: v for k, v in _snapshot(tmp_path).items() if k in before} == before, "the submission is untouched"


def test_an_executed_notebook_over_the_limit_fails_the_run_with_the_fix(tmp_path):
    output = _sparse(tmp_path / "executed.ipynb", fmt.MAX_NOTEBOOK_BYTES + 1)
    prepared = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('x' * 10**9)")])
    execution = _collect(prepared, output, tmp_path / "exports.json", 0, False, "", 1.0, 900)
    assert execution.status == "crashed" and "over the 50 MB limit" in execution.message
    assert "Clear Outputs of All Cells" in execution.message and {c.status for c in execution.cells} == {"not-run"}


def test_normal_notebooks_still_read():
    for lab in fmt.Lab.all():
        assert fmt.read_notebook(lab.learner_path).cells and fmt.read_notebook(lab.source).cells


# --- params.yaml with wrong types ----------------------------------------------------------------------------


BAD_PARAMS = """\
seed: 4.5
notes: labs may add keys of their own
train:
  C: "1.0"
  test_size: 1.5
  model: svm
  colour: blue
registry:
  min_accuracy: high
  non_regression: accuracy
"""


def test_params_with_wrong_types_list_every_bad_key_and_change_nothing(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(BAD_PARAMS)
    before = _snapshot(tmp_path)
    with pytest.raises(InputError) as caught:
        paramspec.load_params("train", path=path)
    message = str(caught.value)
    assert "7 bad value(s)" in message and str(path) in message and "fix each key" in message
    for expected in (
        "seed: 4.5 is not a whole number",
        "train.C: '1.0' is not a number",
        "train.test_size: 1.5 is not a number less than 1",
        "train.model: 'svm' is not one of",
        "train.colour: no such field",
        "registry.min_accuracy: 'high' is not a number",
        "registry.non_regression: 'accuracy' is not a list",
    ):
        assert expected in message, expected
    assert "notes" not in message, "top-level keys the code does not read are left to labs"
    assert _snapshot(tmp_path) == before
    with pytest.raises(InputError, match="train.C"):
        paramspec.TrainParams.load(path)


def test_the_gate_rules_with_a_wrong_type_name_the_key(tmp_path, monkeypatch):
    (tmp_path / "labs").mkdir()
    (tmp_path / "params.yaml").write_text("registry: {model_name: iris}\n")
    monkeypatch.setenv(settings.PROJECT_ENV, str(tmp_path))
    with pytest.raises(InputError, match=r"registry\.tolerance: 'a little' is not a number"):
        paramspec.RegistryParams.load({"tolerance": "a little"})


def test_workspace_params_are_checked_and_a_bad_update_writes_nothing(tmp_path):
    ws, path = Workspace(tmp_path), tmp_path / "params.yaml"
    path.write_text("prepare: {decimals: 1}\ntrain: {C: 1.0, seed: 7}\n")
    before = path.read_bytes()
    with pytest.raises(InputError, match=r"train\.seed: 'seven' is not a whole number"):
        ws.set_params(train={"seed": "seven"})
    assert path.read_bytes() == before
    path.write_text("prepare: {decimals: one}\ntrain: {C: 1.0}\n")
    with pytest.raises(InputError, match=r"prepare\.decimals: 'one' is not a whole number"):
        ws.params()
    assert ws.set_params(prepare={"decimals": 2})["prepare"] == {"decimals": 2}, "set_params repairs a bad value"
    assert ws.params()["prepare"]["decimals"] == 2


def test_a_misspelt_params_key_is_named_with_the_key_that_was_meant(tmp_path):
    from mlops_workbench import paramspec

    path = tmp_path / "params.yaml"
    path.write_text("train:\n  seeed: 3\n  C: 1.0\n")
    with pytest.raises(InputError, match=r"train\.seeed: no such field .*Did you mean 'seed'\?"):
        paramspec.load_params(path=path)
    assert path.read_text() == "train:\n  seeed: 3\n  C: 1.0\n"


def test_a_manifest_may_repeat_an_object_through_an_alias_but_not_expand_without_bound(tmp_path):
    """yaml.safe_dump writes an anchor wherever one object appears twice (lab 05's learners do that), and kubectl
    reads it: manifests may use aliases, within a bound on the expanded size."""
    args = [{"name": "namespace", "value": "workbench"}]
    doc = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x"},
        "data": {"a": "1"},
        "spec": {"first": args, "second": args},
    }
    path = tmp_path / "shared.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert "&id001" in path.read_text()
    assert k8s.load_files([path])[0]["spec"]["second"] == args
    path.write_text(_billion_laughs())
    with pytest.raises(InputError, match="more than 100,000 values once its aliases are expanded"):
        k8s.load_files([path])
    path.write_text("a: &a [*a]\n")
    with pytest.raises(InputError, match="inside the very value it names"):
        k8s.load_files([path])
    path.write_text("a: *nowhere\n")
    with pytest.raises(InputError, match="names no anchor defined above it"):
        k8s.load_files([path])
