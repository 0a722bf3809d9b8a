"""The model a server holds: resolve a model URI to a registry version, load it once, predict fast.

``models:/iris@production`` is resolved to the version the alias points to *now*
and that exact version (``models:/iris/3``) is loaded, so a server always knows
which version answers. Scikit-learn models are loaded with ``mlflow.sklearn``
(fast ``predict`` and ``predict_proba``); any other MLflow model with pyfunc.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlops_workbench import paramspec, tracking
from mlops_workbench.data import FEATURES
from mlops_workbench.errors import ModelLoadError
from mlops_workbench.serving.payloads import PayloadError
from mlops_workbench.workbench import Workbench

if TYPE_CHECKING:
    from mlflow import MlflowClient

_ALIAS_URI = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[^/]+)$")
_VERSION_URI = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")
UNREGISTERED = "unregistered"
DEFAULT_FEATURES = list(FEATURES)


@dataclass(frozen=True)
class ModelRef:
    """Where a model comes from: the URI asked for and the registry version it resolves to."""

    uri: str
    name: str
    version: str = UNREGISTERED
    alias: str | None = None
    run_id: str | None = None

    @property
    def load_uri(self) -> str:
        return f"models:/{self.name}/{self.version}" if self.version != UNREGISTERED else self.uri


@dataclass(frozen=True)
class LoadedModel:
    """A loaded model with everything needed to validate input and answer quickly."""

    ref: ModelRef
    model: Any
    features: list[str]
    named_features: bool
    sklearn: bool
    classes: list[Any] = field(default_factory=list)

    @property
    def version(self) -> str:
        return self.ref.version

    def frame(self, matrix: np.ndarray) -> Any:
        """The input as the model wants it (a DataFrame with the training columns when it knows them)."""
        return pd.DataFrame(matrix, columns=self.features) if self.named_features or not self.sklearn else matrix

    def predict(self, matrix: np.ndarray, probabilities: bool = False) -> tuple[list[Any], list[list[float]] | None]:
        """Predicted labels (JSON-ready) and, when asked and available, class probabilities."""
        X = self.frame(matrix)
        try:
            labels = self.model.predict(X)
            proba = self.model.predict_proba(X) if probabilities and self.sklearn and self.classes else None
        except Exception as exc:  # a model that rejects input is a bad request, not a server error
            raise PayloadError(f"The model could not score this input ({type(exc).__name__}: {exc}).") from None
        labels = labels.tolist() if hasattr(labels, "tolist") else list(labels)
        if labels and isinstance(labels[0], list) and len(labels[0]) == 1:
            labels = [row[0] for row in labels]
        return labels, (np.round(proba, 6).tolist() if proba is not None else None)


def resolve(wb: Workbench, uri: str, name: str | None = None, client: MlflowClient | None = None) -> ModelRef:
    """Resolve ``uri`` to a :class:`ModelRef` (alias and version URIs ask the registry)."""
    name = name or paramspec.model_name()
    if match := _ALIAS_URI.match(uri):
        from mlflow.exceptions import MlflowException

        client = client or _client(wb)
        try:
            mv = client.get_model_version_by_alias(match["name"], match["alias"])
        except MlflowException as exc:
            raise ModelLoadError(
                f"Cannot resolve {uri}: {_first_line(exc)}. Check the model name and alias "
                f"(`workbench registry list --name NAME`) or promote a version to '{match['alias']}' first."
            ) from None
        return ModelRef(uri, match["name"], str(mv.version), match["alias"], mv.run_id)
    if match := _VERSION_URI.match(uri):
        from mlflow.exceptions import MlflowException

        client = client or _client(wb)
        try:
            mv = client.get_model_version(match["name"], match["version"])
        except MlflowException as exc:
            raise ModelLoadError(f"Cannot resolve {uri}: {_first_line(exc)}. Check the name and version.") from None
        return ModelRef(uri, match["name"], str(mv.version), None, mv.run_id)
    run_id = uri.split("/")[1] if uri.startswith("runs:/") else None
    return ModelRef(uri, name, UNREGISTERED, None, run_id)


def load(wb: Workbench, ref: ModelRef) -> LoadedModel:
    """Load the model ``ref`` points to (sklearn flavor when present, else pyfunc).

    A registry version is downloaded once, verified against the sha256 digests
    recorded at registration (``registry.integrity``) and loaded from exactly
    those files; a mismatch or a missing digest raises ``IntegrityError`` (a
    ``ModelLoadError``) and nothing is loaded.
    """
    import shutil
    import tempfile

    import mlflow

    if ref.load_uri.startswith(("models:/", "runs:/")):
        tracking.use(wb)  # the load goes through MLflow's fluent API, to the state folder's server
    from mlops_workbench.registry import integrity

    folder = None
    try:
        source = ref.load_uri
        if ref.version != UNREGISTERED:
            folder = tempfile.mkdtemp(prefix="mlops-serve-")
            source = str(integrity.fetch_verified(wb, ref.name, ref.version, folder))
        flavors = _flavors(source)
        if "sklearn" in flavors:
            model = mlflow.sklearn.load_model(source)
            sklearn = True
        else:
            model = mlflow.pyfunc.load_model(source)  # may read its files later: the folder stays
            sklearn = False
            folder = None
    except integrity.IntegrityError:
        raise
    except Exception as exc:
        raise ModelLoadError(
            f"Cannot load the model {ref.uri} ({ref.load_uri}): {_first_line(exc)}. "
            "Check that the tracking server runs (`workbench mlflow status`) and the model was logged with mlflow."
        ) from None
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        features, named = [str(n) for n in names], True
    else:
        n = getattr(model, "n_features_in_", len(DEFAULT_FEATURES))
        features = DEFAULT_FEATURES if n == len(DEFAULT_FEATURES) else [f"x{i}" for i in range(n)]
        named = False
    if not sklearn:
        schema = model.metadata.get_input_schema()
        if schema is not None and schema.has_input_names():
            features, named = list(schema.input_names()), True
    classes = list(getattr(model, "classes_", [])) if sklearn and hasattr(model, "predict_proba") else []
    fast = _without_feature_names(model, features) if sklearn and named else None
    if fast is not None:  # same predictions from a plain matrix, without pandas on every request
        model, named = fast, False
    return LoadedModel(ref, model, features, named, sklearn, [_plain(c) for c in classes])


def _without_feature_names(model: Any, features: list[str]) -> Any | None:
    """A copy of a fitted sklearn model that takes a matrix in ``features`` order, or None if unsafe.

    The server already checks names and order, so sklearn's per-request DataFrame
    handling (3x the cost of the prediction itself) can go. The copy must give the
    same predictions as the original on a probe batch, else it is not used.
    """
    import copy
    import warnings

    fast = copy.deepcopy(model)
    steps = [est for _, est in getattr(fast, "steps", [])] or [fast]
    for est in steps:
        if "feature_names_in_" in vars(est):
            delattr(est, "feature_names_in_")
    probe = np.linspace(0.5, 7.5, 4 * len(features)).reshape(4, len(features))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            same = np.array_equal(fast.predict(probe), model.predict(pd.DataFrame(probe, columns=features)))
    except Exception:
        return None
    return fast if same else None


def _flavors(uri: str) -> dict[str, Any]:
    from mlflow.models import get_model_info

    return get_model_info(uri).flavors


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _client(wb: Workbench) -> MlflowClient:
    # no health probe: MLflow's own bounded retries make a reload fail fast when the server is down
    return tracking.client(wb, check=False)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "message", exc)) or type(exc).__name__
    return text.strip().splitlines()[0]
