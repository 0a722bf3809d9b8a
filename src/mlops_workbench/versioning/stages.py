"""Versioning code, data and model together (lab 02).

A lab workspace (:mod:`mlops_workbench.versioning.workspace`) keeps code and
``params.yaml`` in git, the Iris CSV in DVC, and a DVC 3 pipeline of three
stages, :data:`PIPELINE`: ``prepare`` (preprocess with params section
``prepare``, split with ``train.seed`` / ``train.test_size``, write
``data/prepared/``) -> ``train`` (fit on the prepared train split with section
``train``, write ``model/model.pkl``) -> ``evaluate`` (score the model on the
prepared test split, write ``metrics.json``). Each stage's script in the
workspace only calls its function here (:func:`prepare_stage`,
:func:`train_stage`, :func:`evaluate_stage`), through :func:`mlops_workbench.procs.warm.run_stage`.

Runs are logged with their lineage (:mod:`mlops_workbench.versioning.lineage`) and can be
reproduced from it (:mod:`mlops_workbench.versioning.reproduction`). The package
(:mod:`mlops_workbench.versioning`) is the one facade over these modules.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from mlops_workbench.paramspec import PrepareParams, TrainParams
from mlops_workbench.versioning.workspace import DATA, METRICS, MODEL_DIR, MODEL_FILE, Workspace

PREPARED = "data/prepared"
TRAIN_SPLIT = f"{PREPARED}/train.csv"
TEST_SPLIT = f"{PREPARED}/test.csv"


@dataclass(frozen=True)
class Stage:
    """One stage of the workspace pipeline: what it reads (besides its script), tracks and writes."""

    name: str
    summary: str
    deps: tuple[str, ...]
    params: tuple[str, ...] = ()
    outs: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()

    @property
    def script(self) -> str:
        return f"{self.name}.py"

    @property
    def command(self) -> str:
        return f"python {self.script}"

    @property
    def declaration(self) -> dict[str, Any]:
        """The stage's entry in ``dvc.yaml``, as ``dvc stage add`` with :attr:`args` writes it."""
        entry: dict[str, Any] = {"cmd": self.command, "deps": sorted((self.script, *self.deps))}
        if self.params:
            entry["params"] = list(self.params)
        if self.outs:
            entry["outs"] = list(self.outs)
        if self.metrics:
            entry["metrics"] = [{path: {"cache": False}} for path in self.metrics]
        return entry

    @property
    def args(self) -> list[str]:
        """``ws.dvc(*stage.args)`` declares the stage (``dvc stage add --force ...``)."""
        args = ["stage", "add", "--force", "-n", self.name, *_flags("-d", (self.script, *self.deps))]
        if self.params:
            args += ["-p", ",".join(self.params)]
        return [*args, *_flags("-o", self.outs), *_flags("-M", self.metrics), self.command]


def _flags(flag: str, paths: tuple[str, ...]) -> list[str]:
    return [part for path in paths for part in (flag, path)]


PIPELINE = (
    Stage(
        "prepare",
        "preprocess data/iris.csv (params `prepare`) and split it (train.seed, train.test_size)",
        deps=(DATA,),
        params=("prepare", "train.seed", "train.test_size"),
        outs=(PREPARED,),
    ),
    Stage(
        "train",
        "fit the model (params `train`) on the prepared train split",
        deps=(TRAIN_SPLIT,),
        params=("train",),
        outs=(MODEL_DIR,),
    ),
    Stage("evaluate", "score the model on the prepared test split", deps=(MODEL_FILE, TEST_SPLIT), metrics=(METRICS,)),
)
"""The workspace pipeline in run order: prepare -> train -> evaluate (the one owner of the declarations)."""

SCRIPT = '''"""Stage `{name}` of this workspace's DVC pipeline (dvc.yaml), run by `dvc repro`.

What it does: {summary}.
It runs `mlops_workbench.versioning.{name}_stage(".")`: in this process, or forked from the warm runner named
by WORKBENCH_WARM_RUNNER when one is up (`mlops_workbench.procs.warm`), which has pandas and scikit-learn loaded.
"""
from mlops_workbench.procs.warm import run_stage

if __name__ == "__main__":
    run_stage("{name}")
'''


def preprocess(df: pd.DataFrame, params: PrepareParams | dict[str, Any] | None = None) -> pd.DataFrame:
    """Apply the ``prepare`` settings to a validated Iris frame (a copy)."""
    from mlops_workbench.data import FEATURES

    if not isinstance(params, PrepareParams):
        params = PrepareParams.model_validate(params or {})
    out = df.copy()
    if params.decimals is not None:
        out[FEATURES] = out[FEATURES].round(params.decimals)
    if params.drop_duplicates:
        out = out.drop_duplicates().reset_index(drop=True)
    return out


