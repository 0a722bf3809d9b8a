"""Train the model and save it: ``python -m iris_model.train [--out models/model.joblib]``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from iris_model.model import MODEL_PATH, accuracy, load_data, save_model, split, train_model


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(MODEL_PATH), help="where to save the model")
    parser.add_argument("--metrics", default="metrics.json", help="where to write the test accuracy")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    X, y = load_data()
    X_train, X_test, y_train, y_test = split(X, y, seed=args.seed)
    model = train_model(X_train, y_train, seed=args.seed)
    metrics = {"accuracy": accuracy(model, X_test, y_test), "n_test": int(len(y_test))}
    save_model(model, args.out)
    Path(args.metrics).write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"saved {args.out}; test accuracy {metrics['accuracy']:.3f}")
    return metrics


if __name__ == "__main__":
    main()
