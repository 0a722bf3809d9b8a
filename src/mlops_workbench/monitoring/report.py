"""The drift report a learner opens in JupyterLab: one self-contained HTML file per window.

Verdicts first (the window, the reference it is measured against, every feature with its test, p-value, PSI,
thresholds and verdict), then one figure per feature: the share of training rows and of live rows in each
reference bin, and the same for the predicted classes. Figures are PNGs embedded in the page (base64): the file
loads nothing from anywhere, no script and no stylesheet, so it opens offline and in JupyterLab's HTML viewer.

Why not Evidently, the library the field uses (issue 27 asked to measure its cost first; measured on this project's
pins, 2 CPU cores): evidently 0.7.23, the newest release, resolves against ``requirements.lock`` but adds 22
packages and 168.8 MB (plotly 62.4 MB, statsmodels 41.9 MB, evidently 39.3 MB, faker 9.2 MB, nltk 6.3 MB, ...),
and it does not import with our pandas 3.1.1 (``ImportError: cannot import name 'infer_dtype_from_object' from
'pandas.core.dtypes.common'``). It works only with pandas < 3, a downgrade of our pin, and then takes 3.7-4.6 s to
import on top of pandas, scikit-learn and scipy. Every limit (< 60 MB, < 3 s, no downgrade) is broken, so the report
is drawn here from :class:`~mlops_workbench.monitoring.drift.DriftReport` with matplotlib, already a dependency.
"""

from __future__ import annotations

import base64
import html
import re
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_workbench.errors import InputError
from mlops_workbench.workbench import Workbench

if TYPE_CHECKING:
    from mlops_workbench.datastats import ReferenceStats
    from mlops_workbench.monitoring.drift import DriftReport, FeatureDrift
    from mlops_workbench.monitoring.estimate import AccuracyTable
    from mlops_workbench.monitoring.predictions import Window

_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.8em 0; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.drift { background: #fbd5d5; } .stable { background: #d9f2d9; }
figure { display: inline-block; margin: 0.5em; } figcaption { text-align: center; }
"""


def render(
    report: DriftReport, reference: ReferenceStats, window: Window, accuracy: AccuracyTable | None = None
) -> str:
    """The report as one HTML page (nothing is written)."""
    from mlops_workbench.monitoring.drift import PREDICTION

    frame = window.frame()
    verdict = "DRIFT" if report.drifted else "no drift"
    drifted = ", ".join(report.drifted_features) or "none"
    rows = "".join(_row(f) for f in report.features)
    figures = []
    for f in report.features:
        if f.feature == PREDICTION:
            live = frame[PREDICTION].astype(str).value_counts()
            classes = sorted(set(reference.prediction_counts) | set(live.index))
            total = sum(reference.prediction_counts.values())
            ref = [reference.prediction_counts.get(c, 0) / total for c in classes]
            now = [int(live.get(c, 0)) / len(frame) for c in classes]
            figures.append(_figure(f, classes, ref, now))
        else:
            from mlops_workbench.datastats import proportions

            stats = reference.feature(f.feature)
            bins = _bin_names(stats.edges)
            figures.append(
                _figure(f, bins, stats.proportions, proportions(frame[f.feature].to_numpy(dtype=float), stats.edges))
            )
    table = accuracy._repr_html_() if accuracy is not None else ""
    title = f"Drift of {report.model} version {report.version or '(any)'}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title><style>{_STYLE}</style></head>
<body>
<h1>{_e(title)}: {_e(verdict)}</h1>
<p>Window {_e(report.start.isoformat())} to {_e(report.end.isoformat())}: {report.rows} predictions, against
{report.reference_rows} training rows (data {_e(report.data_hash)}). A feature drifts when its test's p-value is
below alpha <em>and</em> its PSI reaches the PSI threshold. Drifted: <strong>{_e(drifted)}</strong>.</p>
<table><thead><tr><th>feature</th><th>test</th><th>statistic</th><th>p-value</th><th>alpha</th><th>PSI</th>
<th>PSI threshold</th><th>verdict</th></tr></thead><tbody>{rows}</tbody></table>
{"<h2>Accuracy: estimated and real</h2>" + table if table else ""}
<h2>Distributions: training reference and this window</h2>
{"".join(figures)}
</body></html>
"""


def write(
    wb: Workbench,
    report: DriftReport,
    reference: ReferenceStats,
    window: Window,
    accuracy: AccuracyTable | None = None,
    name: str | None = None,
) -> Path:
    """Write the report under the state folder's drift reports and return its path (``name``.html, by default
    ``drift-<model>-v<version>-<window end>.html``)."""
    stamp = report.end.astimezone(UTC).strftime("%Y%m%dT%H%M%S")
    name = name or f"drift-{report.model}-v{report.version or 'all'}-{stamp}"
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    if not safe.strip("._"):
        raise InputError(f"name={name!r} leaves no file name: use letters, digits, '.', '_' or '-'.")
    folder = wb.layout.drift_reports
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{safe}.html"
    path.write_text(render(report, reference, window, accuracy), encoding="utf-8")
    return path


def _e(text: object) -> str:
    return html.escape(str(text))


def _row(f: FeatureDrift) -> str:
    css, verdict = ("drift", "drift") if f.drifted else ("stable", "no drift")
    return (
        f'<tr class="{css}"><td>{_e(f.feature)}</td><td>{f.test}</td><td>{f.statistic:.4g}</td>'
        f"<td>{f.p_value:.3g}</td><td>{f.alpha:g}</td><td>{f.psi:.3f}</td><td>{f.psi_threshold:g}</td>"
        f"<td>{verdict}</td></tr>"
    )


def _bin_names(edges: list[float]) -> list[str]:
    bounds = ["-inf", *(f"{e:g}" for e in edges), "inf"]
    return [f"[{a}, {b})" for a, b in zip(bounds, bounds[1:], strict=False)]


def _figure(f: FeatureDrift, bins: list[str], reference: list[float], live: list[float]) -> str:
    import numpy as np

    from mlops_workbench.figures import NotebookFigure

    figure = NotebookFigure(figsize=(4.6, 3.0), layout="constrained")
    axes = figure.add_subplot()
    x = np.arange(len(bins))
    axes.bar(x - 0.2, reference, width=0.4, label="training reference", color="#7a9cc6")
    axes.bar(x + 0.2, live, width=0.4, label="this window", color="#d9534f" if f.drifted else "#5cb85c")
    axes.set_xticks(x, bins, rotation=30, ha="right", fontsize=7)
    axes.set_ylabel("share of rows")
    axes.set_title(f"{f.feature}: PSI {f.psi:.2f}, p {f.p_value:.2g}", fontsize=9)
    axes.legend(fontsize=7)
    png = base64.b64encode(figure._repr_png_()).decode("ascii")
    caption = f"{f.feature}: {'drift' if f.drifted else 'no drift'}"
    return (
        f'<figure><img alt="{_e(caption)}" src="data:image/png;base64,{png}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )
