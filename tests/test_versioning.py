"""Versioning with real git, real DVC and a real MLflow server: lineage, exact reproduction, the mismatch case."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner, Result

from mlops_workbench import procs, tracking, versioning
from mlops_workbench.cli.main import app as cli
from mlops_workbench.data import load_iris_frame, save_csv
from mlops_workbench.errors import InputError
from mlops_workbench.versioning.lineage import env_fingerprint, params_hash
from mlops_workbench.versioning.workspace import GIT_IDENTITY, Workspace, WorkspaceError, file_md5
from mlops_workbench.workbench import Workbench

pytestmark = pytest.mark.slow


def build_workspace(path: Path, home: Path) -> Workspace:
    """The lab's happy path: data tracked and pushed, the three-stage pipeline, reproduced outputs committed."""
    ws = versioning.init_workspace(Workbench.from_env(home), path)
    save_csv(load_iris_frame(), ws.path / versioning.DATA)
    ws.dvc("add", versioning.DATA)
    ws.commit("Track Iris with DVC")
    ws.dvc("push")
    versioning.write_params(ws, train={"C": 1.0, "seed": 7})
    versioning.add_pipeline(ws)
    ws.commit("Add the pipeline")
    ws.dvc("repro")
    ws.commit("Train")
    return ws


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("versioning-home")
    saved = {k: os.environ.get(k) for k in ("WORKBENCH_HOME", "MLFLOW_TRACKING_URI")}
    os.environ["WORKBENCH_HOME"] = str(home)
    try:
        tracking.up(Workbench.from_env(home), port=procs.free_port(), timeout=300)  # slow on a loaded 2-core machine
        ws = build_workspace(home / "workspaces" / "02-versioning", home)
        run_id = versioning.log_model_run(Workbench.from_env(home), ws, experiment="test-versioning")
        yield home, ws, run_id
    finally:
        procs.stop_all(Workbench.from_env(home))
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_workspace_is_its_own_repo_and_never_touches_a_parent(tmp_path: Path, wb) -> None:
    parent = tmp_path / "project"
    parent.mkdir()
    subprocess.run(["git", "init", "-q", str(parent)], check=True)
    ws = versioning.init_workspace(Workbench.from_env(tmp_path), parent / "nested" / "ws", remote=tmp_path / "remote")
    assert (ws.path / ".git").is_dir() and (ws.path / ".dvc").is_dir()
    assert ws.remote_url() == str(tmp_path / "remote")
    assert "Initialise workspace" in ws.git("log", "--format=%s")
    assert ws.git("log", "-1", "--format=%an") == GIT_IDENTITY["GIT_AUTHOR_NAME"]
    status = subprocess.run(["git", "status", "--porcelain"], cwd=parent, capture_output=True, text=True)
    assert status.stdout.strip() == "?? nested/"  # the parent only sees an untracked folder
    assert subprocess.run(["git", "rev-parse", "HEAD"], cwd=parent, capture_output=True).returncode != 0
    # idempotent: a second init keeps the history
    again = versioning.init_workspace(Workbench.from_env(tmp_path), ws.path, remote=tmp_path / "remote")
    assert again.head() == ws.head()
    # a folder without .git / .dvc is refused instead of falling through to the parent repo
    plain = parent / "plain"
    plain.mkdir()
    with pytest.raises(WorkspaceError, match="init_workspace"):
        Workspace(plain).git("status")
    with pytest.raises(WorkspaceError, match="init_workspace"):
        versioning.open_workspace(plain)
    # lab 02's learner adds the remote: the workspace comes without one
    bare = versioning.init_workspace(Workbench.from_env(tmp_path), tmp_path / "bare", with_remote=False)
    assert bare.remote_url() == "" and "remote" not in (bare.path / ".dvc" / "config").read_text()
    with pytest.raises(InputError, match="with_remote=False"):
        versioning.init_workspace(wb, tmp_path / "bare", remote=tmp_path / "remote", with_remote=False)


