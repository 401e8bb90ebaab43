"""The real main window, offscreen: load, select, sync, rescore in a job, blink, stretch."""

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

N_SOURCES = 40


def _image(n: int, seed: int, stars: np.ndarray) -> ImageData:
    rng = np.random.default_rng(seed)
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [n / 2, n / 2]
    w.wcs.cdelt = [-0.2 / 3600, 0.2 / 3600]
    img = rng.normal(0.0, 1.0, (n, n)).astype(np.float32)
    yy, xx = np.mgrid[:n, :n]
    for x, y in stars:
        img += 50 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 8.0).astype(np.float32)
    img[5, 5] = np.nan
    mask = np.zeros((n, n), np.int32)
    mask[:8] |= 1 << 4  # EDGE
    mask[100:104, 100:104] |= 1 << 1  # SAT
    return ImageData(image=img, mask=mask, variance=np.ones((n, n), np.float32), wcs=w)


@pytest.fixture(scope="module")
def result():
    """A pipeline-like result on real ImageData and an astropy Table."""
    n = 384
    rng = np.random.default_rng(5)
    x = rng.uniform(30, n - 30, N_SOURCES)
    y = rng.uniform(30, n - 30, N_SOURCES)
    x[-1], y[-1] = 3.0, 3.0  # on the border: all-zero stamps
    stars = np.column_stack([x, y])
    sci, tmpl, diff = _image(n, 1, stars), _image(n, 2, stars[5:]), _image(n, 3, stars[:5])
    ra, dec = sci.wcs.pixel_to_world_values(x, y)
    status = np.array(["matched"] * N_SOURCES, dtype="U9")
    status[:6] = "unmatched"
    status[7] = "target"
    det = Table(
        {
            "id": np.arange(100, 100 + N_SOURCES),
            "x": x,
            "y": y,
            "ra": ra,
            "dec": dec,
            "snr": rng.uniform(5, 50, N_SOURCES),
            "psfFlux": rng.uniform(1e3, 1e4, N_SOURCES),
            "original_reliability": rng.uniform(0, 1, N_SOURCES),
            "score": np.full(N_SOURCES, np.nan),
            "status": status,
        }
    )
    missing = Table({"x": [50.0, 60.0], "y": [300.0, 310.0]})
    return SimpleNamespace(science=sci, template=tmpl, difference=diff, detections=det,
                           missing=missing)


@pytest.fixture(scope="module")
def bundled_dir():
    """The bundled model package (in the repository: these tests need no ../shared)."""
    from diascan.models import DEFAULT_MODEL_NAME
    from diascan.models.package import resolve_package_path

    return resolve_package_path(DEFAULT_MODEL_NAME)


@pytest.fixture(scope="module")
def model(bundled_dir):
    from diascan.models import load_model

    return load_model(bundled_dir)


@pytest.fixture(params=["bundled", "dp1"])
def reference_package(request, bundled_dir):
    """A TACCNN package for the reference checks: the bundled one, and the real DP1 one from
    ../shared (skipped, or failed in CI, without it)."""
    return bundled_dir if request.param == "bundled" else request.getfixturevalue("dp1_model_dir")


@pytest.fixture
def win(qtbot, result, model):
    from diascan.qt.qt_main_window import QtMainWindow

    w = QtMainWindow()
    qtbot.addWidget(w)
    w.show_errors_as_dialogs = False
    w.set_models({"bundled": model}, "bundled")
    w.show()
    with qtbot.waitSignal(w.data_loaded, timeout=5000):
        w.set_result(result)
    yield w
    w.cancel_work()
    w.wait_idle()


def _row_of_current(w) -> int:
    return w.proxy.mapToSource(w.table.currentIndex()).row()


def _viewport_pos(view, x: float, y: float):
    """Where parent pixel (x, y) of a frame view is on its viewport (for mouse events)."""
    from PyQt6.QtCore import QPointF

    return view.mapFromScene(view.vb.mapViewToScene(QPointF(x, y)))


