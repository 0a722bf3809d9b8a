"""The pinned versions of the kind path, read from ``deploy/k8s/versions.env`` (the one place they live)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from mlops_workbench import settings
from mlops_workbench.k8s.errors import K8sError


def deploy_dir() -> Path:
    """``deploy/k8s`` of the checkout."""
    return settings.project_root() / "deploy" / "k8s"


class Versions(BaseModel):
    """Every pinned version; a missing or unknown key in versions.env is an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    KIND_VERSION: str
    KIND_NODE_IMAGE: str
    ARGO_ROLLOUTS_VERSION: str
    ARGOCD_VERSION: str
    GATEWAYAPI_PLUGIN_VERSION: str
    ENVOY_GATEWAY_VERSION: str
    GATEWAY_API_VERSION: str
    HELM_VERSION: str
    PROMETHEUS_IMAGE: str
    GRAFANA_IMAGE: str
    MODEL_IMAGE: str
    HEALTHY_TAG: str
    FAULTY_TAG: str

    @property
    def healthy_image(self) -> str:
        return f"{self.MODEL_IMAGE}:{self.HEALTHY_TAG}"

    @property
    def faulty_image(self) -> str:
        return f"{self.MODEL_IMAGE}:{self.FAULTY_TAG}"

    def plugin_url(self, arch: str = "amd64") -> str:
        return (
            "https://github.com/argoproj-labs/rollouts-plugin-trafficrouter-gatewayapi/releases/download/"
            f"{self.GATEWAYAPI_PLUGIN_VERSION}/gatewayapi-plugin-linux-{arch}"
        )


def parse_env(text: str) -> dict[str, str]:
    """``KEY=value`` lines (comments and blanks ignored)."""
    out: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise K8sError(f"versions.env line {number} is not KEY=value: {line!r}")
        out[key.strip()] = value.strip()
    return out


def load(path: Path | None = None) -> Versions:
    path = path or deploy_dir() / "versions.env"
    try:
        return Versions(**parse_env(path.read_text()))
    except FileNotFoundError:
        raise K8sError(f"{path} is missing: it pins every version of the kind path; restore it from git.") from None
    except ValidationError as err:
        bad = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise K8sError(f"{path} is not a valid version pin file ({bad}).") from None
