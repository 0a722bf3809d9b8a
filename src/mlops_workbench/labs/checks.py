"""The check API used by every ``labs/NN-slug/checks.py``.

A check is a function taking a :class:`Context`; it passes by returning, fails
by calling :func:`fail` (or a failed ``assert`` with a message), and any other
exception is reported as an error in the check itself::

    from mlops_workbench.labs.checks import Context, check, fail

    @check("model-accuracy", points=2, cells=["train"])
    def model_accuracy(ctx: Context) -> None:
        if ctx.var("accuracy") < 0.9:
            fail("Accuracy is below 0.9: train on the full training split, then rerun the cell.")
"""

from __future__ import annotations

import importlib.util
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn

from mlops_workbench.errors import InputError, NotFoundError, WorkbenchError
from mlops_workbench.labs.learner_code import load_function
from mlops_workbench.labs.memo import Memo
from mlops_workbench.workbench import Workbench

Visibility = Literal["public", "hidden"]
_MISSING = object()


class CheckFailed(WorkbenchError, AssertionError):
    """Raised by :func:`fail`: the learner's work does not meet the check yet."""


def fail(message: str) -> NoReturn:
    """Fail the current check with a message telling the learner what to do."""
    raise CheckFailed(message)


@dataclass
class Context:
    """What a check may look at: the notebook's variables and the state on disk.

    ``variables`` are the live kernel namespace in the notebook, or the values
    the grader exported from the executed notebook. ``seed`` picks the hidden
    scenarios of this grading run (recorded in the report, replayed with
    ``workbench grade --seed N``); live ``check()`` calls in a notebook use 0.
    ``memo`` keeps work several checks of this context need, done once (:class:`~mlops_workbench.labs.memo.Memo`).
    """

    lab: str
    wb: Workbench
    variables: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    live: bool = False
    seed: int = 0
    memo: Memo = field(default_factory=Memo, repr=False, compare=False)

    def rng(self, label: str) -> random.Random:
        """A random generator for the scenario ``label``, the same for the same lab, label and seed.

        Each check draws from its own label, so adding a check never changes another check's cases.
        """
        return random.Random(f"{self.lab}:{label}:{self.seed}")

    @property
    def home(self) -> Path:
        """The state folder (``wb.home``)."""
        return self.wb.home

    @property
    def workspace(self) -> Path:
        """The lab's own folder under the state folder (``<home>/workspaces/<lab>``)."""
        return workspace_for(self.wb, self.lab)

    def var(self, name: str, default: Any = _MISSING, kind: type | tuple[type, ...] | None = None) -> Any:
        """The notebook variable ``name``; fails the check with a hint when it is not defined.

        With ``kind`` (e.g. ``int``, ``(int, float)``, ``str``, ``list``) the value must be of that plain type (bool
        is no int here): graded values are exported as plain JSON, so an object with its own ``__eq__`` arrives as
        a description of itself and fails here with a message naming its type.
        """
        if name not in self.variables:
            if default is not _MISSING:
                return default
            fail(f"The variable `{name}` is not defined: run the cell that creates it (and the cells above it).")
        value = self.variables[name]
        if kind is None:
            return value
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
            value = value.item()  # a numpy scalar in a live kernel, as the grader's export does
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            got = value.get("__type__") if isinstance(value, dict) and "__type__" in value else type(value).__name__
            wanted = " or ".join(k.__name__ for k in kinds)
            fail(f"`{name}` is a {got}, not a plain {wanted}: assign the {wanted} itself to `{name}`.")
        return value


def workspace_for(wb: Workbench, lab: str) -> Path:

    return wb.layout.workspace(lab)


@dataclass(frozen=True)
class Check:
    """One graded check, as declared with :func:`check`."""

    id: str
    func: Callable[[Context], None]
    points: float = 1.0
    visibility: Visibility = "public"
    cells: tuple[str, ...] = ()
    timeout: float = 60.0
    isolated: bool = False

    @property
    def description(self) -> str:
        return (self.func.__doc__ or self.id).strip().splitlines()[0]


CHECKS_ATTR = "__workbench_checks__"
"""The list, in a checks module's own namespace, that :func:`check` appends to (no state shared across loads)."""


def check(
    id: str,
    *,
    points: float = 1.0,
    hidden: bool = False,
    cells: list[str] | tuple[str, ...] = (),
    timeout: float = 60.0,
    isolated: bool = False,
) -> Callable[[Callable[[Context], None]], Callable[[Context], None]]:
    """Declare a check with a stable ``id`` worth ``points``.

    ``hidden`` checks are graded but never run or shown in the learner's
    notebook; ``cells`` names the notebook cells (cell ids) the check needs: if
    one of them failed or timed out, the check is blocked instead of run.
    ``isolated`` checks only read the lab's state and write nowhere but scratch
    folders of their own, so they may run side by side (see ``grade.run_checks``).

    The check joins the list of the module that calls ``check(...)`` (the lab's checks.py), not of the module
    that defined ``func``: a check made by a shared helper, or a ``functools.partial``, still belongs to its lab.
    """
    namespace = sys._getframe(1).f_globals  # the declaring module, read now: register() may be called elsewhere

    def register(func: Callable[[Context], None]) -> Callable[[Context], None]:
        declared: list[Check] = namespace.setdefault(CHECKS_ATTR, [])
        if any(c.id == id for c in declared):
            raise InputError(f"Two checks share the id '{id}'; give each check a unique id.")
        visibility: Visibility = "hidden" if hidden else "public"
        declared.append(Check(id, func, float(points), visibility, tuple(cells), timeout, isolated))
        return func

    return register


def load_checks(path: Path) -> list[Check]:
    """Import a lab's ``checks.py`` as a fresh module and return its checks in declaration order.

    Each load executes the file in a new module whose namespace collects its
    checks, so concurrent loads (``grade --jobs N``) never see each other's.
    """
    if not path.is_file():
        raise NotFoundError(f"{path} is missing: every lab folder needs a checks.py declaring its checks.")
    name = f"_workbench_checks_{path.parent.name.replace('-', '_')}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look a module up by name
    spec.loader.exec_module(module)
    return list(getattr(module, CHECKS_ATTR, []))


def learner_function(ctx: Context, file: str, name: str, cell: str) -> Callable[..., Any]:
    """Function ``name`` of the learner's ``file`` in the workspace, or a failed check naming the cell to run."""
    path = ctx.workspace / file
    text = path.read_text() if path.is_file() else ""
    if not text or "NotImplementedError" in text:
        fail(f"{file} does not hold your code yet: replace the stub in the cell '{cell}' and run it.")
    try:
        return load_function(path, name)
    except Exception as err:
        fail(f"{file} does not load ({type(err).__name__}: {err}): fix it and rerun the cell '{cell}'.")
