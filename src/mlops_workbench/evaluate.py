"""Evaluation stage: accuracy, macro F1, a per-class report and a confusion-matrix plot."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    accuracy_score,
    classification_report,
    confusion_matrix,
    f1_score,
)

from mlops_workbench.data import CLASSES, FEATURES, LABEL, validate

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _labels(model: Any, y: pd.Series) -> list[str]:
    classes = getattr(model, "classes_", None)
    known = [str(c) for c in classes] if classes is not None else list(CLASSES)
    return known + sorted(set(map(str, y)) - set(known))


def evaluate(model: Any, df: pd.DataFrame) -> dict[str, Any]:
    """Score ``model`` on a validated frame.

    Returns ``{"accuracy", "f1_macro", "per_class": {label: {precision, recall, f1, support}},
    "confusion_matrix": [[...]], "labels": [...], "n": rows}``.
    """
    df = validate(df)
    y_true = df[LABEL].astype(str)
    y_pred = pd.Series(model.predict(df[FEATURES])).astype(str)
    labels = _labels(model, y_true)
    report = classification_report(y_true, y_pred, labels=labels, output_dict=True, zero_division=0)
    per_class = {
        label: {
            "precision": float(report[label]["precision"]),
            "recall": float(report[label]["recall"]),
            "f1": float(report[label]["f1-score"]),
            "support": int(report[label]["support"]),
        }
        for label in labels
    }
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1_macro": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "labels": labels,
        "n": int(len(df)),
    }


def plot_confusion_matrix(model: Any, df: pd.DataFrame, title: str = "Confusion matrix") -> Figure:
    """A confusion-matrix figure (true label rows, predicted label columns) for ``model`` on ``df``."""
    from mlops_workbench.figures import NotebookFigure

    df = validate(df)
    y_true = df[LABEL].astype(str)
    y_pred = pd.Series(model.predict(df[FEATURES])).astype(str)
    labels = _labels(model, y_true)
    fig = NotebookFigure(figsize=(4.5, 4))
    ax = fig.add_subplot()
    ConfusionMatrixDisplay(confusion_matrix(y_true, y_pred, labels=labels), display_labels=labels).plot(
        ax=ax, cmap="Blues", colorbar=False
    )
    ax.set_title(title)
    fig.tight_layout()
    return fig
