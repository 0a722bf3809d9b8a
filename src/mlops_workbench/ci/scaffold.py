"""Project scaffolds: ``workbench scaffold ci-project DIR`` writes a small, real Iris model project.

The project (template files in ``mlops_workbench/ci/templates/ci_project/``) has
model code that trains, saves and predicts, unit tests, ``requirements.txt``
pinned to the versions installed here, a Dockerfile serving the model, a
GitHub Actions workflow, and a deploy workflow whose production job waits for the
reviewers of the GitHub environment ``production`` (:data:`DEPLOY_WORKFLOW`).
``learner=True`` leaves out what lab 01 asks the learner to write: the data and
prediction tests and the workflow's trigger and steps (and the deploy workflow,
which repeats those steps). :func:`break_model` plants a known bug so a learner
can watch the tests (and the workflow run) turn red.

:func:`scaffold_retrain_workflow` writes lab 07's workflow into a lab workspace (git + DVC, as lab 02 makes it):
on a push that changes a ``.dvc`` file or ``dvc.lock`` it installs the pinned dependencies, runs ``dvc pull`` and
``dvc repro`` and uploads the metrics (template ``templates/dvc_retrain/``).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import os
import shutil
import sys
import tempfile
from collections.abc import Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from importlib.resources.abc import Traversable
from pathlib import Path

from mlops_workbench import tools
from mlops_workbench.errors import InputError

TEMPLATE = "ci_project"
RETRAIN_TEMPLATE = "dvc_retrain"
RETRAIN_WORKFLOW = ".github/workflows/retrain.yml"
LEARNER_FILES = ("tests/test_data.py", "tests/test_predict.py")
WORKFLOW = ".github/workflows/ci.yml"
DEPLOY_WORKFLOW = ".github/workflows/deploy.yml"
"""The production deploy: a job behind the GitHub environment ``production`` (reviewers are repository settings)."""
RENAMES = {"_github": ".github", "_dockerignore": ".dockerignore", "_gitignore": ".gitignore"}
PINNED = ("numpy", "scikit-learn", "joblib", "fastapi", "pydantic", "uvicorn", "httpx", "pytest")
MODEL_FILE = "iris_model/model.py"
#: Template files that replace a project file in the learner variant: a workflow skeleton, a Dockerfile to fix.
LEARNER_VARIANTS = {".github/workflows/ci.learner.yml": WORKFLOW, "Dockerfile.learner": "Dockerfile"}

#: The template files that answer lab 01 (its tests, workflow and fixed Dockerfile, and the deploy workflow, which
#: repeats the workflow's steps before its production job), as named in the template folder. A student release
#: (``workbench labs release --student``) leaves them out; only the full scaffold uses them.
SOLUTION_TEMPLATES = (
    "tests/test_data.py",
    "tests/test_predict.py",
    "_github/workflows/ci.yml",
    "_github/workflows/deploy.yml",
    "Dockerfile",
)

#: Known bugs for :func:`break_model`: (what it breaks, original line, broken line) in iris_model/model.py.
BUGS: dict[str, tuple[str, str, str]] = {
    "train-shuffled": (
        "the model is trained on shuffled labels (accuracy near chance)",
        "    model.fit(X, y)",
        "    model.fit(X, np.random.default_rng(seed).permutation(y))",
    ),
    "predict-constant": (
        "predict answers 'setosa' for every flower",
        "    return [str(label) for label in model.predict(X)]",
        '    return ["setosa" for _ in X]',
    ),
    "data-drops-feature": (
        "load_data loses the petal width column",
        "    X = iris.data.astype(float)",
        "    X = iris.data[:, :3].astype(float)",
    ),
    "data-wrong-labels": (
        "load_data returns class numbers instead of species names",
        "    y = np.asarray(iris.target_names)[iris.target]",
        "    y = iris.target",
    ),
}


class ScaffoldError(InputError):
    """The scaffold cannot be written or changed as asked."""


def _files(node: Traversable | None = None, prefix: str = "", template: str = TEMPLATE) -> Iterator[tuple[str, bytes]]:
    """(relative path in the project, content) for every file of ``template``."""
    node = node or importlib.resources.files("mlops_workbench") / "ci" / "templates" / template
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        if child.name == "__pycache__" or child.name.endswith(".pyc"):
            continue
        name = RENAMES.get(child.name, child.name)
        if child.is_dir():
            yield from _files(child, f"{prefix}{name}/", template)
        else:
            yield f"{prefix}{name}", child.read_bytes()


def requirements_text() -> str:
    """requirements.txt pinned to the versions installed in this environment."""
    template = dict(_files())["requirements.txt.tmpl"].decode()
    for name in PINNED:
        template = template.replace("{" + name + "}", importlib.metadata.version(name))
    return template


def scaffold_ci_project(dest: Path | str, learner: bool = False, force: bool = False) -> list[Path]:
    """Write the Iris CI project into ``dest``; returns the files written.

    ``learner`` omits the learner-written parts: ``tests/test_data.py``,
    ``tests/test_predict.py`` and the workflow's trigger and steps (a skeleton
    with TODOs instead), and ships a Dockerfile that hadolint complains about.
    ``force`` overwrites files of an earlier scaffold.
    """
    dest = Path(dest)
    if not learner:
        present = {rel for rel, _ in _files()}
        missing = [
            rel for rel in SOLUTION_TEMPLATES if "/".join(RENAMES.get(p, p) for p in rel.split("/")) not in present
        ]
        if missing:
            raise ScaffoldError(
                f"this installation has no full CI project ({', '.join(missing)} are left out of a "
                "student release: they are lab 01's answers); scaffold the learner variant with "
                "learner=True (--learner)."
            )
    if dest.exists() and any(dest.iterdir()) and not force:
        raise ScaffoldError(f"{dest} is not empty: choose a new folder, or pass force=True (--force) to overwrite.")
    written: list[Path] = []
    for rel, content in _files():
        if rel == "requirements.txt.tmpl":
            rel, content = "requirements.txt", requirements_text().encode()
        elif rel in LEARNER_VARIANTS:
            if not learner:
                continue
            rel = LEARNER_VARIANTS[rel]
        elif learner and (rel in LEARNER_FILES or rel in LEARNER_VARIANTS.values() or rel == DEPLOY_WORKFLOW):
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        written.append(target)
    return written


def pinned_closure(root: str = "mlops-workbench") -> list[str]:
    """``name==version`` of ``root`` and of every installed distribution it needs, transitively, with the markers
    and extras of each requirement evaluated here; a requirement that is not installed (an extra nobody asked for,
    another platform's package) is left out. Installed with ``pip install --no-deps``, the list rebuilds exactly
    the environment that runs here."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins: dict[str, str] = {}
    todo: list[tuple[str, frozenset[str]]] = [(root, frozenset())]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        key = (canonicalize_name(name), extras)
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        pins[key[0]] = f"{dist.metadata['Name']}=={dist.version}"
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in ("", *extras)):
                todo.append((req.name, frozenset(req.extras)))
    return sorted(pins.values(), key=str.lower)


