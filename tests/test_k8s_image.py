"""The kind image's model server starts the way its Dockerfile starts it: outside a checkout, as a plain user."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "deploy/k8s/Dockerfile"


def image_env() -> dict[str, str]:
    """The ``ENV`` settings of the final stage of the Dockerfile (KEY=value pairs)."""
    env: dict[str, str] = {}
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("ENV "):
            env.update(dict(re.findall(r"(\w+)=(\S+)", line)))
    return env


def test_the_image_serves_without_a_checkout_and_keeps_its_state_in_the_users_home(tmp_path, save_iris_model):
    model, _ = save_iris_model(tmp_path)
    package = tmp_path / "app"
    shutil.copytree(ROOT / "src", package / "src")  # what the image copies: no labs/, no params.yaml
    user_home = tmp_path / "home-workbench"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}
    env.update({k: v.replace("/home/workbench", str(user_home)) for k, v in image_env().items()})
    env["PYTHONPATH"] = str(package / "src")
    probe = (
        "from mlops_workbench.serving.server import create_app; from mlops_workbench.workbench import Workbench; "
        f"app = create_app(Workbench.from_env(), {str(model)!r}); print(app.state.server.describe()['name'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=package, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "iris"
    assert (user_home / ".workbench" / "admin-token").is_file()  # the token, in the user's writable home
    assert not (package / ".workbench").exists()
