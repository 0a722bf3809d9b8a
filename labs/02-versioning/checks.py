"""Checks for lab 02: a git+DVC workspace, a remote holding the data, the prepare -> train -> evaluate
pipeline, lineage on runs, exact reproduction.

Every check reads state the grader can see on its own: the workspace repository,
the DVC remote, and the MLflow tracking server under the state folder. The
reproduction checks rerun the reproduction themselves rather than trusting a
report from the notebook. The expected pipeline is the package's own
(``versioning.PIPELINE``), so the checks and the reference workspaces never disagree.

The scenario checks run the learner's own pipeline, ``log_run`` and ``reproduce_run`` on cases drawn from the
grading run's seed (``scenarios.py``, in a scratch copy of the workspace) and grade the state they leave.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from platform import python_version
from typing import Any

import yaml

from mlops_workbench import tracking
from mlops_workbench.labs.checks import Context, check, fail, learner_function
from mlops_workbench.labs.learner_code import load_module
from mlops_workbench.versioning import PIPELINE, ReproductionReport, Stage
from mlops_workbench.versioning.lineage import params_hash
from mlops_workbench.versioning.workspace import DATA, METRICS, Workspace, locked_md5, remote_has

EXPERIMENT = "02-versioning"  # the notebook's `experiment` parameter
GRADER_EXPERIMENT = "02-versioning-grader"  # the runs of the hidden scenarios
REQUIRED_TAGS = ("git.commit", "git.dirty", "data.path", "data.md5", "params.hash", "env.python", "workspace.path")
"""The lineage a reproduction needs (what the learner's log_run sets with mlflow.set_tags)."""
ADD_REMOTE = "ws.dvc('remote', 'add', '--default', 'local', str(versioning.default_remote(lab.home)))"


def workspace(ctx: Context) -> Workspace:
    ws = Workspace(ctx.workspace)
    if not (ws.path / ".git").is_dir() or not (ws.path / ".dvc").is_dir():
        fail(
            f"{ws.path} is not a git + DVC repository: run ws.git('init', '-b', 'main') and ws.dvc('init') in "
            "the cell 'init-workspace'."
        )
    return ws


def client(ctx: Context) -> Any:
    try:
        tracking.up(ctx.wb)
        return tracking.client(ctx.wb)
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
    if tags.get("workspace.path") != str(ws.path) or not ws.has("params.yaml", tags.get("git.commit", "-")):
        fail(
            f"Run {run_id} was not logged from this workspace's history: set the tags workspace.path = str(ws.path) "
            "and git.commit = the workspace's HEAD in log_run."
        )
    return run


@check("workspace-ready", points=1, cells=["init-workspace"])
def workspace_ready(ctx: Context) -> None:
    """The lab workspace is its own git + DVC repository."""
    ws = workspace(ctx)
    top = ws.git("rev-parse", "--show-toplevel")
    if top != str(ws.path):
        fail(f"git in {ws.path} uses the repository at {top}: the workspace must be a repository of its own.")
    if not ws.git("log", "--oneline", "-1", check=False):
        fail(
            "The workspace repository has no commit yet: commit what git init and dvc init made with ws.commit('...')."
        )
    if not ws.has(".dvc/config") or not ws.has(".dvcignore"):
        fail(
            "DVC's own files (.dvc/config, .dvcignore) are not committed: after ws.dvc('init'), commit with "
            "ws.commit('...'), so every clone of the workspace is a DVC repository too."
        )


@check("data-tracked", points=2, cells=["init-workspace", "track-data"])
def data_tracked(ctx: Context) -> None:
    """data/iris.csv is tracked by DVC, its .dvc file committed, and the committed default remote holds it."""
    ws = workspace(ctx)
    md5 = ws.dvc_md5(DATA)
    if md5 is None:
        fail(f"{DATA} is not tracked by DVC: run ws.dvc('add', '{DATA}') in the cell 'track-data'.")
    if not ws.has(f"{DATA}.dvc"):
        fail(f"{DATA}.dvc is not committed: commit it with ws.commit('...') after `dvc add`.")
    if ws.has(DATA):
        fail(f"{DATA} itself is committed to git: data belongs in DVC; only {DATA}.dvc goes into git.")
    remote = ws.remote_url()
    if not remote:
        fail(
            f"The workspace has no default DVC remote, so `dvc push` has nowhere to send {DATA} and no clone can "
            f"`dvc pull` it. Add the shared folder as the default remote: {ADD_REMOTE}, commit, then push."
        )
    if ws.remote_url("HEAD") != remote:
        fail(
            f"The default remote {remote} is not in the committed .dvc/config, so a clone (like the one a "
            "reproduction makes) does not know it: commit .dvc/config with ws.commit('...') (and do not use --local)."
        )
    if not remote_has(remote, md5):
        fail(
            f"The default remote {remote} is set but does not hold {DATA} (md5 {md5}): the data was never pushed "
            "there. Run ws.dvc('push')."
        )


def names(stage: dict, key: str) -> list[str]:
    """The paths (or param names) a dvc.yaml stage lists under ``key``; entries with options are dicts."""
    found: list[str] = []
    for entry in stage.get(key) or []:
        if isinstance(entry, str):
            found.append(entry)
        elif key == "params":  # {params.yaml: [names]} when the file is spelled out
            found += [n for keys in entry.values() for n in (keys or [])]
        else:
            found.append(next(iter(entry)))
    return found


def covered(path: str, declared: list[str]) -> bool:
    """``path`` is declared itself or through a folder (``-d data/prepared`` covers data/prepared/train.csv)."""
    return any(path == d.rstrip("/") or path.startswith(d.rstrip("/") + "/") for d in declared)


def stage_problem(expected: Stage, stage: dict) -> str | None:
    """What a learner's dvc.yaml stage lacks compared with the stage the pipeline needs, with the fix."""
    name, script, redo = expected.name, expected.script, "redeclare it (`dvc stage add --force ...`) and commit"
    if script not in str(stage.get("cmd", "")):
        return f"The {name} stage runs {stage.get('cmd')!r}, not its script: its command is '{expected.command}'."
    deps, params = names(stage, "deps"), names(stage, "params")
    if script not in deps:
        return (
            f"The {name} stage does not depend on its own code: add -d {script}, or editing {script} never "
            f"reruns it; {redo}."
        )
    for dep in expected.deps:
        if not covered(dep, deps):
            return (
                f"The {name} stage does not depend on {dep}, which it reads: add -d {dep}, or DVC neither runs "
                f"{name} after the stage that writes it nor reruns {name} when it changes; {redo}."
            )
    missing = [p for p in expected.params if p not in params and p.split(".")[0] not in params]
    if missing:
        return (
            f"The {name} stage does not track the params {missing} it reads: add -p {','.join(expected.params)}, "
            f"or changing them never reruns it; {redo}."
        )
    outs = names(stage, "outs")
    for out in expected.outs:  # the folder itself, or files inside it
        if not covered(out, outs) and not any(covered(o, [out]) for o in outs):
            return (
                f"The {name} stage does not declare its output {out}: add -o {out}, so DVC caches it and the "
                f"next stage can depend on it; {redo}."
            )
    for metric in expected.metrics:
        entries = [m for m in stage.get("metrics") or [] if isinstance(m, dict)]
        if not any((m.get(metric) or {}).get("cache") is False for m in entries):
            return (
                f"The {name} stage must declare {metric} as a metrics file kept in git: -M {metric} (capital M; "
                f"-m or -o would put it in the DVC cache instead); {redo}."
            )
    return None


def committed_stages(ws: Workspace, name: str) -> dict[str, Any]:
    """The ``stages`` of dvc.yaml or dvc.lock as committed at HEAD ({} when not committed)."""
    text = ws.git("show", f"HEAD:{name}") if ws.has(name) else ""
    return (yaml.safe_load(text) or {}).get("stages") or {}


@check("pipeline-declared", points=3, cells=["pipeline"])
def pipeline_declared(ctx: Context) -> None:
    """dvc.yaml (committed) declares prepare, train and evaluate, each with its code, data, params and outputs."""
    ws = workspace(ctx)
    if not ws.has("dvc.yaml"):
        fail("There is no committed dvc.yaml: declare the stages with ws.dvc('stage', 'add', ...) and commit.")
    if ws.git("status", "--porcelain", "--", "dvc.yaml"):
        fail("dvc.yaml has changes that are not committed: commit it with ws.commit('...').")
    stages = committed_stages(ws, "dvc.yaml")
    for expected in PIPELINE:
        if expected.name not in stages:
            fail(
                f"dvc.yaml has no stage named `{expected.name}` (it has {sorted(stages)}): declare it with "
                f"`dvc stage add -n {expected.name} ...` and commit."
            )
        problem = stage_problem(expected, stages[expected.name] or {})
        if problem:
            fail(problem)


@check("pipeline-ran", points=1, cells=["pipeline"])
def pipeline_ran(ctx: Context) -> None:
    """The committed dvc.lock records a run of every stage as declared, and metrics.json is committed."""
    ws = workspace(ctx)
    if not ws.has("dvc.lock"):
        fail("dvc.lock is not committed: run ws.dvc('repro') and commit the result.")
    locked, declared = (committed_stages(ws, name) for name in ("dvc.lock", "dvc.yaml"))
    never = [s.name for s in PIPELINE if s.name not in locked]
    if never:
        fail(
            f"The committed dvc.lock has no record of the stage(s) {never}: they never ran. Run ws.dvc('repro') "
            "(it runs every stage whose inputs changed, upstream first) and commit dvc.lock."
        )
    for stage in PIPELINE:
        recorded = {d.get("path") for d in locked[stage.name].get("deps") or []}
        if not set(names(declared.get(stage.name) or {}, "deps")) <= recorded:
            fail(
                f"The committed dvc.lock records the {stage.name} stage as it was before you changed its "
                "declaration: run ws.dvc('repro') again and commit dvc.lock."
            )
    if not ws.has(METRICS):
        fail(f"{METRICS} is not committed: a -M metrics file is versioned in git; commit it after `dvc repro`.")


def lock_md5(ws: Workspace, commit: str) -> str | None:
    """The md5 dvc.lock at ``commit`` records for the data (as a dependency of any stage)."""
    return locked_md5(ws.git("show", f"{commit}:dvc.lock", check=False), DATA)


def check_lineage(ws: Workspace, run: Any, what: str) -> dict[str, str]:
    """The lineage tags of ``run`` are present and true to the commit they name; returns them."""
    tags = run.data.tags
    missing = [t for t in REQUIRED_TAGS if not tags.get(t)]
    if missing:
        fail(f"The {what} lacks the lineage tag(s) {missing}: add them to the mlflow.set_tags(...) call in log_run.")
    commit = tags["git.commit"]
    if not ws.has("params.yaml", commit):
        fail(f"git.commit = {commit!r} is not a commit of the workspace: use ws.git('rev-parse', 'HEAD').")
    if tags["data.path"] != DATA:
        fail(f"data.path is {tags['data.path']!r}: it names the tracked file, {DATA!r}.")
    recorded = lock_md5(ws, commit)
    if tags["data.md5"] != recorded:
        fail(
            f"The {what}'s data.md5 {tags['data.md5']!r} is not the md5 dvc.lock records for {DATA} at its commit "
            f"({recorded!r}): read it from the deps of the prepare stage (the one that reads {DATA}) in dvc.lock, "
            "after `dvc repro` and a commit."
        )
    if tags["git.dirty"] not in ("true", "false"):
        fail(f"git.dirty is {tags['git.dirty']!r}: write the string 'true' or 'false'.")
    if tags["env.python"] != python_version():
        fail(
            f"env.python is {tags['env.python']!r}, not the Python version that trained the model: use "
            "platform.python_version()."
        )
    return tags


@check("lineage-complete", points=3, cells=["log-run", "use-log-run"])
def lineage_complete(ctx: Context) -> None:
    """The run has complete, true lineage, the params and metrics, and a model with signature and input example."""
    ws = workspace(ctx)
    run = workspace_run(ctx, ws, "run_id", "use-log-run")
    tags = check_lineage(ws, run, "run")
    if tags["git.dirty"] != "false":
        fail(f"Run {run.info.run_id} was logged with uncommitted changes: commit (after `dvc repro`), then log.")
    committed = yaml.safe_load(ws.git("show", f"{tags['git.commit']}:params.yaml")) or {}
    if tags["params.hash"] != params_hash(committed):
        fail(
            "params.hash does not match params.yaml at the run's commit: hash "
            "json.dumps(ws.params(), sort_keys=True) with hashlib.sha256(...).hexdigest()."
        )
    if not {"train.seed", "train.C", "prepare.decimals"} <= set(run.data.params):
        fail(
            f"The run's params are {sorted(run.data.params)}: log every params.yaml value with mlflow.log_params, "
            "named section.key (train.seed, train.C, prepare.decimals, ...)."
        )
    if not {"accuracy", "f1_macro", "log_loss"} <= set(run.data.metrics):
        fail(
            f"The run's metrics are {sorted(run.data.metrics)}: log every value of metrics.json with mlflow.log_metrics."
        )
    from mlflow.models import get_model_info

    try:
        info = get_model_info(tracking.logged_model_uri(ctx.wb, run.info.run_id))
    except Exception:
        fail(f"Run {run.info.run_id} has no model named `model`: mlflow.sklearn.log_model(model, name='model', ...).")
    if info.signature is None or info.saved_input_example_info is None:
        fail(
            "The model was logged without a signature or input example: pass signature=infer_signature(X, "
            "model.predict(X)) and input_example=X."
        )


@check("dirty-flag-honest", points=1, hidden=True, cells=["log-run", "use-log-run", "mistake"])
def dirty_flag_honest(ctx: Context) -> None:
    """The run logged with an uncommitted params.yaml says git.dirty = true."""
    ws = workspace(ctx)
    run = workspace_run(ctx, ws, "dirty_run_id", "mistake")
    tags = check_lineage(ws, run, "run with the uncommitted tweak")
    if tags["git.dirty"] != "true":
        fail(
            "The run logged with an uncommitted params.yaml says git.dirty = 'false': compute the flag from the "
            "workspace (ws.changed_files() is not empty), never write a constant."
        )


def regrade(run_id: str, ctx: Context) -> ReproductionReport:
    """The grader's own reproduction of ``run_id``, in a scratch folder of this check (checks run side by side)."""
    from mlops_workbench.versioning.reproduction import reproduce

    with tempfile.TemporaryDirectory(prefix="workbench-grade-") as scratch:
        return reproduce(ctx.wb, run_id, workdir=Path(scratch) / "checkout")


@check(
    "reproduced", points=3, hidden=True, cells=["use-log-run", "reproduce", "use-reproduce"], timeout=300, isolated=True
)
def reproduced(ctx: Context) -> None:
    """The first run is reproduced exactly from its commit and the DVC remote (the grader reruns it)."""
    from mlops_workbench.versioning.reproduction import ReproductionError

    ws = workspace(ctx)
    run = workspace_run(ctx, ws, "run_id", "use-log-run")
    try:
        report = regrade(run.info.run_id, ctx)
    except ReproductionError as exc:
        fail(f"Run {run.info.run_id} cannot be rebuilt: {exc}")
    if not report.matched:
        fail(f"Run {run.info.run_id} does not reproduce: {' '.join(report.reasons) or report.summary()}")


@check("preprocessing-versioned", points=3, hidden=True, cells=["fix"], timeout=300, isolated=True)
def preprocessing_versioned(ctx: Context) -> None:
    """The preprocessing tweak is committed, logged from a clean tree, and its run reproduces exactly."""
    ws = workspace(ctx)
    run = workspace_run(ctx, ws, "fixed_run_id", "fix")
    tags, tweak = run.data.tags, ctx.var("decimals_tweak", 0)
    if tags.get("git.dirty") != "false":
        fail("The fixed run was logged from a dirty tree: commit params.yaml first.")
    committed = yaml.safe_load(ws.git("show", f"{tags['git.commit']}:params.yaml"))
    if (committed.get("prepare") or {}).get("decimals") != tweak:
        fail(f"params.yaml at the fixed run's commit does not hold prepare.decimals = {tweak}: commit the tweak.")
    report = regrade(run.info.run_id, ctx)
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
        fail(
            "The Triple-V run has the same data.md5 as the fixed run: `dvc add data/iris.csv` and commit the new "
            "batch, then `dvc repro` before logging."
        )
    changed = sorted(k for k in REQUIRED_TAGS if k != "workspace.path" and tags.get(k) != old.get(k))
    if set(changed) != {"git.commit", "data.md5"}:
        fail(
            f"The Triple-V run's lineage differs from the fixed run's in {changed}: only the data (and the commit "
            "that carries it) should change; leave params.yaml and the code alone."
        )
    if not remote_has(ws.remote_url(), tags["data.md5"]):
        fail(
            f"The DVC remote does not hold the new data (md5 {tags['data.md5']}): run `dvc push` after the data commit."
        )


@contextmanager
def scenario(ctx: Context, file: str, name: str, cell: str, label: str) -> Iterator[tuple[Any, Any, Any, Any, Path]]:
    """What a scenario check works with: the scenario helpers (``scenarios.py`` beside this file, freshly loaded),
    the learner's function ``name`` from ``file``, the check's seeded generator, a copy of the workspace in a scratch
    folder, and that folder; the tracking server is up and MLflow points at it."""
    sc = load_module(Path(__file__).with_name("scenarios.py"), "_workbench_lab02_scenarios")
    ws = workspace(ctx)
    func = learner_function(ctx, file, name, cell)
    client(ctx)
    tracking.use(ctx.wb)
    with tempfile.TemporaryDirectory(prefix="workbench-grade-") as scratch:
        yield sc, func, ctx.rng(label), sc.copy_workspace(ws, Path(scratch)), Path(scratch)


@check(
    "log-run-scenarios", points=3, hidden=True, cells=["pipeline", "log-run", "use-log-run"], timeout=420, isolated=True
)
def log_run_scenarios(ctx: Context) -> None:
    """On a copy of the workspace, seeded code and data changes rerun exactly the stages that depend on them, and the
    learner's log_run tags each resulting run with the real lineage."""
    with scenario(ctx, "log_run.py", "log_run", "log-run", "log-run-scenarios") as (sc, log_run, rng, copy, _):
        copy.commit("Grader: what the notebook left uncommitted")
        copy.dvc("repro")
        copy.commit("Grader: pipeline up to date")
        for apply_edit in (sc.apply_code_edit, sc.apply_data_edit):  # one at a time: each reruns its own stages
            edit = apply_edit(rng, copy)
            copy.commit(f"Grader: change {edit.what}")
            ran = sc.repro(copy)
            if ran != edit.expected:
                fail(
                    f"After a committed change to {edit.what}, `dvc repro` ran {sorted(ran) or 'no stage'}, but "
                    f"exactly {sorted(edit.expected)} depend on it: give each stage -d for its script and every "
                    "file it reads (and only those), -p for the params it reads, -o for what it writes."
                )
            copy.commit("Grader: retrain")
            sc.check_logged(log_run, copy, client(ctx), False, f"a workspace with a committed change to {edit.what}")
        what = sc.make_dirty(rng, copy)
        sc.check_logged(log_run, copy, client(ctx), True, f"a workspace with {what}")


@check("reproduce-scenarios", points=3, hidden=True, cells=["reproduce", "use-reproduce"], timeout=420, isolated=True)
def reproduce_scenarios(ctx: Context) -> None:
    """The learner's reproduce_run rebuilds a seeded run whose commit is no longer the latest, and reports a run
    logged from an uncommitted change as not reproduced; graded on the clones it leaves."""
    from mlops_workbench.versioning.lineage import log_model_run

    with scenario(ctx, "reproduce_run.py", "reproduce_run", "reproduce", "reproduce-scenarios") as (
        sc,
        reproduce_run,
        rng,
        copy,
        scratch,
    ):
        copy.set_params(train={"C": sc.new_c(rng, copy)})
        copy.commit("Grader: a new train.C")
        copy.dvc("repro")
        copy.commit("Grader: retrain")
        clean = log_model_run(ctx.wb, copy, GRADER_EXPERIMENT)
        copy.set_params(train={"C": sc.new_c(rng, copy)})
        copy.dvc("repro")
        dirty = log_model_run(ctx.wb, copy, GRADER_EXPERIMENT)
        copy.commit("Grader: the next experiment, committed after its run")
        for run_id, should_match, case in (
            (clean, True, "a run two commits back"),
            (dirty, False, "a run logged from an uncommitted change"),
        ):
            workdir = scratch / f"repro-{run_id[:8]}"
            result = sc.reproduced(reproduce_run, run_id, workdir, case)
            problem = sc.reproduction_problem(result, workdir, client(ctx).get_run(run_id), should_match, case)
            if problem:
                fail(problem)
