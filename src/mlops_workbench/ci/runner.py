"""``workbench ci run``: execute a GitHub Actions workflow's steps on this machine.

Jobs run in ``needs`` order; each ``run:`` step runs in the project folder
with the workflow, job and step ``env`` and the current venv's python first on
``PATH``. ``uses:`` steps get a local stand-in or are skipped with the reason
(:mod:`mlops_workbench.ci.actions`); steps calling ``docker`` are skipped when
no engine answers ``docker info``. A failing step stops its job; the run
fails when any step failed.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from mlops_workbench import output, tools
from mlops_workbench.ci.actions import Expressions, run_action
from mlops_workbench.ci.docker import engine
from mlops_workbench.ci.scaffold import PROJECT_PYTEST_ENV
from mlops_workbench.ci.yamldoc import YamlDoc
from mlops_workbench.errors import InputError, NotFoundError, ToolMissing, ToolTimeout

DOCKER_RX = re.compile(r"(^|[\s;&|(])docker\s+\w", re.M)
SHELLS = {
    None: ["bash", "-e", "{0}"],
    "bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail", "{0}"],
    "sh": ["sh", "-e", "{0}"],
    "python": [sys.executable, "{0}"],
}


@dataclass
class StepResult:
    """How one step ended: passed, failed, skipped (with the reason) or warning (ran, with a caveat)."""

    job: str
    index: int
    name: str
    status: str
    reason: str = ""
    duration: float = 0.0
    returncode: int | None = None
    output: str = ""


@dataclass
class RunResult:
    workflow: str
    project: str
    steps: list[StepResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.steps) and not any(s.status == "failed" for s in self.steps)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def status(self, name_or_index: str | int) -> str | None:
        for s in self.steps:
            if s.name == name_or_index or s.index == name_or_index:
                return s.status
        return None


def step_name(step: dict[str, Any], index: int) -> str:
    if step.get("name"):
        return str(step["name"])
    if step.get("uses"):
        return f"uses {step['uses']}"
    first = str(step.get("run") or "").strip().splitlines()
    return f"run {first[0][:60]}" if first else f"step {index + 1}"


def job_order(jobs: dict[str, Any]) -> list[str]:
    """Jobs sorted so every job comes after the jobs it ``needs``."""
    order: list[str] = []

    def visit(job_id: str, trail: tuple[str, ...]) -> None:
        if job_id in order:
            return
        if job_id in trail:
            raise InputError(
                f"jobs {' -> '.join(trail + (job_id,))} need each other in a cycle: break the cycle in `needs:`."
            )
        needs = (jobs.get(job_id) or {}).get("needs") or []
        for dep in [needs] if isinstance(needs, str) else needs:
            if dep not in jobs:
                raise InputError(f"job '{job_id}' needs unknown job '{dep}': fix `needs:` (jobs: {', '.join(jobs)}).")
            visit(dep, trail + (job_id,))
        order.append(job_id)

    for job_id in jobs:
        visit(job_id, ())
    return order


def _first_matrix(job: dict[str, Any]) -> dict[str, Any]:
    matrix = ((job.get("strategy") or {}).get("matrix") or {}) if isinstance(job.get("strategy"), dict) else {}
    if not isinstance(matrix, dict):
        return {}
    return {k: (v[0] if isinstance(v, list) and v else v) for k, v in matrix.items() if k not in ("include", "exclude")}


def _read_kv(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if "=" in line and "<<" not in line:
                key, value = line.split("=", 1)
                out[key.strip()] = value
    return out


class Runner:
    """Runs one workflow file against one project folder."""

    def __init__(
        self, workflow: Path, project: Path, timeout: float = 600, on_step: Callable[[StepResult], None] | None = None
    ):
        self.doc = YamlDoc.read(workflow)
        if not isinstance(self.doc.data, dict) or not isinstance(self.doc.data.get("jobs"), dict):
            raise InputError(f"{workflow} has no `jobs:` mapping: run `workbench ci validate {workflow}` first.")
        self.workflow, self.project = Path(workflow), Path(project).resolve()
        if not self.project.is_dir():
            raise NotFoundError(f"project folder {self.project} does not exist: pass --project DIR.")
        self.timeout, self.on_step = timeout, on_step or (lambda result: None)
        self.tmp = Path(tempfile.mkdtemp(prefix="workbench-ci-"))
        self.result = RunResult(str(workflow), str(self.project))

    def base_env(self) -> dict[str, str]:
        venv_bin = str(Path(sys.executable).parent)
        env = dict(os.environ)
        env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
        if (Path(sys.executable).parent.parent / "pyvenv.cfg").is_file():
            env["VIRTUAL_ENV"] = str(Path(sys.executable).parent.parent)
        env.update(
            CI="true",
            GITHUB_WORKSPACE=str(self.project),
            RUNNER_OS="Linux",
            RUNNER_TEMP=str(self.tmp),
            PIP_DISABLE_PIP_VERSION_CHECK="1",
            PYTHONUNBUFFERED="1",
        )
        # output is captured and shown as text: no colour codes (a Jupyter kernel sets FORCE_COLOR=1)
        for name in ("FORCE_COLOR", "CLICOLOR_FORCE", "PY_COLORS"):
            env.pop(name, None)
        env.update(NO_COLOR="1", PY_COLORS="0")
        env.update(PROJECT_PYTEST_ENV)  # a runner has only the plugins the workflow installs, not the workbench's
        for name in ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH", "GITHUB_STEP_SUMMARY"):
            env[name] = str(self.tmp / name.lower())
        return env

    def record(self, result: StepResult) -> StepResult:
        self.result.steps.append(result)
        self.on_step(result)
        return result

    def run(self) -> RunResult:
        try:
            return self._run()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _run(self) -> RunResult:
        jobs = self.doc.data["jobs"]
        failed: set[str] = set()
        for job_id in job_order(jobs):
            job = jobs[job_id] or {}
            needs = job.get("needs") or []
            blocked = [d for d in ([needs] if isinstance(needs, str) else needs) if d in failed]
            if blocked:
                failed.add(job_id)
                self.record(
                    StepResult(job_id, -1, f"job {job_id}", "skipped", f"needs {', '.join(blocked)}, which failed")
                )
                continue
            if not self.run_job(job_id, job):
                failed.add(job_id)
        return self.result

    def run_job(self, job_id: str, job: dict[str, Any]) -> bool:
        data = self.doc.data
        env = self.base_env()
        outputs: dict[str, dict[str, Any]] = {}
        contexts: dict[str, Any] = {
            "env": {},
            "matrix": _first_matrix(job),
            "steps": outputs,
            "runner": {"os": "Linux", "temp": str(self.tmp)},
            "github": {
                "workspace": str(self.project),
                "event_name": "push",
                "ref_name": "main",
                "ref": "refs/heads/main",
                "repository": self.project.name,
                "sha": "",
                "actor": "local",
            },
            "inputs": {},
            "vars": {},
        }
        expr = Expressions(contexts)
        for layer in (data.get("env") or {}, job.get("env") or {}):
            rendered = {str(k): str(expr.render(v)) for k, v in layer.items()}
            contexts["env"].update(rendered)
            env.update(rendered)
        defaults = {**((data.get("defaults") or {}).get("run") or {}), **((job.get("defaults") or {}).get("run") or {})}
        ok = True
        for i, step in enumerate(job.get("steps") or []):
            name = step_name(step, i)
            cond = str(step.get("if") or "")
            runs_anyway = "always()" in cond or (not ok and "failure()" in cond)
            if not ok and not runs_anyway:
                self.record(StepResult(job_id, i, name, "skipped", "an earlier step failed"))
                continue
            if ok and ("failure()" in cond or "cancelled()" in cond):
                self.record(StepResult(job_id, i, name, "skipped", f"condition `{cond}` is false: nothing failed"))
                continue
            expr.notes.clear()
            result = self.run_step(job_id, i, name, step, env, contexts, expr, defaults)
            if expr.notes:
                result.reason = "; ".join(filter(None, [result.reason, *expr.notes]))
            self.record(result)
            if result.status == "failed":
                ok = False
            if step.get("id"):
                outputs[str(step["id"])] = {"outputs": _read_kv(self.tmp / "github_output"), "outcome": result.status}
            (self.tmp / "github_output").write_text("")
            env.update(_read_kv(self.tmp / "github_env"))
            extra = (self.tmp / "github_path").read_text().split() if (self.tmp / "github_path").is_file() else []
            if extra:
                env["PATH"] = os.pathsep.join(reversed(extra)) + os.pathsep + env["PATH"]
                (self.tmp / "github_path").write_text("")
        return ok

    def run_step(
        self,
        job_id: str,
        i: int,
        name: str,
        step: dict[str, Any],
        env: dict[str, str],
        contexts: dict[str, Any],
        expr: Expressions,
        defaults: dict[str, Any],
    ) -> StepResult:
        start = time.monotonic()
        if step.get("uses"):
            outcome = run_action(str(step["uses"]), expr.render(step.get("with") or {}), self.project)
            return StepResult(job_id, i, name, outcome.status, outcome.reason, time.monotonic() - start)
        script = str(expr.render(step.get("run") or ""))
        if DOCKER_RX.search(script):
            probe = engine()
            if not probe.available:
                return StepResult(job_id, i, name, "skipped", probe.reason + "; this step runs on GitHub's runners")
        step_env = {**env, **{str(k): str(expr.render(v)) for k, v in (step.get("env") or {}).items()}}
        workdir = self.project / str(
            expr.render(step.get("working-directory") or defaults.get("working-directory") or ".")
        )
        shell = step.get("shell") or defaults.get("shell")
        if shell not in SHELLS and "{0}" not in str(shell):
            return StepResult(
                job_id, i, name, "failed", f"shell `{shell}` is not supported locally: use bash, sh or python"
            )
        script_file = self.tmp / f"step-{job_id}-{i}.sh"
        script_file.write_text(script + "\n")
        cmd = [p.replace("{0}", str(script_file)) for p in (SHELLS.get(shell) or str(shell).split())]
        limit = float(step.get("timeout-minutes") or 0) * 60 or self.timeout
        try:
            proc = tools.call(cmd, cwd=workdir, env=step_env, timeout=limit)
        except ToolTimeout:
            return StepResult(job_id, i, name, "failed", f"timed out after {limit:.0f} s", time.monotonic() - start)
        except ToolMissing as exc:
            return StepResult(job_id, i, name, "failed", f"cannot start the step: {exc}", time.monotonic() - start)
        output = ANSI_RX.sub("", proc.stdout + proc.stderr)[-6000:]  # tools that colour anyway
        status = "passed" if proc.returncode == 0 else "failed"
        reason = "" if status == "passed" else f"exit code {proc.returncode}"
        if status == "failed" and re.search(r"No module named pip", output):
            reason += "; this Python has no pip: run `python -m ensurepip` (or recreate the venv with `uv venv --seed`)"
        return StepResult(job_id, i, name, status, reason, time.monotonic() - start, proc.returncode, output)


ANSI_RX = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
STYLE = {"passed": ("green", "✔"), "failed": ("red", "✘"), "skipped": ("yellow", "↷"), "warning": ("yellow", "!")}


def print_step(result: StepResult, console: Console | None = None, show_output: bool = True) -> None:
    """One coloured line per step (green passed, red failed, yellow skipped) with its duration."""
    console = console or output.console()
    color, mark = STYLE.get(result.status, ("white", "?"))
    line = f"[{color}]{mark} {escape(result.job)} › {escape(result.name)}[/{color}] [dim]{result.duration:.1f}s[/dim]"
    if result.reason:
        line += f" [{color}]({escape(result.reason)})[/{color}]"
    console.print(line, highlight=False)
    if show_output and result.status == "failed" and result.output:
        console.print(result.output.rstrip()[-3000:], markup=False, highlight=False, style="dim")


def run_workflow(
    workflow: Path | str,
    project: Path | str | None = None,
    timeout: float = 600,
    console: Console | None = None,
    quiet: bool = False,
) -> RunResult:
    """Run ``workflow``'s steps in ``project`` (default: the folder holding ``.github/``), printing a line per step."""
    workflow = Path(workflow)
    if project is None:
        parents = workflow.resolve().parents
        project = parents[2] if len(parents) > 2 and parents[1].name == ".github" else Path.cwd()
    on_step = None if quiet else (lambda r: print_step(r, console))
    return Runner(workflow, Path(project), timeout=timeout, on_step=on_step).run()
