"""Gallery benchmarks (offscreen Qt) on the demo detector run through the pipeline: a page flip
with 48 tiles (8 x 6) and a selection move, from the action to the completed paint; and 100
sources labelled by key presses in the main window's gallery with the autosave on.

Run: ``make bench`` or ``QT_QPA_PLATFORM=offscreen .venv/bin/python -m pytest
benchmarks/bench_gallery.py --benchmark-only -s``.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from diascan import viewstate as vs  # noqa: E402

T_PAGE_FLIP = 0.030
T_SELECTION = 0.016
GRID = (8, 6)


@pytest.fixture(scope="module")
def app():
    from diascan.qt.app import get_app

    return get_app()


@pytest.fixture(scope="module")
def gallery(app, pipeline_result):
    """A shown gallery of the demo's sources with exactly 8 x 6 tiles a page."""
    from diascan.gallery import GalleryState, grid_layout
    from diascan.qt.qt_gallery import QtGallery
    from diascan.visit_stamps import VisitStamps

    res = pipeline_result
    sources = vs.SourceSet.from_table(res.detections)
    state = GalleryState(order=range(len(sources)))
    g = QtGallery(state)
    g.set_source(VisitStamps({n: getattr(res, n) for n in vs.FRAMES}, sources.x, sources.y),
                 sources)
    # the size at which the default stamps give 8 x 6 tiles (plus the page line)
    lay = grid_layout(1, 1, state.stamp_size, state.zoom, text_h=2 * g.fm.lineSpacing() + 2)
    px = int(state.stamp_size * state.zoom)
    cell_w, cell_h = 3 * px + 2 * lay.gap + 2 * lay.margin, px + lay.text_h + 2 * lay.margin
    g.resize(GRID[0] * cell_w + 2, GRID[1] * cell_h + g.fm.lineSpacing() + 6)
    g.show()
    app.processEvents()
    for _ in range(20):  # the window manager may adjust: nudge until the grid is 8 x 6
        if (state.columns, state.rows) == GRID:
            break
        w, h = g.width(), g.height()
        g.resize(w + (GRID[0] - state.columns) * 40, h + (GRID[1] - state.rows) * 20)
        app.processEvents()
    assert (state.columns, state.rows) == GRID, (state.columns, state.rows, g.size())
    assert len(sources) > 2 * state.per_page, "the demo needs three pages"
    yield g
    g.close()
    g.deleteLater()
    app.processEvents()


def _painted(app, g, action) -> float:
    """Seconds from ``action()`` to the completed paint it caused."""
    before = g.paint_count
    t0 = time.perf_counter()
    action()
    app.processEvents()
    dt = time.perf_counter() - t0
    assert g.paint_count > before, "the action painted nothing"
    return dt


