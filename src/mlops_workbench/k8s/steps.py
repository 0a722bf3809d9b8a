"""An Argo Rollout canary strategy read back into a rollout :class:`~mlops_workbench.rollout.policy.Policy`.

:mod:`~mlops_workbench.k8s.render` goes from a policy to Argo; :func:`to_policy` goes the other way, so the
steps a learner wrote can be replayed (:mod:`mlops_workbench.rollout.replay`) without a cluster. Field by field:

* ``setWeight`` and ``pause.duration`` are the policy's own steps (durations as Argo reads them: ``30``,
  ``"30s"``, ``"1m30s"``, ``"500ms"``); ``pause: {}`` is a pause without a duration (:func:`step`);
* each template of the background ``analysis`` becomes a policy metric: the kind and condition of the metric the
  template measures (the caller says which), and the template's ``interval``, ``initialDelay``, ``count``,
  ``failureLimit``, ``consecutiveErrorLimit`` and ``inconclusiveLimit`` with Argo's defaults; ``startingStep``
  delays it to the time that step begins;
* the closing ``analysis`` step (the promotion gate) becomes a metric measured once when the steps end.

What the replay cannot stand for raises :class:`StepError` naming the step or field: an indefinite pause (it
parses, but it waits for a human, so :func:`to_policy` cannot time the steps), an analysis step before the last
step, experiments, header or mirror routes, canary scale.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from mlops_workbench.errors import InputError
from mlops_workbench.k8s.errors import K8sError
from mlops_workbench.rollout import policy as pol

_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
# what each hash argument must select, or the analysis compares the wrong pods
HASH_OF = {"canary-hash": "Latest", "stable-hash": "Stable"}
UNREPLAYABLE = {"experiment", "setCanaryScale", "setHeaderRoute", "setMirrorRoute", "plugin"}
# Argo's defaults for a metric's limits when the template leaves them out
DEFAULTS = {"failureLimit": 0, "consecutiveErrorLimit": 4, "inconclusiveLimit": 0}
LIMIT_FIELDS = {
    "failureLimit": "failure_limit",
    "consecutiveErrorLimit": "consecutive_error_limit",
    "inconclusiveLimit": "inconclusive_limit",
    "count": "count",
}


class StepError(K8sError, InputError):
    """A canary strategy the replay cannot stand for; the message names the step or field and what to write."""


class Replayable(BaseModel):
    """A canary strategy as a policy the replay runs, and what the grader judges it by."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    policy: pol.Policy
    gates: list[str]
    background: list[str]
    steps_end: float
    last_weight: float
    last_weight_at: float

    def bound(self) -> float:
        """Worst-case seconds from a fault to abort, by the background metrics (the gates measure once, at the end)."""
        metrics = [m for m in self.policy.analysis.metrics if m.name in self.background] or self.policy.analysis.metrics
        return max(m.initial_delay + m.interval * (m.failure_limit + 1) + m.lookback for m in metrics)


