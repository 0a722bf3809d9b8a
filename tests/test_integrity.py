"""Model artifact integrity: digests recorded at registration, verified by serve, reload and promotion.

The tampering is done the way an attacker (or an accident) would: on the files
the real tracking server stores under ``tracking.store_paths(home)``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from mlops_workbench import procs, registry, tracking
from mlops_workbench.registry import audit, candidates, integrity
from mlops_workbench.serving import auth
from mlops_workbench.serving.server import create_app, start_server
from mlops_workbench.workbench import Workbench

HEX = "0123456789abcdef"


# ---------------------------------------------------------------- pure logic


def test_compare_names_changed_missing_and_added_files():
    recorded = {"MLmodel": "a" * 64, "model.skops": "b" * 64, "conda.yaml": "c" * 64}
    actual = {"MLmodel": "a" * 64, "model.skops": "d" * 64, "extra.bin": "e" * 64}
    problems = integrity.compare(recorded, actual)
    assert [(p.path, p.recorded, p.actual) for p in problems] == [
        ("conda.yaml", "c" * 64, integrity.MISSING),
        ("extra.bin", integrity.MISSING, "e" * 64),
        ("model.skops", "b" * 64, "d" * 64),
    ]
    assert integrity.compare(recorded, dict(recorded)) == []


def test_manifest_round_trips_and_rejects_what_is_not_one():
    digests = {"b/file": "1" * 64, "MLmodel": "2" * 64}
    assert integrity.parse(integrity.manifest(digests)) == digests
    assert list(integrity.parse(integrity.manifest(digests))) == ["MLmodel", "b/file"]  # sorted
    for bad in (None, "", "not json", "[]", "{}", '{"a": 1}'):
        assert integrity.parse(bad) is None


def test_digest_folder_skips_the_file_mlflow_writes_on_download(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "MLmodel").write_text("flavors: {}\n")
    (tmp_path / "sub" / "w.bin").write_bytes(b"\x00\x01")
    (tmp_path / "registered_model_meta").write_text("model_name: x\n")
    digests = integrity.digest_folder(tmp_path)
    assert set(digests) == {"MLmodel", "sub/w.bin"}
    assert all(len(d) == 64 and set(d) <= set(HEX) for d in digests.values())


def test_integrity_error_is_a_load_error_and_a_registry_error():
    from mlops_workbench.serving.model import ModelLoadError

    assert issubclass(integrity.IntegrityError, ModelLoadError)
    assert issubclass(integrity.IntegrityError, registry.RegistryError)


# ---------------------------------------------------------------- real tracking server


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("integrity-home")
    tracking.up(Workbench.from_env(home), port=procs.free_port(), timeout=400)  # slow on a loaded 2-core machine
    yield home
    procs.stop_all(Workbench.from_env(home))


@pytest.fixture(scope="module")
def runs(home) -> dict[str, str]:
    return {
        "a": candidates.log_candidate({"C": 1.0}, experiment="integrity"),
        "b": candidates.log_candidate({"C": 10.0}, experiment="integrity"),
    }


@pytest.fixture
def served_home(home, monkeypatch) -> Path:
    """In-process servers write their audit lines to the module's state folder."""
    monkeypatch.setenv("WORKBENCH_HOME", str(home))
    return home


def artifact_folder(home: Path, name: str, version: str) -> Path:
    """Where the tracking server keeps the files of ``name`` version ``version`` on disk."""
    folder = integrity.stored_folder(
        Workbench.from_env(home), name, version, client=registry.client(Workbench.from_env(home))
    )
    assert folder.is_relative_to(tracking.store_paths(Workbench.from_env(home))[1])
    return folder


def model_file(folder: Path) -> Path:
    return next(p for p in folder.iterdir() if p.name.startswith("model.") and p.suffix in (".skops", ".pkl"))


def swap(home: Path, name: str, victim: str, donor: str) -> Path:
    """Copy ``donor``'s serialised model over ``victim``'s; returns the replaced file."""
    target = model_file(artifact_folder(home, name, victim))
    shutil.copyfile(model_file(artifact_folder(home, name, donor)), target)
    return target


def register_pair(home, runs, name):
    v1 = registry.register(Workbench.from_env(home), runs["a"], name)
    v2 = registry.register(Workbench.from_env(home), runs["b"], name)
    return v1.version, v2.version


def aliases(home, name):
    return dict(registry.client(Workbench.from_env(home)).get_registered_model(name).aliases)


@pytest.mark.slow
def test_register_records_a_digest_of_every_artifact_file(home, runs, wb):
    mv = registry.register(wb, runs["a"], "recorded")
    digests = integrity.parse(mv.tags[integrity.TAG])
    folder = artifact_folder(home, "recorded", mv.version)
    on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert set(digests) == on_disk and "MLmodel" in digests
    assert digests[model_file(folder).name] == integrity.sha256_file(model_file(folder))
    assert integrity.verify(wb, "recorded", mv.version, client=registry.client(wb)) == digests


