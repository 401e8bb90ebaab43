"""Plots: the tutorial's comparison plot and a score histogram with a threshold line.

Both plot the model's scores, so both are emptied while ``state.hide_scores`` is on.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import QVBoxLayout, QWidget

from diascan import viewstate as vs
from diascan.qt.qt_frames import STATUS_STYLE


class QtPlots(QWidget):
    """Comparison plot (original vs original - recomputed) over a score histogram."""

    source_clicked = pyqtSignal(int)

    def __init__(self, state: vs.ViewerState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.sources: vs.SourceSet | None = None
        self.compare = pg.PlotWidget()
        self.compare.setLabel("bottom", "original reliability")
        self.compare.setLabel("left", "original - recomputed")
        self.compare.showGrid(x=True, y=True, alpha=0.3)
        for ax in ("left", "bottom"):
            self.compare.getAxis(ax).enableAutoSIPrefix(False)  # no "x 1e-3" rescaled labels
        self.points = pg.ScatterPlotItem(pxMode=True, hoverable=True)
        self.points.sigClicked.connect(self._clicked)
        self.compare.addItem(self.points)
        self.hist = pg.PlotWidget()
        self.hist.setLabel("bottom", "score")
        self.hist.setLabel("left", "N")
        self.bars = pg.PlotCurveItem(
            x=np.array([0.0, 1.0]), y=np.array([0.0]), stepMode="center", fillLevel=0,
            brush=(100, 150, 255, 120),
        )
        self.hist.addItem(self.bars)
        self.line = pg.InfiniteLine(
            pos=0.5, angle=90, movable=True, pen=pg.mkPen((255, 60, 60), width=2),
            bounds=(0.0, 1.0), label="threshold", labelOpts={"position": 0.9},
        )
        self.line.setVisible(False)
        self.line.sigPositionChangeFinished.connect(self._line_moved)
        self.hist.addItem(self.line)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.compare, 1)
        lay.addWidget(self.hist, 1)
        state.events.hide_scores.connect(self.refresh)
        state.events.threshold.connect(self._show_threshold)

    def set_sources(self, sources: vs.SourceSet) -> None:
        self.sources = sources
        self.refresh()

    def refresh(self) -> None:
        src = self.sources
        if src is None:
            return
        if self.state.hide_scores:  # labelling without seeing the model's opinion
            self.points.setData(spots=[])
            self.bars.setData(np.array([0.0, 1.0]), np.array([0.0]))
            return
        diff = src.original - src.score
        ok = np.isfinite(src.original) & np.isfinite(diff)
        spots = []
        for i in np.flatnonzero(ok):
            sym, col, size = STATUS_STYLE.get(str(src.status[i]), STATUS_STYLE["unmatched"])
            spots.append(
                {"pos": (src.original[i], diff[i]), "symbol": sym, "size": max(8, size - 4),
                 "pen": pg.mkPen(col), "brush": pg.mkBrush(*col, 150), "data": int(i)}
            )
        self.points.setData(spots=spots)
        vals = np.where(np.isfinite(src.score), src.score, src.original)
        vals = vals[np.isfinite(vals)]
        counts, edges = np.histogram(vals, bins=40, range=(0.0, 1.0))
        self.bars.setData(edges, counts)

    def _line_moved(self) -> None:
        if self.line.isVisible():
            self.state.threshold = float(self.line.value())

    def _show_threshold(self, value: float | None) -> None:
        """The line shows the threshold (hidden while it is off)."""
        self.line.setVisible(value is not None)
        if value is not None and abs(self.line.value() - value) > 1e-9:
            self.line.setValue(value)

    def _clicked(self, item, points, ev=None) -> None:
        if len(points):
            self.source_clicked.emit(int(points[0].data()))