def duration(value: object, where: str) -> float:
    """An Argo duration in seconds: ``8`` or ``"8"`` (seconds), ``"30s"``, ``"1m"``, ``"1m30s"``, ``"500ms"``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise StepError(f"{where} is {value!r}, not a duration: write it like 30s, 1m or 500ms.")
    text = str(value).strip()
    if re.fullmatch(r"\d+", text):
        return float(text)
    parts = _PART.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise StepError(f"{where} is {value!r}, not a duration Argo reads: write it like 30s, 1m, 1m30s or 500ms.")
    return sum(float(n) * _UNIT[u] for n, u in parts)


def _int(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise StepError(f"{where} is {value!r}: write a whole number, 0 or more.")
    return value


def _check_args(passed: list[Any], template: dict[str, Any], where: str) -> None:
    given = {a.get("name"): a for a in passed if isinstance(a, dict)}
    for arg in (template.get("spec") or {}).get("args") or []:
        name = arg.get("name")
        if "value" not in arg and name not in given:
            raise StepError(
                f"{where} does not pass the argument {name!r} that the template declares: Argo fails "
                f"the analysis before it measures; add it to the args (with its valueFrom)."
            )
        picks = ((given.get(name) or {}).get("valueFrom") or {}).get("podTemplateHashValue")
        if name in HASH_OF and picks is not None and picks != HASH_OF[name]:
            raise StepError(
                f"{where} passes {name} from the {picks} pods: the analysis would compare the wrong pods; "
                f"use podTemplateHashValue: {HASH_OF[name]}."
            )


def _template(templates: dict[str, dict[str, Any]], name: str | None) -> dict[str, Any]:
    """The AnalysisTemplate a ref names ({} when it names none that exists: :func:`_metric` says so)."""
    return (templates.get(name) if name is not None else None) or {}


def _metric(
    name: str | None, templates: dict[str, dict[str, Any]], metrics: dict[str, pol.Metric], where: str, delay: float
) -> pol.Metric:
    """The template ``name`` as a policy metric starting ``delay`` seconds after the first step."""
    if name not in metrics:
        raise StepError(
            f"{where} runs the template {name!r}, which measures no metric of the policy (it has "
            f"{', '.join(sorted(metrics))}): name each template after the metric it measures."
        )
    if name not in templates:
        raise StepError(f"{where} runs the template {name!r}, and no AnalysisTemplate has that name.")
    specs = (templates[name].get("spec") or {}).get("metrics") or []
    if len(specs) != 1 or not isinstance(specs[0], dict):
        raise StepError(f"the AnalysisTemplate {name!r} has {len(specs)} metrics: write one metric per template.")
    spec, here = specs[0], f"AnalysisTemplate {name!r}"
    interval = duration(spec["interval"], f"{here}: interval") if "interval" in spec else None
    update: dict[str, Any] = {
        "name": name,
        "initial_delay": delay + duration(spec.get("initialDelay", 0), f"{here}: initialDelay"),
    }
    for field, attr in LIMIT_FIELDS.items():
        default = DEFAULTS.get(field, 0 if interval else 1)  # no interval: Argo measures once
        update[attr] = _int(spec.get(field, default), f"{here}: {field}")
    if interval is None and update["count"] != 1:
        raise StepError(f"{here}: count {update['count']} without an interval: give the interval between measurements.")
    metric = metrics[name]
    update["interval"] = interval or metric.lookback
    update["window"] = metric.lookback  # the query's range is the policy's window (PromQL is graded by promtool)
    try:
        return pol.Metric.model_validate({**metric.model_dump(), **update})
    except ValidationError as err:
        raise StepError(f"{here}: {err.errors()[0]['msg']}") from None


def step(i: int, raw: object, last: bool = False) -> pol.Step | None:
    """Argo's canary step ``steps[i]`` as a policy step (None for the closing analysis step); StepError otherwise."""
    where = f"steps[{i}]"
    if not isinstance(raw, dict) or len(raw) != 1:
        raise StepError(f"{where} is {raw!r}: each canary step is a mapping with one key (setWeight, pause, analysis).")
    ((key, value),) = raw.items()
    if key == "setWeight":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
            raise StepError(f"{where}: setWeight is {value!r}: write a whole percent from 0 to 100.")
        return pol.Step(set_weight=value)
    if key == "pause":
        if not isinstance(value, dict):
            raise StepError(f"{where}: pause is {value!r}: write pause: {{duration: 8s}}, or pause: {{}} to wait.")
        if value.get("duration") is None:  # Argo holds here until `kubectl argo rollouts promote`
            return pol.Step(pause=pol.Pause(duration=None))
        return pol.Step(pause=pol.Pause(duration=duration(value["duration"], f"{where}: pause.duration")))
    if key == "analysis":
        if not last:
            raise StepError(
                f"{where}: an analysis step before the last step holds the steps until it ends, which the "
                "replay does not model: run the background analysis, and the gates as the last step."
            )
        return None
    if key in UNREPLAYABLE:
        raise StepError(
            f"{where}: {key} cannot be replayed here (no experiments, header or mirror routes, canary "
            "scale): the lab's strategy has setWeight, pause and a closing analysis step only."
        )
    raise StepError(f"{where}: {key!r} is not a canary step: write setWeight, pause or analysis.")


