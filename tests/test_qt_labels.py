"""Keyboard labelling on the real main window (offscreen): keys, notes, undo, toggles,
confirmation, preferences, autosave, resume, export and the locate-files dialog."""

from __future__ import annotations

import json
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from types import SimpleNamespace  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from astropy.table import Table  # noqa: E402
from astropy.wcs import WCS  # noqa: E402
from PyQt6.QtCore import Qt, QTimer  # noqa: E402
from PyQt6.QtWidgets import QApplication, QMessageBox  # noqa: E402

from diascan.io.images import ImageData  # noqa: E402
from diascan.session import Label, load_session  # noqa: E402

pytestmark = pytest.mark.gui
N = 8
IDS = list(range(100, 100 + N))


def _image(n, seed):
    rng = np.random.default_rng(seed)
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [n / 2, n / 2]
    w.wcs.cdelt = [-0.2 / 3600, 0.2 / 3600]
    img = rng.normal(0.0, 1.0, (n, n)).astype(np.float32)
    return ImageData(image=img, mask=np.zeros((n, n), np.int32),
                     variance=np.ones((n, n), np.float32), wcs=w)


@pytest.fixture(scope="module")
def result():
    n = 128
    sci = _image(n, 1)
    x = np.linspace(20, 100, N)
    y = np.linspace(30, 90, N)
    ra, dec = sci.wcs.pixel_to_world_values(x, y)
    det = Table({"id": np.array(IDS), "x": x, "y": y, "ra": ra, "dec": dec,
                 "snr": np.full(N, 9.0), "psfFlux": np.full(N, 1e3),
                 "original_reliability": np.linspace(0, 1, N), "score": np.linspace(1, 0, N),
                 "status": np.array(["matched"] * N)})
    return SimpleNamespace(science=sci, template=_image(n, 2), difference=_image(n, 3),
                           detections=det, missing=Table({"x": [], "y": []}))


@pytest.fixture(autouse=True)
def dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))


def make_window(qtbot, result):
    from diascan.qt.qt_main_window import QtMainWindow

    w = QtMainWindow()
    qtbot.addWidget(w)
    w.show_errors_as_dialogs = False
    w.show()
    with qtbot.waitSignal(w.data_loaded, timeout=5000):
        w.set_result(result)
    return w


@pytest.fixture
def win(qtbot, result):
    return make_window(qtbot, result)


@pytest.fixture
def ctl(win, tmp_path):
    from diascan.qt.qt_labels import QtLabelController

    c = QtLabelController(win, session_path=tmp_path / "s.json")
    win.select_source(IDS[0])
    win.table.setFocus()
    return c


def on_disk(ctl, sid):
    lab = load_session(ctl.session_path).current.labels
    return lab.label(sid), lab.note(sid)


def press(qtbot, widget, key, mod=Qt.KeyboardModifier.NoModifier):
    qtbot.keyClick(widget, key, mod)


def table_current_id(win) -> int:
    """The id in the row the table highlights."""
    from diascan.qt.qt_table import COL

    return int(win.proxy.index(win.table.currentIndex().row(), COL["id"]).data())


