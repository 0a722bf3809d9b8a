"""Lab 07's checks on planted work, without servers: the drift test on hidden months, the accuracy join on planted
logs, the alert rules with promtool on hidden series. The reference solutions pass across seeds; plausible wrong
code fails the right check with a message that says what to change."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from mlops_workbench import tools
from mlops_workbench.labs.checks import CheckFailed, Context, load_checks
from mlops_workbench.workbench import Workbench

ROOT = Path(__file__).resolve().parents[1]
LAB = ROOT / "labs" / "07-monitor-retrain"
CHECKS = {c.id: c for c in load_checks(LAB / "checks.py")}
needs_promtool = pytest.mark.skipif(tools.find("promtool") is None, reason="promtool (Debian prometheus) missing")


def solution(cell_id: str) -> str:
    """The reference solution of a cell, markers dropped (and the %%writefile line)."""
    nb = nbformat.read(LAB / "lab.ipynb", as_version=4)
    src = next(c.source for c in nb.cells if c.id == cell_id)
    if src.startswith("%%writefile"):
        src = src.split("\n", 1)[1]
    return "".join(
        line for line in src.splitlines(keepends=True) if "# BEGIN SOLUTION" not in line and "# END" not in line
    )


def reference_rules() -> str:
    namespace: dict = {}
    exec(solution("write-rules").split("Path(")[0], namespace)  # the rules_text assignment only
    return namespace["rules_text"]


def context(tmp_path: Path, seed: int = 0, files: dict[str, str] | None = None, **variables) -> Context:
    ctx = Context(lab="07-monitor-retrain", wb=Workbench.from_env(tmp_path), variables=variables, seed=seed)
    ctx.workspace.mkdir(parents=True)
    for name, text in (files or {}).items():
        (ctx.workspace / name).write_text(text)
    return ctx


def run(check_id: str, ctx: Context) -> None:
    CHECKS[check_id].func(ctx)


# --- the drift test ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(20))
def test_the_reference_drift_test_catches_every_hidden_move_and_no_normal_month(tmp_path, seed):
    ctx = context(tmp_path, seed, {"drift_check.py": solution("write-drift")})
    run("drift-hidden", ctx)
    if seed == 0:
        run("drift-written", ctx)


LOW_THRESHOLD = (
    solution("write-drift")
    .replace("scores[feat.name] >= 0.1)", "scores[feat.name] >= 0.01)")
    .replace("p_value < alpha and", "p_value < 1 and")
)
ONE_FEATURE = solution("write-drift").replace(
    "for feat in reference.features:",
    "for feat in reference.features:\n        if feat.name != 'petal_length':\n"
    "            scores[feat.name], drifted[feat.name] = 0.0, False\n            continue",
)
NO_CORRECTION_PSI_ONLY = solution("write-drift").replace("p_value < alpha and ", "").replace(">= 0.1)", ">= 0.03)")


def test_a_threshold_inside_the_noise_alerts_on_normal_months(tmp_path):
    with pytest.raises(CheckFailed, match="nothing moved, so the threshold sits inside the noise"):
        run("drift-written", context(tmp_path, files={"drift_check.py": LOW_THRESHOLD}))
    with pytest.raises(CheckFailed, match="normal month"):
        run("drift-hidden", context(tmp_path / "b", 3, {"drift_check.py": NO_CORRECTION_PSI_ONLY}))


def test_testing_one_feature_misses_the_others(tmp_path):
    run("drift-written", context(tmp_path, files={"drift_check.py": ONE_FEATURE}))  # the public month moves it
    with pytest.raises(CheckFailed, match="did not flag .*test every feature"):
        run("drift-hidden", context(tmp_path / "b", 1, {"drift_check.py": ONE_FEATURE}))


def test_the_stub_fails_with_the_cell_to_run(tmp_path):
    stub = 'def drift_test(reference, window):\n    raise NotImplementedError("write it")\n'
    with pytest.raises(CheckFailed, match="replace the stub in the cell 'write-drift'"):
        run("drift-hidden", context(tmp_path, files={"drift_check.py": stub}))


def test_the_live_verdicts_must_name_the_moved_feature_alone(tmp_path):
    run("drift-live", context(tmp_path, alert_before=False, alert_after=True, drifted_after=["sepal_width"]))
    with pytest.raises(CheckFailed, match="flagged alone"):
        run(
            "drift-live",
            context(
                tmp_path / "b", alert_before=False, alert_after=True, drifted_after=["petal_length", "sepal_width"]
            ),
        )


# --- the accuracy join ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
def test_the_reference_accuracy_join_passes_planted_logs(tmp_path, seed):
    run("accuracy-hidden", context(tmp_path, seed, {"log_accuracy.py": solution("write-accuracy")}))


JOIN_ON_REQUEST = solution("write-accuracy").replace('on=["request_id", "row"]', 'on="request_id"')
UNLABELLED_COUNT_WRONG = """
def accuracy_from_log(predictions, labels):
    joined = predictions.merge(labels, on=["request_id", "row"], how="left")
    return len(joined), float((joined["prediction"] == joined["label"]).mean())
"""


@pytest.mark.parametrize("wrong", [JOIN_ON_REQUEST, UNLABELLED_COUNT_WRONG])
def test_a_wrong_join_is_caught_by_the_planted_logs(tmp_path, wrong):
    with pytest.raises(CheckFailed, match="join on both request_id and row"):
        run("accuracy-hidden", context(tmp_path, 2, {"log_accuracy.py": wrong}))


# --- the alert rules --------------------------------------------------------------------------------------------------
@needs_promtool
@pytest.mark.parametrize("seed", range(5))
def test_the_reference_rules_decide_every_hidden_scenario(tmp_path, seed):
    ctx = context(tmp_path, seed, {"alert_rules.yaml": reference_rules()})
    run("rules-valid", ctx)
    run("rules-decide", ctx)


@needs_promtool
@pytest.mark.parametrize(
    "edit, match",
    [
        (("expr: workbench_drift_score > 0.25", "expr: vector(1)"), "on healthy traffic"),
        (("expr: workbench_drift_score > 0.25", "expr: workbench_drift_score > 5"), "drift score stays"),
        (("for: 20s\n        labels: {severity: warning", "for: 0s\n        labels: {severity: warning"), "`for:`"),
        (("workbench_drift_score > 0.25", "max(workbench_drift_score) > 0.25"), "did not name the moved feature"),
        (("> 0.02", "> 0.9"), "5xx"),
    ],
)
def test_rules_that_always_never_or_wrongly_fire_score_nothing(tmp_path, edit, match):
    text = reference_rules()
    assert edit[0] in text, edit[0]
    ctx = context(tmp_path, 4, {"alert_rules.yaml": text.replace(*edit)})
    run("rules-valid", ctx)  # still valid rules: only what they decide is wrong
    with pytest.raises(CheckFailed, match=match):
        run("rules-decide", ctx)


@needs_promtool
def test_a_rule_file_missing_an_alert_is_named(tmp_path):
    text = reference_rules().replace("alert: SlowPredictions", "alert: Slow")
    with pytest.raises(CheckFailed, match="no alert named \\['SlowPredictions'\\]"):
        run("rules-valid", context(tmp_path, files={"alert_rules.yaml": text}))