def test_window_shows_frames_markers_table(win, result):
    assert win.table_model.rowCount() == N_SOURCES
    assert win.frames.marker_count == N_SOURCES + 2  # detections + catalog-only rows
    for name in ("science", "template", "difference"):
        item = win.frames.views[name].images[0]
        assert item.image.dtype == np.float32 and item.image.flags.c_contiguous
        assert np.isfinite(item.image).all()
    from diascan.qt.qt_frames import marker_symbol

    symbols = {id(p.symbol()) for p in win.frames.views["difference"].markers.points()}
    shapes = {id(marker_symbol(s)) for s in ("matched", "unmatched", "target", "missing")}
    assert len(shapes) == 4 and shapes <= symbols  # one ring shape per status
    assert win.source_ids() == list(range(100, 100 + N_SOURCES))
    lo, hi = win.state.frames["difference"].levels
    assert lo == -hi  # difference is symmetric by default


def test_click_marker_selects_row_and_centres(win, qtbot, result):
    k = 12
    with qtbot.waitSignal(win.selection_changed, timeout=2000) as sig:
        win.frames.click_source_marker(k)
    assert sig.args == [100 + k]
    assert _row_of_current(win) == k
    (xa, xb), (ya, yb) = win.frames.view_range()
    assert (xa + xb) / 2 == pytest.approx(result.detections["x"][k], abs=1.0)
    assert (ya + yb) / 2 == pytest.approx(result.detections["y"][k], abs=1.0)
    hl = win.frames.views["template"].highlight.points()
    assert len(hl) == 1 and hl[0].pos().x() == pytest.approx(result.detections["x"][k])
    assert win.frames.crosshair_position() == pytest.approx(
        (result.detections["x"][k], result.detections["y"][k]))
    assert win.cutouts.stamps is not None and win.cutouts.stamps.shape == (3, 51, 51)


def test_mouse_click_on_marker_selects_row_and_centres(win, qtbot, result):
    """A real left click on the viewport, where the marker is drawn, goes through pyqtgraph."""
    from PyQt6.QtCore import Qt

    qtbot.waitExposed(win)
    k = 12  # 22 px from its nearest neighbour, away from the selected target's crosshair
    x, y = float(result.detections["x"][k]), float(result.detections["y"][k])
    view = win.frames.views["science"]
    pos = _viewport_pos(view, x, y)
    assert view.viewport().rect().contains(pos)
    with qtbot.waitSignal(win.selection_changed, timeout=2000) as sig:
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert sig.args == [100 + k]
    assert _row_of_current(win) == k
    assert win.table.selectionModel().isRowSelected(win.table.currentIndex().row())
    (xa, xb), (ya, yb) = win.frames.view_range()
    assert (xa + xb) / 2 == pytest.approx(x, abs=0.5)
    assert (ya + yb) / 2 == pytest.approx(y, abs=0.5)
    # a click on empty sky selects nothing
    with qtbot.assertNotEmitted(win.selection_changed):
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                         pos=_viewport_pos(view, 10.0, 370.0))


def test_table_row_selects_marker(win, qtbot, result):
    k = 20
    with qtbot.waitSignal(win.selection_changed, timeout=2000):
        win.table.selectRow(win.proxy.mapFromSource(win.table_model.index(k, 0)).row())
    assert win.state.selected_id == 100 + k
    hl = win.frames.views["difference"].highlight.points()
    assert hl[0].pos().y() == pytest.approx(result.detections["y"][k])
    # Sorting does not break the mapping.
    win.table.sortByColumn(5, win.table.horizontalHeader().sortIndicatorOrder())
    assert win.select_source(100 + 3)
    assert _row_of_current(win) == 3


def test_pan_zoom_linked_across_frames(win):
    sci = win.frames.views["science"].vb
    win.frames.views["difference"].vb.setRange(xRange=(100, 160), yRange=(200, 260), padding=0)
    for name in ("science", "template"):
        (xa, xb), (ya, yb) = win.frames.views[name].vb.viewRange()
        assert (xa + xb) / 2 == pytest.approx(130, abs=0.5)
        assert (ya + yb) / 2 == pytest.approx(230, abs=0.5)
    sci.scaleBy((2, 2))
    w = [np.diff(v.vb.viewRange()[0])[0] for v in win.frames.views.values()]
    assert w[1] == pytest.approx(w[0], rel=0.01) and w[2] == pytest.approx(w[0], rel=0.01)