def test_label_keys_move_and_autosave(qtbot, win, ctl):
    store = ctl.session.current.labels
    press(qtbot, win.table, Qt.Key.Key_R)
    assert store.label(100) is Label.REAL
    assert win.selected_id() == 101  # advanced to the next unlabelled source
    assert on_disk(ctl, 100) == (Label.REAL, "")
    assert win.sources.labels[0] == "real"  # mirrored into the table/markers
    row = win.proxy.mapFromSource(win.table_model.index(0, 0)).row()
    from diascan.qt.qt_table import COL

    assert win.proxy.index(row, COL["label"]).data() == "real"
    # same keys with focus on the image frames; blink is on ]/[ so 'b' only labels
    win.frames.setFocus()
    press(qtbot, win.frames, Qt.Key.Key_B)
    assert store.label(101) is Label.BOGUS and win.selected_id() == 102
    assert win.state.blink_index == 0 and win.actions.keys_text("blink_forward") == "]"
    press(qtbot, win.frames, Qt.Key.Key_U)
    assert store.label(102) is Label.UNSURE
    press(qtbot, win.table, Qt.Key.Key_Left)
    assert win.selected_id() == 102
    press(qtbot, win.table, Qt.Key.Key_P)
    assert win.selected_id() == 101
    press(qtbot, win.table, Qt.Key.Key_0)
    assert store.label(101) is None
    press(qtbot, win.table, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert store.label(101) is Label.BOGUS and on_disk(ctl, 101)[0] is Label.BOGUS
    press(qtbot, win.table, Qt.Key.Key_Space)
    assert win.selected_id() == 103  # next unlabelled
    press(qtbot, win.table, Qt.Key.Key_N)
    assert win.selected_id() == 104
    st = store.statistics()
    assert (st.real, st.bogus, st.unsure) == (1, 1, 1)
    assert "real 1 · bogus 1 · unsure 1" in ctl.stats.text.text()
    assert ctl.stats.bar.value() == 3


def test_a_new_session_labels_the_source_the_window_selected(qtbot, result, tmp_path):
    """The window starts on the known transient (status 'target'): R labels it at once."""
    from diascan.qt.qt_labels import QtLabelController

    det = result.detections.copy()
    det["status"][3] = "target"
    w = make_window(qtbot, SimpleNamespace(**{**vars(result), "detections": det}))
    assert w.selected_id() == IDS[3]
    ctl = QtLabelController(w, session_path=tmp_path / "s.json")
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w, timeout=3000)
    press(qtbot, w.table, Qt.Key.Key_R)
    assert ctl.session.current.labels.label(IDS[3]) is Label.REAL
    assert on_disk(ctl, IDS[3]) == (Label.REAL, "")


def test_text_fields_keep_typed_keys(qtbot, win, ctl):
    win.filter_edit.setFocus()
    qtbot.keyClicks(win.filter_edit, "rb u0")
    assert win.filter_edit.text() == "rb u0"
    assert ctl.session.current.labels.statistics().labelled == 0


def test_note_editor(qtbot, win, ctl):
    win.select_source(103)
    press(qtbot, win.table, Qt.Key.Key_E)
    assert ctl.note_edit.hasFocus()
    qtbot.keyClicks(ctl.note_edit, "dipole, real?")
    press(qtbot, ctl.note_edit, Qt.Key.Key_Return)
    assert ctl.session.current.labels.note(103) == "dipole, real?"
    assert on_disk(ctl, 103) == (None, "dipole, real?")
    assert not ctl.note_edit.hasFocus()
    assert ctl.session.current.labels.label(103) is None  # the 'r' typed was text, not a label


def _answer(button):
    def click():
        box = QApplication.activeModalWidget()
        assert isinstance(box, QMessageBox)
        box.button(button).click()

    QTimer.singleShot(0, click)


