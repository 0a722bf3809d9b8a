"""Timed incident drills for interview practice, graded by the state the learner leaves behind.

Each drill module holds one :class:`~mlops_workbench.drills.base.Drill`: a hidden ``setup`` breaks the
system, ``checks`` grade the resulting state (never prose), ``reference_fix`` repairs it, the
``destructive_fixes`` must fail the guard checks, ``reset`` puts everything back. ``catalog`` lists the
drills, ``session`` runs one against a clock, ``validate`` proves them all. The notebook API::

    from mlops_workbench import drills
    drills.start("bad-model"); ...; drills.record("bad-model", time_to_detect_s=..., ...); drills.check()
"""

from mlops_workbench.drills.base import Drill, DrillContext, DrillError
from mlops_workbench.drills.catalog import get, names
from mlops_workbench.drills.paths import drill_paths
from mlops_workbench.drills.session import check, current, debrief, hint, record, reset, start, status
from mlops_workbench.drills.spec import DrillReport, DrillSpec, PostMortem

__all__ = [
    "Drill", "DrillContext", "DrillError", "DrillReport", "DrillSpec", "PostMortem", "check", "current", "debrief",
    "drill_paths", "get", "hint", "names", "record", "reset", "start", "status",
]