def scaffold_retrain_workflow(dest: Path | str, force: bool = False) -> list[Path]:
    """Write lab 07's retrain workflow (``.github/workflows/retrain.yml``) and a ``requirements.txt`` pinned to this
    environment (:func:`pinned_closure`) into the workspace ``dest``; returns the files written (not committed).
    ``force`` overwrites files of an earlier call."""
    dest = Path(dest)
    files = dict(_files(template=RETRAIN_TEMPLATE))
    header = (
        "# Every package the workspace pipeline imports, pinned to the environment it was written from "
        "(pip install --no-deps -r requirements.txt).\n"
    )
    files["requirements.txt"] = (header + "\n".join(pinned_closure()) + "\n").encode()
    present = [rel for rel in files if (dest / rel).exists()]
    if present and not force:
        raise ScaffoldError(f"{dest} already has {', '.join(present)}: pass force=True to overwrite.")
    written = []
    for rel, content in files.items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_bytes(content)
        written.append(dest / rel)
    return written


def template_text(rel: str) -> str:
    """The full (solution) text of one scaffold file, e.g. ``tests/test_data.py`` or ``.github/workflows/ci.yml``."""
    files = dict(_files())
    if rel not in files:
        raise ScaffoldError(f"the ci-project scaffold has no file {rel}; it has: {', '.join(sorted(files))}.")
    return files[rel].decode()


