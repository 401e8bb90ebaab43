"""The gallery's Qt-free state: selection, pages, labelling, validation, actions, geometry."""

from __future__ import annotations

import numpy as np
import pytest

from diascan.gallery import (
    GALLERY_ACTIONS,
    GRID_MAX,
    GRID_MIN,
    GalleryState,
    grid_layout,
    tile_text,
)
from diascan.palettes import OKABE_ITO, PALETTES, get_palette, hex_color


def _state(n=100, columns=8, rows=6) -> GalleryState:
    return GalleryState(order=range(n), columns=columns, rows=rows)


def test_moves_and_pages():
    st = _state()
    assert st.per_page == 48 and st.page_count == 3 and st.page_rows() == tuple(range(48))
    st.move_left()
    assert st.current == 0  # clamped
    st.move_right(); st.move_down()  # noqa: E702
    assert st.current == 9
    st.move_up(); st.move_up()  # noqa: E702
    assert st.current == 1
    st.next_page()
    assert st.current == 49 and st.page == 1 and st.page_rows()[0] == 48
    st.next_page()
    assert st.current == 97 and st.page == 2 and st.page_rows() == tuple(range(96, 100))
    st.next_page()
    assert st.current == 97  # no page after the last
    st.move_down()
    assert st.current == 97  # nothing below on the last page
    st.previous_page(); st.previous_page(); st.previous_page()  # noqa: E702
    assert st.current == 1
    st.last()
    assert st.current == 99 and st.selected_row == 99
    st.first()
    st.current = 47
    st.move_right()
    assert st.page == 1  # moving past the page's last tile flips the page
    short = _state(50)
    short.current = 44
    short.move_down()
    assert short.current == 49  # onto the short last page


def test_label_advances_and_signals():
    st = _state(5)
    got = []
    st.label_requested.connect(lambda row, label: got.append((row, label)))
    st.label_real(); st.label_bogus(); st.label_unsure()  # noqa: E702
    assert got == [(0, "real"), (1, "bogus"), (2, "unsure")] and st.current == 3
    st.clear_label()
    assert got[-1] == (3, None) and st.current == 3
    st.last()
    st.label("real")
    assert got[-1] == (4, "real") and st.current == 4  # stays on the last one
    opened = []
    st.open_requested.connect(opened.append)
    st.open_selected()
    assert opened == [4]
    empty = GalleryState()
    empty.label_real(); empty.open_selected()  # noqa: E702
    assert empty.selected_row is None


def test_order_changes_keep_the_selected_source():
    st = _state(10)
    st.current = 4
    events = []
    st.events.connect(lambda info: events.append(info.signal.name))
    st.set_order([9, 8, 7, 6, 5, 4, 3])
    assert st.selected_row == 4 and st.current == 5
    assert "order" in events and "current" in events
    st.set_order([1, 2])  # the selected source filtered out: the same position, clamped
    assert st.current == 1 and st.selected_row == 2
    assert st.select_row(1) and st.current == 0
    assert not st.select_row(99)


def test_order_listeners_see_the_new_selection():
    """A new order and its selection arrive together: a listener of ``order`` never reads a
    ``current`` beyond the new order (it did, before the change was batched)."""
    st = _state(10)
    st.current = 8
    seen = []
    st.events.order.connect(lambda order: seen.append((order, st.current, st.selected_row)))
    st.set_order([3, 4])
    assert seen == [((3, 4), 1, 4)]


def test_values_are_validated_on_set():
    st = GalleryState()
    st.stamp_size = 5
    assert st.stamp_size == 31
    st.stamp_size = 1000
    assert st.stamp_size == 101
    st.smaller_stamps()
    assert st.stamp_size == 91
    st.columns, st.rows = 1, 99
    assert (st.columns, st.rows) == (GRID_MIN[0], GRID_MAX[1])
    st.zoom = 100
    assert st.zoom == 4.0
    st.palette = "Okabe-Ito"
    assert st.palette == "okabe-ito"
    with pytest.raises(ValueError, match="unknown palette"):
        st.palette = "rainbow"
    st.current = -5
    assert st.current == 0
    changes = []
    st.events.follow_frames.connect(changes.append)
    st.toggle_follow_frames(); st.toggle_follow_frames()  # noqa: E702
    assert changes == [True, False]


