"""The evaluation stage: metrics and the confusion-matrix plot."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from mlops_workbench import data
from mlops_workbench.evaluate import evaluate, plot_confusion_matrix
from mlops_workbench.train import train


class Constant:
    """A model that always answers the same class."""

    classes_ = np.array(["setosa", "versicolor", "virginica"])

    def predict(self, X):
        return np.array(["setosa"] * len(X))


@pytest.fixture(scope="module")
def frames():
    return data.split(data.load_iris_frame(), test_size=0.2, seed=42)


def test_metrics_of_a_trained_model(frames):
    train_df, test_df = frames
    metrics = evaluate(train(train_df, {"seed": 42}), test_df)
    assert metrics["accuracy"] >= 0.9 and metrics["f1_macro"] >= 0.9
    assert set(metrics["per_class"]) == {"setosa", "versicolor", "virginica"}
    assert sum(c["support"] for c in metrics["per_class"].values()) == len(test_df) == metrics["n"]
    assert np.trace(metrics["confusion_matrix"]) == round(metrics["accuracy"] * len(test_df))


def test_metrics_of_a_constant_model(frames):
    metrics = evaluate(Constant(), frames[1])
    assert metrics["accuracy"] == pytest.approx(1 / 3)
    assert metrics["per_class"]["setosa"]["recall"] == 1.0
    assert metrics["per_class"]["virginica"]["recall"] == 0.0
    assert metrics["f1_macro"] == pytest.approx((2 * (1 / 3) / (1 + 1 / 3)) / 3)
    assert metrics["confusion_matrix"][2] == [10, 0, 0]


def test_evaluate_rejects_bad_data(frames):
    with pytest.raises(data.DataValidationError):
        evaluate(Constant(), frames[1].iloc[0:0])


def test_confusion_matrix_plot(frames, tmp_path):
    fig = plot_confusion_matrix(Constant(), frames[1])
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["setosa", "versicolor", "virginica"]
    assert "10" in [t.get_text() for t in ax.texts]
    fig.savefig(tmp_path / "cm.png")
    assert (tmp_path / "cm.png").stat().st_size > 1000


def test_confusion_matrix_shows_itself_as_png_without_pyplot(frames):
    png = plot_confusion_matrix(Constant(), frames[1])._repr_png_()
    assert png.startswith(b"\x89PNG") and len(png) > 1000