def test_a_shared_cache_gives_a_rebuilt_workspace_its_outputs_from_the_run_cache(tmp_path: Path) -> None:
    """With shared_cache the DVC cache lives in the state folder (untracked config.local), so a stage rebuilt from
    the same inputs after a reset is restored, not run; a workspace without it keeps its own cache."""
    wb = Workbench.from_env(tmp_path / "home")

    def build(path: Path, shared: bool) -> str:
        ws = versioning.init_workspace(wb, path, reset=True, shared_cache=shared)
        (ws.path / "a.txt").write_text("same input\n")
        ws.dvc("stage", "add", "-n", "copy", "-d", "a.txt", "-o", "b.txt", "cp a.txt b.txt")
        return ws.dvc("repro")

    assert "Running stage 'copy'" in build(tmp_path / "ws", shared=True)
    assert (tmp_path / "ws" / ".dvc" / "config.local").read_text().split() == [
        "[cache]",
        "dir",
        "=",
        str(wb.layout.dvc_cache),
    ]
    again = build(tmp_path / "ws", shared=True)
    assert (
        "Stage 'copy' is cached - skipping run" in again and (tmp_path / "ws" / "b.txt").read_text() == "same input\n"
    )
    assert "config.local" not in versioning.open_workspace(tmp_path / "ws").git("ls-files", ".dvc")
    assert "Running stage 'copy'" in build(tmp_path / "own", shared=False)
    assert not (tmp_path / "own" / ".dvc" / "config.local").exists()


def test_untracked_data_has_no_lineage(tmp_path: Path) -> None:
    ws = versioning.init_workspace(Workbench.from_env(tmp_path), tmp_path / "ws", remote=tmp_path / "remote")
    with pytest.raises(ValueError, match="dvc\\('add'"):
        versioning.lineage_tags(ws)


def test_data_is_tracked_and_pushed(env) -> None:
    home, ws, _ = env
    md5 = ws.dvc_md5(versioning.DATA)
    assert md5 == file_md5(ws.path / versioning.DATA)
    assert versioning.remote_has(home / "dvc-remote", md5)
    assert "data/iris.csv.dvc" in ws.git("ls-files").split()
    assert "iris.csv" not in ws.git("ls-files", "data").split()  # the CSV itself is in DVC, not git


def test_run_carries_complete_lineage(env) -> None:
    wb = Workbench.from_env(env[0])  # the module's state folder
    import mlflow

    _, ws, run_id = env
    lineage = versioning.run_lineage(wb, run_id)
    tags = lineage["tags"]
    assert set(versioning.LINEAGE_TAGS) <= set(tags)
    assert tags["git.commit"] == ws.head() and len(tags["git.commit"]) == 40
    assert tags["git.dirty"] == "false" and tags["git.dirty_files"] == ""
    assert tags["data.md5"] == ws.dvc_md5(versioning.DATA) and tags["data.modified"] == "false"
    assert tags["params.hash"] == params_hash(ws.params())
    assert tags["env.fingerprint"] == env_fingerprint() and len(tags["env.fingerprint"]) == 64
    assert tags["workspace.path"] == str(ws.path) and tags["dvc.stale"] == "false"
    assert lineage["params"]["train.seed"] == "7" and lineage["params"]["prepare.decimals"] == "None"
    metrics = json.loads((ws.path / versioning.METRICS).read_text())
    assert lineage["metrics"] == pytest.approx(metrics) and metrics["accuracy"] > 0.8
    info = mlflow.models.get_model_info(f"runs:/{run_id}/model")
    assert info.signature is not None
    assert [c.name for c in info.signature.inputs.inputs] == [
        "sepal_length",
        "sepal_width",
        "petal_length",
        "petal_width",
    ]
    assert info.saved_input_example_info is not None


def reproduce_with_the_cli(home: Path, run_id: str) -> tuple[Result, versioning.ReproductionReport]:
    """``workbench reproduce RUN_ID`` (one real reproduction) and the report it saved beside the checkout."""
    saved = home / "reproductions" / run_id / "reproduction.json"
    saved.unlink(missing_ok=True)  # an earlier reproduction's report must not stand in for this one
    result = CliRunner().invoke(cli, ["reproduce", run_id, "--home", str(home)])
    assert saved.is_file(), result.output
    return result, versioning.ReproductionReport.model_validate_json(saved.read_text())


