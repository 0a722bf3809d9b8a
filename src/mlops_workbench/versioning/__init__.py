"""Versioning code, data and model together: lab workspaces (``workspace``), the DVC train
stage (``stages``), run lineage (``lineage``) and exact reproduction (``reproduction``).

The package is the one import a notebook needs: ``from mlops_workbench import versioning``.
"""

from mlops_workbench.versioning.stages import (
    DATA,
    LINEAGE_TAGS,
    METRICS,
    TRAIN_STAGE,
    MetricComparison,
    PrepareParams,
    ReproductionError,
    ReproductionReport,
    Workspace,
    WorkspaceError,
    init_workspace,
    lineage_tags,
    log_model_run,
    open_workspace,
    preprocess,
    remote_has,
    reproduce,
    run_lineage,
    train_stage,
    write_params,
    write_train_script,
)

__all__ = [
    "DATA", "LINEAGE_TAGS", "METRICS", "MetricComparison", "PrepareParams", "ReproductionError", "ReproductionReport",
    "TRAIN_STAGE", "Workspace", "WorkspaceError", "init_workspace", "lineage_tags", "log_model_run",
    "open_workspace", "preprocess", "remote_has", "reproduce", "run_lineage", "train_stage", "write_params",
    "write_train_script",
]
