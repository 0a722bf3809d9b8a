"""mlops-workbench: hands-on CI/CD for machine-learning artifacts.

One flat module per lifecycle stage (data, train, evaluate, tracking, registry,
serve, rollout, labs, drills); notebooks and the ``workbench`` CLI import from
here, never the reverse.

Importing the package turns MLflow's usage telemetry off for this process and
every process it starts (``MLFLOW_DISABLE_TELEMETRY``, unless already set):
the course runs offline, and MLflow's telemetry thread, on failing to reach
its server, removes an environment variable while requests may be reading the
environment, which failed MLflow calls at random with
``KeyError: '_MLFLOW_TELEMETRY_SESSION_ID'``. Every lab imports the workbench
before MLflow, so the default is in place before MLflow reads it.

MLflow's artifact download bars are off the same way (``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR``):
a check or a command should print its verdict, not a page of bars (``workbench --verbose`` shows them).
"""

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

__version__ = "0.1.0"
