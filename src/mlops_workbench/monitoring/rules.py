"""Alert rule files (Prometheus's rule-group YAML), the ones a learner writes in lab 07.

:func:`load` reads one into a strict model (:class:`RuleFile`; every bad field is named in one error);
:func:`check` runs ``promtool check rules`` on it and :func:`test` runs ``promtool test rules`` with a unit-test
file against it, both answering typed results (which test case failed, at what time, what it expected and
got). :data:`REFERENCE` and :data:`REFERENCE_TEST` are the shipped reference rules and their unit tests.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from mlops_workbench import fielderrors, safeyaml, tools
from mlops_workbench.errors import InputError

REFERENCE = Path(__file__).with_name("alert_rules.yaml")
"""The reference rules: drift score above its threshold for a minute, error rate, p99 latency."""
REFERENCE_TEST = Path(__file__).with_name("alert_rules_test.yaml")
"""``promtool test rules`` unit tests of :data:`REFERENCE`."""
PROMTOOL_TIMEOUT = 60.0

_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_UNITS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


class RulesError(InputError):
    """A rule file (or its unit tests) that cannot be used as given; the message names every bad field."""


def seconds(duration: str) -> float:
    """A Prometheus duration (``90s``, ``1m30s``, ``2h``, ``0``) in seconds; ValueError naming the format."""
    match = _DURATION.match(duration.strip())
    if duration.strip() == "0":
        return 0.0
    if not duration.strip() or match is None:
        raise ValueError(f"{duration!r} is not a Prometheus duration: write a number and a unit, like 30s, 5m or 1h30m")
    return float(sum(int(n) * unit for n, unit in zip(match.groups(), _UNITS, strict=True) if n))


def _duration(value: Any) -> Any:
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if isinstance(text, str):
        seconds(text)  # raises the message naming the format
    return text


Duration = Annotated[str, BeforeValidator(_duration)]


def _label_names(value: dict[str, str]) -> dict[str, str]:
    bad = [name for name in value if not _LABEL.match(name)]
    if bad:
        raise ValueError(f"label names {bad} must start with a letter or _ and hold only letters, digits and _")
    return value


class Rule(BaseModel):
    """One rule of a group: an alerting rule (``alert``) or a recording rule (``record``), never both."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    alert: str | None = Field(None, description="the alert's name (an alerting rule)")
    record: str | None = Field(None, description="the series name it records (a recording rule)")
    expr: str = Field(description="the PromQL expression; an alert fires for each sample it returns")
    for_: Duration = Field("0s", alias="for", description="how long the expression must hold before it fires")
    keep_firing_for: Duration | None = Field(None, description="how long it keeps firing once the expression stops")
    labels: dict[str, str] = Field(default_factory=dict, description="labels added to the alert or series")
    annotations: dict[str, str] = Field(default_factory=dict, description="summary, description, ... of the alert")

    @field_validator("expr")
    @classmethod
    def _expr(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the expression is empty: write the PromQL whose samples fire the alert")
        return value

    _labels = field_validator("labels")(_label_names)

    @model_validator(mode="after")
    def _kind(self) -> Rule:
        if (self.alert is None) == (self.record is None):
            raise ValueError("a rule has either `alert:` (an alerting rule) or `record:` (a recording rule)")
        if self.record is not None and (self.annotations or self.for_ != "0s" or self.keep_firing_for):
            raise ValueError("a recording rule takes no `for:`, `keep_firing_for:` or `annotations:`")
        return self

    @property
    def for_seconds(self) -> float:
        return seconds(self.for_)


class RuleGroup(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="the group's name, unique in the file")
    interval: Duration | None = Field(None, description="how often the group is evaluated (default: Prometheus's)")
    limit: int | None = Field(None, ge=0, description="the most alerts or series one evaluation may produce")
    rules: list[Rule] = Field(description="the group's alerting and recording rules")


class RuleFile(BaseModel):
    """A whole rule file: ``groups:``, each with its ``rules:``."""

    model_config = ConfigDict(extra="forbid")

    groups: list[RuleGroup] = Field(description="the rule groups")

    @model_validator(mode="after")
    def _unique(self) -> RuleFile:
        names = [g.name for g in self.groups]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"group names {twice} appear more than once: give each group its own name")
        return self

    @property
    def alerts(self) -> list[Rule]:
        """Every alerting rule, in file order."""
        return [rule for group in self.groups for rule in group.rules if rule.alert is not None]

    def dump(self, path: Path) -> Path:
        """Write the file as Prometheus reads it (``for:`` under its own name) and return ``path``."""
        data = self.model_dump(by_alias=True, exclude_none=True, exclude_defaults=True, mode="json")
        for group in data["groups"]:
            group.setdefault("rules", [])
            for rule in group["rules"]:
                rule.setdefault("expr", "")
        path.write_text(yaml.safe_dump(data, sort_keys=False, width=100_000))
        return path


