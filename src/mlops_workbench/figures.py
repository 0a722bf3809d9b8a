"""Figures that display themselves in JupyterLab and in papermill output, without pyplot.

Kept apart from the stages that compute numbers: matplotlib takes about 0.6 s to
import, which every ``evaluate`` stage process of a DVC pipeline would otherwise pay.
"""

from __future__ import annotations

import io

from matplotlib.figure import Figure  # a bare Figure needs no GUI backend


class NotebookFigure(Figure):
    """A Figure that shows itself as a PNG in JupyterLab and in papermill output, pyplot or not.

    Without pyplot no inline backend registers a display formatter, and a bare
    Figure would show as ``<Figure size ... with 1 Axes>``.
    """

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        return buffer.getvalue()
