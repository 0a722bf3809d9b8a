"""Timed incident drills for interview practice, graded by the state the learner leaves behind.

Each drill module holds one :class:`~mlops_workbench.drills.base.Drill`: a hidden ``setup`` breaks the
system the way a seed draws (one of its ``variants``), ``checks`` grade the resulting state (never prose),
``reference_fix`` repairs it, the ``destructive_fixes`` must fail the guard checks, ``reset`` puts everything
back. ``catalog`` lists the drills, ``session`` runs one against a clock (hints and time scored by ``scoring``),
``postmortem`` checks a post-mortem against the drill's own run, ``interview`` runs several in a row,
``validate`` proves them all. The notebook API::

    from mlops_workbench import drills
    drills.start(lab.wb, "bad-model", seed=3); ...; drills.record(lab.wb, "bad-model", version=..., root_cause=..., ...)
    drills.check()

Drill modules look alike by design: each declares a :class:`DrillSpec` (the same fields, other data) and the same
five parts. What they share as logic is written once: the blunt wrong repairs in :class:`Drill`, the rollout
set-up in ``rollouts``, the rollout checks and guards in ``rollout_checks``, the workspace drills' steps in
``reproducibility``. The similar-looking blocks ``duplicates`` lists between drill modules are that declared data.
"""

from mlops_workbench.drills.base import Drill, DrillContext, DrillError
from mlops_workbench.drills.catalog import get, names
from mlops_workbench.drills.causes import Change, RootCause
from mlops_workbench.drills.interview import check  # the session's check, which also moves an interview on
from mlops_workbench.drills.session import current, debrief, hint, record, reset, start, status
from mlops_workbench.drills.spec import DrillReport, DrillSpec, PostMortem

__all__ = [
    "Change",
    "Drill",
    "DrillContext",
    "DrillError",
    "DrillReport",
    "DrillSpec",
    "PostMortem",
    "RootCause",
    "check",
    "current",
    "debrief",
    "get",
    "hint",
    "names",
    "record",
    "reset",
    "start",
    "status",
]
