"""`workbench ci validate`: schema errors with their lines, meaning checks, deprecated commands, own workflows."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlops_workbench.ci.workflow import REQUIREMENTS, triggers, validate
from mlops_workbench.ci.yamldoc import YamlDoc
from mlops_workbench.cli.main import app

ROOT = Path(__file__).resolve().parents[1]
GOOD = """\
name: ci
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: python -m pip install -r requirements.txt
      - run: python -m pytest
      - run: python -m iris_model.train
      - run: docker build -t iris-model .
"""
CHECKOUT = "actions/checkout@11d5960a326750d5838078e36cf38b85af677262 # v4.4.0"
# GOOD as supply-chain hygiene wants it: pinned by SHA, least privilege, no persisted token
SECURE = GOOD.replace("jobs:\n", "permissions:\n  contents: read\njobs:\n").replace(
    "      - uses: actions/checkout@v4\n",
    f"      - uses: {CHECKOUT}\n        with:\n          persist-credentials: false\n",
)


def write(tmp_path: Path, text: str, name: str = "ci.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def by_rule(report, rule):
    return [f for f in report.findings if f.rule == rule]


def test_a_complete_workflow_has_no_findings(tmp_path):
    report = validate(write(tmp_path, SECURE), require=REQUIREMENTS)
    assert report.ok and report.findings == []


def test_on_is_a_string_key_not_yaml11_true():
    doc = YamlDoc.parse("on: push\nflag: yes\nreal: true\n")
    assert doc.data == {"on": "push", "flag": "yes", "real": True}
    assert triggers(doc.data) == {"push"}
    assert triggers({"on": {"push": None, "schedule": []}}) == {"push", "schedule"}
    assert triggers({"on": ["push", "pull_request"]}) == {"push", "pull_request"}


def test_schema_errors_name_their_lines_and_fixes(tmp_path):
    text = GOOD.replace("    runs-on: ubuntu-latest\n", "    runs-on: ubuntu-latest\n    timeout: 5\n")
    text = text.replace("      - run: python -m pytest\n", "      - nme: tests\n        run: python -m pytest\n")
    path = write(tmp_path, text)
    report = validate(path, audit=False)
    assert not report.ok and report.exit_code() == 1
    schema = {f.line: f for f in by_rule(report, "schema")}
    assert set(schema) == {6, 10}, [str(f) for f in report.findings]
    assert "'timeout'" in schema[6].message and "timeout-minutes" in schema[6].fix
    assert "'nme'" in schema[10].message and "'name'" in schema[10].fix
    assert schema[10].path == "jobs.build.steps[2].nme"
    assert all(f.file == str(path) for f in report.findings)


def test_missing_required_keys_and_wrong_types(tmp_path):
    text = GOOD.replace("on: push\n", "").replace("    runs-on: ubuntu-latest\n", "    runs-on: 3\n")
    report = validate(write(tmp_path, text), audit=False)
    messages = [(f.line, f.message, f.fix) for f in by_rule(report, "schema")]
    assert any(line == 1 and "'on'" in msg and "on: push" in fix for line, msg, fix in messages), messages
    assert any(line == 4 for line, _, _ in messages), messages  # the job with the bad runs-on


def test_a_step_with_uses_and_run(tmp_path):
    text = GOOD.replace("      - uses: actions/checkout@v4\n", "      - uses: actions/checkout@v4\n        run: ls\n")
    [finding] = by_rule(validate(write(tmp_path, text), audit=False), "schema")
    assert finding.line == 7 and "split it into two steps" in finding.fix


def test_missing_test_step_is_an_error_when_required(tmp_path):
    path = write(tmp_path, GOOD.replace("      - run: python -m pytest\n", ""))
    strict = validate(path, require=REQUIREMENTS, audit=False)
    [finding] = strict.findings
    assert finding.rule == "test-step" and finding.severity == "error" and not strict.ok
    assert "pytest" in finding.fix and finding.line == 3
    relaxed = validate(path, audit=False)
    assert relaxed.ok and by_rule(relaxed, "test-step")[0].severity == "warning"


@pytest.mark.parametrize(
    "remove, rule",
    [
        ("on: push\n", "push-trigger"),
        ("      - run: python -m iris_model.train\n", "train-step"),
        ("      - run: python -m pip install -r requirements.txt\n", "install-step"),
        ("      - run: docker build -t iris-model .\n", "build-step"),
    ],
)
def test_each_missing_part_is_named(tmp_path, remove, rule):
    text = GOOD.replace(remove, "on: workflow_dispatch\n" if rule == "push-trigger" else "")
    report = validate(write(tmp_path, text), require=REQUIREMENTS, audit=False)
    assert report.rules() == {rule} and not report.ok


def test_make_test_and_build_action_count(tmp_path):
    text = GOOD.replace("python -m pytest", "make test").replace(
        "      - run: docker build -t iris-model .\n", "      - uses: docker/build-push-action@v6\n"
    )
    assert validate(write(tmp_path, text), require=REQUIREMENTS, audit=False).findings == []


def test_tests_before_install_is_a_warning(tmp_path):
    text = (
        GOOD.replace("      - run: python -m pip install -r requirements.txt\n", "")
        + "      - run: python -m pip install -r requirements.txt\n"
    )
    [finding] = validate(write(tmp_path, text), require=REQUIREMENTS, audit=False).findings
    assert finding.rule == "step-order" and finding.severity == "warning" and finding.line == 8


def test_set_output_is_flagged_as_deprecated(tmp_path):
    text = GOOD + '      - id: v\n        run: echo "::set-output name=version::1.0"\n'
    [finding] = validate(write(tmp_path, text), audit=False).findings
    assert finding.rule == "deprecated-command" and finding.line == 13
    assert "GITHUB_OUTPUT" in finding.fix and not validate(write(tmp_path, text), audit=False).ok


def test_yaml_syntax_error_has_a_line(tmp_path):
    [finding] = validate(write(tmp_path, "name: ci\non: push\njobs:\n  build: [\n"), audit=False).findings
    assert finding.rule == "yaml" and finding.line is not None and finding.line >= 4


def test_cli_exit_codes_and_json(tmp_path):
    runner = CliRunner()
    good, bad = write(tmp_path, SECURE, "good.yml"), write(tmp_path, GOOD.replace("on: push\n", ""), "bad.yml")
    assert (
        runner.invoke(app, ["ci", "validate", str(good), "--require", "push,install,test,train,build"]).exit_code == 0
    )
    result = runner.invoke(app, ["ci", "validate", str(bad), "--json"])
    assert result.exit_code == 1 and '"rule": "schema"' in result.output
    assert runner.invoke(app, ["ci", "validate", str(tmp_path / "missing.yml")]).exit_code == 2


OWN = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def test_own_workflows_exist():
    assert {p.name for p in OWN} >= {"tests.yml", "pipeline.yml", "drift.yml", "kind-canary.yml"}


@pytest.mark.parametrize("path", OWN, ids=lambda p: p.name)
def test_own_workflows_pass_validate(path):
    result = CliRunner().invoke(app, ["ci", "validate", str(path)])
    assert result.exit_code == 0, result.output


def test_own_workflows_do_what_they_promise():
    docs = {p.name: YamlDoc.read(p).data for p in OWN}
    runs = {
        name: " ".join(str(s.get("run", "")) for j in d["jobs"].values() for s in j["steps"])
        for name, d in docs.items()
    }
    uses = {
        name: " ".join(str(s.get("uses", "")) for j in d["jobs"].values() for s in j["steps"])
        for name, d in docs.items()
    }
    assert "make test" in runs["tests.yml"] and "push" in triggers(docs["tests.yml"])
    assert "make demo" in runs["pipeline.yml"] and "actions/upload-artifact" in uses["pipeline.yml"]
    assert "schedule" in triggers(docs["drift.yml"]) and "--upgrade" in runs["drift.yml"]
    assert "requirements.lock" not in runs["drift.yml"] and "pipeline" in runs["drift.yml"]
    kind = docs["kind-canary.yml"]
    assert kind["permissions"] == {"contents": "read"}
    assert "helm/kind-action@" in uses["kind-canary.yml"] and "workbench cluster up" in runs["kind-canary.yml"]
    steps = [s for j in kind["jobs"].values() for s in j["steps"]]
    checkout = next(s for s in steps if str(s.get("uses", "")).startswith("actions/checkout@"))
    assert checkout["with"]["persist-credentials"] is False
    assert all(
        re.fullmatch(r"[0-9a-f]{40}", str(s["uses"]).split("@")[1])
        for s in steps
        if str(s.get("uses", "")).startswith(("helm/kind-action@", "actions/checkout@"))
    )
    assert "Degraded" in runs["kind-canary.yml"] and 'test "${weight}" = "0"' in runs["kind-canary.yml"]
    assert any(s.get("if") == "failure()" and "analysisrun" in str(s.get("run", "")) for s in steps)