def test_exact_reproduction(env) -> None:
    home, _, run_id = env
    result, report = reproduce_with_the_cli(home, run_id)
    assert result.exit_code == 0, result.output
    assert "Reproduced exactly" in result.output
    assert report.matched, report.summary()
    assert {m.name for m in report.metrics} == {"accuracy", "f1_macro", "log_loss"}
    assert all(m.diff == 0 for m in report.metrics)
    assert report.causes == [] and report.reasons == []


def test_lab_checks_pass_on_the_workspace_and_name_a_missing_push(env, tmp_path: Path) -> None:
    from mlops_workbench.labs.checks import CheckFailed, Context, load_checks

    home, _, run_id = env
    project = Path(__file__).resolve().parents[1]
    checks = {c.id: c for c in load_checks(project / "labs" / "02-versioning" / "checks.py")}
    ctx = Context(lab="02-versioning", wb=Workbench.from_env(home), variables={"run_id": run_id})
    for check_id in ("workspace-ready", "data-tracked", "pipeline-declared", "pipeline-ran", "lineage-complete"):
        checks[check_id].func(ctx)  # passes: no exception
    # data added and committed but never pushed: the check says to push
    other = tmp_path / "home"
    ws = versioning.init_workspace(Workbench.from_env(other), other / "workspaces" / "02-versioning")
    save_csv(load_iris_frame(), ws.path / versioning.DATA)
    ws.dvc("add", versioning.DATA)
    ws.commit("Track Iris")
    with pytest.raises(CheckFailed, match=r"set but does not hold .*ws.dvc\('push'\)"):
        checks["data-tracked"].func(Context(lab="02-versioning", wb=Workbench.from_env(other)))
    with pytest.raises(CheckFailed, match="no committed dvc.yaml"):
        checks["pipeline-declared"].func(Context(lab="02-versioning", wb=Workbench.from_env(other)))
    with pytest.raises(CheckFailed, match="dvc.lock is not committed"):
        checks["pipeline-ran"].func(Context(lab="02-versioning", wb=Workbench.from_env(other)))


def test_unversioned_preprocessing_is_caught_then_fixed(env) -> None:
    wb = Workbench.from_env(env[0])  # the module's state folder
    home, ws, clean_run = env
    # the classic mistake: a preprocessing tweak that is run and logged but never committed
    ws.set_params(prepare={"decimals": 0})
    ws.dvc("repro")
    dirty_run = versioning.log_model_run(Workbench.from_env(home), ws, experiment="test-versioning")
    tags = versioning.run_lineage(wb, dirty_run)["tags"]
    assert tags["git.dirty"] == "true" and tags["git.dirty_files"] == "params.yaml"

    result, report = reproduce_with_the_cli(home, dirty_run)
    assert result.exit_code == 1 and "dirty-tree" in result.output
    assert not report.matched
    assert {"dirty-tree", "params-changed"} <= set(report.causes)
    assert "params.yaml" in report.reasons[0] and "commit" in report.reasons[0]
    from mlops_workbench.versioning.reproduction import _diagnose

    _, reasons = _diagnose({**tags, "git.dirty_files": ""}, ws, versioning.DATA)  # a run logged by hand, no file list
    assert "unknown files" not in reasons[0] and "no `git.dirty_files` tag" in reasons[0]
    assert any(not m.matched for m in report.metrics)
    assert "NOT reproduced" in report.summary()

    # the fix: the preprocessing change goes under version control, then a new run
    ws.commit("Round measurements to whole centimetres")
    fixed_run = versioning.log_model_run(Workbench.from_env(home), ws, experiment="test-versioning")
    assert versioning.run_lineage(wb, fixed_run)["tags"]["git.dirty"] == "false"
    fixed = versioning.reproduce(Workbench.from_env(home), fixed_run)
    assert fixed.matched, fixed.summary()
    # the old clean run is still reproducible from its own commit
    assert versioning.reproduce(Workbench.from_env(home), clean_run).matched


def test_logging_before_dvc_repro_is_named_as_stale_outputs(env) -> None:
    wb = Workbench.from_env(env[0])  # the module's state folder
    home, ws, _ = env
    assert versioning.lineage_tags(ws)["dvc.stale"] == "false"
    ws.set_params(train={"C": 0.05})
    ws.commit("Stronger regularisation")  # committed, but the stage was not rerun
    stale_run = versioning.log_model_run(Workbench.from_env(home), ws, experiment="test-versioning")
    tags = versioning.run_lineage(wb, stale_run)["tags"]
    assert tags["git.dirty"] == "false" and tags["dvc.stale"] == "params.yaml:train"
    report = versioning.reproduce(Workbench.from_env(home), stale_run)
    assert not report.matched
    assert "stale-outputs" in report.causes and "dirty-tree" not in report.causes
    assert any("dvc('repro')" in r for r in report.reasons)
    # the DAG: a train param reruns train and evaluate, never prepare (its params and data did not change)
    log = ws.dvc("repro")
    assert "Stage 'prepare' didn't change, skipping" in log
    assert "Running stage 'train'" in log and "Running stage 'evaluate'" in log
    assert versioning.lineage_tags(ws)["dvc.stale"] == "false"


def test_unknown_or_unlineaged_run_is_a_clear_error(env) -> None:
    import mlflow

    home, _, _ = env
    with pytest.raises(versioning.ReproductionError, match="No run with id 'deadbeef"):
        versioning.reproduce(Workbench.from_env(home), "deadbeef" * 4)
    result = CliRunner().invoke(cli, ["reproduce", "deadbeef" * 4, "--home", str(home)])
    assert result.exit_code == 2 and "No run with id" in result.output
    mlflow.set_experiment("test-versioning")
    with mlflow.start_run() as plain:
        mlflow.log_metric("accuracy", 0.5)
    with pytest.raises(versioning.ReproductionError, match="no lineage"):
        versioning.reproduce(Workbench.from_env(home), plain.info.run_id)


def _lab02_checks():
    from mlops_workbench.labs.checks import load_checks

    project = Path(__file__).resolve().parents[1]
    return {c.id: c for c in load_checks(project / "labs" / "02-versioning" / "checks.py")}


def _planted_run(home: Path, ws, **tags: str | None) -> str:
    """A correctly logged run, then its tags changed (None deletes one): a learner's plausible mistake."""
    from mlflow import MlflowClient

    run_id = versioning.log_model_run(Workbench.from_env(home), ws, experiment="test-versioning")
    client = MlflowClient(tracking.url(Workbench.from_env(home)))
    for key, value in tags.items():
        client.delete_tag(run_id, key) if value is None else client.set_tag(run_id, key, value)
    return run_id


@pytest.mark.parametrize(
    "tags, match",
    [
        ({"data.path": None}, r"lacks the lineage tag\(s\) \['data.path'\]"),
        ({"data.md5": "0" * 32}, "md5 dvc.lock records"),
        ({"params.hash": "0" * 64}, "sort_keys=True"),
        (
            {"git.commit": "deadbeef" * 5},
            r"was not logged from this workspace.s history: set the tags workspace.path = str\(ws.path\) and git.commit",
        ),
        ({"git.dirty": "no"}, "'true' or 'false'"),
    ],
)
def test_lab02_lineage_check_names_each_planted_mistake(env, tags, match) -> None:
    from mlops_workbench.labs.checks import CheckFailed, Context

    home, ws, _ = env
    ctx = Context(
        lab="02-versioning", wb=Workbench.from_env(home), variables={"run_id": _planted_run(home, ws, **tags)}
    )
    with pytest.raises(CheckFailed, match=match):
        _lab02_checks()["lineage-complete"].func(ctx)


