"""The registry of drills, in teaching order."""

from __future__ import annotations

import importlib
import random

from mlops_workbench.drills import tools
from mlops_workbench.drills.base import Drill, DrillError

MODULES = {
    "bad-model": "bad_model",
    "stuck-canary": "stuck_canary",
    "irreproducible": "irreproducible",
    "schema-break": "schema_break",
    "signature-mismatch": "signature_mismatch",
    "metrics-down": "metrics_down",
    "triple-v": "triple_v",
    "stalled-canary": "stalled_canary",
    "unlocked-data": "unlocked_data",
    "unapproved-release": "unapproved_release",
}


def names(shuffle: bool = False, seed: int | None = None) -> list[str]:
    """Every drill name (in teaching order, or shuffled for practice)."""
    out = list(MODULES)
    if shuffle:
        random.Random(seed).shuffle(out)
    return out


def resolve(name: str) -> tuple[str, bool]:
    """The drill a name or a neutral handle (``incident-3``) names, and whether it was named by handle (then its
    name stays hidden); :class:`DrillError` listing the known ones otherwise."""
    if name in MODULES:
        return name, False
    by_handle = {get(n).spec.handle: n for n in MODULES}
    if name in by_handle:
        return by_handle[name], True
    return get(name).name, False  # raises, naming the known drills


def get(name: str) -> Drill:
    """The drill called ``name``; :class:`DrillError` listing the known ones otherwise."""
    if name not in MODULES:
        raise DrillError(f"There is no drill '{name}'. Known drills: {', '.join(MODULES)} (`workbench drill list`).")
    drill: Drill = importlib.import_module(f"mlops_workbench.drills.{MODULES[name]}").DRILL
    assert drill.name == name, f"{MODULES[name]}.DRILL is named {drill.name!r}, registered as {name!r}"
    return drill


def runnable(probe: tools.Installed = tools.installed) -> tuple[list[str], dict[str, str]]:
    """The drills whose tools are installed here, and those left out with the reason and the fix."""
    return tools.runnable({name: get(name).spec.needs for name in names()}, probe)


def pick(seed: int | None = None, probe: tools.Installed = tools.installed) -> tuple[str, dict[str, str]]:
    """A random drill this machine can run, and the drills left out (name -> reason)."""
    ok, left_out = runnable(probe)
    if not ok:
        raise DrillError("No drill can run here: " + "; ".join(f"{n} {why}" for n, why in left_out.items()))
    return random.Random(seed).choice(ok), left_out
