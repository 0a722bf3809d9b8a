"""Where things live: the project checkout, the state folder's layout and ``params.yaml``.

This module is the one owner of every path under the state folder
(:class:`StateLayout`, from :func:`layout`, with the drills' own part in
:class:`DrillLayout`). Reading ``params.yaml`` belongs to :mod:`mlops_workbench.paramspec`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlops_workbench.errors import InputError, NotFoundError

HOME_ENV = "WORKBENCH_HOME"
PROJECT_ENV = "WORKBENCH_PROJECT"
CACHE_ENV = "WORKBENCH_CACHE"
DEFAULT_MODEL_NAME = "iris"
PORT_OFFSET_ENV = "WORKBENCH_PORT_OFFSET"
BASE_PORTS = {
    "mlflow": 5000,
    "serve": 8000,
    "router": 8080,
    "prometheus": 9090,
    "jupyter": 8888,
    "alertmanager": 9093,
    "monitor": 9095,
}


def port_offset() -> int:
    """``WORKBENCH_PORT_OFFSET``: added to every default port, so two workbenches (or test workers) can run side
    by side on one machine without answering each other's requests. 0 when unset."""
    raw = os.environ.get(PORT_OFFSET_ENV, "").strip() or "0"
    if not raw.isdigit() or int(raw) > 50000:
        raise InputError(
            f"{PORT_OFFSET_ENV}={raw!r} is not a whole number from 0 to 50000: unset it or pick one such as 100."
        )
    return int(raw)


def default_port(service: str) -> int:
    """The default port of ``service`` (a key of :data:`BASE_PORTS`) on 127.0.0.1: its base port plus
    ``WORKBENCH_PORT_OFFSET`` as the environment says now, read on every call and never cached at import."""
    return BASE_PORTS[service] + port_offset()


def default_ports() -> dict[str, int]:
    """The one set of default ports, by service (CLI defaults, README and ``workbench doctor``)."""
    return {name: default_port(name) for name in BASE_PORTS}


class DefaultPort:
    """A CLI option's default that is the default port of one service, looked up when the command runs (and shown
    as that number in ``--help``), so nothing depends on the environment at import."""

    def __init__(self, service: str) -> None:
        self.service = service

    def __call__(self) -> int:
        return default_port(self.service)

    def __str__(self) -> str:
        return str(self())

    def __repr__(self) -> str:
        return f"DefaultPort({self.service!r})"


SERVICE_LABELS = {
    "mlflow": "MLflow tracking server",
    "serve": "model server",
    "router": "traffic router",
    "prometheus": "Prometheus",
    "jupyter": "JupyterLab",
    "alertmanager": "Alertmanager",
    "monitor": "monitor (drift metrics and alert webhook)",
}


def project_root() -> Path:
    """The checkout holding ``labs/`` and ``params.yaml``.

    ``WORKBENCH_PROJECT`` wins; otherwise the nearest folder above the current
    directory, then above this package, that has a ``labs/`` folder.
    """
    if os.environ.get(PROJECT_ENV):
        return Path(os.environ[PROJECT_ENV]).resolve()
    for start in (Path.cwd(), Path(__file__).resolve()):
        for folder in (start, *start.parents):
            if (folder / "labs").is_dir() and (folder / "params.yaml").is_file():
                return folder
    raise NotFoundError(
        "Cannot find the mlops-workbench checkout (a folder with labs/ and params.yaml). "
        f"Run from inside the checkout or set {PROJECT_ENV}=/path/to/mlops-workbench."
    )


def cache_dir() -> Path:
    """Files derived from the installed tools and shared by every state folder (an empty MLflow store, for one):
    ``WORKBENCH_CACHE``, else ``mlops-workbench`` in the user's cache folder. Not created here; anything in it
    can be deleted at any time and is made again when needed."""
    raw = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "mlops-workbench"
    )
    return Path(raw).expanduser().resolve()


