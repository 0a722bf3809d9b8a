"""Lab 02's remote and pipeline checks on planted workspaces: the solution's state passes, each plausible
mistake fails with a message that names its fix.

One real workspace is built per module the way the solution builds it (`dvc remote add --default` by hand, data
pushed, the three `dvc stage add` calls, `dvc repro`); each test plants one mistake in a copy of it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml
from lab02_state import build_solution_state

from mlops_workbench import versioning
from mlops_workbench.labs.checks import CheckFailed, Context, load_checks
from mlops_workbench.versioning import DATA, Workspace
from mlops_workbench.workbench import Workbench

pytestmark = pytest.mark.slow

LAB = "02-versioning"
CHECKS = {c.id: c for c in load_checks(Path(__file__).resolve().parents[1] / "labs" / LAB / "checks.py")}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The state folder after Exercises 1-3 of the solution."""
    home = tmp_path_factory.mktemp("lab02-home")
    build_solution_state(home)
    return home


def planted(built: Path, tmp_path: Path) -> tuple[Context, Workspace]:
    """A copy of the built state folder (same remote) to plant one mistake in."""
    home = tmp_path / "home"
    shutil.copytree(built, home, symlinks=True)
    ctx = Context(lab=LAB, wb=Workbench.from_env(home))
    return ctx, Workspace(ctx.workspace)


def set_remote(ws: Workspace, url: str | None, commit: bool = True) -> None:
    """What `dvc remote add --default local URL` writes into .dvc/config (url None: what `dvc remote remove` leaves)."""
    text = "[core]\n    analytics = false\n"
    if url is not None:
        text += f"    remote = local\n['remote \"local\"']\n    url = {url}\n"
    (ws.path / ".dvc" / "config").write_text(text)
    if commit:
        ws.commit("Change the DVC remote")


