"""Argo CD Applications of the kind path, validated offline: the npm schema (@kubernetes-models/argo-cd) refuses a
misspelt field or a wrong type naming the field; the project's own checks refuse an Application that deploys the
wrong folder or namespace, or would fight Argo Rollouts over the HTTPRoute weights."""

from __future__ import annotations

import copy

import pytest
import yaml
from typer.testing import CliRunner

from mlops_workbench import settings
from mlops_workbench.cli.main import app
from mlops_workbench.k8s import argocd, crds
from mlops_workbench.k8s import validate as v
from mlops_workbench.k8s.errors import K8sError

needs_schemas = pytest.mark.skipif(
    not crds.ready(), reason="npm schemas missing: install Node.js 20+ and run `make setup`"
)


def errors_of(obj):
    return [f for f in v.validate([obj]) if f.severity == "error"]


def mutated(sync, change):
    obj = copy.deepcopy(argocd.application(sync))
    change(obj)
    return errors_of(obj)


@needs_schemas
def test_both_sync_policies_are_valid_and_differ_only_in_automated():
    findings = v.validate_applications()
    assert findings == [], [str(f) for f in findings]
    assert {p.name for p in argocd.files()} == set(argocd.FILES.values())
    manual, auto = argocd.application("manual"), argocd.application("auto")
    assert auto["spec"]["syncPolicy"].pop("automated") == {"prune": True, "selfHeal": True}
    assert "automated" not in manual["spec"]["syncPolicy"]
    assert manual == auto
    assert manual["spec"]["source"]["path"] == "deploy/k8s/overlays/kind"


@needs_schemas
@pytest.mark.parametrize("sync", ["manual", "auto"])
def test_a_misspelt_field_is_refused_by_name(sync):
    def typo(obj):
        obj["spec"]["destination"]["namspace"] = obj["spec"]["destination"].pop("namespace")

    found = mutated(sync, typo)
    assert any(
        f.resource == "Application/iris"
        and f.path == "spec.destination.namspace"
        and "unknown field 'namspace'" in f.message
        and "spelling" in f.fix
        for f in found
    ), [str(f) for f in found]


@needs_schemas
def test_a_misspelt_sync_option_field_and_a_wrong_type_are_refused():
    def typo(obj):
        automated = obj["spec"]["syncPolicy"]["automated"]
        automated["selfHael"] = automated.pop("selfHeal")
        automated["prune"] = "yes"

    found = {f.path: f for f in mutated("auto", typo)}
    assert set(found) == {"spec.syncPolicy.automated.selfHael", "spec.syncPolicy.automated.prune"}
    assert "must be boolean" in found["spec.syncPolicy.automated.prune"].message


@needs_schemas
def test_a_missing_required_field_is_named():
    [f] = mutated("manual", lambda o: o["spec"].pop("project"))
    assert f.path == "spec" and "project" in f.message and f.fix == "add the missing field"


@needs_schemas
@pytest.mark.parametrize(
    "change, path, words",
    [
        (lambda o: o["spec"]["source"].update(path="deploy/k8s/overlays/kinde"), "spec.source.path", "kinde"),
        (lambda o: o["spec"]["destination"].update(namespace="default"), "spec.destination.namespace", "default"),
        (lambda o: o["spec"].pop("ignoreDifferences"), "spec.ignoreDifferences", "OutOfSync"),
        (lambda o: o["spec"]["syncPolicy"].pop("syncOptions"), "spec.syncPolicy.syncOptions", "RespectIgnore"),
    ],
)
def test_project_checks_name_the_field_and_the_fix(change, path, words):
    [f] = mutated("auto", change)
    assert f.resource == "Application/iris" and f.path == path and words in f.message + f.fix, str(f)