def _flips(app, g, cold: bool, n: int = 12) -> list[float]:
    st = g.state
    times = []
    g.prefetch = not cold
    for k in range(n):
        forward = (k // (st.page_count - 1)) % 2 == 0
        if cold:
            g._clear_cache()
        else:
            app.processEvents()  # idle time: the next and previous pages are composed ahead
            for _ in range(2):
                g._prefetch_next()
        step = st.next_page if forward else st.previous_page
        if (forward and st.page == st.page_count - 1) or (not forward and st.page == 0):
            step = st.previous_page if forward else st.next_page
        times.append(_painted(app, g, step))
    g.prefetch = True
    return times


STAGES = ("cut", "levels", "render", "compose")


def _stages(g, repeats: int = 5) -> dict[str, list[float]]:
    """Where a cold page flip's time goes: cut the stamps, per-stamp zscale, render the
    tiles' pixels, compose the tiles (scaling, texts) into images."""
    from diascan.stamp_display import render_tiles, stamp_levels
    from diascan.stamps import stack_triplets

    rows = list(g.state.page_rows())
    size = g.state.stamp_size
    out: dict[str, list[float]] = {k: [] for k in STAGES}
    for _ in range(repeats):
        t0 = time.perf_counter()
        stack = stack_triplets(g.source, rows, size)
        t1 = time.perf_counter()
        levels = stamp_levels(stack, g.display)
        t2 = time.perf_counter()
        render_tiles(stack, g.display, levels=levels)
        t3 = time.perf_counter()
        g._clear_cache()
        g._render(rows)
        t4 = time.perf_counter()
        g._compose(rows)
        t5 = time.perf_counter()
        out["cut"].append(t1 - t0)
        out["levels"].append(t2 - t1)
        out["render"].append(t3 - t2)
        out["compose"].append(t5 - t4)
    return out


def test_page_flip(benchmark, record, gallery, app):
    st = gallery.state
    st.first()
    app.processEvents()
    out: dict[str, list[float]] = {}

    def run():
        out["cold"] = _flips(app, gallery, cold=True)
        out["warm"] = _flips(app, gallery, cold=False)
        out.update(_stages(gallery))

    benchmark.pedantic(run, rounds=1, iterations=1)
    nbytes = st.per_page * 3 * st.stamp_size**2 * 4
    stages = ", ".join(f"{k} {np.median(out[k]) * 1e3:.1f}" for k in STAGES)
    note = (f"{st.per_page} tiles ({st.columns} x {st.rows}), {st.stamp_size} px stamps drawn "
            f"at {gallery.grid.stamp_px} px; stages (ms, same run): {stages}")
    record("gallery: page flip, 48 tiles, nothing cached (median)", float(np.median(out["cold"])),
           nbytes, target=T_PAGE_FLIP,
           note=note + f"; p95 {np.percentile(out['cold'], 95) * 1e3:.0f} ms, worst "
                       f"{max(out['cold']) * 1e3:.0f} ms")
    record("gallery: page flip, 48 tiles, next page rendered ahead (median)",
           float(np.median(out["warm"])), nbytes,
           note="what a user flipping at reading speed gets: the idle GUI composes the next "
                f"and previous pages ahead; worst {max(out['warm']) * 1e3:.0f} ms")


def test_selection_move(benchmark, record, gallery, app):
    from PyQt6.QtCore import Qt
    from PyQt6.QtGui import QKeySequence, QShortcut
    from PyQt6.QtTest import QTest

    st = gallery.state
    st.first()
    app.processEvents()
    times: list[float] = []
    keys: list[float] = []

    def run():
        for k in range(24):
            step = st.move_right if (k // 6) % 2 == 0 else st.move_left
            times.append(_painted(app, gallery, step))
        # as the action registry will bind it: a key sequence running the state's method
        shortcut = QShortcut(QKeySequence("Right"), gallery, st.move_right)
        shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        gallery.setFocus()
        st.first()
        app.processEvents()
        for _ in range(12):
            before = st.current
            keys.append(_painted(app, gallery, lambda: QTest.keyClick(gallery, Qt.Key.Key_Right)))
            assert st.current == before + 1, "the key press did not move the selection"
        shortcut.setEnabled(False)

    benchmark.pedantic(run, rounds=1, iterations=1)
    nbytes = 2 * 3 * st.stamp_size**2 * 4
    record("gallery: selection move (median)", float(np.median(times)), nbytes,
           target=T_SELECTION, note=f"state.move_right/left to the repainted two tiles; "
                                    f"worst {max(times) * 1e3:.1f} ms")
    record("gallery: key press to the next tile highlighted (median)", float(np.median(keys)),
           nbytes, target=T_SELECTION,
           note=f"QTest.keyClick Right through a QShortcut; worst {max(keys) * 1e3:.1f} ms")


N_LABELS = 100


def test_label_100_by_keys(benchmark, record, app, pipeline_result, tmp_path, monkeypatch):
    """Label 100 sources in the main window's gallery by real key presses (r/b/u through the
    action registry's shortcuts), autosave on to a real session file; then read the file."""
    from PyQt6.QtCore import Qt
    from PyQt6.QtTest import QTest
    from PyQt6.QtWidgets import QApplication

    from diascan.qt.qt_labels import QtLabelController
    from diascan.qt.qt_main_window import QtMainWindow
    from diascan.session import Label, load_session

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    res = pipeline_result
    display = vs.prepare_display({n: getattr(res, n) for n in vs.FRAMES}, vs.ViewerState().frames)
    win = QtMainWindow()
    win.show_errors_as_dialogs = False
    win.show()
    win.set_result(res, display)
    session_path = tmp_path / "session.json"
    win.ctl = QtLabelController(win, session_path=session_path)
    win.activateWindow()
    app.processEvents()

    def key(k) -> None:
        QTest.keyClick(QApplication.focusWidget() or win, k)

    key(Qt.Key.Key_G)  # the gallery, through its action
    app.processEvents()
    assert win.gallery_shown(), "G did not show the gallery"
    st = win.gallery_state
    assert len(st.order) >= N_LABELS, f"the demo has {len(st.order)} sources, not {N_LABELS}"
    key(Qt.Key.Key_Home)
    app.processEvents()
    cycle = ((Qt.Key.Key_R, Label.REAL), (Qt.Key.Key_B, Label.BOGUS),
             (Qt.Key.Key_U, Label.UNSURE))
    expected: dict[int, Label] = {}
    times: list[float] = []

    def run():
        for k in range(N_LABELS):
            qkey, label = cycle[k % 3]
            pos = st.current
            expected[int(win.sources.ids[st.order[pos]])] = label
            t0 = time.perf_counter()
            key(qkey)
            app.processEvents()  # the label, the autosave, the repaint of the two tiles
            times.append(time.perf_counter() - t0)
            assert st.current == pos + 1, "the label key did not advance"

    try:
        benchmark.pedantic(run, rounds=1, iterations=1)
        saved = load_session(session_path).current.labels
        wrong = {sid: lab for sid, lab in expected.items() if saved.label(sid) is not lab}
    finally:
        win.close()
        win.deleteLater()
        app.processEvents()
    assert len(expected) == N_LABELS and not wrong, f"the session file lost labels: {wrong}"
    nbytes = 2 * 3 * st.stamp_size**2 * 4
    record("gallery: label by key press with autosave (median)", float(np.median(times)),
           nbytes,
           note=f"{N_LABELS} sources labelled r/b/u in the main window's gallery (QTest.keyClick "
                f"through the action registry), each key to the saved session and repainted "
                f"tiles; total {sum(times):.2f} s, worst {max(times) * 1e3:.0f} ms; the session "
                f"file ({session_path.stat().st_size // 1024} KiB) read back holds all "
                f"{N_LABELS} labels")