def test_goto_by_id_and_radec(win, result):
    assert win.goto("105")
    assert win.state.selected_id == 105
    ra, dec = result.detections["ra"][9], result.detections["dec"][9]
    assert win.goto(f"{ra},{dec}")
    assert win.state.selected_id == 109
    assert "109 is the nearest" in win.statusBar().currentMessage()
    from astropy.coordinates import SkyCoord

    c = SkyCoord(result.detections["ra"][12], result.detections["dec"][12], unit="deg")
    assert win.goto(c.to_string("hmsdms", sep=":", precision=2))  # sexagesimal
    assert win.state.selected_id == 112
    assert not win.goto("nonsense")
    assert "cannot go to 'nonsense'" in win.statusBar().currentMessage()
    assert not win.goto("99999")
    assert win.statusBar().currentMessage() == "no source has the id 99999"


def test_rescore_selected_with_enter(win, qtbot, model, result):
    from PyQt6.QtCore import Qt

    from diascan.cutouts import cut_stamps
    from diascan.qt.qt_table import COL

    win.select_source(110)
    win.table.setFocus()
    with qtbot.waitSignal(win.rescore_done, timeout=20000) as sig:
        qtbot.keyClick(win.table, Qt.Key.Key_Return)
    idx, scores = sig.args[0]
    assert idx.tolist() == [10]
    r = result
    expect = model.score_stamps(
        cut_stamps(r.detections["x"][10:11], r.detections["y"][10:11], r.difference,
                   r.science, r.template)
    )
    assert scores[0] == pytest.approx(float(expect[0]), abs=1e-6)
    assert win.sources.score[10] == pytest.approx(float(expect[0]), abs=1e-6)
    text = win.table_model.index(10, COL["score"]).data()
    assert text == f"{expect[0]:.4f}"
    assert "recomputed" in win.cutouts.info.text()


def test_rescore_all_streams_and_gui_stays_responsive(win, qtbot, model):
    from PyQt6.QtCore import QTimer

    ticks = []
    batches = []
    clicked_while_running = []

    def tick():
        running = win.shown_job is not None and win.shown_job.running
        ticks.append(running)
        if running and not clicked_while_running:
            win.frames.click_source_marker(15)  # user input handled mid-rescore
            clicked_while_running.append(win.state.selected_id)

    timer = QTimer()
    timer.setInterval(0)
    timer.timeout.connect(tick)
    # A long rescore: every source 40 times over, in batches of 8 (200 batches).
    indices = np.tile(np.arange(N_SOURCES), 40)
    job = win.rescore(indices, batch_size=8)
    job.partial.connect(lambda batch: batches.append(len(batch[0])))
    timer.start()
    with qtbot.waitSignal(win.rescore_done, timeout=60000) as sig:
        pass
    timer.stop()
    assert sig.args[0] is not None
    assert sum(batches) == indices.size and len(batches) == indices.size // 8
    assert sum(ticks) > 3  # the event loop ran while the job was busy
    assert clicked_while_running == [115]
    assert np.isfinite(win.sources.score).all()
    # The border source (all-zero stamps) gets the model's all-zero score.
    zero = float(model.score_stamps(np.zeros((1, 3, 51, 51), np.float32))[0])
    assert win.sources.score[-1] == pytest.approx(zero, abs=1e-5)
    tip = win.frames.tooltip(data=0)
    assert f"{win.sources.score[0]:.3f}" in tip


def test_rescore_cancel(win, qtbot):
    done = []
    job = win.rescore(np.tile(np.arange(N_SOURCES), 50), batch_size=1)
    job.partial.connect(lambda batch: done.append(1))
    with qtbot.waitSignal(job.partial, timeout=10000):
        pass
    with qtbot.waitSignals([job.cancelled, job.done], timeout=10000):
        win.cancel_btn.click()
    assert 0 < len(done) < 50 * N_SOURCES
    assert not win.progress.isVisible()


def test_rescore_error_is_reported_not_raised(win, qtbot, tmp_path):
    bad = tmp_path / "not_a_model"
    bad.mkdir()
    win.set_models({"broken": bad}, "broken")
    with qtbot.waitSignal(win.error_shown, timeout=10000) as sig:
        win.rescore_all()
    assert "not_a_model" in sig.args[0]
    assert win.isVisible()


def test_error_dialog_is_shown(win, qtbot):
    from PyQt6.QtWidgets import QMessageBox

    win.show_errors_as_dialogs = True
    win.show_error("Oops", "/some/file.fits: broken")
    boxes = [w for w in win.findChildren(QMessageBox) if w.isVisible()]
    assert boxes and "/some/file.fits" in boxes[0].text()
    boxes[0].close()


