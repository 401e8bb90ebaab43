"""The gallery widget on the small demo: real images, real detections, real widget offscreen."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from diascan.gallery import ENLARGE_FACTOR, GALLERY_ACTIONS, GRID_MIN  # noqa: E402
from diascan.stamp_display import BLANK_RGBA, StampDisplay, render_triplets  # noqa: E402
from diascan.stamps import stack_triplets  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture
def harness(qtbot, small_demo_result):
    from tests.gallery_harness import GalleryHarness

    win = GalleryHarness(small_demo_result, (1920, 1080))
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()


def _grab(widget) -> np.ndarray:
    """The widget's pixels as an (H, W, 4) RGBA array."""
    from PyQt6.QtGui import QImage

    img = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGBA8888)
    ptr = img.constBits()
    ptr.setsize(img.sizeInBytes())
    arr = np.frombuffer(ptr, np.uint8).reshape(img.height(), img.bytesPerLine() // 4, 4)
    return arr[:, : img.width()].copy()


def _stamp_on_screen(shot, gallery, k: int, c: int) -> np.ndarray:
    g = gallery.grid
    x, y, _, _ = g.stamps_rect(k)
    x += c * (g.stamp_px + g.gap)
    return shot[y : y + g.stamp_px, x : x + g.stamp_px, :3]


def _resampled(rgba: np.ndarray, px: int) -> np.ndarray:
    """A stamp rendering (array orientation) as the screen shows it: flipped, nearest px x px."""
    top_down = rgba[::-1]
    idx = np.minimum(((np.arange(px) + 0.5) * top_down.shape[0] / px).astype(int),
                     top_down.shape[0] - 1)
    return top_down[idx][:, idx, :3]


def test_tiles_paint_science_template_difference_in_that_order(harness):
    """Each tile's three squares are the rendered science, template and difference stamps."""
    g, st = harness.gallery, harness.gallery_state
    shot = _grab(g)
    rows = list(st.page_rows())
    assert rows == list(range(len(rows))) and len(rows) == len(harness.sources)
    stack = stack_triplets(g.source, rows, st.stamp_size)
    rendered = render_triplets(stack, StampDisplay.per_tile())
    same = np.zeros((3, 3))  # [shown channel, expected channel] fraction of equal pixels
    for k in range(len(rows)):
        for c in range(3):
            screen = _stamp_on_screen(shot, g, k, c)
            for e in range(3):
                expect = _resampled(rendered[k, e], g.grid.stamp_px)
                same[c, e] += np.mean(np.all(screen == expect, axis=-1)) / len(rows)
    assert np.all(np.diag(same) > 0.95), same
    off = same[~np.eye(3, dtype=bool)]
    assert np.all(off < 0.5), same


def test_texts_and_badges(harness, qtbot):
    from diascan.gallery import tile_text

    st, src = harness.gallery_state, harness.sources
    row = int(np.flatnonzero(src.status == "target")[0])
    text = tile_text(src, row)
    assert text.status == "target" and text.score == f"{src.score[row]:.3f}"
    st.hide_scores = True
    assert tile_text(src, row, st.hide_scores).score == ""
    # labelling through the state reaches the sources and repaints the tile with a badge
    g = harness.gallery
    st.current = row
    before = _grab(g)
    st.label_bogus()
    assert src.labels[row] == "bogus" and st.current == row + 1
    qtbot.waitUntil(lambda: not np.array_equal(_grab(g), before))
    x, y, w, h = g.grid.cell(row)
    text_top = g.grid.stamps_rect(row)[1] + g.grid.stamp_px
    badge = _grab(g)[text_top : y + h, x + w // 2 : x + w, :3]
    from diascan.palettes import get_palette

    colour = np.array(get_palette().label_color("bogus"))
    assert np.any(np.all(badge == colour, axis=-1)), "no bogus badge painted"


def test_grid_follows_the_widget_size(harness, qtbot):
    g, st = harness.gallery, harness.gallery_state
    assert (st.columns, st.rows) == (g.grid.columns, g.grid.rows)
    assert st.columns >= 8 and st.rows >= 6  # 1920 x 1080: room for 8 x 6 and more
    split = g.parentWidget()
    split.setSizes([200, 600])  # a small gallery: 2 x 2 at least, stamps shrink
    harness.resize(420, 800)
    qtbot.waitUntil(lambda: g.height() < 300)
    assert (st.columns, st.rows) >= GRID_MIN and st.per_page == st.columns * st.rows
    assert g.grid.columns * g.grid.cell_w <= g.width()


def test_selection_by_mouse_and_open_by_double_click(harness, qtbot):
    from PyQt6.QtCore import QPoint, Qt

    g, st = harness.gallery, harness.gallery_state
    x, y, w, h = g.grid.cell(5)
    opened = []
    st.open_requested.connect(opened.append)
    qtbot.mouseClick(g, Qt.MouseButton.LeftButton, pos=QPoint(x + w // 2, y + h // 2))
    assert st.current == 5 and st.selected_row == 5
    qtbot.mouseDClick(g, Qt.MouseButton.LeftButton, pos=QPoint(x + 10, y + 10))
    assert opened == [5]
    st.open_selected()
    assert opened == [5, 5]


def test_actions_move_label_and_flip_pages(harness):
    g, st = harness.gallery, harness.gallery_state
    actions = g.actions()
    assert set(actions) == set(GALLERY_ACTIONS)
    st.set_order(range(len(harness.sources) - 1, -1, -1))  # the table sorted the other way
    assert st.current == st.order.index(0)  # the selected source stayed selected
    actions["gallery.first"]()
    st.move_right()
    actions["gallery.down"]()
    assert st.current == 1 + st.columns
    got = []
    st.label_requested.connect(lambda row, label: got.append((row, label)))
    st.label_real()
    st.label_unsure()
    assert [lab for _, lab in got] == ["real", "unsure"]
    assert got[0][0] == st.order[1 + st.columns] and st.current == 3 + st.columns
    assert harness.sources.labels[got[0][0]] == "real"
    st.clear_label()
    assert got[-1] == (st.selected_row, None) and st.current == 3 + st.columns
    # flipping pages needs a smaller page than the 33 sources
    st.columns, st.rows = 4, 3
    actions["gallery.first"]()
    actions["gallery.next_page"]()
    assert st.page == 1 and st.current == 12
    actions["gallery.previous_page"]()
    assert st.page == 0
    actions["gallery.last"]()
    assert st.page == st.page_count - 1


def test_page_flip_and_selection_repaint_what_changed(harness, qtbot):
    g, st = harness.gallery, harness.gallery_state
    harness.resize(900, 700)  # fewer tiles than sources: two pages or more
    qtbot.waitUntil(lambda: st.page_count > 1)
    g.repaint()
    first = list(st.page_rows())
    shot = _grab(g)
    st.next_page()
    assert list(st.page_rows()) != first
    after = _grab(g)
    assert not np.array_equal(shot[:, :, :3], after[:, :, :3])
    # a selection move changes only the two tiles involved
    st.move_right()
    moved = _grab(g)
    diff = np.any(moved != after, axis=-1)
    ys, xs = np.nonzero(diff)
    k0 = st.current - 1 - st.page_start
    x0, y0, w, h = g.grid.cell(k0)
    assert xs.min() >= x0 and xs.max() < x0 + 2 * w and ys.min() >= y0 and ys.max() < y0 + h


def test_prefetch_composes_neighbours_when_idle_and_stops_when_switched_off(harness, qtbot):
    from PyQt6.QtWidgets import QApplication

    g, st = harness.gallery, harness.gallery_state
    harness.resize(600, 450)  # few tiles: three pages or more
    qtbot.waitUntil(lambda: st.page_count > 2)
    st.current = st.per_page  # page 2: both neighbours exist
    g.repaint()
    near = list(st.order[: 3 * st.per_page])
    qtbot.waitUntil(lambda: all(r in g._screen for r in near))  # idle: pages 1 and 3 too
    g.repaint()  # a paint starts the idle timer again
    g.prefetch = False  # switched off while the timer is pending: its chain must stop
    g._clear_cache()
    st.next_page()
    g.repaint()
    for _ in range(5):
        QApplication.processEvents()
    assert set(g._screen) == set(st.page_rows()), "composed pages beyond the one shown"


def test_stamp_size_follows_the_state(harness):
    g, st = harness.gallery, harness.gallery_state
    for size, expect in ((31, 31), (101, 101), (20, 31), (500, 101)):
        st.stamp_size = size
        g.repaint()
        arr, img = g._tiles[st.order[0]]
        assert (img.height(), img.width()) == (expect, 3 * expect + 2)
    st.stamp_size = 51
    st.larger_stamps()
    assert st.stamp_size == 61


def test_enlarge_in_place(harness):
    from PyQt6.QtCore import QPointF, Qt
    from PyQt6.QtGui import QMouseEvent
    from PyQt6.QtWidgets import QApplication

    g, st = harness.gallery, harness.gallery_state
    st.current = 10
    rect = g._enlarged_rect(10)
    cell = g.grid.cell(10)
    assert rect.width() == pytest.approx(ENLARGE_FACTOR * cell[2], rel=0.1)
    assert g.rect().contains(rect)
    plain = _grab(g)
    st.toggle_enlarged()
    big = _grab(g)
    changed = np.any(big != plain, axis=-1)
    assert changed[rect.top() + 5 : rect.bottom() - 5, rect.left() + 5 : rect.right() - 5].mean() \
        > 0.5
    st.toggle_enlarged()
    assert np.array_equal(_grab(g), plain)
    # enlarge on hover: the tile under the mouse grows
    st.toggle_enlarge_on_hover()
    x, y, w, h = g.grid.cell(3)
    pos = QPointF(x + w / 2, y + h / 2)
    QApplication.sendEvent(g, QMouseEvent(QMouseEvent.Type.MouseMove, pos, g.mapToGlobal(pos),
                                          Qt.MouseButton.NoButton, Qt.MouseButton.NoButton,
                                          Qt.KeyboardModifier.NoModifier))
    assert g._enlarged_position() == 3
    hover = _grab(g)
    r = g._enlarged_rect(3)
    assert np.any(hover[r.top() + 3 : r.bottom() - 3, r.left() + 3 : r.right() - 3]
                  != plain[r.top() + 3 : r.bottom() - 3, r.left() + 3 : r.right() - 3])


def test_follow_frames_toggle_changes_the_display(harness):
    from diascan import viewstate as vs

    g, st = harness.gallery, harness.gallery_state
    frames = vs.ViewerState().frames
    for name, fs in frames.items():
        fs.levels = (-50.0, 400.0) if name != "difference" else (-100.0, 100.0)
        fs.stretch = "asinh"
    seen = []
    g.display_changed.connect(seen.append)
    g.set_frames(frames)
    assert seen == []  # per-tile zscale until the toggle
    before = _grab(g)
    st.toggle_follow_frames()
    assert len(seen) == 1 and seen[0].follows_frames
    assert seen[0].science.levels == (-50.0, 400.0) and seen[0].difference.stretch == "asinh"
    assert not np.array_equal(_grab(g), before)
    st.toggle_follow_frames()
    assert seen[-1] == StampDisplay.per_tile()


def test_source_at_the_edge_shows_blank_beyond_the_image(harness):
    """A tile of a source 10 px from the image edge paints the missing part blank."""
    from diascan.visit_stamps import VisitStamps

    g, st = harness.gallery, harness.gallery_state
    src = harness.sources
    sci = g.source.images[0]
    x = np.array(src.x, dtype=float)
    y = np.array(src.y, dtype=float)
    x[0], y[0] = sci.x0 + 10.0, sci.y0 + 300.0
    g.set_source(VisitStamps(dict(zip(("science", "template", "difference"), g.source.images,
                                      strict=True)), x, y), src)
    st.current = 0
    shot = _grab(g)
    screen = _stamp_on_screen(shot, g, 0, 0)  # science: 15 of 51 columns off the image
    px = g.grid.stamp_px
    left = screen[:, : int(px * 14 / 51)]
    right = screen[:, int(px * 17 / 51) :]
    assert np.all(left == np.array(BLANK_RGBA[:3]))
    assert not np.any(np.all(right == np.array(BLANK_RGBA[:3]), axis=-1))
