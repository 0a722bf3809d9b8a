"""The tools a drill needs beyond the Python environment (a Prometheus binary, for one), and which drills a machine
can run. The decisions are pure functions of an ``installed(tool)`` predicate, so they are tested with fakes."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from mlops_workbench import tools

Installed = Callable[[str], bool]


def installed(tool: str) -> bool:
    """Whether ``tool`` can run here (the real probe)."""
    if tool == "prometheus":
        from mlops_workbench.rollout import prometheus

        return prometheus.available()
    raise ValueError(
        f"unknown tool {tool!r}: add its probe to drills.tools.installed and its fix to mlops_workbench.tools.INSTALL"
    )


def missing(needs: Iterable[str], probe: Installed = installed) -> list[str]:
    """The tools of ``needs`` that are not installed, in the order given."""
    return [tool for tool in needs if not probe(tool)]


def reason(needed: list[str]) -> str:
    """Why a drill needing the tools ``needed`` cannot run, with the fix (from :data:`mlops_workbench.tools.INSTALL`)."""
    return "; ".join(f"needs {tool}: {tools.install_hint(tool)}" for tool in needed)


def runnable(needs: Mapping[str, Iterable[str]], probe: Installed = installed) -> tuple[list[str], dict[str, str]]:
    """Split drills (name -> tools it needs, in order) into those this machine can run and those left out, each
    with the reason and the fix."""
    ok: list[str] = []
    left_out: dict[str, str] = {}
    for name, needed in needs.items():
        absent = missing(needed, probe)
        if absent:
            left_out[name] = reason(absent)
        else:
            ok.append(name)
    return ok, left_out