def home() -> Path:
    """The state folder (``WORKBENCH_HOME``, default ``.workbench/`` in the project), as an absolute path. Not
    created here: whatever writes into it makes the folders it writes to. Only ``Workbench.from_env`` calls it:
    everything else takes the ``Workbench`` its entry point made."""
    raw = os.environ.get(HOME_ENV)
    if raw:
        path = Path(raw).expanduser()
    else:
        try:
            path = project_root() / ".workbench"
        except NotFoundError:
            path = Path.cwd() / ".workbench"
    return path.resolve()


@dataclass(frozen=True)
class DrillLayout:
    """``<home>/drills/``: the running drill's timer, the graded reports, the interviews and one folder per drill.
    Like :class:`StateLayout`, it only names paths: writers make the folders they write to."""

    root: Path

    @property
    def session(self) -> Path:
        """The running drill: its name, start time and the hints taken."""
        return self.root / "session.json"

    @property
    def reports(self) -> Path:
        """Every graded attempt, one JSON file each."""
        return self.root / "reports"

    @property
    def latest_report(self) -> Path:
        """The last graded attempt (also in :attr:`reports`)."""
        return self.root / "report.json"

    @property
    def interview(self) -> Path:
        """The interview under way: its drills, their seeds and the results so far."""
        return self.root / "interview.json"

    @property
    def interviews(self) -> Path:
        """One folder per finished interview, holding its scorecard (JSON and HTML)."""
        return self.root / "interviews"

    def folder(self, drill: str) -> Path:
        """The folder of drill ``drill`` (its handle): hidden facts, workspaces, the learner's post-mortem and
        answers."""
        return self.root / drill


