"""Checks for lab 01: the learner's tests, workflow, local run, broken-model run, accuracy and Dockerfile."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from mlops_workbench.ci import docker, scaffold, zizmor
from mlops_workbench.ci.runner import run_workflow
from mlops_workbench.ci.workflow import REQUIREMENTS, TEST_RX, steps, validate
from mlops_workbench.ci.yamldoc import YamlDoc
from mlops_workbench.labs.checks import Context, check, fail

PROJECT = "iris-ci"
DATA_BUGS = ("data-drops-feature", "data-wrong-labels")
MODEL_BUGS = ("predict-constant", "train-shuffled")


def project(ctx: Context) -> Path:
    path = ctx.workspace / PROJECT
    if not (path / "iris_model" / "model.py").is_file():
        fail(f"{path} is not the scaffolded project: run the cell 'scaffold' (and the cells above it).")
    return path


def tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def test_file(ctx: Context, rel: str, must_call: str) -> Path:
    """The learner's test file, parsed: exists, no stub, at least two tests, calls ``must_call``."""
    path = project(ctx) / rel
    if not path.is_file():
        fail(f"{rel} does not exist yet: run the %%writefile cell that writes it.")
    text = path.read_text()
    if "NotImplementedError" in text:
        fail(f"{rel} still holds the exercise stub: replace the `raise NotImplementedError(...)` line with your tests.")
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        fail(f"{rel} is not valid Python (line {exc.lineno}: {exc.msg}): fix it and rerun the cell.")
    tests = [n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]
    if len(tests) < 2:
        fail(f"{rel} has {len(tests)} test function(s): write at least two `def test_...()` functions.")
    if must_call not in text:
        fail(f"{rel} never calls {must_call}(): the tests must exercise the project's {must_call} function.")
    return path


def passes(ctx: Context, rel: str) -> None:
    """pytest ``rel`` passes on the project; run once per grading for the same code (two checks ask)."""
    root = project(ctx)
    result = ctx.memo.once(("pytest", scaffold.project_digest(root), rel), lambda: scaffold.run_tests(root, rel))
    if result.returncode != 0:
        fail(
            f"pytest {rel} fails on the correct model: fix the tests (or the assertion values).\n{tail(result.stdout)}"
        )


def catches(ctx: Context, rel: str, bugs: tuple[str, ...]) -> None:
    passes(ctx, rel)
    caught = scaffold.bugs_caught(project(ctx), bugs, rel)
    missed = [scaffold.BUGS[bug][0] for bug in bugs if not caught[bug]]
    if missed:
        fail(f"{rel} still passes when {' and when '.join(missed)}: add a test that would notice each bug.")


@check("bad-data-rejected", points=1, cells=["bad-data"])
def bad_data_rejected(ctx: Context) -> None:
    """A dataset with three problems is rejected with all three named."""
    problems = ctx.var("data_problems")
    if not isinstance(problems, list) or len(problems) < 3:
        fail(
            "data_problems should list at least three problems: break the frame in three different ways "
            "and keep `err.problems` from the DataValidationError."
        )


@check("data-tests", points=2, cells=["write-data-tests"], isolated=True)
def data_tests(ctx: Context) -> None:
    """tests/test_data.py tests load_data() and passes."""
    test_file(ctx, "tests/test_data.py", "load_data")
    passes(ctx, "tests/test_data.py")


@check("predict-tests", points=2, cells=["write-predict-tests"], isolated=True)
def predict_tests(ctx: Context) -> None:
    """tests/test_predict.py tests predict() and passes."""
    test_file(ctx, "tests/test_predict.py", "predict")
    passes(ctx, "tests/test_predict.py")


@check("tests-catch-data-bugs", points=2, hidden=True, cells=["write-data-tests"], timeout=240, isolated=True)
def tests_catch_data_bugs(ctx: Context) -> None:
    """The data tests fail when load_data loses a column or returns class numbers."""
    test_file(ctx, "tests/test_data.py", "load_data")
    catches(ctx, "tests/test_data.py", DATA_BUGS)


@check("tests-catch-model-bugs", points=2, hidden=True, cells=["write-predict-tests"], timeout=240, isolated=True)
def tests_catch_model_bugs(ctx: Context) -> None:
    """The prediction tests fail for a constant predictor and for a model trained on shuffled labels."""
    test_file(ctx, "tests/test_predict.py", "predict")
    catches(ctx, "tests/test_predict.py", MODEL_BUGS)


def listed(findings) -> str:
    return "\n".join(f"line {f.line}: {f.message} Fix: {f.fix}" for f in findings)


@check("workflow-valid", points=2, cells=["write-workflow"])
def workflow_valid(ctx: Context) -> None:
    """The workflow passes the schema and triggers on push, installs, tests, trains and builds.

    The same rules as `show(validate(...))` in the notebook, minus the supply-chain audit
    (graded by 'workflow-hardened').
    """
    report = validate(project(ctx) / scaffold.WORKFLOW, require=REQUIREMENTS, audit=False)
    if not report.ok:
        fail("`workbench ci validate` finds errors:\n" + listed(report.errors))


SUPPLY_CHAIN = ("unpinned-uses", "excessive-permissions", "artipacked", "template-injection")


