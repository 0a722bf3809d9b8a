"""``workbench labs release --student DIR``: a learner tree a teacher can hand out.

The tree keeps the project's layout, so ``Lab.find``, ``check()`` and ``workbench grade`` work in it unchanged:
``labs/NN-slug/lab.ipynb`` is the *learner* notebook (its metadata names the lab, which
:func:`mlops_workbench.labs.release.learner_notebook` takes as it is), ``checks.py`` holds the public checks only,
and ``notebooks/`` the same learner notebooks. Beside them: the package, ``deploy/`` (lab 05's manifests and
schemas), ``pyproject.toml``, ``requirements.lock``, ``params.yaml`` and a Makefile with ``setup`` and ``lab``.
No reference solution and no hidden check is written; :func:`audit` proves it on the written tree.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from mlops_workbench.labs.format import BEGIN, END, Lab, LabFormatError
from mlops_workbench.labs.release import is_released, learner_notebook, render

MARKER = "STUDENT_RELEASE.json"
"""At the root of a student tree: what was released. ``workbench grade --checks-from`` refuses such a tree."""
COPIED_FILES = ("pyproject.toml", "requirements.lock", "params.yaml", "environment.yml", ".gitignore")
COPIED_DIRS = ("src/mlops_workbench", "deploy")
LAB_FILES = ("lab.ipynb", "lab.yaml", "checks.py")  # all a student lab folder holds: hidden helpers stay behind
SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "node_modules", ".ipynb_checkpoints")
DROPPED_TARGETS = {
    "demo",
    "test",
    "test-suite",
    "test-serial",
    "test-fast",
    "lint",
    "bench",
}  # they need the reference solutions, tests/, benchmarks/ or dev tools
RULE = re.compile(r"^([A-Za-z][\w.-]*)\s*:(?!=)")


@dataclass(frozen=True)
class StudentRelease:
    root: Path
    labs: list[str]
    hidden_removed: dict[str, list[str]]


def _is_check_decorator(node: ast.expr) -> bool:
    func = node.func if isinstance(node, ast.Call) else None
    return (isinstance(func, ast.Name) and func.id == "check") or (
        isinstance(func, ast.Attribute) and func.attr == "check"
    )


def _declared(node: ast.stmt, path: Path) -> tuple[str, bool] | None:
    """``(id, hidden)`` when ``node`` is a function declared with ``@check(...)``, else None."""
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return None
    for deco in node.decorator_list:
        if isinstance(deco, ast.Call) and _is_check_decorator(deco):
            hidden = next((k.value for k in deco.keywords if k.arg == "hidden"), ast.Constant(False))
            first = deco.args[0] if deco.args else None
            if not (
                isinstance(hidden, ast.Constant)
                and isinstance(hidden.value, bool)
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
            ):
                raise LabFormatError(
                    f"{path}:{deco.lineno}: write the check's id and hidden= as literals "
                    '(@check("id", hidden=True)) so a student release can tell hidden checks apart.'
                )
            return first.value, hidden.value
    return None


def _bound(node: ast.stmt) -> set[str]:
    """Top-level names a statement defines (functions, classes, plain assignments); empty for anything else."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
    names = {t.id for t in targets if isinstance(t, ast.Name)}
    return names if names and len(names) == len(targets) else set()


