"""Lab 05 graded for real (papermill, promtool, kubectl kustomize): the solution scores full, answer functions
score 0 with their message, `vector(0)` PromQL and a revert that changes nothing fail, and each check stands on
its own exercise's file. One graded run per submission variant, shared by its tests.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
import yaml

from mlops_workbench.k8s import render
from mlops_workbench.labs.checks import CheckFailed, Context, load_checks
from mlops_workbench.labs.format import Lab
from mlops_workbench.labs.grade import fresh_workbench, grade
from mlops_workbench.rollout import policy as pol
from mlops_workbench.workbench import Workbench

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("promtool") is None, reason="promtool missing: install Debian's prometheus package (.ci/run does)"
    ),
]
ROOT = Path(__file__).resolve().parents[1]
LAB = Lab(ROOT / "labs" / "05-kind-canary")
CHECKS = {c.id: c for c in load_checks(LAB.folder / "checks.py")}


def submit(folder: Path, answers: dict[str, str]) -> Path:
    nb = nbformat.read(LAB.source, as_version=4)
    for cell in nb.cells:
        if cell.get("id") in answers:
            cell.source = answers[cell.get("id")]
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / "submission.ipynb")
    return folder / "submission.ipynb"


def graded(tmp_path_factory, name: str, answers: dict[str, str], seed: int = 11) -> dict:
    folder = tmp_path_factory.mktemp(name)
    report = grade(
        fresh_workbench(Workbench.from_env(), folder / "out"),
        submit(folder, answers),
        folder / "out",
        LAB,
        parameters={"run_cluster": "never"},
        seed=seed,
    )
    return {c.id: c for c in report.checks}


@pytest.fixture(scope="module")
def solution(tmp_path_factory) -> dict:
    return graded(tmp_path_factory, "solution", {})


@pytest.fixture(scope="module")
def helpers(tmp_path_factory) -> dict:
    return graded(
        tmp_path_factory,
        "helpers",
        {
            "write-strategy": 'render.write(policy, manifests, "mine")',
            "write-templates": (
                "templates = [render.analysis_template(m, policy.analysis.min_sample_size, g)\n"
                "             for g in (False, True) for m in policy.analysis.metrics]\n"
                "(manifests / 'analysis-templates.yaml').write_text(yaml.safe_dump_all(templates))"
            ),
        },
    )


def source(cell_id: str) -> str:
    return next(c.source for c in nbformat.read(LAB.source, as_version=4).cells if c.get("id") == cell_id)


@pytest.fixture(scope="module")
def wrong(tmp_path_factory) -> dict:
    """Every PromQL query replaced by vector(0); a revert overlay that changes no image."""
    templates = source("write-templates").replace('"query": query}', '"query": "vector(0)"}')
    assert '"vector(0)"' in templates
    revert = source("revert").split("# BEGIN SOLUTION")[0] + (
        '(revert / "kustomization.yaml").write_text(yaml.safe_dump({"resources": ["rendered.yaml"]}))\n'
    )
    return graded(tmp_path_factory, "wrong", {"write-templates": templates, "revert": revert})


def test_the_solution_scores_full_marks(solution):
    assert {cid: c.status for cid, c in solution.items()} == dict.fromkeys(solution, "passed")
    assert set(solution) >= {
        "strategy-written",
        "strategy-replays",
        "templates-faithful",
        "promql-decides",
        "revert-commit",
    }


def test_answer_functions_score_zero_for_their_exercise_with_the_message(helpers):
    for cid, call in (
        ("strategy-written", "k8s.render.write"),
        ("strategy-replays", "k8s.render.write"),
        ("templates-faithful", "k8s.render.analysis_template"),
        ("promql-decides", "k8s.render.analysis_template"),
    ):
        assert helpers[cid].status == "failed" and helpers[cid].score == 0, cid
        assert f"`{call}`" in helpers[cid].message and "does the exercise for you" in helpers[cid].message
    assert "write rollout-strategy.yaml and analysis-templates.yaml yourself" in helpers["strategy-written"].message
    assert helpers["revert-commit"].status == "passed"


def test_vector0_promql_fails_and_the_limits_still_pass(wrong):
    assert wrong["templates-faithful"].status == "passed"
    assert wrong["promql-decides"].status == "failed" and wrong["promql-decides"].score == 0
    assert "decide wrongly on hidden canaries" in wrong["promql-decides"].message


def test_a_revert_that_changes_nothing_fails_naming_the_image(wrong):
    assert wrong["revert-commit"].status == "failed"
    assert "changes nothing that runs" in wrong["revert-commit"].message
    assert "v1" in wrong["revert-commit"].message


@pytest.fixture
def only_strategy(tmp_path) -> Context:
    """Exercise 1 done (the package's strategy for the demo policy), Exercise 2's file absent."""
    ctx = Context(lab=LAB.id, wb=Workbench.from_env(tmp_path))
    manifests = ctx.workspace / "manifests"
    manifests.mkdir(parents=True)
    policy = pol.builtin("demo")
    (manifests / "policy.yaml").write_text(pol.to_yaml(policy))
    (manifests / "rollout-strategy.yaml").write_text(yaml.safe_dump(render.strategy_patch(policy)))
    return ctx


def test_a_missing_exercise_2_file_leaves_exercise_1_graded(only_strategy):
    CHECKS["strategy-written"].func(only_strategy)
    CHECKS["strategy-replays"].func(only_strategy)
    for cid in ("templates-faithful", "promql-decides", "manifests-valid"):
        with pytest.raises(CheckFailed, match=r"analysis-templates.yaml does not exist: write it in Exercise 2"):
            CHECKS[cid].func(only_strategy)


def test_a_missing_exercise_1_file_leaves_exercise_2_graded(only_strategy):
    manifests = only_strategy.workspace / "manifests"
    (manifests / "rollout-strategy.yaml").unlink()
    templates = render.render(pol.builtin("demo"))["templates"]
    (manifests / "analysis-templates.yaml").write_text(yaml.safe_dump_all(templates))
    CHECKS["templates-faithful"].func(only_strategy)
    CHECKS["promql-decides"].func(only_strategy)
    for cid in ("strategy-written", "strategy-replays"):
        with pytest.raises(CheckFailed, match=r"rollout-strategy.yaml does not exist: write it in Exercise 1"):
            CHECKS[cid].func(only_strategy)