def secret(path: Path, make: Callable[[], str]) -> str:
    """The secret kept in ``path`` (a file of the state folder), made with ``make()`` (mode 0600, never
    overwritten: when two processes race, both use the first one written) the first time it is needed."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first: use theirs
            pass
        else:
            with os.fdopen(fd, "w") as out:
                out.write(make())
    return path.read_text().strip()


@dataclass(frozen=True)
class StateLayout:
    """Every path under one state folder. Nothing is created here: writers make the folders they write to."""

    root: Path

    @property
    def mlflow(self) -> Path:
        """The tracking server's folder: sqlite store and artifacts."""
        return self.root / "mlflow"

    @property
    def mlflow_db(self) -> Path:
        return self.mlflow / "mlflow.db"

    @property
    def artifacts(self) -> Path:
        return self.mlflow / "artifacts"

    @property
    def run(self) -> Path:
        """Run files of background services (pid, port, command)."""
        return self.root / "run"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def log(self, service: str) -> Path:
        """The output log of background service ``service``."""
        return self.logs / f"{service}.log"

    def audit_log(self, name: str = "registry") -> Path:
        """An append-only audit log (JSONL)."""
        return self.root / "audit" / f"{name}.jsonl"

    @property
    def admin_token(self) -> Path:
        """The bearer token of the admin endpoints of this state folder's servers (file mode 0600)."""
        return self.root / "admin-token"

    @property
    def registry_hook_secret(self) -> Path:
        """The HMAC secret MLflow signs its registry webhooks with, and the receiver checks (file mode 0600)."""
        return self.root / "registry-hook-secret"

    @property
    def mlflow_webhook_key(self) -> Path:
        """The key the tracking server encrypts stored webhook secrets with (Fernet, file mode 0600): the same key
        at every start, so a restarted server can still read the secrets it stored."""
        return self.mlflow / "webhook-key"

    def check_log(self, lab: str) -> Path:
        """The learner's in-notebook start()/check() events of lab ``lab`` (JSONL, read by `workbench progress`)."""
        return self.root / "checks" / f"{lab}.jsonl"

    @property
    def locks(self) -> Path:
        return self.root / "locks"

    @property
    def rollout(self) -> Path:
        """Rollout state, event log and Prometheus data."""
        return self.root / "rollout"

    @property
    def rollout_events(self) -> Path:
        """The append-only event log of every rollout (JSONL)."""
        return self.rollout / "events.jsonl"

    @property
    def rollout_state(self) -> Path:
        return self.rollout / "state.json"

    @property
    def rollout_request(self) -> Path:
        """A pending operator request (abort or promote) for the running controller."""
        return self.rollout / "request.json"

    @property
    def rollout_ports(self) -> Path:
        """Ports reserved for the local runtime (router, stable, canary)."""
        return self.rollout / "local.json"

    @property
    def prometheus(self) -> Path:
        """Prometheus's configuration and data."""
        return self.rollout / "prometheus"

    @property
    def monitoring(self) -> Path:
        """Production monitoring: the prediction log, label feed, drift reports, Alertmanager and its webhook."""
        return self.root / "monitoring"

    @property
    def predictions(self) -> Path:
        """The prediction log of every model server of this state folder (sqlite)."""
        return self.monitoring / "predictions.db"

    @property
    def drift_reports(self) -> Path:
        """Drift reports (HTML) written for the learner to open in JupyterLab."""
        return self.monitoring / "reports"

    @property
    def alertmanager(self) -> Path:
        """Alertmanager's configuration and data."""
        return self.monitoring / "alertmanager"

    @property
    def alerts_received(self) -> Path:
        """Alert notifications the workbench's webhook accepted, one JSON record a line."""
        return self.monitoring / "alerts.jsonl"

    @property
    def deployments(self) -> Path:
        """The learner's deployment repository (git): the desired state the GitOps reconciler applies to the local
        runtime (``desired.yaml``) and its sync policy (``app.yaml``)."""
        return self.root / "deployments"

    def workspace(self, lab: str) -> Path:
        """The learner's own project folder of lab ``lab`` (e.g. ``02-versioning``)."""
        return self.root / "workspaces" / lab

    @property
    def notebooks(self) -> Path:
        """The learner's working copies of ``notebooks/``: what ``make lab`` opens (the tracked files stay as released)."""
        return self.root / "notebooks"

    def notebook(self, lab: str) -> Path:
        """The learner's own copy of lab ``lab``'s notebook."""
        return self.notebooks / f"{lab}.ipynb"

    def notebook_update(self, lab: str) -> Path:
        """A newer release of lab ``lab``'s notebook, put beside a copy the learner has changed."""
        return self.notebooks / f"{lab}.new.ipynb"

    def notebook_origin(self, lab: str) -> Path:
        """Which release the learner's copy of lab ``lab`` was made from, and which newer one was offered (JSON)."""
        return self.notebooks / ".released" / f"{lab}.json"

    @property
    def dvc_remote(self) -> Path:
        """The default DVC remote of lab workspaces."""
        return self.root / "dvc-remote"

    @property
    def dvc_cache(self) -> Path:
        """The DVC cache (with its run cache) shared by the workspaces the workbench rebuilds (drills)."""
        return self.root / "dvc-cache"

    def reproduction(self, run_id: str) -> Path:
        return self.root / "reproductions" / run_id

    @property
    def results(self) -> Path:
        """Check results a graded run leaves for the labs that depend on it."""
        return self.root / "results"

    @property
    def drills(self) -> DrillLayout:
        """Incident drills: the running drill's timer, reports, interviews, one folder per drill."""
        return DrillLayout(self.root / "drills")

    @property
    def pipeline(self) -> Path:
        """The state folder of ``workbench pipeline``'s reference runs, apart from the learner's."""
        return self.root / "pipeline"

    def pipeline_lab(self, group: str) -> Path:
        """The state folder of one group of pipeline labs (labs that share state; see ``labs.dag``)."""
        return self.pipeline / group


def layout(home_dir: Path) -> StateLayout:
    """The layout of the state folder ``home_dir`` (a workbench's own is ``wb.layout``)."""
    return StateLayout(Path(home_dir))