def test_action_table_names_registered_actions_and_real_methods():
    from diascan.actions import BY_ID

    st = _state()
    for action_id, method in GALLERY_ACTIONS.items():
        assert callable(getattr(st, method)), method
        assert BY_ID[action_id].context == "gallery" and BY_ID[action_id].menu == "Gallery"
    # every gallery action of the registry runs a state method
    assert {a for a in BY_ID if BY_ID[a].context == "gallery"} == set(GALLERY_ACTIONS)
    keys = {k for a in GALLERY_ACTIONS for k in BY_ID[a].keys}
    for wanted in ("Up", "Down", "PgUp", "PgDown", "Home", "End", "Return", "Z"):
        assert wanted in keys
    # labelling and Left / Right are the window's keys, live in the gallery too
    for window_action, key in (("label_real", "R"), ("label_bogus", "B"),
                               ("label_unsure", "U"), ("next", "Right"), ("previous", "Left")):
        assert key in BY_ID[window_action].keys and BY_ID[window_action].context == "window"


def test_zoom_steps_are_clamped():
    st = _state()
    z = st.zoom
    st.zoom_in()
    assert st.zoom == pytest.approx(z * 1.25)
    for _ in range(20):
        st.zoom_out()
    assert st.zoom == 0.5


@pytest.mark.parametrize(("size", "grid"), [
    ((1632, 600), (8, 6)),  # the benchmark's 48 tiles
    ((300, 200), GRID_MIN),  # small: 2 x 2, stamps shrink
    ((5000, 4000), GRID_MAX),  # huge: capped, stamps grow
])
def test_grid_layout(size, grid):
    lay = grid_layout(*size, stamp_size=51, zoom=1.25, text_h=28)
    assert (lay.columns, lay.rows) == grid
    assert lay.columns * lay.cell_w <= size[0] and lay.rows * lay.cell_h <= size[1]
    assert lay.cell_w == 3 * lay.stamp_px + 2 * lay.gap + 2 * lay.margin
    x, y, w, h = lay.cell(lay.columns + 1)
    assert lay.at(x + w / 2, y + h / 2) == lay.columns + 1
    assert lay.at(-1, -1) is None and lay.at(size[0] + 10, 5) is None


def test_tile_text():
    class Facts:
        ids = [7, 8]
        status = ["matched", "target"]
        score = np.array([0.98765, np.nan])
        original = np.array([0.1, 0.4321])
        labels = [None, "real"]

    assert tile_text(Facts, 0).score == "0.988" and tile_text(Facts, 0).label is None
    t = tile_text(Facts, 1)
    assert (t.id, t.status, t.score, t.label) == ("8", "target", "(0.43)", "real")
    assert tile_text(Facts, 1, hide_scores=True).score == ""


def test_palettes_tell_everything_apart():
    for pal in PALETTES.values():
        assert len(set(pal.status.values())) == len(pal.status)
        assert len(set(pal.label.values())) == len(pal.label)
        # an alert's survey is no match status: neutral, never the 'unmatched' colour
        for survey in ("ztf", "rubin"):
            assert pal.status_color(survey) == pal.neutral
        assert pal.neutral not in set(pal.status.values()) | set(pal.label.values())
        assert pal.status_color("unmatched") == pal.status["unmatched"]
        assert pal.label_color(None) is None
    oi = get_palette("okabe-ito")
    assert set(oi.status.values()) | set(oi.label.values()) <= set(OKABE_ITO.values())
    assert hex_color((0, 158, 115)) == "#009e73"
    assert get_palette().name == "classic"