def test_label_remaining_bogus_asks_first(qtbot, win, ctl):
    store = ctl.session.current.labels
    press(qtbot, win.table, Qt.Key.Key_R)
    _answer(QMessageBox.StandardButton.Cancel)
    assert ctl.label_remaining_bogus() == 0
    assert store.statistics().bogus == 0
    _answer(QMessageBox.StandardButton.Yes)
    assert ctl.label_remaining_bogus() == N - 1
    assert store.statistics().bogus == N - 1 and store.label(100) is Label.REAL
    assert load_session(ctl.session_path).current.labels.statistics().bogus == N - 1
    win.activateWindow()  # shortcuts need the active window; the message box had it
    qtbot.waitUntil(lambda: QApplication.activeWindow() is win, timeout=2000)
    press(qtbot, win.table, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert store.statistics().bogus == 0


def test_hide_scores_and_labelled(qtbot, win, ctl):
    from diascan.qt.qt_table import COL

    win.actions["hide_scores"].trigger()
    assert win.table.isColumnHidden(COL["score"]) and win.table.isColumnHidden(COL["reliability"])
    assert ctl.hide_scores_check.isChecked()
    assert load_session(ctl.session_path).view_settings["hide_scores"] is True
    press(qtbot, win.table, Qt.Key.Key_R)
    ctl.hide_labelled_check.setChecked(True)
    assert win.proxy.rowCount() == N - 1  # filtered out by the proxy, not setRowHidden
    press(qtbot, win.table, Qt.Key.Key_B)  # labels 101, which then disappears
    assert win.proxy.rowCount() == N - 2
    shown = {int(win.proxy.index(r, 0).data()) for r in range(win.proxy.rowCount())}
    assert 100 not in shown and 101 not in shown
    win.table.sortByColumn(COL["score"], Qt.SortOrder.AscendingOrder)  # still right re-sorted
    assert win.proxy.rowCount() == N - 2 and win.selected_id() == 102
    qtbot.waitUntil(lambda: win.frames.marker_count == N - 2, timeout=2000)  # markers go too
    ctl.set_hide_scores(False)
    assert not win.table.isColumnHidden(COL["score"])


def test_hide_scores_hides_them_in_tooltips_cutouts_and_plots(qtbot, win, ctl):
    from PyQt6.QtCore import QPointF

    qtbot.waitExposed(win)
    view = win.frames.views["science"]
    k = 3
    win.select_source(IDS[k])
    moves = []

    def hover_tip() -> str:
        # A real mouse move over the marker; pyqtgraph drops moves closer than 10 ms, so
        # waitUntil retries, 1 px to and fro (Qt drops a move to where the mouse already is).
        moves.append(1)
        x, y = win.sources.x[k] + len(moves) % 2, win.sources.y[k]
        qtbot.mouseMove(view.viewport(), view.mapFromScene(view.vb.mapViewToScene(QPointF(x, y))))
        return view.vb.toolTip()

    plain = f"id {IDS[k]}  matched\nSNR 9.0"
    qtbot.waitUntil(lambda: hover_tip().startswith(plain + "  reliability"), timeout=3000)
    assert "recomputed" in win.cutouts.info.text()
    assert len(win.plots.points.getData()[0]) == N
    ctl.hide_scores_check.setChecked(True)  # the check box of the Labels dock
    info = win.cutouts.info.text()
    assert "reliability" not in info and "recomputed" not in info and f"id {IDS[k]}" in info
    qtbot.waitUntil(lambda: hover_tip() == plain, timeout=3000)
    assert len(win.plots.points.getData()[0]) == 0 and win.plots.bars.yData.sum() == 0
    assert win.state.hide_scores
    win.select_source(IDS[k + 1])  # a newly selected source does not show them either
    assert "recomputed" not in win.cutouts.info.text()
    ctl.hide_scores_check.setChecked(False)
    assert not win.state.hide_scores and "recomputed" in win.cutouts.info.text()
    assert len(win.plots.points.getData()[0]) == N


def test_moves_follow_the_table_filter_and_sort(qtbot, win, ctl):
    """n / p / Space and the move after a label step through the rows the table shows."""
    from diascan.qt.qt_table import COL

    store = ctl.session.current.labels
    win.select_source(104)
    win.sources.set_scores([4], [0.0])
    win.state.threshold = 0.1  # hides 104 (selected) and 107 (score 0)
    shown = [int(win.proxy.index(r, COL["id"]).data()) for r in range(win.proxy.rowCount())]
    assert shown == [100, 101, 102, 103, 105, 106]
    press(qtbot, win.table, Qt.Key.Key_N)  # from a hidden row: the next one shown
    assert win.selected_id() == 105 and table_current_id(win) == 105
    press(qtbot, win.table, Qt.Key.Key_P)
    assert win.selected_id() == 103 and table_current_id(win) == 103  # not the hidden 104
    press(qtbot, win.table, Qt.Key.Key_B)
    assert store.label(103) is Label.BOGUS and store.label(104) is None
    assert win.selected_id() == 105  # the next unlabelled row shown
    press(qtbot, win.table, Qt.Key.Key_N)
    assert win.selected_id() == 106
    press(qtbot, win.table, Qt.Key.Key_N)
    assert win.selected_id() == 106  # the last row shown (107 is hidden)
    # sorted by score: 106, 105, 103, 102, 101, 100
    win.table.sortByColumn(COL["score"], Qt.SortOrder.AscendingOrder)
    press(qtbot, win.table, Qt.Key.Key_N)
    assert win.selected_id() == 105 and table_current_id(win) == 105
    press(qtbot, win.table, Qt.Key.Key_Space)  # next unlabelled: 103 is labelled
    assert win.selected_id() == 102
    press(qtbot, win.table, Qt.Key.Key_P)
    assert win.selected_id() == 103
    win.filter_edit.setText("id in (100, 102)")  # the filter box counts too
    assert win.displayed_source_ids() == [102, 100]  # sorted by score
    win.table.setFocus()
    press(qtbot, win.table, Qt.Key.Key_P)  # from the hidden 103: the one before it shown
    assert win.selected_id() == 102
    press(qtbot, win.table, Qt.Key.Key_N)
    assert win.selected_id() == 100


def test_resume_restores_labels_selection_and_view(qtbot, result, win, ctl):
    from diascan.qt.qt_labels import QtLabelController

    press(qtbot, win.table, Qt.Key.Key_R)
    press(qtbot, win.table, Qt.Key.Key_U)
    win.state.single = True
    win.frames.center_on(60.0, 60.0, half_width=15.0)  # zoomed in: the width is restored
    ctl.set_hide_scores(True)  # saves, with the view
    win.select_source(105)
    ctl.trigger("label_bogus")
    path = ctl.session_path
    win.close()
    w2 = make_window(qtbot, result)
    assert w2.state.single is False
    assert w2.frames.view_range()[0][1] - w2.frames.view_range()[0][0] > 100
    c2 = QtLabelController(w2, session=load_session(path), session_path=path)
    assert list(w2.sources.labels[:2]) == ["real", "unsure"] and w2.sources.labels[5] == "bogus"
    assert w2.selected_id() == 106
    assert w2.state.single is True
    (xa, xb), (ya, yb) = w2.frames.view_range()
    # the aspect is locked, so a view of another shape widens one axis to keep the zoom
    assert min(xb - xa, yb - ya) == pytest.approx(30.0, abs=0.5)
    x, y = w2.sources.x[w2.sources.index_of(106)], w2.sources.y[w2.sources.index_of(106)]
    assert (xa + xb) / 2 == pytest.approx(x, abs=0.5) and (ya + yb) / 2 == pytest.approx(y, abs=0.5)
    assert c2.hide_scores_check.isChecked()


def test_key_preferences_are_remapped_and_persisted(qtbot, win, ctl):
    from diascan.qt.qt_prefs import QtKeyPrefsDialog
    from diascan.session.keymap import KeyMap, default_keys_path

    dlg = QtKeyPrefsDialog(win.actions.keymap, parent=win)
    qtbot.addWidget(dlg)
    dlg.edits["label_real"].setText("B")
    dlg.accept()
    assert "key B is bound to" in dlg.error_label.text() and not default_keys_path().exists()
    dlg.edits["label_real"].setText("1")
    dlg.accepted.connect(lambda: win.actions.set_keymap(dlg.keymap))
    with qtbot.waitSignal(dlg.accepted, timeout=1000):
        dlg.accept()
    assert KeyMap.load().keys_for("label_real") == ["1"]
    press(qtbot, win.table, Qt.Key.Key_R)
    assert ctl.session.current.labels.label(100) is None
    press(qtbot, win.table, Qt.Key.Key_1)
    assert ctl.session.current.labels.label(100) is Label.REAL


def test_cheat_sheet_on_question_mark(qtbot, win, ctl):
    press(qtbot, win.table, Qt.Key.Key_Question)
    sheet = win.cheat_sheet
    qtbot.addWidget(sheet)
    assert sheet.isVisible()
    texts = [sheet.table.item(r, 1).text() for r in range(sheet.table.rowCount())]
    assert "N, Right" in texts and "Ctrl+Z" in texts


def test_export_asks_before_replacing(qtbot, win, ctl, tmp_path):
    from diascan.qt.qt_session import export_png, export_to

    press(qtbot, win.table, Qt.Key.Key_R)
    out = tmp_path / "labels.ecsv"
    assert export_to(ctl, out) == 1
    out.write_text("keep")
    _answer(QMessageBox.StandardButton.No)
    assert export_to(ctl, out) is None and out.read_text() == "keep"
    _answer(QMessageBox.StandardButton.Yes)
    assert export_to(ctl, out) == 1 and len(Table.read(out)) == 1
    png = export_png(win.frames, tmp_path / "view.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_locate_moved_files_dialog(qtbot, tmp_path):
    from diascan.qt.qt_session import QtLocateFilesDialog
    from diascan.session import Session, SourceRecord, VisitEntry

    f = tmp_path / "diff.fits"
    f.write_bytes(b"difference image bytes")
    s = Session(visits=[VisitEntry.create([SourceRecord(id=1)], difference=f)])
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    f.rename(moved / "diff.fits")
    dlg = QtLocateFilesDialog(s)
    qtbot.addWidget(dlg)
    with qtbot.waitSignal(dlg.checked, timeout=5000):
        pass  # the first check runs in a worker
    assert dlg.list.count() == 1 and "missing" in dlg.list.item(0).text()
    with qtbot.waitSignal(dlg.checked, timeout=5000):
        dlg.search_folder(moved)
    assert dlg.found == 1 and dlg.list.count() == 0
    assert s.current.difference.path == str((moved / "diff.fits").resolve())
    json.dumps(s.current.difference.to_json())


def test_export_dialog_options_choose_labels_and_region_frame(qtbot, win, ctl, tmp_path):
    """File > Export asks which labels (unlabelled too), which visits and the regions' frame."""
    from regions import Regions

    from diascan.qt.qt_session import QtExportOptions, export_dialog

    press(qtbot, win.table, Qt.Key.Key_R)
    press(qtbot, win.table, Qt.Key.Key_B)
    n = len(win.sources)
    out = tmp_path / "picked.ecsv"
    opts = QtExportOptions(ctl.session, out, win)
    qtbot.addWidget(opts)
    assert {k for k, cb in opts.label_checks.items() if cb.isChecked()} == {
        "real", "bogus", "unsure"}  # fmt: skip
    assert not opts.frame_combo.isEnabled()  # a table has no region frame
    for name in opts.label_checks:
        opts.label_checks[name].setChecked(False)
    ok = opts.buttons.button(opts.buttons.StandardButton.Ok)
    assert not ok.isEnabled()  # nothing to export
    opts.label_checks["bogus"].setChecked(True)
    opts.label_checks["unlabelled"].setChecked(True)
    assert ok.isEnabled()
    assert export_dialog(ctl, out, opts) == n - 1
    table = Table.read(out)
    labels = [str(v) for v in table["label"].filled("")] if hasattr(table["label"], "filled") \
        else [str(v) for v in table["label"]]  # fmt: skip
    assert len(table) == n - 1 and labels.count("bogus") == 1
    assert set(labels) <= {"bogus", ""} and "real" not in labels

    reg = tmp_path / "picked.reg"
    opts = QtExportOptions(ctl.session, reg, win)
    qtbot.addWidget(opts)
    assert opts.frame_combo.isEnabled()
    opts.frame_combo.setCurrentText("fk5")
    opts.current_visit.setChecked(True)
    assert opts.visits() == [0]
    assert export_dialog(ctl, reg, opts) == 2
    regions = Regions.read(str(reg), format="ds9")
    assert len(regions) == 2 and all(r.center.frame.name == "fk5" for r in regions)


# --- the action registry in the window (issue 13 point 2) ------------------------------------


def test_every_registered_action_is_a_bound_qaction_in_its_menu(win, ctl):
    from diascan.actions import ACTIONS, MENUS

    assert [m.text() for m in win.menuBar().actions()] == list(MENUS.values())
    for a in ACTIONS:
        act = win.actions[a.id]
        assert act.text() == a.title and win.actions.is_bound(a.id), f"{a.id} not bound"
        # the gallery's actions are live while it is shown, the frames' while they are
        assert act.isEnabled() == (a.context != "gallery"), a.id
        assert [s.toString() for s in act.shortcuts()] == list(a.keys), a.id
        if a.menu is not None:
            assert act in win.actions.menus[a.menu].actions(), a.id
    win.show_gallery(True)
    for a in ACTIONS:
        assert win.actions[a.id].isEnabled() == (a.context != "frames"), a.id
    # menu order is registry order
    file_items = [x.text() for x in win.file_menu.actions() if not x.isSeparator()]
    assert file_items == [a.title for a in ACTIONS if a.menu == "File"]


def test_cheat_sheet_and_remapping_dialog_cover_every_action(qtbot, win, ctl):
    from diascan.actions import ACTIONS
    from diascan.qt.qt_prefs import QtKeyPrefsDialog
    from diascan.session.keymap import default_keys_path

    press(qtbot, win.table, Qt.Key.Key_Question)
    sheet = win.cheat_sheet
    qtbot.addWidget(sheet)
    assert [sheet.table.item(r, 0).text() for r in range(sheet.table.rowCount())] == [
        a.title for a in ACTIONS]
    sheet.close()
    dlg = QtKeyPrefsDialog(win.actions.keymap, parent=win)
    qtbot.addWidget(dlg)
    assert list(dlg.edits) == [a.id for a in ACTIONS]
    dlg.edits["blink_forward"].setText("], .")  # a view key, not only labelling ones
    dlg.accepted.connect(lambda: win.actions.set_keymap(dlg.keymap))
    with qtbot.waitSignal(dlg.accepted, timeout=1000):
        dlg.accept()
    saved = json.loads(default_keys_path().read_text())
    assert saved == {"version": 2, "overrides": {"blink_forward": ["]", "."]}}
    press(qtbot, win.table, Qt.Key.Key_Period)
    assert win.state.single and win.state.blink_index == 1


def test_a_clash_in_the_key_file_is_reported_not_dropped(qtbot, result, tmp_path):
    from diascan.session.keymap import default_keys_path

    path = default_keys_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": 1, "bindings": {"label_real": ["T"]}}))
    from diascan.qt.qt_main_window import QtMainWindow

    w = QtMainWindow()
    qtbot.addWidget(w)
    w.show_errors_as_dialogs = False
    with qtbot.waitSignal(w.error_shown, timeout=2000) as sig:
        w.show()
    assert "key T is bound to label_real" in sig.args[0] and "Single/triple frame" in sig.args[0]
    assert w.actions.keys_text("toggle_single") == "" and w.actions.keys_text("label_real") == "T"


def _activate(qtbot, w):
    w.activateWindow()  # focus moves (the bug this pins) happen in the active window only
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w, timeout=3000)


def test_blink_keys_never_move_the_focus_nor_type_into_the_filter(qtbot, win, ctl):
    """Real key presses: ] from the table, from a frame and from the filter box blinks, the
    focus stays where it was (within the frames for a frame) and the table keeps its rows."""
    _activate(qtbot, win)
    rows = win.proxy.rowCount()
    win.table.setFocus()
    press(qtbot, win.table, Qt.Key.Key_BracketRight)
    assert win.state.single and win.state.blink_index == 1
    assert QApplication.focusWidget() is win.table
    win.state.single = False
    view = win.frames.views["science"]
    view.setFocus()
    assert QApplication.focusWidget() is view
    for k in (2, 0, 1):  # the first press hides the focused frame: focus stays in the frames
        press(qtbot, QApplication.focusWidget(), Qt.Key.Key_BracketRight)
        assert win.state.blink_index == k
        focus = QApplication.focusWidget()
        assert focus is win.frames or win.frames.isAncestorOf(focus), focus
    assert win.filter_edit.text() == "" and win.proxy.rowCount() == rows
    win.filter_edit.setFocus()
    press(qtbot, win.filter_edit, Qt.Key.Key_BracketLeft)
    assert win.state.blink_index == 0 and win.filter_edit.text() == ""
    assert QApplication.focusWidget() is win.filter_edit and win.proxy.rowCount() == rows
    qtbot.keyClicks(win.filter_edit, "10")  # typing still types
    assert win.filter_edit.text() == "10"
