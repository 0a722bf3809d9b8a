"""environment.yml and binder/ stay consistent with pyproject.toml and requirements.lock.

Everything is compared from the parsed files (no version is written here), so bumping
a pin in requirements.lock without updating the environment files fails these tests.
"""

from __future__ import annotations

import os
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from mlops_workbench.doctor import read_lock

ROOT = Path(__file__).resolve().parents[1]
ENV_FILES = [ROOT / "environment.yml", ROOT / "binder" / "environment.yml"]
BINDER_ONLY: set[str] = set()  # binder/environment.yml lists exactly the pins of environment.yml


def direct_dependencies(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """Canonical names of [project].dependencies plus the test extra."""
    project = tomllib.loads(pyproject.read_text())["project"]
    specs = project["dependencies"] + project.get("optional-dependencies", {}).get("test", [])
    return [canonicalize_name(Requirement(s).name) for s in specs]


def parse_env(text: str) -> tuple[list[str], list[str]]:
    """(conda dependencies, pip entries) of a conda environment file."""
    deps = yaml.safe_load(text)["dependencies"]
    conda = [d for d in deps if isinstance(d, str)]
    pip = [e for d in deps if isinstance(d, dict) for e in d.get("pip", [])]
    return conda, pip


def env_problems(
    text: str,
    *,
    extras: set[str] = frozenset(),
    lock: Path = ROOT / "requirements.lock",
    pyproject: Path = ROOT / "pyproject.toml",
) -> list[str]:
    """Every way an environment file disagrees with pyproject.toml and requirements.lock."""
    pins, direct = read_lock(lock), direct_dependencies(pyproject)
    requires = SpecifierSet(tomllib.loads(pyproject.read_text())["project"]["requires-python"])
    conda, pip = parse_env(text)
    problems = []
    pythons = [d.split("=", 1)[1].lstrip("=") for d in conda if d.split("=")[0].strip() == "python"]
    if len(pythons) != 1 or not requires.contains(pythons[0]):
        problems.append(f"python {pythons} must be one version inside requires-python {requires}")
    listed: dict[str, Requirement] = {}
    for entry in (e for e in pip if not e.startswith("-")):
        req = Requirement(entry)
        name = canonicalize_name(req.name)
        if name in listed:
            problems.append(f"{name} listed twice")
        listed[name] = req
    for name in direct:
        if name not in listed:
            problems.append(f"{name} missing (lock pins {pins.get(name)})")
        elif str(listed[name].specifier) != f"=={pins[name]}":
            problems.append(f"{name}{listed[name].specifier} differs from the lock's =={pins[name]}")
    for name, req in listed.items():
        if name not in direct and name not in extras:
            problems.append(f"{name} is not a direct dependency of pyproject.toml")
        if name in extras and not str(req.specifier).startswith("=="):
            problems.append(f"{name} must be pinned with ==")
    return problems


def test_environment_yml_matches_pyproject_and_lock():
    text = ENV_FILES[0].read_text()
    assert env_problems(text) == []
    _, pip = parse_env(text)
    assert "-e ." in pip and "-r requirements.lock" in pip  # conda runs pip from this file's folder


def test_binder_environment_matches_and_has_the_proxy():
    text = ENV_FILES[1].read_text()
    assert env_problems(text, extras=BINDER_ONLY) == []
    _, pip = parse_env(text)
    assert "jupyter-server-proxy" in {canonicalize_name(Requirement(e).name) for e in pip if not e.startswith("-")}
    assert "jupyter-server-proxy" in direct_dependencies(), "the MLflow UI at /proxy/5000/ must work locally too"
    assert not [e for e in pip if e.startswith("-")], "repo2docker builds the env before copying the repo"


def test_both_environment_files_agree():
    (conda_root, pip_root), (conda_binder, pip_binder) = (parse_env(p.read_text()) for p in ENV_FILES)
    assert conda_root == conda_binder
    named = lambda pip: {e for e in pip if not e.startswith("-")}  # noqa: E731
    assert named(pip_binder) - named(pip_root) == {e for e in pip_binder if Requirement(e).name in BINDER_ONLY}


@pytest.mark.parametrize("mutation", ["bump", "drop", "python", "stranger"])
def test_drift_is_detected(mutation, tmp_path):
    text = ENV_FILES[0].read_text()
    pins = read_lock(ROOT / "requirements.lock")
    name = direct_dependencies()[0]
    line = next(ln for ln in text.splitlines() if ln.strip().startswith(f"- {name}=="))
    if mutation == "bump":
        text = text.replace(line, line + ".post9")
    elif mutation == "drop":
        text = text.replace(line + "\n", "")
    elif mutation == "python":
        text = text.replace("- python=", "- python=2.7 #")
    else:
        text = text.replace(line, f"{line}\n      - left-pad==1.0")
    problems = env_problems(text)
    assert problems, mutation
    expected = {"bump": pins[name], "drop": f"{name} missing", "python": "python", "stranger": "left-pad"}
    assert expected[mutation] in " ".join(problems)


def test_lock_bump_without_environment_update_is_detected(tmp_path):
    lock = tmp_path / "requirements.lock"
    name = direct_dependencies()[-1]
    lines = [
        ln if canonicalize_name(ln.split("==")[0]) != name else f"{ln.split('==')[0]}==999.0"
        for ln in (ROOT / "requirements.lock").read_text().splitlines()
    ]
    lock.write_text("\n".join(lines) + "\n")
    assert any(name in p and "999.0" in p for p in env_problems(ENV_FILES[0].read_text(), lock=lock))


def test_binder_scripts_are_executable_and_do_their_job():
    post_build, start = ROOT / "binder" / "postBuild", ROOT / "binder" / "start"
    for script in (post_build, start):
        assert os.access(script, os.X_OK), f"chmod +x {script}"
        assert script.read_text().startswith("#!/bin/bash\n")
    text = post_build.read_text()
    for needle in (
        "-e .",
        "-r requirements.lock",
        "ipykernel install",
        "--name python3",
        "jupyter_server_proxy",
        "workbench doctor",
    ):
        assert needle in text, needle
    code = [ln for ln in start.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert code[-1] == 'exec "$@"'
    assert any("WORKBENCH_HOME" in ln for ln in code)


def test_binder_start_sets_the_environment_and_execs(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKBENCH_", "MLFLOW_"))}
    env.update(HOME=str(tmp_path), REPO_DIR=str(ROOT))
    out = subprocess.run(
        [str(ROOT / "binder" / "start"), "env"], capture_output=True, text=True, env=env, timeout=30, check=True
    ).stdout
    values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert values["WORKBENCH_HOME"] == f"{tmp_path}/.workbench" and (tmp_path / ".workbench").is_dir()
    assert values["WORKBENCH_PROJECT"] == str(ROOT)
    assert values["MLFLOW_SERVER_ALLOWED_HOSTS"] == "*"
