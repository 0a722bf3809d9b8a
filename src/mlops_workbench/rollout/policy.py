"""The rollout policy: steps and analysis metrics, in YAML with Argo Rollouts field names.

A policy is validated with pydantic; a bad file raises :class:`PolicyError` with
one line per bad field (``steps.1.setWeight: ...``) so the learner can fix them
all at once. Durations are strings (``30s``, ``5m``, ``1h``, ``500ms``) or seconds. A pause without a
duration (``pause: {}``) holds the rollout until an operator continues it, as in Argo Rollouts.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from mlops_workbench import fielderrors, safeyaml
from mlops_workbench.errors import InputError

_DURATION = re.compile(r"^\s*(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class PolicyError(InputError):
    """A policy file is malformed; the message lists every bad field and how to fix it."""


def parse_duration(value: object) -> float:
    """``"30s"`` -> 30.0, ``"5m"`` -> 300.0, ``"500ms"`` -> 0.5, ``2`` -> 2.0 (seconds)."""
    if isinstance(value, bool):
        raise ValueError("a duration must be like '30s', '5m', '1h' or '500ms', not a boolean")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"'{value}' is not a duration: write it like '30s', '5m', '1h' or '500ms'")
        seconds = float(match["n"]) * _UNITS[match["unit"]]
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


class _Spec(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class Pause(_Spec):
    duration: Duration | None = Field(
        None,
        description="how long to hold the current weight while the analysis runs; without a duration "
        "(`pause: {}`) the rollout holds until an operator runs `workbench rollout continue`",
    )


class Step(_Spec):
    """One step: ``{setWeight: 20}``, ``{pause: {duration: 30s}}`` or ``{pause: {}}`` (hold for an operator)."""

    set_weight: float | None = Field(None, ge=0, le=100, description="canary traffic share in percent")
    pause: Pause | None = None

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        if (self.set_weight is None) == (self.pause is None):
            raise ValueError("each step needs exactly one of 'setWeight' or 'pause'")
        return self


MetricKind = Literal["errorRate", "latencyP99", "predictionShift"]


class Condition(_Spec):
    """When a measurement fails.

    ``errorRate``: canary error rate above ``max`` AND significantly above stable's
    (one-sided Fisher exact test, p < ``alpha``). ``latencyP99``: canary p99 above
    stable p99 x (1 + ``maxIncrease``) + ``marginMs`` (relative to the same window),
    or above ``max`` seconds if set. ``predictionShift``: PSI of the predicted-class
    distribution of canary against stable above ``max``.
    """

    max: float | None = Field(None, ge=0, description="absolute bound (error fraction, seconds, or PSI)")
    max_increase: float | None = Field(None, ge=0, description="relative bound: 0.5 means 50% above stable")
    margin_ms: float = Field(5.0, ge=0, description="latency slack in ms added to the relative bound")
    alpha: float = Field(0.05, gt=0, lt=1, description="significance level of the canary-vs-stable test")


class Metric(_Spec):
    """One analysis metric, measured every ``interval`` over the last ``window``."""

    name: str = Field(min_length=1)
    kind: MetricKind
    interval: Duration = Field(60.0, gt=0)
    window: Duration | None = Field(None, gt=0, description="lookback of each measurement (default: interval)")
    initial_delay: Duration = 0.0
    count: int = Field(0, ge=0, description="measurements to take; 0 runs until the last step")
    failure_limit: int = Field(0, ge=0, description="the analysis fails when failed measurements exceed this")
    consecutive_error_limit: int = Field(4, ge=0, description="consecutive errors (no data) tolerated")
    inconclusive_limit: int = Field(0, ge=0, description="inconclusive measurements tolerated")
    min_sample_size: int | None = Field(None, ge=1, description="overrides analysis.minSampleSize")
    condition: Condition

    @model_validator(mode="after")
    def _condition_fits(self) -> Metric:
        c = self.condition
        if self.kind == "errorRate" and c.max is None:
            raise ValueError("an errorRate metric needs condition.max (e.g. 0.02 for 2%)")
        if self.kind == "latencyP99" and c.max is None and c.max_increase is None:
            raise ValueError("a latencyP99 metric needs condition.maxIncrease (e.g. 0.5) or condition.max (seconds)")
        if self.kind == "predictionShift" and c.max is None:
            raise ValueError("a predictionShift metric needs condition.max (a PSI bound, e.g. 0.2)")
        return self

    @property
    def lookback(self) -> float:
        return self.window or self.interval


class Analysis(_Spec):
    min_sample_size: int = Field(100, ge=1, description="below this many canary requests a window is inconclusive")
    metrics: list[Metric] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> Analysis:
        names = [m.name for m in self.metrics]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"metric names must be unique; repeated: {', '.join(dupes)}")
        return self


class Policy(_Spec):
    """A canary rollout policy (steps + background analysis)."""

    name: str = "policy"
    steps: list[Step] = Field(min_length=1)
    analysis: Analysis

    @property
    def weights(self) -> list[float]:
        return [s.set_weight for s in self.steps if s.set_weight is not None]

    def detection_bound(self) -> float:
        """Worst-case seconds from a fault to abort: max over metrics of delay + interval x (failureLimit+1) + window."""
        return max(m.initial_delay + m.interval * (m.failure_limit + 1) + m.lookback for m in self.analysis.metrics)

    @property
    def indefinite_pauses(self) -> list[int]:
        """The indexes of the steps that pause without a duration (``pause: {}``, held until an operator continues)."""
        return [i for i, step in enumerate(self.steps) if step.pause is not None and step.pause.duration is None]

    def pauses(self, purpose: str) -> list[tuple[int, float]]:
        """``(step index, seconds)`` of every pause, for code that needs to know when the steps end.

        An indefinite pause (``pause: {}``) waits for an operator's ``workbench rollout continue``, which nobody
        gives when you ``purpose`` (``"replay it"``): it raises InputError naming the step and the fix.
        """
        for i in self.indefinite_pauses[:1]:
            raise InputError(
                f"step {i} of policy '{self.name}' is an indefinite pause (no duration): it waits for an "
                f"operator's `workbench rollout continue`, which nobody gives when you {purpose}; "
                f"give step {i}'s pause a duration to {purpose}."
            )
        return [
            (i, step.pause.duration)
            for i, step in enumerate(self.steps)
            if step.pause is not None and step.pause.duration is not None
        ]


def _format_errors(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        parts = tuple(p for p in e["loc"] if not str(p).startswith("function-after"))
        loc = ".".join(map(str, parts)) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        got = e.get("input")
        shown = "" if isinstance(got, (dict, list)) or e["type"] == "missing" else f" (got {fielderrors.shown(got)})"
        if e["type"] == "extra_forbidden" and parts:  # a misspelt field: name the one that was meant
            owner = fielderrors.model_at(Policy, parts[:-1])
            known = f" Fields here: {', '.join(fielderrors.field_names(owner))}." if owner else ""
            lines.append(f"  - {loc}: no such field{shown}.{fielderrors.suggestion(parts[-1], owner) or known}")
            continue
        lines.append(f"  - {loc}: {msg}{shown}")
    return f"{source} is not a valid rollout policy ({len(lines)} problem(s)); fix each field:\n" + "\n".join(lines)


def parse(data: object, source: str = "policy") -> Policy:
    """Validate a policy mapping; raises :class:`PolicyError` listing every bad field."""
    if not isinstance(data, dict):
        raise PolicyError(f"{source} must be a YAML mapping with 'steps' and 'analysis', not {type(data).__name__}.")
    try:
        return Policy.model_validate(data)
    except ValidationError as err:
        raise PolicyError(_format_errors(err, source)) from None


def load(path: str | Path) -> Policy:
    """Load a policy file, or a packaged profile by name (``default``, ``demo``)."""
    path_obj = Path(path)
    if not path_obj.exists() and str(path) in builtin_names():
        return builtin(str(path))
    try:
        data = safeyaml.load(path_obj, what=f"Policy file {path}", error=PolicyError)
    except FileNotFoundError:
        raise PolicyError(
            f"Policy file {path} does not exist: pass a YAML file or one of {', '.join(builtin_names())}."
        ) from None
    except IsADirectoryError:
        raise PolicyError(f"{path} is a folder: pass the policy's YAML file inside it.") from None
    return parse(data, source=str(path))


def builtin_names() -> list[str]:
    return sorted(
        p.name.removesuffix(".yaml")
        for p in resources.files(__package__).joinpath("policies").iterdir()
        if p.name.endswith(".yaml")
    )


def builtin(name: str = "default") -> Policy:
    """A packaged policy profile: ``default`` (minutes) or ``demo`` (seconds, same logic)."""
    res = resources.files(__package__).joinpath("policies", f"{name}.yaml")
    if not res.is_file():
        raise PolicyError(f"No packaged policy '{name}'; choose one of {', '.join(builtin_names())}.")
    source = f"packaged policy '{name}'"
    return parse(safeyaml.load(res.read_text(), what=source, error=PolicyError), source=source)


def to_yaml(policy: Policy) -> str:
    """The policy as YAML with camelCase names (what a learner edits)."""
    return yaml.safe_dump(policy.model_dump(by_alias=True, exclude_none=True), sort_keys=False)
