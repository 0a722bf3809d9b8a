"""Check a GitHub Actions workflow offline: JSON schema first, then what the workflow means.

The schema is the github-workflow schema vendored inside ``check_jsonschema``
(SchemaStore's), applied with ``jsonschema``; nothing is fetched. Every
finding names the line (document paths are mapped back to YAML lines) and the
fix. Meaning checks: the workflow triggers on push, a job installs the
dependencies, runs pytest, trains the model, builds an image; ``::set-output``
is deprecated. Then the supply-chain audit (:mod:`~mlops_workbench.ci.zizmor`,
offline): actions pinned by commit SHA, least-privilege ``permissions:``,
checkouts that do not persist credentials, no untrusted input in ``run:``.
"""

from __future__ import annotations

import difflib
import importlib.resources
import json
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import jsonschema
from jsonschema.exceptions import ValidationError

from mlops_workbench.ci import zizmor
from mlops_workbench.ci.findings import Finding, Report, Severity
from mlops_workbench.ci.yamldoc import YamlDoc, YamlError, dotted
from mlops_workbench.errors import InputError

Requirement = Literal["push", "install", "test", "train", "build"]
REQUIREMENTS: tuple[str, ...] = ("push", "install", "test", "train", "build")
SYNTAX_URL = "https://docs.github.com/actions/writing-workflows/workflow-syntax-for-github-actions"

INSTALL_RX = re.compile(
    r"\b(pip3?|uv pip|pipx) install\b|\buv sync\b|\bpoetry install\b|\bconda (env )?(create|update)\b|\bmake (setup|install)\b"
)
TEST_RX = re.compile(r"\bpytest\b|\bmake test\b|\btox\b|\bnox\b")
TRAIN_RX = re.compile(r"\b(python3?|uv run)\s+(-m\s+)?\S*\btrain(\.py)?(\s|$)|\bdvc repro\b|\bmake train\b")
BUILD_RX = re.compile(r"\bdocker (buildx )?build\b|\bdocker compose build\b|\bpodman build\b")
DEPRECATED_RX = re.compile(r"::(set-output|save-state)\b")
BUILD_ACTIONS = ("docker/build-push-action",)


@lru_cache(maxsize=1)
def workflow_schema() -> dict[str, Any]:
    """The github-workflow JSON schema vendored by check-jsonschema (no network)."""
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema: dict[str, Any] = json.loads((vendor / "github-workflows.json").read_text())
    return schema


def _leaves(error: ValidationError) -> list[ValidationError]:
    """The specific errors under a ``oneOf``/``anyOf`` failure, from the branch that looks intended.

    A branch whose own ``required`` keys are missing at the failing node is
    probably not the one the author meant; among the rest, fewer errors win.
    """
    if not error.context or error.validator not in ("oneOf", "anyOf"):
        return [error]
    branches: dict[str | int, list[ValidationError]] = {}  # by the branch's index in the schema
    for sub in error.context:
        branches.setdefault(sub.schema_path[0], []).append(sub)

    def score(errs: list[ValidationError]) -> tuple[int, int]:
        misses = sum(
            e.validator in ("required", "type") and list(e.absolute_path) == list(error.absolute_path) for e in errs
        )
        return misses, len(errs)

    options = error.validator_value if isinstance(error.validator_value, list) else []
    if error.validator == "oneOf" and len(branches) < len(options):
        return [error]  # valid under several branches at once: report the ambiguity itself
    best = min(branches.values(), key=score)
    return [leaf for sub in best for leaf in _leaves(sub)]


def _explain(err: ValidationError) -> tuple[str, str, list[Any]]:
    """(message, fix, path to point at) for one schema error."""
    path = list(err.absolute_path)
    if err.validator == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        examples = {
            "on": "on: push",
            "runs-on": "runs-on: ubuntu-latest",
            "jobs": "jobs: {build: ...}",
            "steps": "steps: [...]",
        }
        return (
            f"'{dotted(path) or 'the workflow'}' misses the required key '{missing}'.",
            f"add `{examples.get(missing, missing + ': ...')}`.",
            path,
        )
    if err.validator == "additionalProperties":
        unexpected = re.findall(r"'([^']+)'", err.message.split("(")[-1])
        schema = err.schema if isinstance(err.schema, Mapping) else {}  # a schema may be a bare true/false
        known = list((schema.get("properties") or {}).keys())
        hints = [f"'{u}' -> '{m[0]}'" for u in unexpected if (m := difflib.get_close_matches(u, known, n=1))]
        fix = f"rename {', '.join(hints)}." if hints else f"remove it; allowed keys here: {', '.join(known)}."
        return (
            f"unexpected key(s) {', '.join(map(repr, unexpected))} in '{dotted(path) or 'the workflow'}'.",
            fix,
            path + unexpected[:1],
        )
    if err.validator == "oneOf" and path and "steps" in path:
        return (
            "this step both `uses:` an action and has `run:` commands.",
            "split it into two steps: one with `uses:`, one with `run:`.",
            path,
        )
    value: Any = err.validator_value  # the failing keyword's value in the schema: any JSON
    if err.validator == "type":
        want = value if isinstance(value, str) else " or ".join(value)
        return (
            f"'{dotted(path)}' should be of type {want}, got {json.dumps(err.instance)[:60]}.",
            f"write it as a {want}.",
            path,
        )
    if err.validator == "enum":
        options = ", ".join(map(str, value[:12]))
        return (
            f"'{dotted(path)}' has the unknown value {json.dumps(err.instance)[:60]}.",
            f"use one of: {options}.",
            path,
        )
    return f"'{dotted(path) or 'the workflow'}': {err.message[:200]}", f"see {SYNTAX_URL}.", path


