"""Checks for lab 02: a git+DVC workspace, pushed data, the train stage, lineage on runs, exact reproduction.

Every check reads state the grader can see on its own: the workspace repository,
the DVC remote, and the MLflow tracking server under the state folder. The
reproduction checks rerun the reproduction themselves rather than trusting a
report from the notebook.
"""

from __future__ import annotations

import subprocess
from typing import Any

import yaml

from mlops_workbench import tracking
from mlops_workbench.labs.checks import Context, check, fail
from mlops_workbench.versioning.lineage import params_hash
from mlops_workbench.versioning.workspace import DATA, Workspace, remote_has

EXPERIMENT = "02-versioning"  # the notebook's `experiment` parameter
REQUIRED_TAGS = ("git.commit", "git.dirty", "data.path", "data.md5", "params.hash", "workspace.path")
"""The lineage a reproduction needs (what the learner's log_run sets with mlflow.set_tags)."""


def workspace(ctx: Context) -> Workspace:
    ws = Workspace(ctx.workspace)
    if not (ws.path / ".git").is_dir() or not (ws.path / ".dvc").is_dir():
        fail(f"{ws.path} is not a git + DVC repository: run the cell 'init-workspace' (versioning.init_workspace).")
    return ws


def in_git(ws: Workspace, path: str, rev: str = "HEAD") -> bool:
    return subprocess.run(
        ["git", "cat-file", "-e", f"{rev}:{path}"], cwd=ws.path, capture_output=True
    ).returncode == 0


def client(ctx: Context) -> Any:
    try:
        tracking.up(home=ctx.home)
        return tracking.client(ctx.home)
    except RuntimeError as exc:
        fail(f"The MLflow tracking server under the state folder does not start ({exc}): run the cell 'tracking'.")


def workspace_run(ctx: Context, ws: Workspace, variable: str, cell: str) -> Any:
    """The run named by notebook variable ``variable``, checked to come from this workspace's history."""
    from mlflow.exceptions import MlflowException

    run_id = ctx.var(variable)
    try:
        run = client(ctx).get_run(str(run_id))
    except MlflowException:
        fail(f"`{variable}` = {run_id!r} is not a run on the tracking server: rerun the cell '{cell}'.")
    tags = run.data.tags
    if tags.get("workspace.path") != str(ws.path) or not in_git(ws, "params.yaml", tags.get("git.commit", "-")):
        fail(f"Run {run_id} was not logged from this workspace's history: set the tags workspace.path = str(ws.path) "
             "and git.commit = the workspace's HEAD in log_run.")
    return run


@check("workspace-ready", points=1, cells=["init-workspace"])
def workspace_ready(ctx: Context) -> None:
    """The lab workspace is its own git + DVC repository with a local default remote."""
    ws = workspace(ctx)
    top = ws.git("rev-parse", "--show-toplevel")
    if top != str(ws.path):
        fail(f"git in {ws.path} uses the repository at {top}: the workspace must be a repository of its own.")
    remote = ws.remote_url()
    if not remote:
        fail("The workspace has no default DVC remote: init_workspace adds one (`dvc remote add --default`).")


@check("data-tracked", points=2, cells=["track-data"])
def data_tracked(ctx: Context) -> None:
    """data/iris.csv is tracked by DVC, its .dvc file committed, its content pushed to the remote."""
    ws = workspace(ctx)
    md5 = ws.dvc_md5(DATA)
    if md5 is None:
        fail(f"{DATA} is not tracked by DVC: run ws.dvc('add', '{DATA}') in the cell 'track-data'.")
    if not in_git(ws, f"{DATA}.dvc"):
        fail(f"{DATA}.dvc is not committed: commit it with ws.commit('...') after `dvc add`.")
    if in_git(ws, DATA):
        fail(f"{DATA} itself is committed to git: data belongs in DVC; only {DATA}.dvc goes into git.")
    if not remote_has(ws.remote_url(), md5):
        fail(f"The DVC remote {ws.remote_url()} does not hold {DATA} (md5 {md5}): run ws.dvc('push').")


