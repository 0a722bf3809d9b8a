"""Charts of reproductions: what a run logged next to what its reproduction measured."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from mlops_workbench.versioning.reproduction import ReproductionReport

LOGGED, MATCHED, MISMATCHED = "#4c72b0", "#55a868", "#c44e52"


Comparison = Mapping[str, "tuple[float, float | None]"]
"""A reproduction as lab 02's learner returns it: metric name -> (logged, reproduced)."""


def _pairs(report: ReproductionReport | Comparison) -> tuple[dict[str, tuple[float, float | None]], bool]:
    """(metric -> (logged, reproduced), matched) of a package report or a learner's comparison."""
    if hasattr(report, "metrics") and hasattr(report, "matched"):
        return {m.name: (m.original, m.reproduced) for m in report.metrics}, bool(report.matched)
    pairs = {str(k): (float(v[0]), None if v[1] is None else float(v[1])) for k, v in dict(report).items()}
    return pairs, bool(pairs) and all(got == logged for logged, got in pairs.values())


def reproduction_chart(reports: Mapping[str, ReproductionReport | Comparison], metric: str = "log_loss") -> Figure:
    """One group of two bars per run (logged, reproduced): green where the reproduction matched, red where not.

    A report is the package's :class:`ReproductionReport` or a learner's ``{metric: (logged, reproduced)}``.

    Run names label the groups on the x axis, the two bar kinds are in the legend, so the labels never crowd.
    """
    import numpy as np
    from matplotlib.patches import Patch

    from mlops_workbench.figures import NotebookFigure

    fig = NotebookFigure(figsize=(7, 3.2))
    ax = fig.add_subplot()
    x = np.arange(len(reports))
    width = 0.38
    for i, (name, report) in enumerate(reports.items()):
        pairs, matched = _pairs(report)
        if metric not in pairs:
            raise KeyError(f"run '{name}' has no metric '{metric}'; it has {sorted(pairs)}")
        logged, reproduced = pairs[metric]
        ax.bar(x[i] - width / 2, logged, width, color=LOGGED)
        ax.bar(x[i] + width / 2, reproduced or 0.0, width, color=MATCHED if matched else MISMATCHED)
    ax.set_xticks(x, list(reports))
    ax.set_ylabel(f"{metric} (held-out)")
    ax.legend(
        handles=[
            Patch(color=LOGGED, label="logged"),
            Patch(color=MATCHED, label="reproduced: matched"),
            Patch(color=MISMATCHED, label="reproduced: differs"),
        ],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=False,
        fontsize=8,
    )
    fig.tight_layout()
    return fig
