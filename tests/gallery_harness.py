"""Test-only harness: the gallery on a pipeline result, in a window of a screen's size.

Shows the real gallery (real ImageData, real detections, the real source table below it) the
way the main window will, and takes a picture. Used by tests/test_qt_gallery.py; run it by
hand to look at the gallery: ``QT_QPA_PLATFORM=offscreen .venv/bin/python -m tests.gallery_harness
OUT_DIR`` writes ``gallery-1920x1080.png`` and ``gallery-1366x768.png`` for the small demo.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QMainWindow, QSplitter

from diascan import viewstate as vs
from diascan.gallery import GalleryState
from diascan.qt.qt_gallery import QtGallery
from diascan.qt.qt_table import QtSourceFilter, QtSourceTable, QtSourceTableModel
from diascan.visit_stamps import VisitStamps

#: Window sizes of the two screens the issue names (the window takes 90 % of the screen).
SCREENS = {"1920x1080": (1920, 1080), "1366x768": (1366, 768)}


class GalleryHarness(QMainWindow):
    """A window with the gallery over the source table, wired as the main window will be."""

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


def screenshot(result, name: str, out_dir: Path) -> Path:
    """Show the harness at screen ``name`` (:data:`SCREENS`) and save a PNG of it."""
    from diascan.qt.app import get_app

    app = get_app()
    win = GalleryHarness(result, SCREENS[name])
    win.show()
    app.processEvents()
    path = Path(out_dir) / f"gallery-{name}.png"
    win.grab().save(str(path))
    win.close()
    win.deleteLater()
    app.processEvents()
    return path


def main(out_dir: str) -> None:
    from diascan.demo import cached_demo
    from diascan.inputs import guess_roles, pipeline_inputs
    from diascan.pipeline import read_target, run_pipeline

    folder = Path(cached_demo(small=True))
    files = guess_roles([folder])
    files["target"] = read_target(folder / "target.json")
    result = run_pipeline(pipeline_inputs(files), score=True)
    for name in SCREENS:
        print(screenshot(result, name, Path(out_dir)))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