@check("train-stage", points=2, cells=["train-stage"])
def train_stage(ctx: Context) -> None:
    """A committed DVC stage `train` depends on train.py, the data and params, and outputs model and metrics."""
    ws = workspace(ctx)
    if not in_git(ws, "dvc.yaml"):
        fail("There is no committed dvc.yaml: add the stage with ws.dvc('stage', 'add', ...) and commit it.")
    stage = (yaml.safe_load((ws.path / "dvc.yaml").read_text()) or {}).get("stages", {}).get("train")
    if not stage:
        fail("dvc.yaml has no stage named `train`: use `-n train` in `dvc stage add`.")
    deps = set(stage.get("deps", []))
    if not {"train.py", DATA} <= deps:
        fail(f"The train stage depends on {sorted(deps)}; it must depend on train.py and {DATA} (-d).")
    params = {p if isinstance(p, str) else next(iter(p)) for p in stage.get("params", [])}
    if not {"prepare", "train"} <= params:
        fail(f"The train stage tracks params {sorted(params)}; it must track the sections prepare and train (-p prepare,train).")
    outs = [o if isinstance(o, str) else next(iter(o)) for o in stage.get("outs", [])]
    metrics = [m if isinstance(m, str) else next(iter(m)) for m in stage.get("metrics", [])]
    if "model" not in outs or "metrics.json" not in metrics:
        fail("The train stage must output the model folder (-o model) and metrics.json as metrics (-M metrics.json).")
    if not in_git(ws, "dvc.lock"):
        fail("dvc.lock is not committed: run ws.dvc('repro') and commit the result.")


def lock_md5(ws: Workspace, commit: str) -> str | None:
    """The md5 dvc.lock at ``commit`` records for the data (as a dependency of any stage)."""
    try:
        lock = yaml.safe_load(ws.git("show", f"{commit}:dvc.lock")) or {}
    except Exception:
        return None
    for stage in (lock.get("stages") or {}).values():
        for dep in stage.get("deps") or []:
            if dep.get("path") == DATA:
                return dep.get("md5")
    return None


def check_lineage(ws: Workspace, run: Any, what: str) -> dict[str, str]:
    """The lineage tags of ``run`` are present and true to the commit they name; returns them."""
    tags = run.data.tags
    missing = [t for t in REQUIRED_TAGS if not tags.get(t)]
    if missing:
        fail(f"The {what} lacks the lineage tag(s) {missing}: add them to the mlflow.set_tags(...) call in log_run.")
    commit = tags["git.commit"]
    if not in_git(ws, "params.yaml", commit):
        fail(f"git.commit = {commit!r} is not a commit of the workspace: use ws.git('rev-parse', 'HEAD').")
    if tags["data.path"] != DATA:
        fail(f"data.path is {tags['data.path']!r}: it names the tracked file, {DATA!r}.")
    recorded = lock_md5(ws, commit)
    if tags["data.md5"] != recorded:
        fail(f"The {what}'s data.md5 {tags['data.md5']!r} is not the md5 dvc.lock records for {DATA} at its commit "
             f"({recorded!r}): read it from the deps of the train stage in dvc.lock, after `dvc repro` and a commit.")
    if tags["git.dirty"] not in ("true", "false"):
        fail(f"git.dirty is {tags['git.dirty']!r}: write the string 'true' or 'false'.")
    return tags


@check("lineage-complete", points=3, cells=["log-run"])
def lineage_complete(ctx: Context) -> None:
    """The run has complete, true lineage, the params and metrics, and a model with signature and input example."""
    ws = workspace(ctx)
    run = workspace_run(ctx, ws, "run_id", "log-run")
    tags = check_lineage(ws, run, "run")
    if tags["git.dirty"] != "false":
        fail(f"Run {run.info.run_id} was logged with uncommitted changes: commit (after `dvc repro`), then log.")
    committed = yaml.safe_load(ws.git("show", f"{tags['git.commit']}:params.yaml")) or {}
    if tags["params.hash"] != params_hash(committed):
        fail("params.hash does not match params.yaml at the run's commit: hash "
             "json.dumps(ws.params(), sort_keys=True) with hashlib.sha256(...).hexdigest().")
    if not {"train.seed", "train.C", "prepare.decimals"} <= set(run.data.params):
        fail(f"The run's params are {sorted(run.data.params)}: log every params.yaml value with mlflow.log_params, "
             "named section.key (train.seed, train.C, prepare.decimals, ...).")
    if not {"accuracy", "f1_macro", "log_loss"} <= set(run.data.metrics):
        fail(f"The run's metrics are {sorted(run.data.metrics)}: log every value of metrics.json with mlflow.log_metrics.")
    from mlflow.models import get_model_info

    try:
        info = get_model_info(f"runs:/{run.info.run_id}/model")
    except Exception:
        fail(f"Run {run.info.run_id} has no model named `model`: mlflow.sklearn.log_model(model, name='model', ...).")
    if info.signature is None or info.saved_input_example_info is None:
        fail("The model was logged without a signature or input example: pass signature=infer_signature(X, "
             "model.predict(X)) and input_example=X.")