def test_model_switch_rescores(win, qtbot, model):
    win.set_models({"a": model, "b": model}, "a")
    with qtbot.waitSignal(win.rescore_done, timeout=30000) as sig:
        win.model_combo.setCurrentText("b")
    assert win.state.model_name == "b"
    assert len(sig.args[0][0]) == N_SOURCES


def test_blink_toggles_visibility_not_images(win, qtbot):
    from PyQt6.QtCore import Qt

    bv = win.frames.blink_view
    arrays = [item.image for item in bv.images]
    win.single_check.setChecked(True)
    assert bv.isVisible() and not win.frames.views["science"].isVisible()
    assert [i.isVisible() for i in bv.images] == [True, False, False]
    qtbot.keyClick(win, Qt.Key.Key_BracketRight)  # ] / [ (B labels bogus in a session)
    assert [i.isVisible() for i in bv.images] == [False, True, False]
    qtbot.keyClick(win, Qt.Key.Key_BracketLeft)
    qtbot.keyClick(win, Qt.Key.Key_BracketLeft)
    assert [i.isVisible() for i in bv.images] == [False, False, True]
    win.blink_btn.click()
    assert win.state.blink_index == 0
    assert all(a is item.image for a, item in zip(arrays, bv.images, strict=True))
    qtbot.keyClick(win, Qt.Key.Key_T)
    assert not bv.isVisible() and win.frames.views["science"].isVisible()


def test_blink_in_triple_mode_shows_the_blinked_frame(win, qtbot):
    """Blinking with the three frames side by side switches to the single blink view."""
    from PyQt6.QtCore import Qt

    qtbot.waitExposed(win)
    bv = win.frames.blink_view
    assert not win.state.single and not bv.isVisible()
    before = win.frames.grab().toImage()
    qtbot.keyClick(win, Qt.Key.Key_BracketRight)
    assert win.state.single and win.single_check.isChecked()
    assert bv.isVisible() and not any(v.isVisible() for v in win.frames.views.values())
    assert [i.isVisible() for i in bv.images] == [False, True, False]
    assert "template" in bv.getPlotItem().titleLabel.text
    assert win.frames.grab().toImage() != before  # something changed on screen
    win.single_check.setChecked(False)  # back to three frames; the button does the same
    win.blink_back_btn.click()
    assert bv.isVisible() and [i.isVisible() for i in bv.images] == [True, False, False]


def test_legend_visible_in_both_modes_and_out_of_the_way(win, qtbot):
    import pyqtgraph as pg

    qtbot.waitExposed(win)

    def shown_legends():
        views = [*win.frames.views.values(), win.frames.blink_view]
        return [(v, it) for v in views if v.isVisible() for it in v.scene().items()
                if isinstance(it, pg.LegendItem) and it.isVisible()]

    for single in (False, True):
        win.state.single = single
        legends = shown_legends()
        assert len(legends) == 1, f"single={single}: one legend on screen"
        view, legend = legends[0]
        lr, vr = legend.sceneBoundingRect(), view.vb.sceneBoundingRect()
        # small, in the top-right corner of its view, see-through
        assert vr.contains(lr)
        assert vr.right() - lr.right() < 10 and lr.top() - vr.top() < 10
        assert lr.width() < 0.3 * vr.width() and lr.height() < 0.3 * vr.height()
        assert legend.opts["brush"].color().alpha() < 200
        assert view is not win.frames.views["science"]  # never over the science frame


