"""Hidden scenarios of lab 02: the learner's pipeline, ``log_run`` and ``reproduce_run`` on cases made per grading.

Each scenario works in a scratch copy of the learner's workspace (same history, same DVC remote), applies edits
drawn from the check's seeded generator, commits them the way the lab does, runs the learner's ``dvc repro`` and
functions, and returns the state for the checks to compare. Loaded by ``checks.py``; never shipped to learners.
"""

from __future__ import annotations

import json
import platform
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mlops_workbench.data import FEATURES, load_csv, save_csv
from mlops_workbench.labs.checks import fail
from mlops_workbench.versioning.lineage import params_hash
from mlops_workbench.versioning.workspace import DATA, METRICS, Workspace, file_md5, locked_md5

GRADER_EXPERIMENT = "02-versioning-grader"
C_VALUES = (0.05, 0.2, 0.5, 2.0, 5.0, 20.0)
PREPARE_CODE = '''"""Stage `prepare`, edited by the grader: the usual preprocessing, then a few training rows left out."""
from mlops_workbench.data import load_csv, save_csv
from mlops_workbench.versioning import prepare_stage

if __name__ == "__main__":
    prepare_stage(".")
    rows = load_csv("data/prepared/train.csv")
    save_csv(rows.drop(index=rows.index[{rows}]).reset_index(drop=True), "data/prepared/train.csv")
'''


@dataclass(frozen=True)
class Edit:
    """One committed change and the stages ``dvc repro`` must rerun after it."""

    kind: str
    what: str  # for messages: names the input that changed, never the value
    expected: frozenset[str]


def copy_workspace(ws: Workspace, scratch: Path) -> Workspace:
    """A copy of the workspace (history, DVC cache and outputs) in ``scratch/workspace``."""
    dest = scratch / "workspace"
    shutil.copytree(ws.path, dest, symlinks=True, ignore=shutil.ignore_patterns("tmp"))
    return Workspace(dest)


def new_c(rng: random.Random, ws: Workspace) -> float:
    current = (ws.params().get("train") or {}).get("C")
    return rng.choice([c for c in C_VALUES if c != current])


def apply_code_edit(rng: random.Random, ws: Workspace) -> Edit:
    """A seeded change of a train param, of the preprocessing code, or of the evaluation code (not committed)."""
    kind = rng.choice(["train-param", "preprocessing-code", "evaluate-code"])
    if kind == "train-param":
        ws.set_params(train={"C": new_c(rng, ws)})
        return Edit(kind, "the param train.C in params.yaml", frozenset({"train", "evaluate"}))
    if kind == "preprocessing-code":
        rows = sorted(rng.sample(range(100), 3))
        (ws.path / "prepare.py").write_text(PREPARE_CODE.format(rows=rows))
        return Edit(kind, "the preprocessing code prepare.py", frozenset({"prepare", "train", "evaluate"}))
    script = ws.path / "evaluate.py"
    script.write_text(script.read_text() + f"# reviewed by the grader ({rng.randrange(10**6)})\n")
    return Edit(kind, "the evaluation code evaluate.py", frozenset({"evaluate"}))


def apply_data_edit(rng: random.Random, ws: Workspace) -> Edit:
    """A seeded new batch of rows appended to the data, versioned as in Exercise 2 (``dvc add``; committed and pushed later)."""
    frame = load_csv(ws.path / DATA)
    batch = frame.sample(rng.randrange(10, 30), random_state=rng.randrange(10**6))
    batch[FEATURES] = (batch[FEATURES] * rng.choice([0.9, 0.95, 1.05, 1.1])).round(1)
    save_csv(pd.concat([frame, batch], ignore_index=True), ws.path / DATA)  # more rows: both splits change
    ws.dvc("add", DATA)
    return Edit("data", f"the data {DATA}", frozenset({"prepare", "train", "evaluate"}))


def repro(ws: Workspace) -> set[str]:
    """Run the learner's pipeline; the names of the stages DVC ran (not those it skipped)."""
    out = ws.dvc("repro")
    return set(re.findall(r"Running stage '([^']+)'", out))


@dataclass
class Truth:
    """The real state of the copy when a run was logged from it."""

    commit: str
    dirty: bool
    data_md5: str | None
    params_hash: str
    metrics: dict[str, float]
    path: str
    train_c: float | None


def truth(ws: Workspace, dirty: bool) -> Truth:
    params = ws.params()
    metrics = json.loads((ws.path / METRICS).read_text())
    return Truth(
        commit=ws.head(),
        dirty=dirty,
        data_md5=locked_md5((ws.path / "dvc.lock").read_text(), DATA),
        params_hash=params_hash(params),
        metrics={k: float(v) for k, v in metrics.items()},
        path=str(ws.path),
        train_c=(params.get("train") or {}).get("C"),
    )


def make_dirty(rng: random.Random, ws: Workspace) -> str:
    """Leave an uncommitted input in the tree: an edited param or a new, untracked script. Returns what."""
    if rng.random() < 0.5:
        ws.set_params(train={"max_iter": int((ws.params().get("train") or {}).get("max_iter", 500)) + 1})
        return "an edited, uncommitted params.yaml"
    (ws.path / "features.py").write_text('"""A helper not committed yet."""\n')
    return "a new file not committed yet"


