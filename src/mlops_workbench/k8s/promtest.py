"""Grade an AnalysisTemplate's PromQL by what it decides, with ``promtool test rules``.

For each hidden scenario (:mod:`mlops_workbench.k8s.scenarios`) the template's query, with Argo's
``{{args.*}}`` filled in, becomes two alert rules: ``Successful`` and ``Failed`` fire when Argo would
record that phase (Argo's order: a true failureCondition fails; else a true successCondition passes;
a missing condition is the negation of the other), and ``NotOneValue`` fires when the query returns
more than one sample (Argo reads ``result[0]`` only). ``promtool`` then checks, at the evaluation time,
that a healthy canary is Successful, a faulty one Failed and a sparse one not Successful. A query
that always passes or always fails cannot meet all three.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlops_workbench import tools
from mlops_workbench.k8s import conditions, scenarios
from mlops_workbench.k8s.errors import K8sError
from mlops_workbench.k8s.scenarios import Scenario

ARG = re.compile(r"\{\{\s*args\.([A-Za-z0-9_-]+)\s*\}\}")
EXPECT = {
    "healthy": ({"Successful": True, "Failed": False}, "a healthy canary with enough requests was not Successful"),
    "errors": ({"Failed": True}, "a canary answering many 5xx errors was not Failed"),
    "slow": ({"Failed": True}, "a canary whose p99 latency is far above the policy's bound was not Failed"),
    "sparse": (
        {"Successful": False},
        (
            "a canary with fewer requests than minSampleSize was Successful: "
            "return a value that matches neither condition (e.g. -1) below the minimum"
        ),
    ),
}


@dataclass(frozen=True)
class Verdict:
    template: str
    scenario: str
    problem: str  # empty when the template decided as it should

    def __str__(self) -> str:
        return f"{self.template}: {self.problem}"


def promtool() -> str:
    """The promtool binary (Debian's ``prometheus`` package), or a :class:`ToolMissing` naming it."""
    return tools.require("promtool")


def fill_args(query: str, args: dict[str, str]) -> str:
    """``query`` with Argo's ``{{args.name}}`` replaced; an undeclared argument is an error naming it."""
    unknown = sorted({m.group(1) for m in ARG.finditer(query)} - set(args))
    if unknown:
        raise K8sError(
            f"the query uses {{{{args.{unknown[0]}}}}}, which the analysis does not pass: "
            f"use only {', '.join(sorted(args))}."
        )
    return ARG.sub(lambda m: args[m.group(1)], query)


def rules(metric: dict[str, Any], args: dict[str, str]) -> dict[str, Any]:
    """The alert rules deciding one Argo Prometheus metric on the scenario's series."""
    query = ((metric.get("provider") or {}).get("prometheus") or {}).get("query")
    if not isinstance(query, str) or not query.strip():
        raise K8sError("the metric has no provider.prometheus.query: write the PromQL there.")
    query = fill_args(query, args)
    success, failure = metric.get("successCondition"), metric.get("failureCondition")
    if not success and not failure:
        raise K8sError(
            "the metric has neither successCondition nor failureCondition: Argo would pass every "
            "measurement. Write at least successCondition."
        )
    s = conditions.to_promql(success, query) if success else None
    f = conditions.to_promql(failure, query) if failure else None
    passed = s if f is None else (f"vector(1) unless on() ({f})" if s is None else f"({s}) unless on() ({f})")
    failed = f if f is not None else f"vector(1) unless on() ({s})"
    return {
        "groups": [
            {
                "name": "analysis",
                "rules": [
                    {"alert": "Successful", "expr": f"count({passed}) > 0"},
                    {"alert": "Failed", "expr": f"count({failed}) > 0"},
                    {"alert": "NotOneValue", "expr": f"count({query}) > 1"},
                ],
            }
        ]
    }


def unit_test(scenario: Scenario) -> dict[str, Any]:
    expected, _ = EXPECT[scenario.kind]
    checks = [
        {"eval_time": f"{scenarios.EVAL_AT}s", "alertname": name, "exp_alerts": [{}] if fires else []}
        for name, fires in {**expected, "NotOneValue": False}.items()
    ]
    return {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {"interval": "1s", "input_series": [s.promtool() for s in scenario.series()], "alert_rule_test": checks}
        ],
    }


def run(metric: dict[str, Any], scenario: Scenario, binary: str) -> str:
    """Empty when the metric decides ``scenario`` as it should, else what went wrong (no series shown)."""
    with tempfile.TemporaryDirectory(prefix="promtest-") as tmp:
        folder = Path(tmp)
        (folder / "rules.yaml").write_text(yaml.safe_dump(rules(metric, scenario.args), width=100_000))
        (folder / "test.yaml").write_text(yaml.safe_dump(unit_test(scenario), width=100_000))
        ran = tools.call([binary, "test", "rules", "test.yaml"], cwd=folder, timeout=60)
    if ran.ok:
        return ""
    out = ran.output
    if "could not parse expression" in out or "parse error" in out:
        detail = next(
            (
                line.split("could not parse expression:")[-1].strip()
                for line in out.splitlines()
                if "parse error" in line
            ),
            "",
        )
        return f"the query (with its condition) is not valid PromQL ({detail}); try it in Prometheus' query page"
    failed = set(re.findall(r"alertname: (\w+),", out))
    if "NotOneValue" in failed:
        return "the query returns more than one sample (one per pod or status?): aggregate it with sum(...)"
    if failed:
        return EXPECT[scenario.kind][1]
    return "promtool could not run the test: " + " ".join(out.split())[-300:]


def grade(templates: list[dict[str, Any]], metric_of: dict[str, Any], min_sample: int, rng: Any) -> list[Verdict]:
    """Every Prometheus template in ``templates`` against the hidden scenarios of its policy metric.

    ``metric_of`` maps a template name to its policy metric (``error-rate`` and ``error-rate-gate`` alike).
    """
    binary = promtool()
    out: list[Verdict] = []
    for template in templates:
        name = (template.get("metadata") or {}).get("name", "?")
        metric = metric_of.get(name)
        if metric is None or metric.kind not in scenarios.FAULT:
            continue
        spec = (((template.get("spec") or {}).get("metrics")) or [{}])[0]
        for scenario in scenarios.scenarios(metric, min_sample, rng):
            try:
                problem = run(spec, scenario, binary)
            except (K8sError, conditions.ConditionError) as err:
                problem = str(err)
            out.append(Verdict(name, scenario.kind, problem))
            if problem and scenario.kind != "healthy" and "PromQL" in problem:
                break
    return out