def edit_stage(ws: Workspace, name: str, change) -> None:
    """Apply ``change`` to stage ``name`` of dvc.yaml (as a different `dvc stage add --force` would) and commit."""
    spec = yaml.safe_load((ws.path / "dvc.yaml").read_text())
    change(spec["stages"], spec["stages"][name])
    (ws.path / "dvc.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    ws.commit(f"Redeclare {name}")


def test_the_solution_state_passes_every_remote_and_pipeline_check(built):
    ctx = Context(lab=LAB, wb=Workbench.from_env(built))
    for check_id in ("workspace-ready", "data-tracked", "pipeline-declared", "pipeline-ran"):
        CHECKS[check_id].func(ctx)
    lock = yaml.safe_load((ctx.workspace / "dvc.lock").read_text())["stages"]
    assert list(lock) == [s.name for s in versioning.PIPELINE]
    data_dep = next(d for d in lock["prepare"]["deps"] if d["path"] == DATA)
    assert data_dep["md5"] == Workspace(ctx.workspace).dvc_md5(DATA)  # lineage reads it from the prepare stage
    assert not any(d["path"] == DATA for d in lock["train"]["deps"] + lock["evaluate"]["deps"])


def test_no_remote_passes_the_workspace_check_and_fails_data_tracked_naming_the_command(built, tmp_path):
    ctx, ws = planted(built, tmp_path)
    set_remote(ws, None)
    CHECKS["workspace-ready"].func(ctx)  # a workspace without a remote is still a workspace
    with pytest.raises(
        CheckFailed,
        match=r"no default DVC remote.*ws.dvc\('remote', 'add', '--default', 'local', "
        r"str\(versioning.default_remote\(lab.home\)\)\)",
    ) as err:
        CHECKS["data-tracked"].func(ctx)
    assert "never pushed" not in str(err.value)


def test_a_remote_without_the_data_says_push_not_add(built, tmp_path):
    ctx, ws = planted(built, tmp_path)
    set_remote(ws, str(tmp_path / "empty-remote"))
    with pytest.raises(
        CheckFailed, match=r"is set but does not hold data/iris.csv .*never pushed.*ws.dvc\('push'\)"
    ) as err:
        CHECKS["data-tracked"].func(ctx)
    assert "remote', 'add" not in str(err.value)


def test_an_uncommitted_remote_is_named(built, tmp_path):
    ctx, ws = planted(built, tmp_path)
    set_remote(ws, None)
    set_remote(ws, str(versioning.default_remote(Workbench.from_env(built))), commit=False)
    with pytest.raises(CheckFailed, match=r"not in the committed .dvc/config.*commit .dvc/config"):
        CHECKS["data-tracked"].func(ctx)


def test_a_relative_remote_folder_is_resolved_like_dvc_does(built, tmp_path):
    ctx, ws = planted(built, tmp_path)
    remote = versioning.default_remote(Workbench.from_env(built))
    set_remote(ws, os.path.relpath(remote, ws.path / ".dvc"))  # how DVC stores a relative folder
    assert ws.remote_url() == str(remote)
    CHECKS["data-tracked"].func(ctx)


def _drop(key: str, value: str):
    return lambda stages, stage: stage[key].remove(value)


@pytest.mark.parametrize(
    "stage, change, match",
    [
        (
            "train",
            _drop("deps", versioning.TRAIN_SPLIT),
            r"train stage does not depend on data/prepared/train.csv.*add -d data/prepared/train.csv",
        ),
        ("prepare", _drop("deps", "prepare.py"), r"prepare stage does not depend on its own code: add -d prepare.py"),
        ("prepare", _drop("deps", DATA), r"prepare stage does not depend on data/iris.csv.*add -d data/iris.csv"),
        ("evaluate", _drop("deps", "model/model.pkl"), r"evaluate stage does not depend on model/model.pkl"),
        (
            "prepare",
            lambda stages, stage: stage.update(params=["prepare"]),
            r"prepare stage does not track the params \['train.seed', 'train.test_size'\].*-p prepare,train.seed,train.test_size",
        ),
        (
            "train",
            lambda stages, stage: stage.pop("params"),
            r"train stage does not track the params \['train'\].*-p train",
        ),
        ("train", lambda stages, stage: stage.pop("outs"), r"does not declare its output model: add -o model"),
        ("evaluate", lambda stages, stage: stage.update(metrics=["metrics.json"]), r"-M metrics.json \(capital M"),
        (
            "evaluate",
            lambda stages, stage: stages.pop("evaluate"),
            r"no stage named `evaluate`.*dvc stage add -n evaluate",
        ),
        ("train", lambda stages, stage: stage.update(cmd="python prepare.py"), r"its command is 'python train.py'"),
    ],
)
def test_each_pipeline_mistake_is_named_with_its_fix(built, tmp_path, stage, change, match):
    ctx, ws = planted(built, tmp_path)
    edit_stage(ws, stage, change)
    with pytest.raises(CheckFailed, match=match):
        CHECKS["pipeline-declared"].func(ctx)


def test_folder_dependencies_and_whole_sections_are_accepted(built, tmp_path):
    ctx, ws = planted(built, tmp_path)

    def folders(stages, stage):
        stages["prepare"]["params"] = ["prepare", "train"]
        stage["deps"] = ["evaluate.py", "model", versioning.PREPARED]

    edit_stage(ws, "evaluate", folders)
    CHECKS["pipeline-declared"].func(ctx)


def test_an_uncommitted_fix_of_dvc_yaml_is_named(built, tmp_path):
    ctx, ws = planted(built, tmp_path)
    (ws.path / "dvc.yaml").write_text((ws.path / "dvc.yaml").read_text() + "\n")
    with pytest.raises(CheckFailed, match="dvc.yaml has changes that are not committed"):
        CHECKS["pipeline-declared"].func(ctx)


def test_a_stage_that_never_ran_fails_pipeline_ran(built, tmp_path):
    ctx, ws = planted(built, tmp_path)
    lock = yaml.safe_load((ws.path / "dvc.lock").read_text())
    lock["stages"].pop("evaluate")
    (ws.path / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))
    ws.commit("A dvc.lock from before the evaluate stage")
    with pytest.raises(CheckFailed, match=r"no record of the stage\(s\) \['evaluate'\].*ws.dvc\('repro'\)"):
        CHECKS["pipeline-ran"].func(ctx)


def test_a_lock_older_than_the_declaration_fails_pipeline_ran(built, tmp_path):
    ctx, ws = planted(built, tmp_path)
    edit_stage(ws, "train", lambda stages, stage: stage["deps"].append("params.yaml"))
    CHECKS["pipeline-declared"].func(ctx)
    with pytest.raises(CheckFailed, match=r"records the train stage as it was before.*ws.dvc\('repro'\) again"):
        CHECKS["pipeline-ran"].func(ctx)
