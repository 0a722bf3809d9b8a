"""The registry of drills, in teaching order."""

from __future__ import annotations

import importlib
import random

from mlops_workbench.drills.base import Drill, DrillError

MODULES = {
    "bad-model": "bad_model",
    "stuck-canary": "stuck_canary",
    "irreproducible": "irreproducible",
    "schema-break": "schema_break",
    "signature-mismatch": "signature_mismatch",
    "metrics-down": "metrics_down",
    "triple-v": "triple_v",
}


def names(shuffle: bool = False, seed: int | None = None) -> list[str]:
    """Every drill name (in teaching order, or shuffled for practice)."""
    out = list(MODULES)
    if shuffle:
        random.Random(seed).shuffle(out)
    return out


def get(name: str) -> Drill:
    """The drill called ``name``; :class:`DrillError` listing the known ones otherwise."""
    if name not in MODULES:
        raise DrillError(f"There is no drill '{name}'. Known drills: {', '.join(MODULES)} (`workbench drill list`).")
    drill = importlib.import_module(f"mlops_workbench.drills.{MODULES[name]}").DRILL
    assert drill.name == name, f"{MODULES[name]}.DRILL is named {drill.name!r}, registered as {name!r}"
    return drill
