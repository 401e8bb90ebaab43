"""Cutout panel: the selected source's difference, science and template stamps (model input)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from diascan import viewstate as vs
from diascan.cutouts import cut_stamps

STAMP_TITLES = ("difference", "science", "template")


class QtCutouts(QWidget):
    """Three stamp views and a score line for one source."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.glw = pg.GraphicsLayoutWidget()
        self.glw.setBackground("k")
        self.items: list[pg.ImageItem] = []
        for k in range(len(STAMP_TITLES)):
            vb = self.glw.addViewBox(row=0, col=k)
            vb.setAspectLocked(True)
            vb.setMouseEnabled(False, False)
            item = pg.ImageItem(axisOrder="row-major")
            vb.addItem(item)
            self.items.append(item)
            self.glw.ci.layout.setColumnStretchFactor(k, 1)
        self.info = QLabel("no source selected")
        self.info.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.glw, 1)
        titles = QHBoxLayout()
        for title in STAMP_TITLES:
            t = QLabel(title)
            t.setAlignment(Qt.AlignmentFlag.AlignCenter)
            titles.addWidget(t, 1)
        lay.addLayout(titles)
        lay.addWidget(self.info)
        self.stamps: np.ndarray | None = None
        #: "Hide model scores while labelling": the text leaves out reliability and score.
        self.hide_scores = False
        self._shown: tuple[vs.SourceSet, int] | None = None

    def clear(self) -> None:
        self.stamps = None
        self._shown = None
        for item in self.items:
            item.clear()
        self.info.setText("no source selected")

    def set_hide_scores(self, on: bool) -> None:
        """Hide (or show again) the scores in the text of the shown source."""
        self.hide_scores = bool(on)
        if self._shown is not None and self.stamps is not None:
            self._show_info(*self._shown)

    def show_source(self, sources: vs.SourceSet, row: int, images: dict, size: int = 51) -> None:
        """Cut and show the stamps of source ``row`` exactly as the model sees them."""
        try:
            stamps = cut_stamps(
                sources.x[row : row + 1],
                sources.y[row : row + 1],
                images["difference"],
                images["science"],
                images["template"],
                size,
            )[0]
        except (ImportError, KeyError) as exc:
            self.info.setText(f"cutouts unavailable: {exc}")
            return
        self.stamps = stamps
        for k, item in enumerate(self.items):
            s = stamps[k]
            sym = k == 0
            lo, hi = vs.compute_levels(s, "99.5%", symmetric=sym) if s.any() else (0.0, 1.0)
            item.setImage(np.ascontiguousarray(s), levels=(lo, hi), autoLevels=False)
            item.getViewBox().setRange(xRange=(0, s.shape[1]), yRange=(0, s.shape[0]), padding=0)
        self._shown = (sources, row)
        self._show_info(sources, row)

    def _show_info(self, sources: vs.SourceSet, row: int) -> None:
        zero = " (outside the image: all-zero stamps)" if not self.stamps.any() else ""
        scores = (
            "scores hidden while labelling" if self.hide_scores else
            f"reliability {sources.original[row]:.4f}  recomputed {sources.score[row]:.4f}"
        )
        self.info.setText(
            f"id {sources.ids[row]}  {sources.status[row]}  SNR {sources.snr[row]:.1f}\n"
            f"{scores}{zero}"
        )