def checkout_state(workdir: Path) -> tuple[str | None, str | None, dict[str, float]]:
    """(HEAD, md5 of the data file, metrics.json) of a learner's reproduction folder; None where missing."""
    head = None
    if (workdir / ".git").exists():
        head = Workspace(workdir).git("rev-parse", "HEAD", check=False) or None
    data = workdir / DATA
    md5 = file_md5(data) if data.is_file() else None
    metrics_file = workdir / METRICS
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    return head, md5, metrics


def lineage_problem(run, real: Truth, python: str, case: str) -> str | None:
    """What is wrong with the tags, params and metrics of ``run`` logged by the learner's log_run, with the fix."""
    tags = run.data.tags
    expected = {
        "git.commit": (
            real.commit,
            (
                "read it from the workspace you are given: ws.git('rev-parse', 'HEAD'), never "
                "from the notebook, a constant or the current folder"
            ),
        ),
        "git.dirty": (
            "true" if real.dirty else "false",
            ("compute it from ws.changed_files() (modified, staged and untracked inputs) on every call"),
        ),
        "data.md5": (
            real.data_md5,
            ("read the md5 of data/iris.csv from ws.path / 'dvc.lock' (the prepare stage's deps) on every call"),
        ),
        "params.hash": (real.params_hash, "hash ws.params() of the workspace you are given, on every call"),
        "env.python": (python, "use platform.python_version()"),
        "workspace.path": (real.path, "use str(ws.path) of the workspace you are given"),
    }
    for tag, (value, fix) in expected.items():
        if tags.get(tag) != value:
            shown = "missing" if tag not in tags else repr(tags[tag])
            return f"On {case}, your log_run tagged {tag} = {shown}, which is not the real state: {fix}."
    wrong = sorted(k for k, v in real.metrics.items() if run.data.metrics.get(k) != v)
    if wrong:
        return (
            f"On {case}, the run's metrics {wrong} are not those of the workspace's metrics.json: read "
            "ws.path / 'metrics.json' on every call."
        )
    if real.train_c is not None and run.data.params.get("train.C") != str(real.train_c):
        return f"On {case}, the run's param train.C is not the value in params.yaml: log ws.params() on every call."
    return None


def reproduction_problem(result, workdir: Path, run, should_match: bool, case: str) -> str | None:
    """What is wrong with the learner's reproduce_run(run) into ``workdir``, judged on the folder it left."""
    head, md5, metrics = checkout_state(workdir)
    tags = run.data.tags
    if head != tags["git.commit"]:
        return (
            f"For {case}, the clone in workdir is at {head and head[:10]}, not at the run's commit: check out "
            "tags['git.commit'] in the clone (git checkout --detach COMMIT), not the latest commit."
        )
    if md5 != tags["data.md5"]:
        return (
            f"For {case}, data/iris.csv in the clone is {'missing' if md5 is None else 'another version'}: "
            "`dvc pull data/iris.csv` in the clone after the checkout."
        )
    if not isinstance(result, dict) or set(result) != set(run.data.metrics):
        got = sorted(result) if isinstance(result, dict) else type(result).__name__
        return (
            f"For {case}, reproduce_run returned {got}: return a dict with every metric the run logged, "
            f"{sorted(run.data.metrics)}, each (logged, reproduced)."
        )
    for name, pair in result.items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            return f"For {case}, reproduce_run returned {pair!r} for {name}: return a (logged, reproduced) pair."
        logged, got = pair
        if logged != run.data.metrics[name] or got != metrics.get(name):
            return (
                f"For {case}, reproduce_run's pair for {name} is not (the logged value, the value in the clone's "
                "metrics.json after `dvc repro --force`): read both, never copy one into the other."
            )
    matched = all(a == b for a, b in result.values())
    if matched != should_match:
        why = "its inputs were all committed" if should_match else "it was logged from an uncommitted change"
        return (
            f"For {case}, the reproduction {'differs' if not matched else 'matches'} though {why}: clone the "
            "run's workspace at its commit, pull its data, `dvc repro --force`, and compare every metric."
        )
    return None


def logged(log_run, ws: Workspace, client):
    """The run the learner's log_run logs from ``ws`` (a failed check naming the error if it raises)."""
    from mlflow.exceptions import MlflowException

    try:
        run_id = log_run(ws, GRADER_EXPERIMENT)
    except Exception as exc:  # noqa: BLE001 - the learner's code: any error is a finding
        fail(
            f"Your log_run raised {type(exc).__name__}: {exc} on a workspace of the grader's: compute everything "
            "from the `ws` argument (ws.path, ws.git, ws.params())."
        )
    try:
        return client.get_run(str(run_id))
    except MlflowException:
        fail(f"Your log_run returned {run_id!r}, which is no run: return run.info.run_id.")


def reproduced(reproduce_run, run_id: str, workdir: Path, case: str):
    """What the learner's reproduce_run returns for ``run_id`` (a failed check naming the error if it raises)."""
    try:
        return reproduce_run(run_id, workdir)
    except Exception as exc:  # noqa: BLE001 - the learner's code: any error is a finding
        fail(
            f"Your reproduce_run raised {type(exc).__name__}: {exc} for {case}: it must work for any run with "
            "lineage, from its tags alone."
        )


def check_logged(log_run, ws: Workspace, client, dirty: bool, case: str) -> None:
    """Log a run from ``ws`` with the learner's log_run and fail with the fix when its lineage is not the real one."""
    run = logged(log_run, ws, client)
    problem = lineage_problem(run, truth(ws, dirty), platform.python_version(), case)
    if problem:
        fail(problem)
