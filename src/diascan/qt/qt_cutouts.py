"""Stamp dock: the selected source's science, template and difference stamps and a score line.

The stamps come from a :class:`diascan.stamps.StampSource` (a visit's :class:`VisitStamps`
unless one is given) and are painted with the same :class:`StampDisplay` settings as the gallery
(per-stamp zscale by default, or the frames' stretch and limits), in the frames' order.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from diascan import viewstate as vs
from diascan.cutouts import DEFAULT_SIZE, stamp_inside
from diascan.stamp_display import StampDisplay, render_triplet
from diascan.stamps import FRAME_ORDER, StampSource
from diascan.visit_stamps import VisitStamps

STAMP_TITLES = FRAME_ORDER


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
        #: The shown triplet: float32 (3, size, size) in FRAME_ORDER, NaN = no pixel.
        self.stamps: np.ndarray | None = None
        #: "Hide model scores while labelling": the text leaves out reliability and score.
        self.hide_scores = False
        #: Display size of the stamps (pixels of the image), independent of the model's input.
        self.stamp_size = DEFAULT_SIZE
        self.display = StampDisplay.per_tile()
        self._shown: tuple[vs.SourceSet, int] | None = None
        self._source: StampSource | None = None
        self._source_key: tuple | None = None
        self._outside = False

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

    def set_display(self, display: StampDisplay) -> None:
        """Paint with ``display`` (the gallery's settings) from now on, the shown source too."""
        self.display = display
        self._paint()

    def set_stamp_size(self, size: int) -> None:
        """Show ``size`` x ``size`` stamps (pixels of the image); re-cuts the shown source."""
        self.stamp_size = int(size)
        if self._shown is not None and self._source is not None:
            self._cut(*self._shown)

    def set_stamp_source(self, source: StampSource | None) -> None:
        """Take stamps from ``source`` (rows = the sources' rows); None: cut from the images."""
        self._source = source
        self._source_key = None if source is None else ("given", id(source))

    def _visit_source(self, sources: vs.SourceSet, images: dict) -> StampSource:
        key = ("visit", id(sources), *(id(images[n]) for n in FRAME_ORDER))
        if self._source is None or self._source_key != key:
            self._source = VisitStamps(images, sources.x, sources.y)
            self._source_key = key
        return self._source

    def show_source(self, sources: vs.SourceSet, row: int, images: dict,
                    size: int = DEFAULT_SIZE) -> None:
        """Show the display stamps of source ``row``; ``size`` is the model's input size (the
        text says when the model sees all-zero stamps because its box leaves the image)."""
        if images.get("science") is None and self._source_key is not None \
                and self._source_key[0] == "given":  # alerts: their own cutouts, no images
            self._outside = False
            self._cut(sources, row)
            return
        try:
            if self._source_key is None or self._source_key[0] != "given":
                self._visit_source(sources, images)
            sci = images["science"]
        except (KeyError, ValueError) as exc:
            self.info.setText(f"stamps unavailable: {exc}")
            return
        x, y = sources.x[row : row + 1], sources.y[row : row + 1]
        self._outside = not bool(stamp_inside(x, y, sci, size)[0])
        self._cut(sources, row)

    def _cut(self, sources: vs.SourceSet, row: int) -> None:
        t = self._source.triplet(row, self.stamp_size)
        self.stamps = np.stack([getattr(t, n) for n in FRAME_ORDER])
        self._shown = (sources, row)
        self._paint()
        self._show_info(sources, row)

    def _paint(self) -> None:
        if self.stamps is None:
            return
        rgba = render_triplet(self.stamps, self.display)
        for item, im in zip(self.items, rgba, strict=True):
            item.setImage(im, autoLevels=False)
            item.getViewBox().setRange(xRange=(0, im.shape[1]), yRange=(0, im.shape[0]),
                                       padding=0)

    def _show_info(self, sources: vs.SourceSet, row: int) -> None:
        zero = " (its box leaves the science image: the model sees all-zero stamps)" \
            if self._outside else ""
        scores = (
            "scores hidden while labelling" if self.hide_scores else
            f"reliability {sources.original[row]:.4f}  recomputed {sources.score[row]:.4f}"
        )
        self.info.setText(
            f"id {sources.ids[row]}  {sources.status[row]}  SNR {sources.snr[row]:.1f}\n"
            f"{scores}{zero}"
        )
