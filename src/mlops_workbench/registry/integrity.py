"""Model artifact integrity: a sha256 digest of every file of a version's artifact, recorded and verified.

At registration the files of the version's model artifact are hashed and the
digests are stored on the model version as one tag, ``integrity.sha256``,
holding a JSON object ``{"<path inside the artifact>": "<sha256 hex>", ...}``
(sorted paths, ``/`` separators). Before a version is served, reloaded or
promoted, its artifact is downloaded into a private folder, hashed again and
compared with that manifest; any difference (a changed file, a file missing or
added, no manifest at all) raises :class:`IntegrityError` naming the file and
both digests, and nothing is loaded or promoted. The server then loads the
model from the very files it verified, so nothing can change in between.

``registry.register`` records the digest itself; a version registered with
MLflow's own API (``mlflow.register_model``)
gets it from :func:`record_digest` called right after registering.

Pure logic (:func:`manifest`, :func:`compare`, :func:`parse`) is apart from the
I/O (:func:`digest_folder`, :func:`download`, :func:`record_digest`, :func:`verify`, :func:`fetch_verified`).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_workbench.errors import ModelLoadError, RegistryError
from mlops_workbench.workbench import Workbench

if TYPE_CHECKING:
    from mlflow import MlflowClient

TAG = "integrity.sha256"
# written by MLflow's client into every download of models:/name/version (name and version), not stored
CLIENT_SIDE = frozenset({"registered_model_meta"})
MISSING = "<no such file>"
CHUNK = 1 << 20


class IntegrityError(ModelLoadError, RegistryError):
    """A model version's artifact does not match the digest recorded at registration (or none was recorded).

    A :class:`ModelLoadError` for the server (a reload answers 409 and keeps the
    current model) and a :class:`RegistryError` for promotion (nothing changes).
    """

    def __init__(self, message: str, name: str = "", version: str = "", problems: list[Mismatch] | None = None):
        super().__init__(message)
        self.name, self.version, self.problems = name, version, problems or []


@dataclass(frozen=True)
class Mismatch:
    """One file whose digest differs: ``recorded`` at registration, ``actual`` in the artifact now."""

    path: str
    recorded: str
    actual: str

    def __str__(self) -> str:
        return f"{self.path}: recorded sha256 {self.recorded}, artifact has {self.actual}"


# ---------------------------------------------------------------- pure logic


def manifest(digests: dict[str, str]) -> str:
    """The tag value for ``digests``: compact JSON with sorted paths."""
    return json.dumps(dict(sorted(digests.items())), separators=(",", ":"))


def parse(value: str | None) -> dict[str, str] | None:
    """The digests held by a tag value; None when there is no tag or it is not a manifest."""
    if not value:
        return None
    try:
        data = json.loads(value)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not data or not all(isinstance(v, str) for v in data.values()):
        return None
    return {str(k): v for k, v in data.items()}


def compare(recorded: dict[str, str], actual: dict[str, str]) -> list[Mismatch]:
    """Every file whose digest differs, is missing from the artifact, or was added to it (sorted by path)."""
    paths = sorted(set(recorded) | set(actual))
    return [
        Mismatch(p, recorded.get(p, MISSING), actual.get(p, MISSING)) for p in paths if recorded.get(p) != actual.get(p)
    ]


def mismatch_message(name: str, version: str, problems: list[Mismatch]) -> str:
    lines = "\n  ".join(map(str, problems))
    return (
        f"Refusing model '{name}' version {version}: its artifact does not match the sha256 digest recorded "
        f"at registration (tag '{TAG}'). Changed file(s):\n  {lines}\n"
        "The stored artifact was modified or replaced after registration: restore the original files from a "
        "backup, or train, log and register a new version from trusted code and data. Do not re-record the "
        "digest of these files, and do not re-register the same run (it shares these files)."
    )


def missing_message(name: str, version: str, actual: dict[str, str]) -> str:
    files = "\n  ".join(f"{p}: recorded sha256 <none>, artifact has {d}" for p, d in sorted(actual.items()))
    return (
        f"Refusing model '{name}' version {version}: no sha256 digest was recorded for it (tag '{TAG}' "
        f"is missing), so its artifact cannot be verified. Files:\n  {files}\n"
        "Register with registry.register(run_id, name), which records the digest; a version registered "
        f"with MLflow's own API needs registry.record_digest(wb, '{name}', {version}) right after registering."
    )


# ---------------------------------------------------------------- I/O


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def digest_folder(folder: Path) -> dict[str, str]:
    """``{relative path: sha256}`` for every file under ``folder``."""
    folder = Path(folder)
    files = (p for p in sorted(folder.rglob("*")) if p.is_file())
    return {
        p.relative_to(folder).as_posix(): sha256_file(p)
        for p in files
        if p.relative_to(folder).as_posix() not in CLIENT_SIDE
    }


def download(wb: Workbench, name: str, version: str | int, dst: Path) -> Path:
    """Download the artifact of ``models:/name/version`` (from the tracking server in use) into ``dst``."""
    import os

    import mlflow

    from mlops_workbench import tracking

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a few small files: no bars
    tracking.use(wb)  # models:/ URIs resolve through MLflow's global registry URI
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}", dst_path=str(dst)))


def record_digest(
    wb: Workbench, name: str, version: str | int, client: MlflowClient | None = None, overwrite: bool = False
) -> dict[str, str]:
    """Hash every file of the version's artifact and store the manifest as the tag ``integrity.sha256``.

    Call it right after registering a version with MLflow's own API. It refuses
    to replace a digest already recorded (``overwrite=True`` does, for a version
    you re-checked by hand): recording a digest vouches for the files as they are now.
    """
    client = client or _client(wb)
    mv = client.get_model_version(name, str(version))
    if not overwrite and parse((mv.tags or {}).get(TAG)) is not None:
        raise RegistryError(
            f"Model '{name}' version {version} already has a recorded digest (tag '{TAG}'); nothing changed. "
            "Recording again would vouch for whatever the files hold now: pass overwrite=True only if you are sure."
        )
    with tempfile.TemporaryDirectory(prefix="mlops-digest-") as tmp:
        digests = digest_folder(download(wb, name, version, Path(tmp)))
    if not digests:
        raise RegistryError(f"Model '{name}' version {version} has no artifact files to digest: log the model first.")
    client.set_model_version_tag(name, str(version), TAG, manifest(digests))
    return digests


def check_folder(name: str, version: str | int, folder: Path, tag_value: str | None) -> dict[str, str]:
    """Verify the files in ``folder`` against ``tag_value``; returns the digests, else raises IntegrityError."""
    actual = digest_folder(folder)
    recorded = parse(tag_value)
    if recorded is None:
        raise IntegrityError(missing_message(name, str(version), actual), name, str(version))
    problems = compare(recorded, actual)
    if problems:
        raise IntegrityError(mismatch_message(name, str(version), problems), name, str(version), problems)
    return actual


def verify(wb: Workbench, name: str, version: str | int, client: MlflowClient | None = None) -> dict[str, str]:
    """Download the version's artifact into a temporary folder, verify it, return its digests (else IntegrityError)."""
    with tempfile.TemporaryDirectory(prefix="mlops-verify-") as tmp:
        return digest_folder(fetch_verified(wb, name, version, Path(tmp), client))


