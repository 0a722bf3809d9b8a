"""What ``params.yaml`` may hold: one model per section the code reads, and the check of a whole file.

Sections ``train`` (:class:`TrainParams`), ``registry`` (:class:`RegistryParams`), ``cost`` (:class:`CostParams`)
and ``prepare`` (:class:`PrepareParams`, lab workspaces) refuse unknown keys, as the code that uses them always has; other top-level
keys are left to labs and DVC. :func:`check` runs when the file is read, so a wrong type is reported once, with
every bad key, before anything trains, promotes or writes. The models live here rather than beside the code that
uses them so that reading params never imports scikit-learn, pandas or MLflow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlops_workbench import safeyaml, settings
from mlops_workbench.errors import InputError, NotFoundError
from mlops_workbench.fielderrors import describe

ModelKind = Literal["logistic_regression", "random_forest"]


class TrainParams(BaseModel):
    """Training parameters (``params.yaml`` section ``train``); unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid")
    model: ModelKind = "logistic_regression"
    C: float = Field(1.0, gt=0, description="inverse regularisation strength (logistic regression)")
    max_iter: int = Field(500, gt=0, description="solver iterations (logistic regression)")
    n_estimators: int = Field(100, gt=0, description="trees (random forest)")
    max_depth: int | None = Field(None, gt=0, description="tree depth, None for unlimited (random forest)")
    seed: int = Field(42, description="random_state of every random component")
    test_size: float = Field(0.2, gt=0, lt=1, description="fraction held out for evaluation")
    accuracy_floor: float = Field(0.9, ge=0, le=1, description="minimum test accuracy a model must reach")

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> TrainParams:
        """Build from a plain dict, with an error naming every bad key and the fix."""
        try:
            return cls.model_validate(raw or {})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'train'}: {e['msg']}" for e in exc.errors())
            raise InputError(
                f"Invalid training parameters ({problems}). Fix the 'train' section of params.yaml; "
                f"known keys: {', '.join(cls.model_fields)}."
            ) from None

    @classmethod
    def load(cls, path: Path | None = None) -> TrainParams:
        """Read section ``train`` of ``params.yaml``; a top-level ``seed`` is used if ``train`` has none."""
        raw = dict(load_params("train", path=path) or {})
        if "seed" not in raw:
            top = load_params(path=path)
            if "seed" in top:
                raw["seed"] = top["seed"]
        return cls.from_dict(raw)


class RegistryParams(BaseModel):
    """params.yaml section ``registry``."""

    model_config = ConfigDict(extra="forbid")
    model_name: str = settings.DEFAULT_MODEL_NAME
    metric: str = "f1_macro"
    min_gain: float = Field(0.0, description="required gain on `metric` over production")
    non_regression: list[str] = Field(default_factory=lambda: ["accuracy", "f1_macro"])
    tolerance: float = Field(0.0, ge=0, description="allowed drop on each non-regression metric")
    min_accuracy: float = Field(0.9, ge=0, le=1, description="floor when there is no production version")
    holdout_size: float = Field(0.2, gt=0, lt=1)
    holdout_seed: int = 42
    require_staging: bool = True
    second_approval: bool = Field(
        False,
        description="promotion to production needs an approval recorded (`workbench registry approve`) by "
        "someone other than the person who asks for it",
    )
    approval_max_age_days: float | None = Field(
        14.0,
        gt=0,
        description="with second_approval, an approval recorded longer ago than this many days no longer counts; "
        "null: approvals never expire",
    )
    cost_budget: float | None = Field(
        None,
        gt=0,
        description="the most a candidate may cost per 1,000 predictions (priced by the `cost` section); "
        "null: no budget",
    )

    @classmethod
    def load(cls, overrides: dict[str, Any] | None = None) -> RegistryParams:
        """The ``registry`` section of params.yaml (defaults when absent), with ``overrides`` applied."""
        return _section(cls, "registry", "The gate rules", overrides)


class CostParams(BaseModel):
    """Prices of what a model server uses (``params.yaml`` section ``cost``), for its cost per 1,000 predictions."""

    model_config = ConfigDict(extra="forbid")
    cpu_hour: float = Field(0.04, ge=0, description="the price of one CPU-hour (one core busy for an hour)")
    gb_hour: float = Field(0.005, ge=0, description="the price of one GiB of resident memory held for an hour")
    currency: str = Field("USD", min_length=1, description="the currency of both prices, shown with every cost")

    @classmethod
    def load(cls, overrides: dict[str, Any] | None = None) -> CostParams:
        """The ``cost`` section of params.yaml (defaults when absent), with ``overrides`` applied."""
        return _section(cls, "cost", "The prices", overrides)


Section = TypeVar("Section", bound=BaseModel)


def _section(cls: type[Section], name: str, what: str, overrides: dict[str, Any] | None) -> Section:
    try:
        return cls.model_validate({**load_params(name), **(overrides or {})})
    except ValidationError as err:
        raise InputError(
            f"{what} (params.yaml section '{name}' and the overrides given) are not "
            "valid; fix each key:\n" + "\n".join(describe(err, cls, f"{name}."))
        ) from None


class PrepareParams(BaseModel):
    """Preprocessing settings (``params.yaml`` section ``prepare``)."""

    model_config = ConfigDict(extra="forbid")
    decimals: int | None = Field(
        None, ge=0, description="round every measurement to this many decimals; None keeps them"
    )
    drop_duplicates: bool = Field(False, description="drop repeated rows before splitting")


class ParamsFile(BaseModel):
    """A whole ``params.yaml``: the sections the code reads are checked, any other top-level key is kept."""

    model_config = ConfigDict(extra="allow")
    seed: int | None = Field(None, description="the seed a section without its own uses")
    prepare: PrepareParams | None = None
    train: TrainParams | None = None
    registry: RegistryParams | None = None
    cost: CostParams | None = None


def check(data: dict[str, Any], source: str | Path) -> None:
    """Raise :class:`InputError` listing every key of ``data`` (read from ``source``) with a wrong type or value.

    Types are strict: ``C: "1.0"`` (quoted) is text, not a number, and ``seed: 4.5`` is not a whole number.
    """
    try:
        ParamsFile.model_validate(data, strict=True)
    except ValidationError as err:
        lines = describe(err, ParamsFile)
        raise InputError(
            f"{source} has {len(lines)} bad value(s); fix each key, then run again (the project's "
            "params.yaml shows a valid value for every key):\n" + "\n".join(lines)
        ) from None


def load_params(section: str | None = None, path: Path | None = None) -> dict[str, Any]:
    """Read ``params.yaml`` (the project's unless ``path`` is given); one section if named.

    The one way to read params: a missing file is an error naming the fix; a
    missing section is empty, so the section's model applies its defaults. The
    file is read with :mod:`mlops_workbench.safeyaml` and every section the code
    uses is type-checked (:func:`check`) before any is returned.
    """
    path = path or settings.project_root() / "params.yaml"
    try:
        data = safeyaml.load(path, what=f"params file {path}") or {}
    except FileNotFoundError:
        raise NotFoundError(f"{path} does not exist: restore it from git (git checkout -- params.yaml).") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} must be a mapping of sections (train:, registry:, ...): restore it from git.")
    check(data, path)
    if section is None:
        return data
    value = data.get(section) or {}
    if not isinstance(value, dict):
        raise InputError(f"Section '{section}' of {path} must be a mapping of keys, not {type(value).__name__}.")
    return value


def model_name() -> str:
    """The registered model's name: ``registry.model_name`` in params.yaml (default ``iris``)."""
    return str(load_params("registry").get("model_name") or settings.DEFAULT_MODEL_NAME)
