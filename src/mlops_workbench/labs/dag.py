"""The lab DAG (``depends_on`` in each ``lab.yaml``): which labs share a state folder, and the order in which
``workbench pipeline`` runs them.

A lab names in ``depends_on`` only the labs whose state it reads. Labs linked that way share one state folder
and run one after the other; the others have nothing in common and run side by side. Both decisions are pure,
so they are tested without running a lab.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Literal

from mlops_workbench.labs.format import Lab

Outcome = Literal["passed", "failed", "skipped"]
"""How a lab's stage ended: ``skipped`` when a lab it depends on failed (or was skipped), so it never ran."""


def state_groups(labs: list[Lab]) -> dict[str, str]:
    """Lab id -> the id of its state group: the first lab, by id, of the labs that ``depends_on`` links to it."""
    parent = {lab.id: lab.id for lab in labs}

    def root(lab_id: str) -> str:
        while parent[lab_id] != lab_id:
            lab_id = parent[lab_id]
        return lab_id

    for lab in labs:
        for dep in lab.spec.depends_on:
            if dep in parent:
                first, second = sorted((root(lab.id), root(dep)))
                parent[second] = first
    return {lab.id: root(lab.id) for lab in labs}


def schedule(labs: list[Lab], run: Callable[[Lab], bool], jobs: int) -> dict[str, Outcome]:
    """Call ``run(lab)`` for every lab, up to ``jobs`` at once, each once every lab it depends on passed.

    Ready labs start longest first (``run_seconds`` in ``lab.yaml``), equal ones in id order. ``run`` returns
    whether the lab passed; a lab whose dependency failed is skipped, and labs that do not depend on the failure
    still run. Returns each lab's outcome, by id.
    """
    jobs = max(1, jobs)
    by_id = {lab.id: lab for lab in sorted(labs, key=lambda lab: (-lab.spec.run_seconds, lab.id))}
    deps = {lab_id: [d for d in lab.spec.depends_on if d in by_id] for lab_id, lab in by_id.items()}
    outcome: dict[str, Outcome] = {}
    running: dict[Future[bool], str] = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        while True:
            for lab_id, lab in by_id.items():
                if lab_id in outcome or lab_id in running.values():
                    continue
                if any(outcome.get(d) in ("failed", "skipped") for d in deps[lab_id]):
                    outcome[lab_id] = "skipped"
                elif len(running) < jobs and all(outcome.get(d) == "passed" for d in deps[lab_id]):
                    running[pool.submit(run, lab)] = lab_id
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                outcome[running.pop(future)] = "passed" if future.result() else "failed"
    # a dependency cycle leaves labs that never became ready
    return {lab_id: outcome.get(lab_id, "skipped") for lab_id in by_id}