def schema_findings(doc: YamlDoc) -> list[Finding]:
    """Findings for every schema violation, each with its line and a fix."""
    validator = jsonschema.Draft7Validator(workflow_schema())
    out: list[Finding] = []
    seen: set[tuple[str, str]] = set()
    for top in validator.iter_errors(doc.data):
        for leaf in _leaves(top):
            message, fix, where = _explain(leaf)
            if (dotted(where), message) in seen:
                continue
            seen.add((dotted(where), message))
            out.append(Finding(rule="schema", message=message, fix=fix, line=doc.line(where), path=dotted(where)))
    return out


def steps(doc: YamlDoc) -> Iterable[tuple[str, int, dict[str, Any]]]:
    """(job id, index, step) for every step of every job."""
    jobs = doc.data.get("jobs") if isinstance(doc.data, dict) else None
    for job_id, job in (jobs or {}).items():
        for i, step in enumerate((job or {}).get("steps") or [] if isinstance(job, dict) else []):
            if isinstance(step, dict):
                yield str(job_id), i, step


def triggers(data: Any) -> set[str]:
    """Event names in ``on:`` (string, list or mapping form)."""
    on = data.get("on") if isinstance(data, dict) else None
    if isinstance(on, str):
        return {on}
    if isinstance(on, list):
        return {str(e) for e in on}
    return {str(e) for e in on} if isinstance(on, dict) else set()


def meaning_findings(doc: YamlDoc, require: Iterable[str] = ()) -> list[Finding]:
    """What the workflow does: push trigger, install, pytest, training, image build, deprecated commands."""
    required = set(require)
    unknown = required - set(REQUIREMENTS)
    if unknown:
        raise InputError(f"Unknown requirement(s) {sorted(unknown)}: choose from {', '.join(REQUIREMENTS)}.")
    out: list[Finding] = []
    found: dict[str, tuple[str, int] | None] = {"install": None, "test": None, "train": None, "build": None}
    for job_id, i, step in steps(doc):
        where = ["jobs", job_id, "steps", i]
        run, uses = str(step.get("run") or ""), str(step.get("uses") or "")
        for kind, rx in (("install", INSTALL_RX), ("test", TEST_RX), ("train", TRAIN_RX), ("build", BUILD_RX)):
            if found[kind] is None and run and rx.search(run):
                found[kind] = (job_id, i)
        if found["build"] is None and uses.startswith(BUILD_ACTIONS):
            found["build"] = (job_id, i)
        for match in DEPRECATED_RX.finditer(run):
            target = "GITHUB_OUTPUT" if match.group(1) == "set-output" else "GITHUB_STATE"
            out.append(
                Finding(
                    rule="deprecated-command",
                    line=doc.line(where + ["run"]),
                    path=dotted(where),
                    message=f"`::{match.group(1)}` is deprecated and disabled on GitHub's runners.",
                    fix=f'write `echo "name=value" >> "${target}"` instead.',
                )
            )
    inst, test = found["install"], found["test"]
    if inst and test and inst[0] == test[0] and test[1] < inst[1]:
        out.append(
            Finding(
                rule="step-order",
                severity="warning",
                line=doc.line(["jobs", test[0], "steps", test[1]]),
                message="tests run before the dependencies are installed.",
                fix="move the install step above the pytest step.",
            )
        )
    anchor = doc.line(["jobs"]) or 1
    checks = {
        "push": (
            "push" in triggers(doc.data),
            "push-trigger",
            "the workflow does not run on push.",
            "add `push` to `on:`, e.g. `on: [push, pull_request]`.",
            doc.line(["on"]) or 1,
        ),
        "install": (
            bool(inst),
            "install-step",
            "no step installs the project's dependencies.",
            "add a step `run: python -m pip install -r requirements.txt`.",
            anchor,
        ),
        "test": (
            bool(test),
            "test-step",
            "no step runs the tests.",
            "add a step `run: pytest` after the install step.",
            anchor,
        ),
        "train": (
            bool(found["train"]),
            "train-step",
            "no step trains the model.",
            "add a step `run: python -m iris_model.train` after the tests.",
            anchor,
        ),
        "build": (
            bool(found["build"]),
            "build-step",
            "no step builds the Docker image.",
            "add a step `run: docker build -t iris-model .`.",
            anchor,
        ),
    }
    for name, (ok, rule, message, fix, line) in checks.items():
        if not ok:
            severity: Severity = "error" if name in required else "warning"
            out.append(Finding(rule=rule, severity=severity, message=message, fix=fix, line=line))
    return out


def validate(path: Path | str, require: Iterable[str] = (), audit: bool = True) -> Report:
    """Validate a workflow file: schema, meaning, then zizmor's supply-chain audit (``audit=False`` skips it).

    ``require`` names what the workflow must do (``push``, ``install``, ``test``,
    ``train``, ``build``); missing ones are errors, the others only warnings.
    zizmor's high and medium findings (an action pinned only to a tag, default
    permissions, a checkout that keeps the token) are errors.
    """
    path = Path(path)
    try:
        doc = YamlDoc.read(path)
    except YamlError as exc:
        return Report.for_file(
            path,
            [
                Finding(
                    rule="yaml",
                    message=str(exc),
                    line=exc.line,
                    fix="fix the YAML syntax (indentation, quotes, colons) at that line.",
                )
            ],
        )
    if not isinstance(doc.data, dict):
        return Report.for_file(
            path,
            [
                Finding(
                    rule="yaml",
                    message="the workflow is not a YAML mapping.",
                    line=1,
                    fix="start from `name:`, `on:` and `jobs:` keys.",
                )
            ],
        )
    supply = zizmor.audit(path) if audit else []
    return Report.for_file(path, schema_findings(doc) + meaning_findings(doc, require) + supply)