def test_stretch_limits_colormap(win):
    item = win.frames.views["science"].images[0]
    lut_lin = np.array(item.lut)
    win.frame_combo.setCurrentText("science")
    win.stretch_combo.setCurrentText("asinh")
    assert win.state.frames["science"].stretch == "asinh"
    lut_asinh = np.array(item.lut)
    assert lut_asinh[len(lut_asinh) // 4, 0] > lut_lin[len(lut_lin) // 4, 0]
    zs = win.state.frames["science"].levels
    win.limits_combo.setCurrentText("minmax")
    mm = win.state.frames["science"].levels
    assert mm[1] > zs[1] and tuple(item.levels) == pytest.approx(mm)
    win.cmap_combo.setCurrentText("viridis")
    assert not np.array_equal(np.array(item.lut), lut_asinh)
    # Other frames are untouched.
    assert win.state.frames["template"].stretch == "linear"


def test_threshold_filters_table_and_markers(win):
    orig = win.sources.original
    win.threshold_check.setChecked(True)
    win.state.threshold = 0.5
    expect = int(np.sum(orig >= 0.5))
    assert win.proxy.rowCount() == expect
    assert win.frames.marker_count == expect + 2
    win.state.hidden_statuses = frozenset({"missing", "unmatched"})
    assert win.frames.marker_count == int(
        np.sum((orig >= 0.5) & (win.sources.status != "unmatched"))
    )
    win.threshold_check.setChecked(False)
    assert win.state.threshold is None


def test_mask_overlay_toggle_and_alpha(win):
    ov = win.frames.views["science"].overlays[0]
    assert not ov.isVisible()
    win.mask_checks["SAT"].setChecked(True)
    assert ov.isVisible() and ov.image.shape[-1] == 4
    assert ov.image[102, 102, 3] == 255 and ov.image[200, 200, 3] == 0
    win.alpha_slider.setValue(20)
    assert ov.opacity() == pytest.approx(0.2)
    win.mask_checks["SAT"].setChecked(False)
    assert not ov.isVisible()


def test_cursor_readout(win):
    text = win.cursor_text(101.2, 102.0)
    assert "x 101  y 102" in text and "RA 15" in text and "SAT" in text
    assert "sci " in text and "tmpl " in text and "diff " in text


def test_status_bar_shows_the_mask_planes_of_each_frame(qtbot, result):
    """The real mouse over a pixel whose mask planes differ per frame."""
    import dataclasses

    from diascan.qt.qt_main_window import QtMainWindow

    def masked(img, planes):
        mask = np.zeros_like(img.mask)
        for plane in planes:
            mask[250, 200] |= img.bit(plane)
        return dataclasses.replace(img, mask=mask)

    r = SimpleNamespace(
        science=masked(result.science, ["SAT", "CR"]),
        template=masked(result.template, ["NO_DATA"]),
        difference=masked(result.difference, ["DETECTED"]),
        detections=result.detections, missing=result.missing,
    )
    w = QtMainWindow()
    qtbot.addWidget(w)
    w.show()
    w.set_result(r)
    qtbot.waitExposed(w)
    view = w.frames.views["difference"]
    moves = []

    def moved_there() -> bool:
        # pyqtgraph drops moves closer than 10 ms and Qt a move to where the mouse is:
        # retried by waitUntil, to and fro within the pixel (the layout may still settle)
        moves.append(1)
        pos = _viewport_pos(view, 200.0, 250.0 + 0.3 * (len(moves) % 2))
        qtbot.mouseMove(view.viewport(), pos)
        return "x 200  y 250" in w.cursor_label.text()

    qtbot.waitUntil(moved_there, timeout=3000)
    assert "mask sci: SAT,CR  tmpl: NO_DATA  diff: DETECTED" in w.cursor_label.text()
    assert "mask" not in w.cursor_text(201.0, 250.0)
    assert w.cursor_text(200.0, 250.0).endswith("mask sci: SAT,CR  tmpl: NO_DATA  diff: DETECTED")


def test_source_table_shows_label_score_status_at_default_size(win, qtbot):
    from diascan.qt.qt_table import COL

    qtbot.waitExposed(win)
    assert (win.width(), win.height()) == (1500, 950)  # the default size
    table = win.table
    fm = table.horizontalHeader().fontMetrics()
    assert table.horizontalScrollBar().value() == 0
    for name in ("id", "label", "status", "score", "reliability"):
        col = COL[name]
        left = table.columnViewportPosition(col)
        assert left >= 0 and left + table.columnWidth(col) <= table.viewport().width(), name
        assert table.columnWidth(col) >= fm.horizontalAdvance(name) + 10, f"{name} header cut"
    with qtbot.waitSignal(win.rescore_done, timeout=30000):
        win.rescore_all()
    text = win.proxy.index(0, COL["score"]).data()
    assert table.columnWidth(COL["score"]) >= table.fontMetrics().horizontalAdvance(text)


def test_plot_click_selects(win, qtbot):
    with qtbot.waitSignal(win.rescore_done, timeout=30000):
        win.rescore_all()
    assert len(win.plots.points.points()) == N_SOURCES
    pts = [p for p in win.plots.points.points() if p.data() == 4]
    with qtbot.waitSignal(win.selection_changed, timeout=2000):
        win.plots._clicked(win.plots.points, pts)
    assert win.state.selected_id == 104


def test_no_top_level_widget_leaks(qtbot, result, model):
    from PyQt6.QtCore import QCoreApplication, QEvent
    from PyQt6.QtWidgets import QApplication

    from diascan.qt.qt_main_window import QtMainWindow

    before = set(map(id, QApplication.topLevelWidgets()))
    w = QtMainWindow()
    w.set_models({"bundled": model}, "bundled")
    w.show()
    w.set_result(result)
    w.select_source(101)
    w.close()
    w.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)
    after = set(map(id, QApplication.topLevelWidgets()))
    assert after <= before


