"""The scanner's view on the real main window (offscreen, small demo, bundled model): the
gallery as the main view, real key presses through the action registry, the frames' zoom and
markers, the filter box's expressions, the source menu, the palette and the remaining-bogus
confirmation."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PyQt6.QtCore import QPoint, QPointF, Qt, QTimer  # noqa: E402
from PyQt6.QtWidgets import QApplication, QMessageBox  # noqa: E402

from diascan.session import Label, load_session  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture
def win(qtbot, small_demo_result, tmp_path, monkeypatch):
    """The main window on the small demo with a label controller (autosave in tmp_path)."""
    from diascan.qt.qt_labels import QtLabelController
    from diascan.qt.qt_main_window import QtMainWindow

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    w = QtMainWindow()
    qtbot.addWidget(w)
    w.show_errors_as_dialogs = False
    w.show()
    with qtbot.waitSignal(w.data_loaded, timeout=5000):
        w.set_result(small_demo_result)
    w.ctl = QtLabelController(w, session_path=tmp_path / "s.json")
    _activate(qtbot, w)
    yield w
    w.close()


def _activate(qtbot, w) -> None:
    """Shortcuts need the active window (a dialog may have had it)."""
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w, timeout=2000)


def _key(qtbot, w, key, mod=Qt.KeyboardModifier.NoModifier) -> None:
    """A real key press where the focus is (shortcuts decide what it does)."""
    qtbot.keyClick(QApplication.focusWidget() or w, key, mod)


def _grab(widget) -> np.ndarray:
    from PyQt6.QtGui import QImage

    img = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGBA8888)
    ptr = img.constBits()
    ptr.setsize(img.sizeInBytes())
    arr = np.frombuffer(ptr, np.uint8).reshape(img.height(), img.bytesPerLine() // 4, 4)
    return arr[:, : img.width()].copy()


def _gallery(qtbot, w):
    """Show the gallery with the G key; wait until its order is the table's."""
    _key(qtbot, w, Qt.Key.Key_G)
    assert w.gallery_shown() and w.actions["gallery"].isChecked()
    qtbot.waitUntil(lambda: list(w.gallery_state.order) == _table_rows(w), timeout=2000)
    return w.gallery_state


def _table_rows(w) -> list[int]:
    """Source rows the table shows, in its order."""
    p = w.proxy
    return [p.mapToSource(p.index(r, 0)).row() for r in range(p.rowCount())]


# --- the gallery in the window ----------------------------------------------------------------


def test_g_switches_views_and_the_gallery_takes_the_focus(qtbot, win):
    st = _gallery(qtbot, win)
    assert QApplication.focusWidget() is win.gallery
    assert st.selected_row == win.sources.index_of(win.state.selected_id)  # the target
    assert not win.actions["fit"].isEnabled() and win.actions["gallery.next_page"].isEnabled()
    _key(qtbot, win, Qt.Key.Key_G)
    assert not win.gallery_shown() and win.view_stack.currentWidget() is win.frames
    assert win.actions["fit"].isEnabled() and not win.actions["gallery.next_page"].isEnabled()


def test_tiles_follow_the_table_sort_and_filter(qtbot, win):
    from diascan.qt.qt_table import COL

    st = _gallery(qtbot, win)
    win.table.sortByColumn(COL["SNR"], Qt.SortOrder.DescendingOrder)
    qtbot.waitUntil(lambda: list(st.order) == _table_rows(win), timeout=2000)
    snr = win.sources.snr[list(st.order)]
    assert np.all(np.diff(snr) <= 0)
    assert win.set_filter("snr > 10 and status != 'unmatched'")
    keep = (win.sources.snr > 10) & (win.sources.status != "unmatched")
    assert sorted(st.order) == np.flatnonzero(keep).tolist()
    assert list(st.order) == _table_rows(win)
    assert win.frames.marker_count == int(keep.sum())  # the markers too: one mask
    # a filter that cannot be used says so in plain words; the last good one stays
    assert not win.set_filter("snr >")
    assert win.filter_error.isVisible() and "cannot read the filter" in win.filter_error.text()
    assert sorted(st.order) == np.flatnonzero(keep).tolist()
    assert not win.set_filter("sn > 3")
    assert "no column 'sn'" in win.filter_error.text() and "snr" in win.filter_error.text()
    assert win.set_filter("matched")  # a plain value: status == "matched", not "unmatched"
    assert set(win.sources.status[list(st.order)]) == {"matched"}
    assert not win.filter_error.isVisible()
    assert win.set_filter("")
    assert len(st.order) == len(win.sources)