def fetch_verified(
    wb: Workbench, name: str, version: str | int, dst: Path | str, client: MlflowClient | None = None
) -> Path:
    """Download the version's artifact into ``dst`` and verify it; returns the model folder to load from.

    The caller loads exactly the files that were checked, so nothing can change in between.
    """
    client = client or _client(wb)
    tag = ((client.get_model_version(name, str(version)).tags) or {}).get(TAG)
    folder = download(wb, name, version, Path(dst))
    check_folder(name, version, folder, tag)
    return folder


def stored_folder(wb: Workbench, name: str, version: str | int, client: MlflowClient | None = None) -> Path:
    """Where the tracking server under ``wb.home`` keeps the files of ``name`` version ``version`` on disk.

    For inspecting (or, in a lab or test, deliberately tampering with) the stored
    artifact; serving and verification never read it directly, they download.
    """
    from mlops_workbench import tracking

    client = client or _client(wb)
    model_id = str(client.get_model_version(name, str(version)).source).rsplit("/", 1)[-1]
    root = tracking.store_paths(wb)[1]
    found = next((p.parent for p in root.rglob("MLmodel") if model_id in p.parts), None)
    if found is None:
        raise RegistryError(
            f"No stored artifact of '{name}' version {version} under {root}: is this the state "
            "folder of the tracking server that registered it?"
        )
    return found


def _client(wb: Workbench) -> MlflowClient:
    from mlops_workbench import tracking

    return tracking.client(wb, check=False)


def log_registered(
    wb: Workbench,
    model: Any,
    example: Any,
    model_name: str,
    name: str = "model",
    *,
    training: Any = None,
    holdout: Any = None,
    data_hash: str | None = None,
) -> str:
    """Log a fitted scikit-learn model to the active run (:func:`tracking.log_sklearn_model`, with the reference
    statistics of ``training`` when given), register it as a new version of ``model_name`` and record its digest,
    so servers and promotions can verify it; returns the version."""
    import mlflow

    from mlops_workbench import tracking

    info = tracking.log_sklearn_model(
        model, example, name=name, training=training, holdout=holdout, data_hash=data_hash
    )
    version = str(mlflow.register_model(info.model_uri, model_name).version)
    record_digest(wb, model_name, version)
    return version