@check("dirty-flag-honest", points=1, hidden=True, cells=["log-run", "mistake"])
def dirty_flag_honest(ctx: Context) -> None:
    """The run logged with an uncommitted params.yaml says git.dirty = true."""
    ws = workspace(ctx)
    run = workspace_run(ctx, ws, "dirty_run_id", "mistake")
    tags = check_lineage(ws, run, "run with the uncommitted tweak")
    if tags["git.dirty"] != "true":
        fail("The run logged with an uncommitted params.yaml says git.dirty = 'false': compute the flag from the "
             "workspace (ws.changed_files() is not empty), never write a constant.")


@check("reproduced", points=3, hidden=True, cells=["reproduce"], timeout=300)
def reproduced(ctx: Context) -> None:
    """The first run is reproduced exactly from its commit and the DVC remote (the grader reruns it)."""
    from mlops_workbench.versioning.reproduction import ReproductionError, reproduce

    ws = workspace(ctx)
    run = workspace_run(ctx, ws, "run_id", "log-run")
    try:
        report = reproduce(run.info.run_id, home=ctx.home)
    except ReproductionError as exc:
        fail(f"Run {run.info.run_id} cannot be rebuilt: {exc}")
    if not report.matched:
        fail(f"Run {run.info.run_id} does not reproduce: {' '.join(report.reasons) or report.summary()}")


@check("preprocessing-versioned", points=3, hidden=True, cells=["fix"], timeout=300)
def preprocessing_versioned(ctx: Context) -> None:
    """The preprocessing tweak is committed, logged from a clean tree, and its run reproduces exactly."""
    from mlops_workbench.versioning.reproduction import reproduce

    ws = workspace(ctx)
    run = workspace_run(ctx, ws, "fixed_run_id", "fix")
    tags, tweak = run.data.tags, ctx.var("decimals_tweak", 0)
    if tags.get("git.dirty") != "false":
        fail("The fixed run was logged from a dirty tree: commit params.yaml first.")
    committed = yaml.safe_load(ws.git("show", f"{tags['git.commit']}:params.yaml"))
    if (committed.get("prepare") or {}).get("decimals") != tweak:
        fail(f"params.yaml at the fixed run's commit does not hold prepare.decimals = {tweak}: commit the tweak.")
    report = reproduce(run.info.run_id, home=ctx.home)
    if not report.matched:
        fail(f"The fixed run does not reproduce: {' '.join(report.reasons) or report.summary()}")


@check("triple-v", points=3, hidden=True, cells=["triple-v"], timeout=120)
def triple_v(ctx: Context) -> None:
    """A data commit retrained the model: the new run differs from the fixed one only in data hash and commit."""
    ws = workspace(ctx)
    fixed = workspace_run(ctx, ws, "fixed_run_id", "fix")
    new = workspace_run(ctx, ws, "triple_run_id", "triple-v")
    tags = check_lineage(ws, new, "Triple-V run")
    old = fixed.data.tags
    if tags["git.dirty"] != "false":
        fail("The Triple-V run was logged from a dirty tree: `dvc add`, commit, `dvc repro`, commit, then log.")
    if tags["data.md5"] == old.get("data.md5"):
        fail("The Triple-V run has the same data.md5 as the fixed run: `dvc add data/iris.csv` and commit the new "
             "batch, then `dvc repro` before logging.")
    changed = sorted(k for k in REQUIRED_TAGS if k != "workspace.path" and tags.get(k) != old.get(k))
    if set(changed) != {"git.commit", "data.md5"}:
        fail(f"The Triple-V run's lineage differs from the fixed run's in {changed}: only the data (and the commit "
             "that carries it) should change; leave params.yaml and the code alone.")
    if not remote_has(ws.remote_url(), tags["data.md5"]):
        fail(f"The DVC remote does not hold the new data (md5 {tags['data.md5']}): run `dvc push` after the data commit.")