def break_model(project: Path | str, bug: str = "train-shuffled") -> str:
    """Plant the known bug ``bug`` (see :data:`BUGS`) in the project's model code; returns what it breaks."""
    if bug not in BUGS:
        raise ScaffoldError(f"unknown bug {bug!r}: choose one of {', '.join(BUGS)}.")
    what, good, bad = BUGS[bug]
    path = Path(project) / MODEL_FILE
    text = path.read_text()
    if good not in text:
        raise ScaffoldError(
            f"{path} does not contain the line to break ({good.strip()!r}): restore it with restore_model()."
        )
    path.write_text(text.replace(good, bad, 1))
    return what


def restore_model(project: Path | str) -> Path:
    """Put back the original model code (undoes :func:`break_model`)."""
    path = Path(project) / MODEL_FILE
    path.write_text(template_text(MODEL_FILE))
    return path


#: Environment for a project's own pytest runs. This venv carries the workbench's test plugins (xdist, nbval,
#: hypothesis, hydra, ...), which a project's CI runner would not have installed; loading them tripled the
#: time of every run (10 s instead of 3.5 s). A plugin the project really uses still loads with ``-p NAME``.
PROJECT_PYTEST_ENV = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}


def run_tests(project: Path | str, *paths: str, timeout: float = 300, env: dict[str, str] | None = None) -> tools.Ran:
    """``python -m pytest [paths]`` in ``project`` with this Python, output captured.

    ``addopts`` is emptied: a project inside this checkout would otherwise inherit the workbench's own
    options (two xdist workers, durations) from its pyproject.toml. Plugins are not autoloaded
    (:data:`PROJECT_PYTEST_ENV`).
    """
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", "-q", "--color=no", *paths]
    return tools.call(
        cmd, cwd=project, timeout=timeout, env={**(os.environ if env is None else env), **PROJECT_PYTEST_ENV}
    )


CACHE_DIRS = frozenset({"__pycache__", ".pytest_cache", ".git"})
"""Folders a project's own runs write or that hold no code of it: left out of :func:`project_digest`."""


def project_digest(project: Path | str) -> str:
    """A sha256 over every file of ``project`` (its relative path and its bytes), :data:`CACHE_DIRS` left out.

    Equal digests mean the same code, tests and data, so a grading may run the project's tests once per digest.
    """
    root = Path(project)
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and not CACHE_DIRS.intersection(rel.parts):
            digest.update(f"{rel.as_posix()}\0{path.stat().st_size}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def tests_catch(project: Path | str, bug: str, *paths: str, timeout: float = 300) -> bool:
    """Whether the project's tests ``paths`` fail once ``bug`` is planted (in a scratch copy; the project is untouched)."""
    return bugs_caught(project, (bug,), *paths, timeout=timeout)[bug]


def bugs_caught(project: Path | str, bugs: Collection[str], *paths: str, timeout: float = 300) -> dict[str, bool]:
    """:func:`tests_catch` for each of ``bugs``, the pytest runs side by side: ``{bug: caught}``."""
    with tempfile.TemporaryDirectory(prefix="workbench-mutant-") as tmp:
        copies = {}
        for bug in bugs:
            copy = copies[bug] = Path(tmp) / bug
            shutil.copytree(
                project, copy, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache", "models", ".git")
            )
            restore_model(copy)
            break_model(copy, bug)
        with ThreadPoolExecutor(max_workers=max(1, len(bugs))) as pool:
            runs = {bug: pool.submit(run_tests, copy, *paths, timeout=timeout) for bug, copy in copies.items()}
            return {bug: run.result().returncode != 0 for bug, run in runs.items()}
