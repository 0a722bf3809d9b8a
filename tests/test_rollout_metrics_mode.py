"""The metrics mode of a rollout is one of three words; anything else is refused, never read as 'auto'."""

from __future__ import annotations

from typing import get_args

import pytest
from typer.testing import CliRunner

from mlops_workbench.cli import rollout as cli_rollout
from mlops_workbench.cli.main import app
from mlops_workbench.errors import InputError
from mlops_workbench.rollout.backends.local import LocalBackend, MetricsMode
from mlops_workbench.workbench import Workbench


def test_an_unknown_metrics_mode_is_refused_by_the_backend(tmp_path):
    with pytest.raises(InputError, match="prometheus or direct"):
        LocalBackend(Workbench.from_env(tmp_path), model_name="iris", metrics="prom")  # type: ignore[arg-type]
    assert LocalBackend(Workbench.from_env(tmp_path), model_name="iris", metrics="direct").metrics_mode == "direct"


def test_the_cli_offers_the_backends_modes_and_refuses_others_before_starting_anything(tmp_path, monkeypatch):
    assert cli_rollout.METRICS_MODES == get_args(MetricsMode)
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))
    result = CliRunner().invoke(app, ["rollout", "start", "--candidate", "2", "--metrics", "promethues"])
    assert result.exit_code == 2 and "promethues" in result.output
    assert not any(tmp_path.iterdir()), "nothing may start for a refused command"