# --- the real small demo through the pipeline, loaded by the window's load job ---------------


@pytest.fixture
def empty_win(qtbot, model):
    from diascan.qt.qt_main_window import QtMainWindow

    w = QtMainWindow()
    qtbot.addWidget(w)
    w.show_errors_as_dialogs = False
    w.set_models({"bundled": model}, "bundled")
    w.show()
    yield w
    w.cancel_work()
    w.wait_idle()


def test_load_small_demo_in_worker(empty_win, qtbot, small_demo):
    from diascan.inputs import files_loader, folder_files

    files = folder_files(small_demo)
    assert files["catalog"].name == "dia_source.parquet"
    assert len(files["template_patches"]) >= 1
    progress = []
    job = empty_win.load(files_loader(files))
    job.progress.connect(lambda stage, f, m: progress.append(stage))
    assert empty_win.progress.isVisible()
    with qtbot.waitSignal(empty_win.data_loaded, timeout=60000):
        pass
    assert progress  # stages were reported while loading
    n = len(empty_win.result.detections)
    assert n > 5 and empty_win.table_model.rowCount() == n
    assert "matched" in set(empty_win.sources.status)
    with qtbot.waitSignal(empty_win.rescore_done, timeout=60000) as sig:
        empty_win.rescore_all()
    assert np.isfinite(empty_win.sources.score).all() and len(sig.args[0][0]) == n


def test_drop_folder_loads(empty_win, qtbot, small_demo):
    from PyQt6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PyQt6.QtGui import QDropEvent

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(small_demo))])
    ev = QDropEvent(QPointF(100, 100), Qt.DropAction.CopyAction, mime,
                    Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(empty_win.data_loaded, timeout=60000):
        empty_win.dropEvent(ev)
    assert len(empty_win.source_ids()) > 5


def test_drop_unusable_files_is_an_error(empty_win, qtbot, tmp_path):
    from PyQt6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PyQt6.QtGui import QDropEvent

    (tmp_path / "notes.txt").write_text("x")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "notes.txt"))])
    ev = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime,
                    Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(empty_win.error_shown, timeout=2000):
        empty_win.dropEvent(ev)