@needs_schemas
def test_retargeted_application_is_still_valid_and_keeps_its_policy():
    moved = argocd.retarget(argocd.application("auto"), "git://172.18.0.1/deploy", "overlays/kind", "main")
    assert moved["spec"]["source"] == {
        "repoURL": "git://172.18.0.1/deploy",
        "targetRevision": "main",
        "path": "overlays/kind",
    }
    assert moved["spec"]["syncPolicy"]["automated"]["selfHeal"] is True
    assert errors_of(moved) == []
    assert argocd.application("auto")["spec"]["source"]["repoURL"] == argocd.REPO_URL  # the original is untouched
    with pytest.raises(K8sError, match="repository URL"):
        argocd.retarget(moved, " ", "overlays/kind")
    with pytest.raises(K8sError, match="manual or auto"):
        argocd.application("automatic")


@needs_schemas
def test_cli_prints_and_validates_applications(tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        app, ["k8s", "application", "--sync", "manual", "--repo-url", "git://h/deploy", "--path", "overlays/kind"]
    )
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.output)
    assert printed["kind"] == "Application" and printed["spec"]["source"]["targetRevision"] == "HEAD"
    assert "automated" not in printed["spec"]["syncPolicy"]
    bad = copy.deepcopy(argocd.application("auto"))
    bad["spec"]["syncPolicy"]["automated"]["selfHael"] = True
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(bad))
    result = runner.invoke(app, ["k8s", "validate", str(path)])
    assert result.exit_code == 1 and "unknown field 'selfHael'" in result.output and "Application/iris" in result.output


ROOT = settings.project_root()
WORKFLOW = ROOT / ".github" / "workflows" / "gitops-kind.yml"


def test_gitops_workflow_runs_real_argo_cd_through_both_traps():
    from mlops_workbench.ci.yamldoc import YamlDoc

    doc = YamlDoc.read(WORKFLOW).data
    assert doc["permissions"] == {"contents": "read"}
    steps = [s for job in doc["jobs"].values() for s in job["steps"]]
    runs = "\n".join(str(s.get("run", "")) for s in steps)
    uses = [str(s["uses"]) for s in steps if "uses" in s]
    assert all(len(u.split("@")[1].split()[0]) == 40 for u in uses), uses  # every action pinned by commit SHA
    assert next(s for s in steps if str(s.get("uses", "")).startswith("actions/checkout@"))["with"] == {
        "persist-credentials": False
    }
    assert "deploy/k8s/versions.env" in runs and "${ARGOCD_VERSION}" in runs and "sha256sum --check" in runs
    assert "workbench cluster up --no-apply" in runs and "workbench cluster argocd" in runs
    assert runs.count("--sync auto") == 2 and runs.count("--sync manual") == 1
    assert "rollback cannot be initiated when auto-sync is enabled" in runs
    assert runs.count("revert --no-edit HEAD") == 3 and "OutOfSync" in runs
    assert (ROOT / "deploy" / "k8s" / "argocd" / "expect.sh").stat().st_mode & 0o111


def test_cluster_up_without_the_overlay_and_argo_cd_install(monkeypatch):
    from mlops_workbench.k8s import cluster, versions

    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(cluster, "load", versions.load)
    monkeypatch.setattr(cluster.tools, "docker_engine", lambda: "docker")
    monkeypatch.setattr(cluster.tools, "require", lambda tool: tool)
    monkeypatch.setattr(cluster.tools, "run", lambda cmd, **kw: "workbench\n")
    monkeypatch.setattr(cluster, "install_stack", lambda v, say: calls.append(("stack",)))
    monkeypatch.setattr(cluster, "apply", lambda **kw: calls.append(("apply",)))
    monkeypatch.setattr(cluster, "_kubectl", lambda *args, **kw: calls.append(args) or "")
    cluster.up(say=lambda _: None, build=False, apply_overlay=False)
    assert calls == [("stack",)]
    cluster.install_argocd(versions.load(), say=lambda _: None)
    applied = next(c for c in calls if c[:1] == ("apply",) and "--server-side" in c)
    assert applied[-1].endswith(f"/argo-cd/{versions.load().ARGOCD_VERSION}/manifests/install.yaml")
    assert any("statefulset/argocd-application-controller" in c for c in calls)
