"""Grade a learner's alert rules (lab 07) by what they do on seeded metric series, with ``promtool test rules``.

Four scenarios are drawn per grading run, six minutes of samples every 15 s: *healthy* traffic (drift scores low
with one 15-second spike on one feature, a fraction of a percent of errors, a p99 of a few tens of milliseconds),
*drifting* (one seeded feature's score high from the first minute on), *erroring* (a seeded share of 5xx from the
first minute on) and *slow* (a seeded share of requests above half a second from the first minute on). The rules
must stay quiet on the healthy one at every evaluation, and three minutes after the change fire exactly the alert
the change calls for (the drift alert naming the moved feature). A rule that always fires fails the healthy
scenario; one that never fires fails its own. Pure scenario making; :func:`grade` runs promtool.
"""

from __future__ import annotations

import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlops_workbench.data import FEATURES
from mlops_workbench.k8s.promql import BUCKETS, REQUESTS
from mlops_workbench.monitoring import rules
from mlops_workbench.monitoring.exporter import DRIFT

DRIFT_ALERT, ERROR_ALERT, LATENCY_ALERT = "InputDrift", "HighErrorRate", "SlowPredictions"
ALERTS = (DRIFT_ALERT, ERROR_ALERT, LATENCY_ALERT)
STEP = 15  # seconds between samples (a Prometheus scrape) and between evaluations
END = 360  # six minutes of samples
CHANGE = 60  # the drift, errors or slowness start here
DETECT = 180  # ... and must have fired this many seconds later
SPIKE = 120  # the healthy scenario's one-sample drift spike
LE = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf")
MODEL, VERSION = "iris", "1"
FIRING = f'ALERTS{{alertstate="firing",alertname=~"{"|".join(ALERTS)}"}}'


@dataclass
class Scenario:
    """One seeded set of series and what the rules must answer on it."""

    kind: str
    what: str
    series: dict[str, list[float]] = field(default_factory=dict)
    feature: str | None = None

    def expected(self) -> list[dict[str, Any]]:
        """promtool ``promql_expr_test`` cases for this scenario."""
        if self.kind == "healthy":
            return [
                {"expr": f"group by (alertname) ({FIRING})", "eval_time": f"{t}s", "exp_samples": []}
                for t in range(0, END + 1, STEP)
            ]
        alert = {"drifting": DRIFT_ALERT, "erroring": ERROR_ALERT, "slow": LATENCY_ALERT}[self.kind]
        at = f"{CHANGE + DETECT}s"
        cases = [
            {
                "expr": f"group by (alertname) ({FIRING})",
                "eval_time": at,
                "exp_samples": [{"labels": f'{{alertname="{alert}"}}', "value": 1}],
            }
        ]
        if self.feature:
            cases.append(
                {
                    "expr": f'group by (feature) (ALERTS{{alertstate="firing",alertname="{DRIFT_ALERT}"}})',
                    "eval_time": at,
                    "exp_samples": [{"labels": f'{{feature="{self.feature}"}}', "value": 1}],
                }
            )
        return cases

    def unit_test(self) -> dict[str, Any]:
        series = [
            {"series": name, "values": " ".join(f"{v:.6g}" for v in values)} for name, values in self.series.items()
        ]
        return {
            "rule_files": ["rules.yaml"],
            "evaluation_interval": f"{STEP}s",
            "tests": [{"interval": f"{STEP}s", "input_series": series, "promql_expr_test": self.expected()}],
        }


def _samples() -> int:
    return END // STEP + 1


def _traffic(rng: random.Random, error_share: float, slow_share: float, changed: bool) -> dict[str, list[float]]:
    """Cumulative request counters by status and latency buckets; the shares apply from :data:`CHANGE` on when
    ``changed`` (else a healthy fraction of a percent of errors and no slow requests)."""
    rps = rng.uniform(15, 30)
    ok = errors = 0.0
    buckets = [0.0] * len(LE)
    out: dict[str, list[float]] = {"200": [], "500": [], **{le: [] for le in LE}}
    healthy_errors = rng.uniform(0.0, 0.004)
    for i in range(_samples()):
        late = changed and i * STEP >= CHANGE
        n = round(rps * STEP * rng.uniform(0.9, 1.1)) if i else 0
        bad = round(n * (error_share if late else healthy_errors))
        ok, errors = ok + n - bad, errors + bad
        slow = round(n * slow_share) if late else 0
        fast = n - slow
        # fast requests: 70% under 10 ms, 25% under 25 ms, the rest under 50 ms; slow ones between 0.5 and 1 s
        shares = {"0.005": 0.3 * fast, "0.01": 0.7 * fast, "0.025": 0.95 * fast, "0.05": fast, "0.1": fast}
        for k, le in enumerate(LE):
            buckets[k] += round(shares.get(le, fast + (slow if float(le) >= 1 else 0)))
            out[le].append(buckets[k])
        out["200"].append(ok)
        out["500"].append(errors)
    return {
        **{f'{REQUESTS}{{version="{VERSION}",status="{s}"}}': out[s] for s in ("200", "500")},
        **{f'{BUCKETS}{{version="{VERSION}",le="{le}"}}': out[le] for le in LE},
    }


def _drift(rng: random.Random, moved: str | None, spike: str | None) -> dict[str, list[float]]:
    series: dict[str, list[float]] = {}
    for name in FEATURES:
        values = [round(rng.uniform(0.01, 0.08), 3) for _ in range(_samples())]
        if name == moved:
            values = [v if i * STEP < CHANGE else round(rng.uniform(0.35, 0.8), 3) for i, v in enumerate(values)]
        if name == spike:
            values[SPIKE // STEP] = round(rng.uniform(0.4, 0.7), 3)
        series[f'{DRIFT}{{model="{MODEL}",version="{VERSION}",feature="{name}"}}'] = values
    return series


def scenarios(rng: random.Random) -> list[Scenario]:
    """The four hidden scenarios of one grading run."""
    moved, spike = rng.choice(FEATURES), rng.choice(FEATURES)
    error_share, slow_share = round(rng.uniform(0.1, 0.3), 2), round(rng.uniform(0.05, 0.3), 2)
    return [
        Scenario(
            "healthy",
            "healthy traffic (drift scores under 0.1 but one 15-second spike, under 0.5% errors, p99 under 50 ms)",
            {**_drift(rng, None, spike), **_traffic(rng, 0, 0, changed=False)},
        ),
        Scenario(
            "drifting",
            "a feature whose drift score stays between 0.35 and 0.8 from minute 1 on",
            {**_drift(rng, moved, None), **_traffic(rng, 0, 0, changed=False)},
            feature=moved,
        ),
        Scenario(
            "erroring",
            f"a model version answering {error_share:.0%} of its requests with 5xx from minute 1 on",
            {**_drift(rng, None, None), **_traffic(rng, error_share, 0, changed=True)},
        ),
        Scenario(
            "slow",
            f"a model version taking 0.5 to 1 s for {slow_share:.0%} of its requests from minute 1 on",
            {**_drift(rng, None, None), **_traffic(rng, 0, slow_share, changed=True)},
        ),
    ]


def problem(result: rules.TestResult, scenario: Scenario) -> str:
    """Empty when the rules answered the scenario right, else what went wrong, in the learner's terms."""
    if result.ok:
        return ""
    if result.errors and not result.failures:
        return f"promtool could not run your rules on {scenario.what}: " + " ".join(result.errors)[:300]
    first = result.failures[0]
    got = (first.got or "nothing").replace(" 1E+00", "").replace("nil", "nothing")
    if scenario.kind == "healthy":
        return (
            f"on {scenario.what} your rules fired at {first.time} ({got}): an alert must hold for a while (`for:`) "
            "and its threshold must sit above healthy noise"
        )
    if first.expr and "feature" in first.expr and "alertname)" not in first.expr:
        return (
            f"on {scenario.what} {DRIFT_ALERT} did not name the moved feature ({got}): keep the `feature` label "
            "(compare each series with the threshold, do not aggregate it away)"
        )
    return (
        f"on {scenario.what} the firing alerts {DETECT}s after the change were {got}, not only the "
        "alert that change calls for: check the alert's name, its expression and that `for:` is under 3 minutes"
    )


def grade(rules_path: Path, rng: random.Random) -> list[str]:
    """The problems of the rule file at ``rules_path`` on the hidden scenarios (empty: it decides them all)."""
    problems = []
    for scenario in scenarios(rng):
        with tempfile.TemporaryDirectory(prefix="rulegrade-") as tmp:
            test = Path(tmp) / "test.yaml"
            test.write_text(yaml.safe_dump(scenario.unit_test(), sort_keys=False, width=100_000))
            found = problem(rules.test(rules_path, test), scenario)
        if found:
            problems.append(found)
    return problems