@pytest.mark.parametrize("with_data", [False, True])
def test_rescore_asked_during_a_load_runs_after_it(empty_win, qtbot, small_demo, result,
                                                   with_data):
    """Ctrl+R during a load never cancels it: the data appear, then get scored."""
    from PyQt6.QtCore import Qt

    from diascan.inputs import files_loader, folder_files

    w = empty_win
    if with_data:  # something shown already: the old code cancelled the load for it
        with qtbot.waitSignal(w.data_loaded, timeout=5000):
            w.set_result(result)
    with qtbot.waitSignals([w.data_loaded, w.rescore_done], order="strict",
                           timeout=60000) as sigs:
        job = w.load(files_loader(folder_files(small_demo)))
        assert job.running
        qtbot.keyClick(w, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
        assert not job.is_cancelled
    n = len(w.result.detections)
    assert n != N_SOURCES and len(w.sources) == n  # the demo's sources are shown
    idx, scores = sigs.all_signals_and_args[1].args[0]
    assert sorted(idx.tolist()) == list(range(n))
    assert np.isfinite(w.sources.score).all()


def test_model_switch_during_a_load_scores_the_loaded_data(empty_win, qtbot, small_demo,
                                                           model, result):
    from diascan.inputs import files_loader, folder_files

    w = empty_win
    w.set_models({"a": model, "b": model}, "a")
    with qtbot.waitSignal(w.data_loaded, timeout=5000):
        w.set_result(result)
    with qtbot.waitSignals([w.data_loaded, w.rescore_done], order="strict", timeout=60000):
        w.load(files_loader(folder_files(small_demo)))
        w.model_combo.setCurrentText("b")
    assert w.state.model_name == "b"
    assert len(w.sources) != N_SOURCES and np.isfinite(w.sources.score).all()


def test_load_error_names_the_file(empty_win, qtbot, tmp_path):
    from diascan.inputs import files_loader

    bad = tmp_path / "science.fits"
    bad.write_text("not a FITS file")
    with qtbot.waitSignal(empty_win.load_failed, timeout=20000) as sig:
        empty_win.load(files_loader({"science": bad, "difference": bad, "template": bad}))
    assert "science.fits" in sig.args[0]
    assert empty_win.isVisible() and empty_win.sources is None


def test_marker_fill_follows_the_recomputed_score(win, qtbot):
    """Outline colour/shape = match status; fill opacity = recomputed score (none when the
    scores are hidden or not computed yet)."""
    from diascan.qt.qt_frames import score_brush

    def fills() -> dict[int, int]:
        spots = win.frames.views["science"].markers.points()
        return {int(p.data()): p.brush().color().alpha() for p in spots if p.data() >= 0}

    before = fills()
    assert set(before.values()) == {40}  # not scored yet: the status colour's faint fill
    with qtbot.waitSignal(win.rescore_done, timeout=30000):
        win.rescore_all()
    after = fills()
    scores = win.sources.score
    lo, hi = int(np.argmin(scores)), int(np.argmax(scores))
    assert scores[hi] - scores[lo] > 0.4, "the model must separate these sources"
    assert after[hi] > after[lo]
    for i, alpha in after.items():
        assert alpha == score_brush(str(win.sources.status[i]), scores[i]).color().alpha()
    win.state.hide_scores = True  # unbiased labelling: the fill gives nothing away
    assert set(fills().values()) == {40}


def test_legend_can_be_hidden_from_the_view_menu(win):
    legends = list(win.frames.legends.values())
    assert all(lg.isVisible() for lg in legends)
    win.legend_action.trigger()
    assert not any(lg.isVisible() for lg in legends)
    win.legend_action.trigger()
    assert all(lg.isVisible() for lg in legends)


# --- seams (issue 13, point 9): the viewer's rescoring path and the table after it -----------


def test_window_rescore_hands_the_model_difference_science_template(win, qtbot, result,
                                                                    reference_package):
    """The window's scores equal the reference path on independently cut stamps."""
    from diascan.models import load_model
    from tests import _independent as ind

    win.set_models({"ref": load_model(reference_package)}, "ref")
    with qtbot.waitSignal(win.rescore_done, timeout=30000):
        win.rescore_all()
    det = result.detections
    x_in = ind.stamps(det["x"], det["y"], result.difference, result.science, result.template)
    expect = ind.taccnn_scores(ind.checkpoint_state(reference_package), x_in)
    np.testing.assert_allclose(win.sources.score, expect, atol=2e-5, rtol=0)


def test_table_is_resorted_and_refiltered_after_a_rescore(win, qtbot, result,
                                                          reference_package):
    """Sorted by score with a threshold on: the rows shown follow the NEW scores."""
    from PyQt6.QtCore import Qt

    from diascan.models import load_model
    from diascan.qt.qt_table import COL
    from tests import _independent as ind

    win.set_models({"ref": load_model(reference_package)}, "ref")

    det = result.detections
    x_in = ind.stamps(det["x"], det["y"], result.difference, result.science, result.template)
    new = ind.taccnn_scores(ind.checkpoint_state(reference_package), x_in)
    ids = np.asarray(det["id"])
    threshold = float(np.median(new))
    orig = np.asarray(det["original_reliability"], float)
    before_shown = ids[orig >= threshold][np.argsort(-orig[orig >= threshold], kind="stable")]
    win.table.sortByColumn(COL["score"], Qt.SortOrder.DescendingOrder)
    win.threshold_check.setChecked(True)
    win.state.threshold = threshold
    # not scored yet: the original reliability decides (and the order follows the filter)
    assert set(win.displayed_source_ids()) == set(before_shown.tolist())
    with qtbot.waitSignal(win.rescore_done, timeout=30000):
        win.rescore_all()
    keep = new >= threshold
    want = ids[keep][np.argsort(-new[keep], kind="stable")].tolist()
    assert set(want) != set(before_shown.tolist()), "the rescore must change the rows shown"
    assert win.displayed_source_ids() == want
