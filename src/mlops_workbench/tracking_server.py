"""``mlflow server`` in one process: MLflow's own command, whose uvicorn runs here instead of in a child.

``mlflow server`` checks its options, prepares the store and builds the environment of its server, then starts
uvicorn as a second Python process and waits for it. The waiting parent costs about 6 CPU-s and 3 s of a
2-core machine's time per start (it imports MLflow for nothing); the workbench starts a tracking server for
every lab and for many tests. Run as ``python -m mlops_workbench.tracking_server server <mlflow server options>``,
this module runs the same command with the same options, and when MLflow launches uvicorn it runs uvicorn's
own command line, unchanged, in this process instead.

MLflow decides everything the server does; only where uvicorn runs changes. If a future MLflow launches its
server some other way, this runs ``mlflow server`` exactly as the ``mlflow`` command would (two processes).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any


class _Finished:
    """What ``mlflow server`` gets back in place of its child process once uvicorn has returned here."""

    def __init__(self, code: int) -> None:
        self.returncode = code

    def poll(self) -> int:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        return self.returncode

    def send_signal(self, signum: int) -> None:
        """Nothing is left to signal: uvicorn has already stopped."""


def _in_process(cmd: Sequence[str], *, extra_env: dict[str, str] | None = None, **_: Any) -> _Finished:
    """Stand-in for MLflow's launcher: ``cmd`` is ``[python, -m, uvicorn, *args]``; run uvicorn's command line here."""
    import uvicorn

    if list(cmd[1:3]) != ["-m", "uvicorn"]:
        raise RuntimeError(f"mlflow server launched {cmd[:3]!r}, not uvicorn: run it with the `mlflow` command")
    os.environ.update(extra_env or {})
    try:
        uvicorn.main.main(args=list(cmd[3:]), prog_name="uvicorn", standalone_mode=True)
    except SystemExit as stop:
        return _Finished(stop.code if isinstance(stop.code, int) else 1)
    return _Finished(0)


def main(argv: Sequence[str] | None = None) -> None:
    import mlflow.server
    from mlflow.cli import cli

    if callable(getattr(mlflow.server, "_exec_cmd", None)):
        mlflow.server._exec_cmd = _in_process  # type: ignore[attr-defined]
    cli.main(args=list(sys.argv[1:] if argv is None else argv), prog_name="mlflow")


if __name__ == "__main__":
    main()