def _used(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _alias_name(alias: ast.alias) -> str:
    return alias.asname or alias.name.split(".")[0]


def public_checks_source(path: Path) -> tuple[str, list[str]]:
    """``checks.py`` without its hidden checks, nor the helpers, constants and imports only they use.

    Returns the new text and the ids of the hidden checks removed. Comments right above a removed
    definition go with it. Checks must be declared with ``@check`` on top-level functions.
    """
    text = Path(path).read_text()
    tree = ast.parse(text, filename=str(path))
    decorators = {id(d) for n in tree.body for d in getattr(n, "decorator_list", [])}
    stray = [
        n for n in ast.walk(tree) if isinstance(n, ast.Call) and _is_check_decorator(n) and id(n) not in decorators
    ]
    if stray:
        raise LabFormatError(
            f"{path}:{stray[0].lineno}: check(...) is called outside a decorator; declare every "
            "check with @check on a top-level function so a student release can drop the hidden ones."
        )
    declared = {id(n): _declared(n, path) for n in tree.body}
    hidden = [(id(n), d[0]) for n in tree.body if (d := declared[id(n)]) is not None and d[1]]
    removed = {node_id for node_id, _ in hidden}
    hidden_ids = [check_id for _, check_id in hidden]
    while True:  # drop definitions nothing kept refers to, until none is left
        kept = [n for n in tree.body if id(n) not in removed]
        dead = []
        for node in kept:
            names = _bound(node)
            if not names or declared[id(node)] or any(name.startswith("__") for name in names):
                continue
            others = set().union(*(_used(n) for n in kept if n is not node))
            if not names & others:
                dead.append(id(node))
        if not dead:
            break
        removed.update(dead)
    kept = [n for n in tree.body if id(n) not in removed]
    gone = set().union(*(_bound(n) for n in tree.body if id(n) in removed)) & set().union(*(_used(n) for n in kept))
    if gone:
        raise LabFormatError(
            f"{path}: public code uses {sorted(gone)}, defined by a hidden check; move what they "
            "share into a helper function of its own."
        )
    used = set().union(*(_used(n) for n in kept if not isinstance(n, (ast.Import, ast.ImportFrom))))
    replaced: dict[int, str] = {}
    for node in kept:
        if isinstance(node, (ast.Import, ast.ImportFrom)) and getattr(node, "module", None) != "__future__":
            aliases = [a for a in node.names if a.name == "*" or _alias_name(a) in used]
            if not aliases:
                removed.add(id(node))
            elif len(aliases) < len(node.names):
                replaced[id(node)] = ast.unparse(type(node)(**{**node.__dict__, "names": aliases}))
    lines = text.splitlines()
    drop: set[int] = set()
    for node in tree.body:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1
        end = node.end_lineno or node.lineno  # ast.parse sets end_lineno on every statement
        if id(node) in removed:
            while start > 0 and lines[start - 1].lstrip().startswith("#"):
                start -= 1  # the comment above a removed definition describes it
            drop.update(range(start, end))
        elif id(node) in replaced:
            lines[start] = replaced[id(node)]
            drop.update(range(start + 1, end))
    out = "\n".join(line for number, line in enumerate(lines) if number not in drop)
    return re.sub(r"\n{4,}", "\n\n\n", out).rstrip() + "\n", hidden_ids


def declared_checks(path: Path) -> list[tuple[str, bool]]:
    """``(id, hidden)`` of every check ``path`` declares, read from its syntax tree (nothing is imported)."""
    tree = ast.parse(Path(path).read_text(), filename=str(path))
    return [found for node in tree.body if (found := _declared(node, path))]


def student_makefile(text: str) -> str:
    """The project's Makefile without the targets a student tree cannot run (demo: reference solutions; test,
    bench: the test suite and benchmarks, not shipped)."""
    paragraphs = text.rstrip("\n").split("\n\n")
    kept = [
        p
        for p in paragraphs
        if not any((m := RULE.match(line)) and m.group(1) in DROPPED_TARGETS for line in p.splitlines())
    ]
    out = "\n\n".join(kept) + "\n"
    out = re.sub(
        r"^(\.PHONY:.*)$",
        lambda m: " ".join(w for w in m.group(1).split() if w not in DROPPED_TARGETS),
        out,
        flags=re.MULTILINE,
    )
    first, _, rest = out.partition("\n")
    if first.startswith("#"):
        first = "# A student release of mlops-workbench: `make setup`, then `make lab` (see README.md)."
    return f"{first}\n{rest}"


README = """# mlops-workbench: learner copy

Hands-on labs in CI/CD for machine-learning artifacts, handed out by your teacher. Everything runs on
this machine: MLflow, DVC, model servers and a canary router are started by the labs themselves.

## Start

```bash
make setup   # a .venv with the pinned tools (needs Python 3.11, git and make)
make lab     # JupyterLab on your own copies of the notebooks
```

`make lab` copies each notebook of `notebooks/` once into `.workbench/notebooks/`, and that copy is the one
you work in and hand in. `notebooks/` stays as released. When your teacher sends a newer release,
`make lab` leaves your copy as it is and puts the new one beside it as `NN-slug.new.ipynb`.

## While you work

- Run `check("id")` under an exercise for instant feedback. These are the public checks: your teacher
  grades with more checks, on cases you do not see, so make your code correct, not just green.
- `.venv/bin/workbench grade .workbench/notebooks/00-welcome.ipynb` runs the whole notebook headless and
  grades it with the public checks, as your teacher's grader does.
- `.venv/bin/workbench progress` (or the Progress tile in JupyterLab's launcher) shows where you stand.

## Hand in

The notebook files in `.workbench/notebooks/`, saved from JupyterLab.
"""


def _copy_tree(project: Path, dest: Path) -> None:
    for name in COPIED_DIRS:
        if (project / name).is_dir():
            shutil.copytree(project / name, dest / name, ignore=SKIPPED)
    for name in COPIED_FILES:
        if (project / name).is_file():
            shutil.copy2(project / name, dest / name)
    from mlops_workbench.ci.scaffold import SOLUTION_TEMPLATES, TEMPLATE

    templates = dest / "src" / "mlops_workbench" / "ci" / "templates" / TEMPLATE
    for rel in SOLUTION_TEMPLATES:  # lab 01's answers, kept as the full scaffold's files
        (templates / rel).unlink(missing_ok=True)
    (dest / "Makefile").write_text(student_makefile((project / "Makefile").read_text()))
    (dest / "README.md").write_text(README)


def release_student(project: Path, dest: Path, labs: list[Lab]) -> StudentRelease:
    """Write the student tree of ``labs`` to ``dest`` (missing or empty), then :func:`audit` it."""
    project, dest = Path(project).resolve(), Path(dest).resolve()
    if (project / MARKER).is_file():
        raise LabFormatError(f"{project} is itself a student release: release from the instructor checkout.")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise LabFormatError(
            f"{dest} exists and is not an empty folder: pass a new folder (a student release is "
            "written whole, never merged into an older one)."
        )
    if (
        dest == project
        or project in dest.parents
        and dest.relative_to(project).parts[0] in ("labs", "notebooks", "src")
    ):
        raise LabFormatError(
            f"{dest} is inside the project's own labs/, notebooks/ or src/: pick a folder "
            "outside them, e.g. build/student."
        )
    dest.mkdir(parents=True, exist_ok=True)
    _copy_tree(project, dest)
    hidden: dict[str, list[str]] = {}
    for lab in labs:
        text = render(learner_notebook(lab))
        folder = dest / "labs" / lab.id
        folder.mkdir(parents=True)
        (folder / "lab.ipynb").write_text(text)
        (dest / "notebooks").mkdir(exist_ok=True)
        (dest / "notebooks" / f"{lab.id}.ipynb").write_text(text)
        shutil.copy2(lab.folder / "lab.yaml", folder / "lab.yaml")
        source, hidden[lab.id] = public_checks_source(lab.folder / "checks.py")
        (folder / "checks.py").write_text(source)
        public = [cid for cid, is_hidden in declared_checks(lab.folder / "checks.py") if not is_hidden]
        if [cid for cid, _ in declared_checks(folder / "checks.py")] != public:
            raise LabFormatError(
                f"{lab.folder / 'checks.py'}: the student copy lost a public check; keep the "
                "public checks free of names defined only for hidden ones."
            )
    counts = {lab_id: len(ids) for lab_id, ids in hidden.items()}  # counts only: even the ids stay with the teacher
    (dest / MARKER).write_text(
        json.dumps({"labs": [lab.id for lab in labs], "hidden_checks_removed": counts}, indent=2) + "\n"
    )
    problems = audit(dest)
    if problems:
        raise LabFormatError(
            f"The student release in {dest} is not clean, so do not hand it out: " + "; ".join(problems[:10])
        )
    return StudentRelease(dest, [lab.id for lab in labs], hidden)


def _solution_lines(path: Path) -> list[int]:
    """Line numbers (1-based) of solution markers in a file; notebooks are read cell by cell."""
    text = path.read_text(errors="replace")
    if path.suffix == ".ipynb":
        try:
            cells = json.loads(text).get("cells", [])
        except (json.JSONDecodeError, AttributeError):
            return [1] if BEGIN in text else []
        sources = [
            "".join(c.get("source", "")) if isinstance(c.get("source"), list) else str(c.get("source", ""))
            for c in cells
            if isinstance(c, dict)
        ]
        text = "\n".join(sources)
    return [n for n, line in enumerate(text.splitlines(), 1) if line.strip().startswith((BEGIN, END))]


def audit(root: Path) -> list[str]:
    """What in a student tree must not be handed out: solution regions, hidden checks, instructor sources."""
    root = Path(root)
    problems = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root)
        if path.suffix in (".py", ".ipynb", ".md", ".yaml", ".yml", ".txt", ".j2", ".json") and _solution_lines(path):
            problems.append(f"{rel} holds a '{BEGIN}' region")
        if path.name == "checks.py":
            hidden = [cid for cid, is_hidden in declared_checks(path) if is_hidden]
            if hidden:
                problems.append(f"{rel} declares hidden checks {hidden}")
        if len(rel.parts) == 3 and rel.parts[0] == "labs" and rel.name not in LAB_FILES:
            problems.append(f"{rel} is an instructor file (a student lab folder holds only {', '.join(LAB_FILES)})")
        if path.name == "lab.ipynb":
            from mlops_workbench.labs.format import read_notebook

            if not is_released(read_notebook(path)):
                problems.append(f"{rel} is an instructor source, not a learner notebook")
    return problems


def checks_tree(root: Path) -> Path:
    """``root`` as the project to grade with (``workbench grade --checks-from``): an instructor checkout."""
    root = Path(root).expanduser().resolve()
    if not (root / "labs").is_dir() or not (root / "params.yaml").is_file():
        raise LabFormatError(
            f"{root} holds no labs/ and params.yaml: pass the root of your instructor checkout "
            "(the folder with labs/NN-slug/checks.py)."
        )
    if (root / MARKER).is_file():
        raise LabFormatError(
            f"{root} is a student release ({MARKER}): it has no hidden checks. Pass your instructor checkout instead."
        )
    return root