def parse(data: Any, what: str) -> RuleFile:
    """``data`` (a loaded YAML document) as a :class:`RuleFile`; :class:`RulesError` names every bad field."""
    try:
        return RuleFile.model_validate(data)
    except ValidationError as err:
        lines = "\n".join(fielderrors.describe(err, RuleFile))
        raise RulesError(f"{what} is not a valid Prometheus rule file:\n{lines}") from None


def load(path: Path) -> RuleFile:
    """Read and validate the rule file at ``path``."""
    what = f"rule file {path}"
    try:
        data = safeyaml.load(Path(path), what=what, error=RulesError)
    except FileNotFoundError:
        raise RulesError(f"{what} does not exist: write it, or start from {REFERENCE}.") from None
    return parse(data, what)


class CheckResult(BaseModel):
    """``promtool check rules``: ok, how many rules it found, and its complaints (one per bad rule)."""

    model_config = ConfigDict(extra="forbid")

    ok: bool
    rules: int = 0
    problems: list[str] = Field(default_factory=list)


class TestFailure(BaseModel):
    """One failed case of ``promtool test rules``: the alert (or expression) at one evaluation time."""

    model_config = ConfigDict(extra="forbid")

    alertname: str | None = None
    expr: str | None = None
    time: str
    expected: str
    got: str


class TestResult(BaseModel):
    """``promtool test rules``: ok, each failed case, and errors that stopped a test group from running."""

    model_config = ConfigDict(extra="forbid")

    ok: bool
    failures: list[TestFailure] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)
    output: str = ""


def check(path: Path) -> CheckResult:
    """``promtool check rules PATH`` (the model check of :func:`load` runs first; its errors are raised)."""
    load(path)
    ran = _promtool("check", "rules", str(path))
    code, out = ran.returncode, ran.stdout
    found = re.search(r"SUCCESS: (\d+) rules found", out)
    problems = [line.strip() for line in out.splitlines() if line.strip() and not line.startswith(("Checking", " "))]
    return CheckResult(ok=code == 0, rules=int(found.group(1)) if found else 0, problems=problems)


def test(rules_path: Path, test_path: Path) -> TestResult:
    """Run the unit tests of ``test_path`` (promtool's format) against the rule file ``rules_path``.

    The test file's own ``rule_files`` are replaced by ``rules_path``, so one test file grades any learner's
    rules. A test file that is not a mapping with ``tests:`` raises :class:`RulesError`."""
    load(rules_path)
    what = f"rule test file {test_path}"
    spec = safeyaml.load(Path(test_path), what=what, error=RulesError)
    if not isinstance(spec, dict) or not isinstance(spec.get("tests"), list):
        raise RulesError(f"{what} must be a mapping with a `tests:` list (promtool's unit-test format).")
    spec["rule_files"] = [str(Path(rules_path).resolve())]
    with tempfile.TemporaryDirectory(prefix="rules-test-") as tmp:
        copy = Path(tmp) / Path(test_path).name
        copy.write_text(yaml.safe_dump(spec, sort_keys=False, width=100_000))
        ran = _promtool("test", "rules", str(copy))
    code, out = ran.returncode, ran.stdout
    failures = _failures(out)
    errors = [] if failures or code == 0 else [line.strip() for line in out.splitlines() if line.strip()][1:]
    return TestResult(ok=code == 0, failures=failures, errors=errors, output=out)


def _promtool(*args: str) -> tools.Ran:
    """``promtool ARGS`` run to its end, stdout and stderr as printed (a failure is an answer here)."""
    return tools.call([tools.require("promtool"), *args], timeout=PROMTOOL_TIMEOUT, merge_output=True)


_CASE = re.compile(r"^\s*(alertname|expr): (.*?), time: ([^,]+),\s*$")


def _failures(out: str) -> list[TestFailure]:
    """The failed cases in promtool's report: a ``alertname: X, time: T,`` (or ``expr: ...``) line, then the
    expected (``exp:``) and actual (``got:``) results, each possibly over several lines."""
    cases: list[dict[str, str]] = []
    part = "expected"
    for line in out.splitlines():
        head = _CASE.match(line)
        if head:
            cases.append({head.group(1): head.group(2), "time": head.group(3).strip(), "expected": "", "got": ""})
            part = "expected"
            continue
        stripped = line.strip()
        if not cases or not stripped or stripped.startswith("FAILED:"):
            continue
        if stripped.startswith(("exp:", "got:")):
            part, stripped = ("expected" if stripped.startswith("exp:") else "got"), stripped[4:].strip()
        cases[-1][part] = (cases[-1][part] + " " + stripped).strip()
    return [TestFailure(**{k: v.rstrip(", ") for k, v in case.items()}) for case in cases]
