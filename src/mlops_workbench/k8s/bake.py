"""Train the Iris model at image build time and save it as an MLflow model folder.

``python -m mlops_workbench.k8s.bake /model --seed 42`` (run by deploy/k8s/Dockerfile): the
model is baked into the image, so the cluster needs no tracking server and every build of
the same commit serves the same model.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path


def bake(out: Path, seed: int = 42) -> Path:
    import mlflow.sklearn

    from mlops_workbench import data, tracking, train

    model = train.train(data.load_iris_frame(), {"seed": seed})
    if out.exists():
        shutil.rmtree(out)
    mlflow.sklearn.save_model(model, str(out), pip_requirements=tracking.model_requirements())
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    print(f"model saved to {bake(args.out, args.seed)}")


if __name__ == "__main__":
    main()