def write_params(
    ws: Workspace, train: dict[str, Any] | None = None, prepare: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Write the workspace's ``params.yaml``: the project's ``train`` section with ``train`` overrides, and ``prepare``."""
    from mlops_workbench import paramspec

    try:
        base = dict(paramspec.load_params("train") or {})
    except (FileNotFoundError, KeyError):
        base = {}
    train_values = TrainParams.from_dict({**base, **(train or {})}).model_dump()
    prepare_values = PrepareParams.model_validate(prepare or {}).model_dump()
    return ws.set_params(prepare=prepare_values, train=train_values)


def write_stage_scripts(ws: Workspace) -> list[Path]:
    """Write each stage's script (``prepare.py``, ``train.py``, ``evaluate.py``: thin calls into this module)."""
    paths = [ws.path / stage.script for stage in PIPELINE]
    for stage, path in zip(PIPELINE, paths, strict=True):
        path.write_text(SCRIPT.format(name=stage.name, summary=stage.summary))
    return paths


def add_pipeline(ws: Workspace) -> None:
    """Write the stage scripts and declare every stage of :data:`PIPELINE` in a new ``dvc.yaml`` (not committed).

    One write gives what the three ``dvc stage add`` calls of :attr:`Stage.args` give (the stages, and each
    output ignored by git beside it; a test compares the two), without a DVC process per stage. Learners
    write those calls themselves in lab 02; drills and lab 03 build many workspaces and need only the result.
    """
    write_stage_scripts(ws)
    (ws.path / "dvc.yaml").write_text(
        yaml.safe_dump({"stages": {s.name: s.declaration for s in PIPELINE}}, sort_keys=False)
    )
    for out in (path for stage in PIPELINE for path in stage.outs):
        ignore, entry = ws.path / Path(out).parent / ".gitignore", f"/{Path(out).name}"
        lines = ignore.read_text().splitlines() if ignore.exists() else []
        if entry not in lines:
            ignore.write_text("\n".join([*lines, entry]) + "\n")


def _params(root: Path) -> tuple[PrepareParams, TrainParams]:
    params = Workspace(root).params()
    return PrepareParams.model_validate(params.get("prepare") or {}), TrainParams.from_dict(params.get("train"))


def prepare_stage(workspace: Path | str = ".") -> tuple[int, int]:
    """The ``prepare`` stage: preprocess the data, split it (seeded, stratified), write both splits; returns sizes."""
    from mlops_workbench.data import load_csv, save_csv, split

    root = Path(workspace)
    prepare, train_params = _params(root)
    train_df, test_df = split(preprocess(load_csv(root / DATA), prepare), train_params.test_size, train_params.seed)
    save_csv(train_df, root / TRAIN_SPLIT)
    save_csv(test_df, root / TEST_SPLIT)
    return len(train_df), len(test_df)


def train_stage(workspace: Path | str = ".") -> Path:
    """The ``train`` stage: fit the model on the prepared train split, write ``model/model.pkl``; returns its path."""
    import joblib

    from mlops_workbench.data import load_csv
    from mlops_workbench.train import train

    root = Path(workspace)
    model = train(load_csv(root / TRAIN_SPLIT), _params(root)[1])
    (root / MODEL_DIR).mkdir(exist_ok=True)
    joblib.dump(model, root / MODEL_FILE)
    return root / MODEL_FILE


def evaluate_stage(workspace: Path | str = ".") -> dict[str, float]:
    """The ``evaluate`` stage: score the model on the prepared test split, write ``metrics.json``.

    Metrics: accuracy and f1_macro, plus log_loss (sensitive to any change in data
    or model, so reproductions are compared exactly).
    """
    import joblib
    from sklearn.metrics import log_loss

    from mlops_workbench.data import FEATURES, LABEL, load_csv
    from mlops_workbench.evaluate import evaluate

    root = Path(workspace)
    model, test_df = joblib.load(root / MODEL_FILE), load_csv(root / TEST_SPLIT)
    scores = evaluate(model, test_df)
    proba = model.predict_proba(test_df[FEATURES])
    metrics = {
        "accuracy": float(scores["accuracy"]),
        "f1_macro": float(scores["f1_macro"]),
        "log_loss": float(log_loss(test_df[LABEL].astype(str), proba, labels=list(model.classes_))),
    }
    (root / METRICS).write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
