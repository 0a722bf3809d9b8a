"""Supply-chain hygiene of workflows: zizmor (offline) inside `workbench ci validate`; our own workflows stay clean."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlops_workbench.ci import zizmor
from mlops_workbench.ci.workflow import REQUIREMENTS, validate
from mlops_workbench.cli.main import app

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "src" / "mlops_workbench" / "ci" / "templates" / "ci_project" / "_github" / "workflows"
SHA = "11d5960a326750d5838078e36cf38b85af677262"
TAGGED = """\
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


def write(tmp_path: Path, text: str, name: str = "ci.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_an_action_pinned_only_to_a_tag_is_an_error_with_its_line_and_fix(tmp_path):
    report = validate(write(tmp_path, TAGGED), require=REQUIREMENTS)
    assert not report.ok
    found = {f.rule: f for f in report.findings}
    assert set(found) == {"unpinned-uses", "excessive-permissions", "artipacked"}, [str(f) for f in report.findings]
    unpinned = found["unpinned-uses"]
    assert unpinned.line == 7 and unpinned.severity == "error" and "actions/checkout@v4" in unpinned.message
    assert "actions/checkout@<40-hex SHA of v4> # v4" in unpinned.fix and "git ls-remote" in unpinned.fix
    assert found["artipacked"].line == 7 and "persist-credentials: false" in found["artipacked"].fix
    assert found["excessive-permissions"].line == 4 and "contents: read" in found["excessive-permissions"].fix


def test_the_fixed_workflow_is_clean(tmp_path):
    text = TAGGED.replace("jobs:\n", "permissions:\n  contents: read\njobs:\n").replace(
        "      - uses: actions/checkout@v4\n",
        f"      - uses: actions/checkout@{SHA} # v4.4.0\n        with:\n          persist-credentials: false\n",
    )
    assert validate(write(tmp_path, text), require=REQUIREMENTS).findings == []


def test_cli_reports_the_unpinned_action(tmp_path):
    result = CliRunner().invoke(app, ["ci", "validate", str(write(tmp_path, TAGGED)), "--json"])
    assert result.exit_code == 1
    assert '"rule": "unpinned-uses"' in result.output and '"line": 7' in result.output


def test_untrusted_input_in_run_is_flagged(tmp_path):
    text = (
        TAGGED.replace("on: push\n", "on: pull_request\n")
        + '      - run: echo "${{ github.event.pull_request.title }}"\n'
    )
    [injection] = [f for f in zizmor.audit(write(tmp_path, text)) if f.rule == "template-injection"]
    assert injection.line == 12 and "env:" in injection.fix


def test_a_sha_pin_without_its_version_is_a_warning(tmp_path):
    text = TAGGED.replace("actions/checkout@v4", f"actions/checkout@{SHA}")
    [finding] = [f for f in zizmor.audit(write(tmp_path, text)) if f.rule == "pin-comment"]
    assert finding.line == 7 and finding.severity == "warning" and "# v4.4.0" in finding.fix
    assert zizmor.pin_comment_findings(f"      - uses: actions/checkout@{SHA}  # v4.4.0\n") == []


def test_findings_from_zizmor_json_are_pure():
    raw = [
        {
            "ident": "unpinned-uses",
            "desc": "unpinned action reference",
            "url": "u",
            "determinations": {"severity": "High"},
            "ignored": False,
            "locations": [
                {
                    "symbolic": {"kind": "Hidden", "annotation": "this step"},
                    "concrete": {"location": {"start_point": {"row": 3}}, "feature": "- uses: a/b@v1"},
                },
                {
                    "symbolic": {"kind": "Primary", "annotation": "not pinned"},
                    "concrete": {"location": {"start_point": {"row": 5}}, "feature": "uses: a/b@v1"},
                },
            ],
        },
        {
            "ident": "other",
            "desc": "d",
            "url": "https://x",
            "determinations": {"severity": "Low"},
            "ignored": False,
            "locations": [{"symbolic": {"kind": "Primary"}, "concrete": {}}],
        },
        {"ident": "ignored", "ignored": True},
    ]
    pinned, other = zizmor.findings(raw)
    assert (pinned.rule, pinned.line, pinned.severity) == ("unpinned-uses", 6, "error")
    assert "a/b@<40-hex SHA of v1> # v1" in pinned.fix and "not pinned" in pinned.message
    assert (other.rule, other.line, other.severity, other.fix) == ("other", None, "warning", "see https://x")


OWN = sorted([*(ROOT / ".github" / "workflows").glob("*.y*ml"), *TEMPLATES.glob("*.y*ml")])


@pytest.mark.parametrize("path", OWN, ids=lambda p: p.name)
def test_own_and_scaffold_workflows_have_zero_zizmor_findings(path, tmp_path):
    """Every workflow of this repo and of the scaffold (learner version once it has its `on:`)."""
    if path.name == "ci.learner.yml":  # the skeleton lacks `on:` (the learner's first TODO) so zizmor skips it
        text = path.read_text()
        assert "\non:" not in text
        path = write(tmp_path, text.replace("\njobs:", "\non: [push, pull_request]\n\njobs:", 1), path.name)
    findings = zizmor.audit(path, honor_ignores=False)
    assert findings == [], "\n".join(map(str, findings))


def test_zizmor_sees_the_whole_workflows_folder_clean():
    """The folder as CI would audit it: a workflow added later is covered without editing this test."""
    import subprocess

    proc = subprocess.run(
        [
            zizmor.zizmor_binary(),
            "--offline",
            "--no-config",
            "--no-ignores",
            "--format",
            "json",
            str(ROOT / ".github" / "workflows"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr
