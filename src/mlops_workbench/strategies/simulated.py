"""Blue-green environments held in memory, for trying (and grading) a switch procedure without servers.

:class:`SimRouter` and :class:`SimServer` answer the calls a switch procedure makes on a
:class:`~mlops_workbench.serving.client.RouterClient` (``set_weight``, ``weight``, ``weights``) and a green
:class:`~mlops_workbench.serving.client.ModelServerClient` (``send``, ``version``), with the same reply type. The
router records every weight set, so a caller sees whether a green that fails its smoke test ever got traffic and
whether a switch was one atomic change. :func:`green` makes a healthy green or one broken in a given way
(:data:`BROKEN`); :func:`smoke_cases` a seeded set of smoke cases with known answers.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

from mlops_workbench.errors import InputError
from mlops_workbench.serving.client import Reply, Unreachable

FLOWERS = {
    "setosa": [[5.1, 3.5, 1.4, 0.2], [4.9, 3.0, 1.4, 0.2], [5.0, 3.6, 1.4, 0.2]],
    "versicolor": [[6.4, 3.2, 4.5, 1.5], [5.5, 2.3, 4.0, 1.3], [5.7, 2.8, 4.5, 1.3]],
    "virginica": [[6.3, 3.3, 6.0, 2.5], [7.1, 3.0, 5.9, 2.1], [6.5, 3.0, 5.8, 2.2]],
}
TRUE = {tuple(row): name for name, rows in FLOWERS.items() for row in rows}
GREEN_URL, BLUE_URL, ROUTER_URL = "http://127.0.0.1:18502", "http://127.0.0.1:18501", "http://127.0.0.1:18500"


class SimRouter:
    """The router's admin calls in memory; ``set_weights`` lists every weight set, in order."""

    def __init__(self, weight: float = 0.0) -> None:
        self.url = ROUTER_URL
        self.current = weight
        self.set_weights: list[float] = []

    def set_weight(self, canary: float) -> float:
        value = float(canary)
        if not 0 <= value <= 100:
            raise InputError(f"weight {canary!r} is not a percentage between 0 and 100: give 0 to 100")
        self.set_weights.append(value)
        self.current = value
        return value

    def weight(self) -> float:
        return self.current

    def weights(self) -> dict[str, Any]:
        return {
            "stable": 100 - self.current,
            "canary": self.current,
            "upstreams": {"stable": BLUE_URL, "canary": GREEN_URL},
        }


@dataclass
class SimServer:
    """A green environment: ``broken`` is '' (healthy), 'errors', 'wrong-class', 'down' or 'error-on-unchecked'."""

    serves: str
    """The version it serves."""
    broken: str = ""
    wrong_row: tuple[float, ...] | None = None
    sent: list[list[list[float]]] = field(default_factory=list)
    url: str = GREEN_URL

    def send(self, rows: list[list[float]], timeout: float | None = None) -> Reply:
        self.sent.append(rows)
        if self.broken == "down":
            return Reply(0, problem="ConnectError", kind="refused")
        if self.broken == "errors" or (self.broken == "error-on-unchecked" and tuple(rows[0]) == self.wrong_row):
            return Reply(500, json.dumps({"detail": "model failed to load its artifact"}))
        predictions = [TRUE.get(tuple(r), "setosa") for r in rows]
        if self.broken == "wrong-class" and tuple(rows[0]) == self.wrong_row:
            predictions[0] = "virginica" if predictions[0] != "virginica" else "versicolor"
        return Reply(200, json.dumps({"predictions": predictions, "version": self.serves}))

    def version(self, timeout: float | None = None) -> dict[str, Any]:
        if self.broken == "down":
            raise Unreachable(f"{self.url} does not answer (ConnectError)", ConnectionError("refused"))
        return {"name": "iris", "version": self.serves, "alias": None, "model_uri": f"models:/iris/{self.serves}"}


def smoke_cases(rng: random.Random) -> list[dict[str, Any]]:
    """One flower of each class with its expected class, in a seeded order, and one case with no expectation."""
    cases: list[dict[str, Any]] = [{"rows": [rng.choice(rows)], "expect": name} for name, rows in FLOWERS.items()]
    rng.shuffle(cases)
    return [*cases, {"rows": [rng.choice(FLOWERS["setosa"])]}]


BROKEN = ("errors", "wrong-class", "down", "error-on-unchecked")


def green(rng: random.Random, broken: str, cases: list[dict[str, Any]]) -> SimServer:
    """A green of seeded version; a broken one fails only the smoke case its breakage picks (the last expecting
    case for 'wrong-class', the case with no expectation for 'error-on-unchecked')."""
    version = str(rng.randint(2, 40))
    if broken == "wrong-class":
        return SimServer(version, broken, tuple([c for c in cases if c.get("expect")][-1]["rows"][0]))
    if broken == "error-on-unchecked":
        return SimServer(version, broken, tuple(next(c for c in cases if not c.get("expect"))["rows"][0]))
    return SimServer(version, broken)
