"""What a model server served, read back from its own log after it was stopped.

``workbench serve`` writes ``serving <uri> (version N) on <url>`` when it starts and
``reloaded <uri>: version A -> B`` when it follows its alias; ``procs`` keeps that log
under ``<home>/logs/<name>.log`` after the process ends. A lab that grades serving can
therefore grade a learner who tidied up (stopped the server) from this record.
"""

from __future__ import annotations

import re
from typing import Any

from mlops_workbench.workbench import Workbench

_STARTED = re.compile(r"^serving (?P<uri>\S+) \(version (?P<version>[^)]*)\) on (?P<url>\S+)")
_RELOADED = re.compile(r"reloaded (?P<uri>\S+): version (?P<before>\S+) -> (?P<version>\S+)")
_ALIAS = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>.+)$")


def last_served(wb: Workbench, name: str) -> dict[str, Any] | None:
    """The ``/version`` answer the server ``name`` last gave (from its log), or None if it never served."""
    log = wb.layout.log(name)
    if not log.is_file():
        return None
    info: dict[str, Any] | None = None
    for line in log.read_text(errors="replace").splitlines():
        started = _STARTED.search(line)
        if started:
            alias = _ALIAS.match(started["uri"])
            info = {
                "model_uri": started["uri"],
                "version": started["version"],
                "url": started["url"],
                "name": alias["name"] if alias else None,
                "alias": alias["alias"] if alias else None,
                "recorded": True,
            }
            continue
        reloaded = _RELOADED.search(line)
        if reloaded and info is not None and reloaded["uri"] == info["model_uri"]:
            info["version"] = reloaded["version"]
    return info
