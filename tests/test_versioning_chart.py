"""Lab 02's chart of logged against reproduced metrics: readable labels, honest colours, clear errors."""

from __future__ import annotations

import itertools

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from mlops_workbench import versioning
from mlops_workbench.versioning.charts import LOGGED, MATCHED, MISMATCHED


def report(matched: bool, original: float = 0.12, reproduced: float | None = 0.12) -> versioning.ReproductionReport:
    metric = versioning.MetricComparison(
        name="log_loss",
        original=original,
        reproduced=reproduced,
        diff=None if reproduced is None else reproduced - original,
        matched=matched,
    )
    return versioning.ReproductionReport(
        run_id="r", commit="c", matched=matched, metrics=[metric], causes=[], reasons=[], workdir="/tmp", tolerance=1e-9
    )


RUNS = {"first run": report(True), "uncommitted tweak": report(False, reproduced=0.3), "tweak committed": report(True)}


def test_run_labels_never_overlap_and_stay_inside_the_figure():
    fig = versioning.reproduction_chart(RUNS)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    ax = fig.axes[0]
    labels = [t for t in ax.get_xticklabels() if t.get_text()]
    assert [t.get_text() for t in labels] == list(RUNS)
    boxes = [t.get_window_extent(renderer) for t in labels]
    assert not any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2))
    width = fig.get_figwidth() * fig.dpi
    assert all(0 <= b.x0 and b.x1 <= width for b in boxes)


def test_bars_show_logged_and_reproduced_in_the_verdicts_colours():
    ax = versioning.reproduction_chart(RUNS).axes[0]
    colours = [bar.get_facecolor()[:3] for bar in ax.patches]
    from matplotlib.colors import to_rgb

    assert colours == [to_rgb(c) for c in (LOGGED, MATCHED, LOGGED, MISMATCHED, LOGGED, MATCHED)]
    assert [round(bar.get_height(), 3) for bar in ax.patches][2:4] == [0.12, 0.3]


def test_an_unknown_metric_is_named_with_the_ones_there_are():
    with pytest.raises(KeyError, match="no metric 'accuracy'.*log_loss"):
        versioning.reproduction_chart(RUNS, metric="accuracy")
