"""Lab 07's hidden retrain check for real (tracking server, git + DVC project, registry): the reference retrain
passes the good, broken and losing data commits; a retrain that promotes by itself, or forgets the lineage tags,
fails with a message naming what it did."""

from __future__ import annotations

import pytest
from test_lab07_checks import context, run, solution

from mlops_workbench.labs.checks import CheckFailed

pytestmark = pytest.mark.slow  # no latency or timing is judged: it runs beside the other worker, not alone

PROMOTES = solution("write-retrain").replace(
    "    mlflow_client = tracking.client(wb)\n",
    '    mlflow_client = tracking.client(wb)\n    mlflow_client.set_registered_model_alias(model_name, "production", version)\n',
)
NO_TAGS = solution("write-retrain").replace(
    "mlflow_client.set_model_version_tag(model_name, version, name, value)", "pass"
)


def test_the_reference_retrain_passes_every_hidden_commit(home, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")
    run("retrain-hidden", context(home, 3, {"retrain_commit.py": solution("write-retrain")}, model_name="iris-l7"))


@pytest.mark.parametrize(
    "code, match", [(PROMOTES, "production moved"), (NO_TAGS, "no tag retrain.data_commit")], ids=["promotes", "tags"]
)
def test_a_retrain_that_promotes_or_forgets_its_lineage_fails(home, monkeypatch, code, match):
    assert code != solution("write-retrain")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")
    with pytest.raises(CheckFailed, match=match):
        run("retrain-hidden", context(home, 5, {"retrain_commit.py": code}, model_name="iris-l7"))