def to_policy(
    canary: dict[str, Any],
    templates: dict[str, dict[str, Any]],
    metrics: dict[str, pol.Metric],
    min_sample_size: int,
    name: str = "rollout",
) -> Replayable:
    """``spec.strategy.canary`` as a replayable policy.

    ``templates``: AnalysisTemplates by name; ``metrics``: template name -> the policy metric whose kind and
    condition judge what the template measures (:func:`mlops_workbench.k8s.lab.metric_of`).
    """
    raw = canary.get("steps")
    if not isinstance(raw, list) or not raw:
        raise StepError(
            "the canary has no steps: Argo would send all traffic to the new version at once; "
            "write setWeight and pause steps."
        )
    steps = [step(i, s, i == len(raw) - 1) for i, s in enumerate(raw)]
    kept = [s for s in steps if s is not None]
    starts, t, last_weight, last_at, started = [], 0.0, 0.0, 0.0, False  # time 0: the first weight above 0
    for i, s in enumerate(steps):
        starts.append(t)
        if s is not None and s.pause is not None and s.pause.duration is None:
            raise StepError(
                f"steps[{i}]: a pause without a duration is indefinite: Argo waits there until someone runs "
                f"`kubectl argo rollouts promote`, which no replay can stand for; give steps[{i}]'s pause a "
                "duration (8s) to replay it."
            )
        if s is not None and s.set_weight is not None:
            last_weight, last_at, started = s.set_weight, t, started or s.set_weight > 0
        elif s is not None and s.pause is not None and s.pause.duration is not None and started:
            t += s.pause.duration
    out: list[pol.Metric] = []
    background = canary.get("analysis") or {}
    starting = background.get("startingStep", 0)
    if not isinstance(starting, int) or isinstance(starting, bool) or not 0 <= starting < len(raw):
        raise StepError(f"analysis.startingStep is {starting!r}: name a step index from 0 to {len(raw) - 1}.")
    for k, ref in enumerate(background.get("templates") or []):
        template = ref.get("templateName") if isinstance(ref, dict) else None
        _check_args(background.get("args") or [], _template(templates, template), "the background analysis")
        out.append(_metric(template, templates, metrics, f"analysis.templates[{k}]", starts[starting]))
    closing = (raw[-1].get("analysis") if isinstance(raw[-1], dict) else None) or {}
    gates = []
    for k, ref in enumerate(closing.get("templates") or []):
        template = ref.get("templateName") if isinstance(ref, dict) else None
        where = f"steps[{len(raw) - 1}].analysis"
        _check_args(closing.get("args") or [], _template(templates, template), where)
        out.append(_metric(template, templates, metrics, f"{where}.templates[{k}]", t))
        gates.append(out[-1].name)
    if not out:
        raise StepError(
            "the canary has no analysis: nothing measures it, so Argo promotes any canary, faulty or "
            "not, once the steps end; add spec.strategy.canary.analysis with one template per metric "
            "and end the steps with an analysis step running the -gate templates."
        )
    try:
        policy = pol.Policy(name=name, steps=kept, analysis=pol.Analysis(min_sample_size=min_sample_size, metrics=out))
    except ValidationError as err:
        raise StepError(f"the strategy is not a policy: {err.errors()[0]['msg']}") from None
    return Replayable(
        policy=policy,
        gates=gates,
        background=[m.name for m in out if m.name not in gates],
        steps_end=t,
        last_weight=last_weight,
        last_weight_at=last_at,
    )