def test_lab02_hidden_checks_catch_a_constant_dirty_flag_and_a_retrain_without_new_data(env) -> None:
    from mlops_workbench.labs.checks import CheckFailed, Context

    home, ws, run_id = env
    checks = _lab02_checks()
    honest = Context(
        lab="02-versioning",
        wb=Workbench.from_env(home),
        variables={"dirty_run_id": _planted_run(home, ws, **{"git.dirty": "true"})},
    )
    checks["dirty-flag-honest"].func(honest)
    constant = Context(
        lab="02-versioning", wb=Workbench.from_env(home), variables={"dirty_run_id": run_id}
    )  # logged clean, says false
    with pytest.raises(CheckFailed, match="never write a constant"):
        checks["dirty-flag-honest"].func(constant)
    same_data = Context(
        lab="02-versioning",
        wb=Workbench.from_env(home),
        variables={"fixed_run_id": run_id, "triple_run_id": _planted_run(home, ws)},
    )
    with pytest.raises(CheckFailed, match="same data.md5 as the fixed run"):
        checks["triple-v"].func(same_data)


def test_lab03_candidates_carry_the_pipeline_lineage(env) -> None:
    wb = Workbench.from_env(env[0])  # the module's state folder
    from mlops_workbench.registry import candidates

    home, _, _ = env
    ws = candidates.candidate_workspace(Workbench.from_env(home), home / "workspaces" / "candidates")
    assert ws.remote_url() == str(home / "dvc-remote")  # one call still gives a configured remote
    run_id = candidates.log_versioned_candidate(Workbench.from_env(home), ws, {"C": 10.0}, experiment="test-versioning")
    tags = versioning.run_lineage(wb, run_id)["tags"]
    lock = yaml.safe_load((ws.path / "dvc.lock").read_text())["stages"]
    assert list(lock) == ["prepare", "train", "evaluate"]
    assert tags["data.md5"] == next(d["md5"] for d in lock["prepare"]["deps"] if d["path"] == versioning.DATA)
    assert tags["git.dirty"] == "false" and tags["dvc.stale"] == "false"
    assert lock["train"]["params"]["params.yaml"]["train"]["C"] == 10.0


def test_add_pipeline_declares_what_the_dvc_stage_add_calls_declare(tmp_path: Path) -> None:
    """add_pipeline writes dvc.yaml in one step; it must equal the three `dvc stage add` calls lab 02 teaches."""
    built = {}
    for how in ("dvc-stage-add", "add_pipeline"):
        ws = versioning.init_workspace(Workbench.from_env(tmp_path / "home"), tmp_path / how)
        save_csv(load_iris_frame(), ws.path / versioning.DATA)
        ws.dvc("add", versioning.DATA)
        versioning.write_params(ws)
        if how == "add_pipeline":
            versioning.add_pipeline(ws)
        else:
            versioning.write_stage_scripts(ws)
            for stage in versioning.PIPELINE:
                ws.dvc(*stage.args)
        ignored = {
            str(p.relative_to(ws.path)): sorted(p.read_text().splitlines())
            for p in ws.path.rglob(".gitignore")
            if ".dvc" not in p.parts and ".git" not in p.parts
        }
        built[how] = yaml.safe_load((ws.path / "dvc.yaml").read_text()), ignored
        assert "Data and pipelines are up to date" not in ws.dvc("status")  # the stages were never run
    assert built["add_pipeline"] == built["dvc-stage-add"]
    assert set(built["add_pipeline"][0]["stages"]) == {"prepare", "train", "evaluate"}


def test_locked_md5_reads_a_dependency_of_any_stage_and_none_for_anything_else():
    from mlops_workbench.versioning.workspace import locked_md5

    lock = (
        "schema: '2.0'\nstages:\n  prepare:\n    cmd: python prepare.py\n    deps:\n    - path: prepare.py\n"
        "      md5: p1\n    - path: data/iris.csv\n      md5: d1\n      size: 10\n  train:\n    cmd: x\n"
    )
    assert locked_md5(lock, "data/iris.csv") == "d1" and locked_md5(lock, "prepare.py") == "p1"
    assert locked_md5(lock, "model/model.pkl") is None
    for not_a_lock in (
        None,
        "",
        "fatal: path 'dvc.lock' does not exist in 'HEAD'",
        "- a\n- b",
        "stages: [1, 2",
        "stages: [1, 2]",
        "stages:\n  prepare: [x]\n",
        "stages:\n  prepare:\n    deps: [x]\n",
    ):
        assert locked_md5(not_a_lock, "data/iris.csv") is None, not_a_lock