@check("workflow-hardened", points=2, cells=["write-workflow"])
def workflow_hardened(ctx: Context) -> None:
    """Every action is pinned by commit SHA, permissions are explicit and read-only, the token is not persisted."""
    path = project(ctx) / scaffold.WORKFLOW
    if not validate(path, require=REQUIREMENTS, audit=False).ok:
        fail("the workflow does not validate yet: fix it first (see the check 'workflow-valid').")
    found = [f for f in zizmor.audit(path, honor_ignores=False) if f.rule in SUPPLY_CHAIN or f.rule == "pin-comment"]
    if found:
        fail("zizmor (offline) finds:\n" + listed(found))
    doc = YamlDoc.read(path)
    uses = [str(s.get("uses")) for _, _, s in steps(doc) if s.get("uses")]
    if not any(u.startswith("actions/checkout@") for u in uses) or not any(
        u.startswith("actions/setup-python@") for u in uses
    ):
        fail("keep the actions/checkout and actions/setup-python steps (pinned by SHA), do not drop them.")
    granted = doc.data.get("permissions")
    if not isinstance(granted, dict) or any(v != "read" for v in granted.values()):
        fail("declare `permissions: {contents: read}` at the top of the workflow: the jobs only need to read.")


@check("workflow-green", points=1, cells=["run-workflow"])
def workflow_green(ctx: Context) -> None:
    """The local run of the workflow is green."""
    steps = ctx.var("workflow_steps")
    if not steps:
        fail("workflow_steps is empty: run the cell 'run-workflow'.")
    failed = [name for name, status in steps if status == "failed"]
    if failed:
        fail(f"the step(s) {', '.join(failed)} failed: read their output above, fix the cause and rerun.")
    if sum(status == "passed" for _, status in steps) < 4:
        fail("fewer than four steps passed: the workflow should check out, set up Python, install, test and train.")


@check("workflow-green-rerun", points=2, hidden=True, cells=["write-workflow"], timeout=300)
def workflow_green_rerun(ctx: Context) -> None:
    """Rerun by the grader, the workflow is green and its pytest step passes."""
    path = project(ctx) / scaffold.WORKFLOW
    if not validate(path, require=REQUIREMENTS, audit=False).ok:
        fail("the workflow does not validate: fix it first (see the check 'workflow-valid').")
    run = run_workflow(path, project(ctx), quiet=True)
    failed = [s for s in run.steps if s.status == "failed"]
    if failed:
        fail(f"rerun by the grader, the step '{failed[0].name}' fails ({failed[0].reason}):\n{tail(failed[0].output)}")
    jobs = YamlDoc.read(path).data["jobs"]
    tests = [
        (job, i)
        for job, spec in jobs.items()
        for i, s in enumerate(spec.get("steps") or [])
        if TEST_RX.search(str(s.get("run") or ""))
    ]
    statuses = {(s.job, s.index): s.status for s in run.steps}
    if not tests or statuses.get(tests[0]) != "passed":
        fail("the pytest step did not run and pass: make sure it is a `run:` step, not skipped.")


@check("broken-model-red", points=1, cells=["break-model"])
def broken_model_red(ctx: Context) -> None:
    """The deliberately broken model turns the workflow red at the test step, and the model is restored."""
    if ctx.var("broken_red") is not True:
        fail(
            "broken_red is not True: the workflow should fail on the broken model; if it passed, your tests miss the bug."
        )
    if not ctx.var("broken_failed_step"):
        fail("broken_failed_step is empty: run the cell 'break-model' again.")
    if (project(ctx) / scaffold.MODEL_FILE).read_text() != scaffold.template_text(scaffold.MODEL_FILE):
        fail("iris_model/model.py is still broken: call scaffold.restore_model(project).")


@check("model-accuracy", points=1, cells=["run-workflow"])
def model_accuracy(ctx: Context) -> None:
    """The model trained by the workflow reaches the accuracy floor from params.yaml."""
    floor = float((ctx.params.get("train") or {}).get("accuracy_floor", 0.9))
    metrics = project(ctx) / "metrics.json"
    if not metrics.is_file():
        fail(
            "metrics.json does not exist: the workflow's train step (`python -m iris_model.train`) writes it; run the workflow."
        )
    accuracy = float(json.loads(metrics.read_text())["accuracy"])
    if accuracy < floor:
        fail(
            f"test accuracy {accuracy:.3f} is below the floor {floor} (params.yaml train.accuracy_floor): fix the model."
        )


@check("dockerfile-lint", points=2, cells=["fix-dockerfile"])
def dockerfile_lint(ctx: Context) -> None:
    """The Dockerfile lints clean with hadolint and still serves the model."""
    path = project(ctx) / "Dockerfile"
    report = docker.lint(path)
    if report.findings:
        fail("hadolint reports:\n" + "\n".join(f"line {f.line}: {f.rule} {f.message}" for f in report.findings))
    text = path.read_text()
    if "iris_model.serve" not in text or "EXPOSE 8000" not in text:
        fail("the Dockerfile no longer serves the model: keep `EXPOSE 8000` and the uvicorn iris_model.serve:app CMD.")
