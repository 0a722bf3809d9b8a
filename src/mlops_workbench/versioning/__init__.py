"""Versioning code, data and model together: lab workspaces (``workspace``), the DVC pipeline
prepare -> train -> evaluate (``stages``), run lineage (``lineage``) and exact reproduction (``reproduction``).

The package is the one import a notebook needs: ``from mlops_workbench import versioning``.
"""

from mlops_workbench.paramspec import PrepareParams
from mlops_workbench.versioning.charts import reproduction_chart
from mlops_workbench.versioning.lineage import LINEAGE_TAGS, lineage_tags, log_model_run, run_lineage
from mlops_workbench.versioning.reproduction import MetricComparison, ReproductionError, ReproductionReport, reproduce
from mlops_workbench.versioning.stages import (
    PIPELINE,
    PREPARED,
    TEST_SPLIT,
    TRAIN_SPLIT,
    Stage,
    add_pipeline,
    evaluate_stage,
    prepare_stage,
    preprocess,
    train_stage,
    write_params,
    write_stage_scripts,
)
from mlops_workbench.versioning.workspace import (
    DATA,
    METRICS,
    Workspace,
    WorkspaceError,
    default_remote,
    empty_folder,
    init_workspace,
    open_workspace,
    remote_has,
)

__all__ = [
    "DATA",
    "LINEAGE_TAGS",
    "METRICS",
    "MetricComparison",
    "PIPELINE",
    "PREPARED",
    "PrepareParams",
    "ReproductionError",
    "ReproductionReport",
    "Stage",
    "TEST_SPLIT",
    "TRAIN_SPLIT",
    "Workspace",
    "WorkspaceError",
    "add_pipeline",
    "default_remote",
    "empty_folder",
    "evaluate_stage",
    "init_workspace",
    "lineage_tags",
    "log_model_run",
    "open_workspace",
    "prepare_stage",
    "preprocess",
    "remote_has",
    "reproduce",
    "reproduction_chart",
    "run_lineage",
    "train_stage",
    "write_params",
    "write_stage_scripts",
]
