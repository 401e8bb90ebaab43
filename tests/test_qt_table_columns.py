"""Every column of the pipeline's table reaches the table view: the default columns as they
were, the others (diaSourceId, visit, detector, pixel flags, ...) hidden until the user shows
them from the header's menu, kept by name across visits, scores hidden while labelling."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from types import SimpleNamespace  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from astropy.table import Table  # noqa: E402
from astropy.wcs import WCS  # noqa: E402

from diascan.io.images import ImageData  # noqa: E402

pytestmark = pytest.mark.gui
BIG = 170_000_000_000_000_001


def _image(n, seed):
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [n / 2, n / 2]
    w.wcs.cdelt = [-0.2 / 3600, 0.2 / 3600]
    rng = np.random.default_rng(seed)
    return ImageData(image=rng.normal(0, 1, (n, n)).astype(np.float32),
                     mask=np.zeros((n, n), np.int32), variance=np.ones((n, n), np.float32),
                     wcs=w, metadata={"visit": 2024120700123, "detector": 4})


def _result(extra_flag: bool = False):
    n = 80
    sci = _image(n, 1)
    x, y = np.array([20.0, 40.0, 60.0]), np.array([20.0, 40.0, 60.0])
    ra, dec = sci.wcs.pixel_to_world_values(x, y)
    det = Table({"id": [1, 2, 3], "x": x, "y": y, "ra": ra, "dec": dec, "snr": [9.0, 8, 7],
                 "psfFlux": [1e3, 2e3, 3e3], "original_reliability": [0.2, 0.6, 0.9],
                 "score": [np.nan] * 3, "status": ["matched", "unmatched", "matched"],
                 "diaSourceId": np.array([BIG, -1, 5], dtype=np.int64),
                 "pixelFlags_sat": [True, False, False], "psfFluxErr": [10.0, 20.0, 30.0]})
    if extra_flag:
        det["pixelFlags_edge"] = [False, True, False]
    return SimpleNamespace(science=sci, template=_image(n, 2), difference=_image(n, 3),
                           detections=det, missing=Table({"x": [], "y": []}))


@pytest.fixture
def win(qtbot):
    from diascan.qt.qt_main_window import QtMainWindow

    w = QtMainWindow()
    qtbot.addWidget(w)
    w.show_errors_as_dialogs = False
    w.set_result(_result())
    return w


def _headers(win, shown_only=True):
    m = win.table_model
    return [m.headerData(k, _horizontal()) for k in range(m.columnCount())
            if not (shown_only and win.table.isColumnHidden(k))]


def _horizontal():
    from PyQt6.QtCore import Qt

    return Qt.Orientation.Horizontal


def _cell(win, sid, name):
    m = win.table_model
    return m.index(win.sources.index_of(sid), m.column_of(name)).data()


def test_default_columns_stay_and_the_rest_is_there_hidden(win):
    from diascan.qt.qt_table import COLUMNS

    assert _headers(win) == [c.header for c in COLUMNS]
    every = _headers(win, shown_only=False)
    for name in ("diaSourceId", "visit", "detector", "pixelFlags_sat", "psfFluxErr"):
        assert name in every
    assert _cell(win, 1, "diaSourceId") == str(BIG) and _cell(win, 2, "diaSourceId") == ""
    assert _cell(win, 3, "visit") == "2024120700123" and _cell(win, 3, "detector") == "4"
    assert _cell(win, 1, "pixelFlags_sat") == "✓" and _cell(win, 2, "pixelFlags_sat") == ""


def test_shown_columns_follow_the_user_across_visits(win):
    table = win.table
    menu = table.column_menu()
    entries = {a.text(): a for a in menu.actions() if a.isCheckable()}
    flags = next(a.menu() for a in menu.actions() if a.menu() and a.text() == "Pixel flags")
    assert "diaSourceId" in entries and not entries["diaSourceId"].isChecked()
    entries["diaSourceId"].setChecked(True)  # the user ticks it
    next(a for a in flags.actions() if a.text() == "pixelFlags_sat").setChecked(True)
    entries["SNR"].setChecked(False)
    assert table.is_column_shown("diaSourceId") and table.is_column_shown("pixelFlags_sat")
    assert not table.is_column_shown("snr")
    win.set_result(_result(extra_flag=True))  # the next visit: a new model, the same choice
    assert table.is_column_shown("diaSourceId") and table.is_column_shown("pixelFlags_sat")
    assert not table.is_column_shown("snr") and not table.is_column_shown("pixelFlags_edge")
    assert table.is_column_shown("score")


def test_hidden_scores_win_over_the_choice_and_sorting(win):
    from PyQt6.QtCore import Qt

    from diascan.qt.qt_table import COL

    table = win.table
    table.sortByColumn(COL["score"], Qt.SortOrder.DescendingOrder)
    win.state.hide_scores = True
    assert not table.is_column_shown("score") and not table.is_column_shown("original_reliability")
    assert table.horizontalHeader().sortIndicatorSection() == COL["id"]
    table.set_column_shown("score", True)  # still hidden while labelling blind
    assert not table.is_column_shown("score")
    win.set_result(_result())
    assert not table.is_column_shown("score")
    win.state.hide_scores = False
    assert table.is_column_shown("score") and table.is_column_shown("original_reliability")


def test_sorting_a_column_with_missing_values(win):
    from PyQt6.QtCore import Qt

    col = win.table_model.column_of("diaSourceId")
    win.table.sortByColumn(col, Qt.SortOrder.AscendingOrder)
    assert win.displayed_source_ids() == [2, 3, 1]  # missing first, then exact 64-bit order