def test_a_filter_on_labels_follows_the_labels(qtbot, win):
    assert win.set_filter("label == none")
    n = len(win.sources)
    first = win.displayed_source_ids()[0]
    win.ctl.label_source(first, "real")
    qtbot.waitUntil(lambda: win.proxy.rowCount() == n - 1, timeout=2000)
    assert first not in win.displayed_source_ids()
    qtbot.waitUntil(lambda: len(win.gallery_state.order) == n - 1, timeout=2000)
    assert win.frames.marker_count == n - 1


def test_keys_move_label_advance_and_flip_pages_in_the_gallery(qtbot, win):
    from diascan.gallery import ENLARGE_FACTOR  # noqa: F401 - the enlarged tile is 3x

    st = _gallery(qtbot, win)
    st.columns, st.rows = 4, 3  # a page smaller than the 33 sources (the widget refits)
    win.gallery.resize(700, 400)
    qtbot.waitUntil(lambda: st.page_count > 1, timeout=2000)
    store = win.ctl.session.current.labels
    _key(qtbot, win, Qt.Key.Key_Home)
    assert st.current == 0
    _key(qtbot, win, Qt.Key.Key_Right)
    assert st.current == 1 and win.selected_id() == int(win.sources.ids[st.order[1]])
    _key(qtbot, win, Qt.Key.Key_Down)
    assert st.current == 1 + st.columns
    _key(qtbot, win, Qt.Key.Key_Up)
    _key(qtbot, win, Qt.Key.Key_Left)
    assert st.current == 0
    ids = [int(win.sources.ids[r]) for r in st.order]
    for key, label in ((Qt.Key.Key_R, Label.REAL), (Qt.Key.Key_B, Label.BOGUS),
                       (Qt.Key.Key_U, Label.UNSURE)):
        before = st.current
        _key(qtbot, win, key)
        assert store.label(ids[before]) is label
        assert st.current == before + 1  # labelled and advanced to the next tile
    assert load_session(win.ctl.session_path).current.labels.label(ids[1]) is Label.BOGUS
    _key(qtbot, win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # undo
    assert store.label(ids[2]) is None
    page = st.page
    _key(qtbot, win, Qt.Key.Key_PageDown)
    assert st.page == page + 1
    _key(qtbot, win, Qt.Key.Key_PageUp)
    assert st.page == page
    _key(qtbot, win, Qt.Key.Key_End)
    assert st.current == len(st.order) - 1
    _key(qtbot, win, Qt.Key.Key_Z)  # enlarge in place
    assert st.enlarged
    _key(qtbot, win, Qt.Key.Key_Z)
    assert not st.enlarged
    zoom = st.zoom
    _key(qtbot, win, Qt.Key.Key_Plus)  # larger tiles; in the frames + zooms the frames
    assert st.zoom > zoom
    # Enter opens the selected tile in the frames, centred on it
    row = st.selected_row
    _key(qtbot, win, Qt.Key.Key_Return)
    assert not win.gallery_shown() and win.selected_id() == int(win.sources.ids[row])
    (xa, xb), (ya, yb) = win.frames.view_range()
    assert (xa + xb) / 2 == pytest.approx(win.sources.x[row], abs=1.0)
    assert (ya + yb) / 2 == pytest.approx(win.sources.y[row], abs=1.0)
    assert QApplication.focusWidget() is not win.filter_edit


def test_selection_is_shared_both_ways(qtbot, win):
    st = _gallery(qtbot, win)
    view = win.frames.view_range()
    x, y, w, h = win.gallery.grid.cell(2)
    qtbot.mouseClick(win.gallery, Qt.MouseButton.LeftButton, pos=QPoint(x + w // 2, y + h // 2))
    row = st.order[st.page_start + 2]
    assert win.selected_id() == int(win.sources.ids[row])
    assert win.table.source_row_of_current() == row
    assert win.frames.view_range() == view  # selected, not centred (the frames are hidden)
    other = int(win.sources.ids[st.order[-1]])
    win.select_source(other)  # the table, a go-to, the label keys: the gallery follows
    assert st.selected_row == win.sources.index_of(other)
    qtbot.mouseDClick(win.gallery, Qt.MouseButton.LeftButton,
                      pos=QPoint(*win.gallery.grid.cell(0)[:2]) + QPoint(8, 8))
    assert not win.gallery_shown()
    assert win.selected_id() == int(win.sources.ids[st.order[st.page_start]])


def test_stamps_follow_the_frames_toggle_and_size_in_the_gallery_and_the_dock(qtbot, win):
    from diascan.stamp_display import StampDisplay

    st = _gallery(qtbot, win)
    assert win.gallery.display == StampDisplay.per_tile() == win.cutouts.display
    _key(qtbot, win, Qt.Key.Key_T, Qt.KeyboardModifier.ShiftModifier)
    assert st.follow_frames and win.actions["stamps_follow_frames"].isChecked()
    want = StampDisplay.from_frames(win.state.frames)
    assert win.gallery.display == want and win.cutouts.display == want
    win.stretch_combo.setCurrentText("asinh")  # the toolbar: science's stretch
    assert win.gallery.display.science.stretch == "asinh"
    assert win.cutouts.display.science.stretch == "asinh"
    # ">" (an X server maps Shift+. to it; offscreen keys carry no layout: the bare key)
    _key(qtbot, win, Qt.Key.Key_Greater)
    assert st.stamp_size == 61 and win.cutouts.stamps.shape == (3, 61, 61)
    win.ctl.set_hide_scores(True)
    assert st.hide_scores


# --- the frames: fit, zoom, zoom to the source, markers, blink --------------------------------


def test_fit_zoom_and_zoom_to_the_source(qtbot, win):
    fr = win.frames
    sci = win.images["science"]
    _key(qtbot, win, Qt.Key.Key_Plus)
    (xa, xb), _ = fr.view_range()
    assert xb - xa < sci.shape[1] * 0.6
    _key(qtbot, win, Qt.Key.Key_F)  # fit: the whole image
    (xa, xb), (ya, yb) = fr.view_range()
    x0, y0, x1, y1 = sci.bbox
    assert xa <= x0 and xb >= x1 and ya <= y0 and yb >= y1
    width = xb - xa
    _key(qtbot, win, Qt.Key.Key_Minus)
    assert fr.view_range()[0][1] - fr.view_range()[0][0] == pytest.approx(2 * width, rel=0.01)
    win.set_source_scale(6.0)
    _key(qtbot, win, Qt.Key.Key_Z)
    row = win.sources.index_of(win.selected_id())
    (xa, xb), (ya, yb) = fr.view_range()
    assert (xa + xb) / 2 == pytest.approx(win.sources.x[row], abs=0.5)
    assert 1 / fr.pixel_size() == pytest.approx(6.0, rel=0.02)


def test_blink_centres_the_selected_source(qtbot, win):
    win.frames.zoom(4)
    row = win.sources.index_of(win.selected_id())
    win.frames.center_on(win.sources.x[row] + 100, win.sources.y[row] - 80)
    _key(qtbot, win, Qt.Key.Key_BracketRight)
    assert win.state.single and win.state.blink_index == 1
    (xa, xb), (ya, yb) = win.frames.view_range()
    assert (xa + xb) / 2 == pytest.approx(win.sources.x[row], abs=0.5)
    assert (ya + yb) / 2 == pytest.approx(win.sources.y[row], abs=0.5)


@pytest.mark.parametrize("scale", [1.0, 4.0, 16.0])
def test_markers_leave_the_centre_pixels_visible_and_m_hides_them(qtbot, win, scale):
    """Around a labelled, selected source (ring, score fill, selection ring, crosshair,
    label letter all drawn), the central pixels look the same with the markers off."""
    from diascan.qt.qt_frames import CLEAR_RADIUS, MIN_CLEAR_PX

    fr = win.frames
    row = win.sources.index_of(win.selected_id())
    win.ctl.label_source(win.selected_id(), "real")
    fr.zoom_to(float(win.sources.x[row]), float(win.sources.y[row]), scale)
    view = fr.views["difference"]
    qtbot.waitUntil(lambda: abs(1 / fr.pixel_size() - scale) < 0.05 * scale, timeout=2000)
    centre = view.mapFromScene(view.vb.mapViewToScene(QPointF(win.sources.x[row],
                                                              win.sources.y[row])))
    on = _grab(view)
    _key(qtbot, win, Qt.Key.Key_M)
    assert not fr.markers_visible and not win.actions["markers"].isChecked()
    off = _grab(view)
    assert np.any(on != off), "the markers drew nothing"
    r = int(max(MIN_CLEAR_PX, CLEAR_RADIUS * scale))  # a disc of the clear radius
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    disc = xx**2 + yy**2 <= r * r
    cy, cx = centre.y(), centre.x()
    patch_on = on[cy - r : cy + r + 1, cx - r : cx + r + 1][disc]
    patch_off = off[cy - r : cy + r + 1, cx - r : cx + r + 1][disc]
    assert np.array_equal(patch_on, patch_off)
    _key(qtbot, win, Qt.Key.Key_M)
    assert fr.markers_visible and np.array_equal(_grab(view), on)


# --- label remaining as bogus -------------------------------------------------------------


def _answer(button, seen: list) -> None:
    def click():
        box = QApplication.activeModalWidget()
        assert isinstance(box, QMessageBox)
        seen.append(box.text())
        box.button(button).click()

    QTimer.singleShot(0, click)


def test_remaining_bogus_always_asks_naming_the_count_and_is_one_undo(qtbot, win):
    store = win.ctl.session.current.labels
    win.ctl.label_source(int(win.sources.ids[0]), "real")
    n = len(win.sources) - 1
    seen: list[str] = []
    _answer(QMessageBox.StandardButton.Cancel, seen)
    win.actions["remaining_bogus"].trigger()  # the Session menu
    assert store.statistics().bogus == 0 and f"all {n} unlabelled" in seen[-1]
    button = next(b for b in win.ctl.panel.findChildren(type(win.rescore_all_btn))
                  if b.text().startswith("Remaining"))
    _answer(QMessageBox.StandardButton.Cancel, seen)
    button.click()  # the Labels panel's button asks as well
    assert store.statistics().bogus == 0 and len(seen) == 2
    _answer(QMessageBox.StandardButton.Yes, seen)
    button.click()
    assert store.statistics().bogus == n
    _activate(qtbot, win)
    _key(qtbot, win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert store.statistics().bogus == 0 and store.statistics().real == 1  # one undo step


# --- the source menu: position, archives ------------------------------------------------------


class _Browser:
    """Receives what QDesktopServices.openUrl would give the browser (no network)."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def open(self, url) -> None:
        self.urls.append(url.toString())


@pytest.fixture
def browser():
    from PyQt6.QtCore import QObject, pyqtSlot
    from PyQt6.QtGui import QDesktopServices

    class Handler(QObject):
        def __init__(self) -> None:
            super().__init__()
            self.seen = _Browser()

        @pyqtSlot("QUrl")
        def open(self, url) -> None:
            self.seen.open(url)

    handler = Handler()
    QDesktopServices.setUrlHandler("https", handler, "open")
    yield handler.seen
    QDesktopServices.unsetUrlHandler("https")


def test_source_menu_from_the_table_copies_and_opens_archives(qtbot, win, browser):
    from diascan import links

    k = 5
    idx = win.proxy.mapFromSource(win.table_model.index(k, 0))
    pos = win.table.visualRect(idx).center()
    win.table.customContextMenuRequested.emit(pos)
    menu = win.last_context_menu
    titles = [a.text() for a in menu.actions() if not a.isSeparator()]
    assert titles[:4] == ["Copy position", "Open in the Legacy Survey viewer", "Search SIMBAD",
                          "Search TNS"]
    assert "Label real" in titles and win.selected_id() == int(win.sources.ids[k])
    menu.close()
    ra, dec = float(win.sources.ra[k]), float(win.sources.dec[k])
    win.actions["copy_position"].trigger()
    assert QApplication.clipboard().text() == links.position_text(ra, dec)
    for action_id, build in (("open_legacy_survey", links.legacy_survey_url),
                             ("open_simbad", links.simbad_url), ("open_tns", links.tns_url)):
        win.actions[action_id].trigger()
        assert browser.urls[-1] == build(ra, dec)
    assert len(browser.urls) == 3


def test_right_click_on_a_marker_and_on_a_tile_opens_the_source_menu(qtbot, win):
    from PyQt6.QtTest import QTest

    k = 7
    fr = win.frames
    fr.zoom_to(float(win.sources.x[k]), float(win.sources.y[k]), 2.0)
    view = fr.views["science"]
    at = view.mapFromScene(view.vb.mapViewToScene(QPointF(win.sources.x[k], win.sources.y[k])))
    with qtbot.waitSignal(fr.source_menu_requested, timeout=2000) as sig:
        QTest.mouseClick(view.viewport(), Qt.MouseButton.RightButton, pos=at)
    assert sig.args[0] == k and win.selected_id() == int(win.sources.ids[k])
    win.last_context_menu.close()
    st = _gallery(qtbot, win)
    from PyQt6.QtGui import QContextMenuEvent

    x, y, w, h = win.gallery.grid.cell(1)
    event = QContextMenuEvent(QContextMenuEvent.Reason.Mouse, QPoint(x + w // 2, y + h // 2))
    QApplication.sendEvent(win.gallery, event)
    row = st.order[st.page_start + 1]
    assert win.selected_id() == int(win.sources.ids[row])
    assert win.last_context_menu.actions()[0].text() == "Copy position"
    win.last_context_menu.close()


# --- the colour-blind-safe palette ----------------------------------------------------------


def test_palette_drives_frames_gallery_table_and_region_export(qtbot, win, tmp_path):
    from diascan.palettes import get_palette, hex_color
    from diascan.qt import qt_session
    from diascan.qt.qt_table import COL

    okabe = get_palette("okabe-ito")
    win.actions["palette"].trigger()
    assert win.palette_name == "okabe-ito" and win.frames.colors is okabe
    assert win.gallery_state.palette == "okabe-ito"
    row = int(np.flatnonzero(win.sources.status == "matched")[0])
    colour = win.table_model.index(row, COL["status"]).data(Qt.ItemDataRole.ForegroundRole)
    assert (colour.red(), colour.green(), colour.blue()) == okabe.status_color("matched")
    pens = {p.pen().color().getRgb()[:3] for p in win.frames.views["science"].markers.points()}
    assert okabe.status_color("matched") in pens
    win.ctl.label_source(int(win.sources.ids[0]), "bogus")
    reg = tmp_path / "labels.reg"
    assert qt_session.export_to(win.ctl, reg) == 1
    assert hex_color(okabe.label_color("bogus")) in reg.read_text()
    win.actions["palette"].trigger()
    assert win.palette_name == "classic" and win.frames.colors is get_palette("classic")
