"""Test-only harness: the gallery widget alone on a pipeline result, in a window of a screen's
size, over the real source table (real ImageData, real detections). tests/test_qt_gallery.py
tests the widget in it; the main window (tests/test_qt_scanner.py, test_qt_layout.py, which
also takes the pictures) wires the same widget to the frames, the table and the labels.
"""

from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QMainWindow, QSplitter

from diascan import viewstate as vs
from diascan.gallery import GalleryState
from diascan.qt.qt_gallery import QtGallery
from diascan.qt.qt_table import QtSourceFilter, QtSourceTable, QtSourceTableModel
from diascan.visit_stamps import VisitStamps


class GalleryHarness(QMainWindow):
    """A window with the gallery over the source table, wired as the main window wires it."""

    def __init__(self, result, size: tuple[int, int]) -> None:
        super().__init__()
        self.sources = vs.SourceSet.from_table(result.detections)
        self.viewer_state = vs.ViewerState()
        images = {n: getattr(result, n) for n in vs.FRAMES}
        self.gallery_state = GalleryState(order=range(len(self.sources)))
        self.gallery = QtGallery(self.gallery_state)
        self.gallery.set_source(VisitStamps(images, self.sources.x, self.sources.y),
                                self.sources)
        self.table_model = QtSourceTableModel(self.sources)
        self.proxy = QtSourceFilter(self.viewer_state)
        self.proxy.setSourceModel(self.table_model)
        self.table = QtSourceTable(self.proxy)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.gallery)
        split.addWidget(self.table)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        self.setCentralWidget(split)
        self.statusBar().showMessage("gallery harness")
        # labels flow as they will in the window: the state asks, the sources change, the
        # tile repaints
        self.gallery_state.label_requested.connect(self.sources.set_label)
        self.sources.connect(lambda kind, rows: self.gallery.refresh_rows(rows))
        w, h = size
        self.resize(int(w * 0.9), int(h * 0.9))