@pytest.mark.slow
def test_swapped_artifact_is_refused_by_serve_and_promotion(served_home, runs, wb):
    home = served_home
    v1, v2 = register_pair(home, runs, "swapped")
    registry.client(Workbench.from_env(home)).set_registered_model_alias("swapped", "production", v2)
    original = integrity.parse(
        registry.client(Workbench.from_env(home)).get_model_version("swapped", v1).tags[integrity.TAG]
    )
    target = swap(home, "swapped", victim=v1, donor=v2)
    now = integrity.sha256_file(target)

    with pytest.raises(integrity.IntegrityError) as served:
        create_app(wb, f"models:/swapped/{v1}", name="swapped")
    text = str(served.value)
    assert target.name in text and original[target.name] in text and now in text
    assert "restore the original files" in text

    with pytest.raises(registry.RegistryError, match="Promotion refused, nothing changed") as promoted:
        registry.promote(Workbench.from_env(home), "swapped", v1, "staging", approver="eve", reason="sneak it in")
    assert target.name in str(promoted.value) and now in str(promoted.value)
    assert aliases(home, "swapped") == {"production": v2}
    log = [e for e in audit.read(Workbench.from_env(home)) if e.model == "swapped"]
    assert [(e.action, e.version, e.outcome) for e in log] == [("serve", v1, "refused"), ("promote", v1, "refused")]
    assert log[0].files == [{"path": target.name, "recorded": original[target.name], "actual": now}]


@pytest.mark.slow
def test_edited_artifact_is_refused_on_reload_and_the_server_keeps_its_version(home, runs, wb):
    v1, v2 = register_pair(home, runs, "edited")
    c = registry.client(wb)
    c.set_registered_model_alias("edited", "production", v1)
    service = start_server(wb, "models:/edited@production", name="edited-serve", model_name="edited")
    try:
        assert httpx.get(service.url + "/version").json()["version"] == v1
        mlmodel = artifact_folder(home, "edited", v2) / "MLmodel"
        mlmodel.write_text(mlmodel.read_text() + "# edited after registration\n")
        c.set_registered_model_alias("edited", "production", v2)
        r = httpx.post(service.url + "/admin/reload", timeout=120, headers=auth.headers(auth.read_token(wb)))
        assert r.status_code == 409
        assert "MLmodel" in r.json()["error"] and integrity.sha256_file(mlmodel) in r.json()["error"]
        assert r.json()["version"] == v1
        assert httpx.get(service.url + "/version").json()["version"] == v1
        predicted = httpx.post(service.url + "/predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]]}).json()
        assert predicted["version"] == v1 and predicted["predictions"] == ["setosa"]
    finally:
        procs.stop(wb, "edited-serve")
    log = [e for e in audit.read(wb) if e.model == "edited"]
    assert [(e.action, e.version, e.outcome, e.serving) for e in log] == [("reload", v2, "refused", v1)]
    assert log[0].files[0]["path"] == "MLmodel"


@pytest.mark.slow
def test_a_version_without_a_digest_is_refused_until_record_digest(served_home, runs, wb):
    import mlflow

    home = served_home
    registry.client(Workbench.from_env(home))  # points MLflow's own API at the module's server
    mv = mlflow.register_model(f"runs:/{runs['a']}/model", "undigested")
    assert (
        integrity.TAG not in registry.client(Workbench.from_env(home)).get_model_version("undigested", mv.version).tags
    )
    with pytest.raises(integrity.IntegrityError) as served:
        create_app(wb, f"models:/undigested/{mv.version}", name="undigested")
    assert "no sha256 digest was recorded" in str(served.value)
    assert f"registry.record_digest(wb, 'undigested', {mv.version})" in str(served.value)
    with pytest.raises(registry.RegistryError, match="record_digest"):
        registry.promote(Workbench.from_env(home), "undigested", mv.version, "staging", approver="al", reason="try")
    assert aliases(home, "undigested") == {}

    digests = registry.record_digest(wb, "undigested", mv.version)
    assert "MLmodel" in digests
    with pytest.raises(registry.RegistryError, match="already has a recorded digest"):
        registry.record_digest(wb, "undigested", mv.version)
    app = create_app(wb, f"models:/undigested/{mv.version}", name="undigested")
    assert app.state.server.model.version == mv.version
    registry.promote(
        Workbench.from_env(home), "undigested", mv.version, "staging", approver="al", reason="verified now"
    )
    assert aliases(home, "undigested") == {"staging": mv.version}
