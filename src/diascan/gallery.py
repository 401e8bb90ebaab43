"""The gallery of triplets (Qt-free): its state, its actions and its grid geometry.

The gallery shows one tile per source, in the order it is given (the table's filter and sort
order: a list of row indices), each tile the science, template and difference stamps with the
id, status, score and label. :class:`GalleryState` is an evented dataclass (psygnal): widgets
and the window connect to its per-field signals (``state.events.current``, ...) and to
:attr:`GalleryState.label_requested` / :attr:`GalleryState.open_requested`; every action is a
method, so keys (the action registry), menus and tests all drive the same code.

:data:`GALLERY_ACTIONS` maps the action registry's gallery actions to the state's methods; the
widget binds none of them itself. :func:`grid_layout` turns a widget size into a
grid of tiles (2 x 2 at least, :data:`GRID_MAX` at most).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from psygnal import Signal, evented

from diascan.evented import batch

#: Display stamp sizes (pixels of the image) the gallery offers, and the step of +/-.
STAMP_SIZE_RANGE = (31, 101)
STAMP_SIZE_STEP = 10
DEFAULT_STAMP_SIZE = 51
#: Screen pixels per image pixel the layout aims at (before fitting the grid to the widget).
ZOOM_RANGE = (0.5, 4.0)
DEFAULT_ZOOM = 1.0
#: Factor of one zoom step (``+`` / ``-`` in the gallery).
ZOOM_STEP = 1.25
#: Tiles per row and column: at least 2 x 2, at most 12 x 10 (the issue asks for 8 x 6 or more).
GRID_MIN = (2, 2)
GRID_MAX = (12, 10)
#: How much an enlarged tile grows (in place, over its neighbours).
ENLARGE_FACTOR = 3


def _clamp(value: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, value))


@evented
@dataclass
class GalleryState:
    """What the gallery shows: order, selection, grid, stamp size and display choices.

    ``order`` holds source rows in display order; ``current`` is a POSITION in ``order`` (the
    selected tile), the page is derived from it. ``columns`` x ``rows`` is the grid the widget
    fits into its size. Values are validated on every assignment (clamped to their range).
    """

    order: tuple[int, ...] = ()
    current: int = 0
    columns: int = 4
    rows: int = 3
    stamp_size: int = DEFAULT_STAMP_SIZE
    zoom: float = DEFAULT_ZOOM
    #: Stamps follow the frames' stretch and limits (True) or use per-tile zscale (False).
    follow_frames: bool = False
    #: The selected tile is shown enlarged (x ENLARGE_FACTOR) in place.
    enlarged: bool = False
    #: The tile under the mouse is enlarged while it is there.
    enlarge_on_hover: bool = False
    #: "Hide model scores while labelling": tiles show no score.
    hide_scores: bool = False
    #: Colour palette of statuses and labels (:data:`diascan.palettes.PALETTES`).
    palette: str = "classic"

    #: ``label_requested(row, label)``: label source ``row`` (``label`` None = clear it).
    label_requested = Signal(int, object)
    #: ``open_requested(row)``: show source ``row`` in the linked frames, centred.
    open_requested = Signal(int)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "order":
            value = tuple(int(v) for v in value)
        elif name == "current":
            n = len(getattr(self, "order", ()))
            value = int(_clamp(int(value), 0, max(n - 1, 0)))
        elif name == "columns":
            value = int(_clamp(int(value), GRID_MIN[0], GRID_MAX[0]))
        elif name == "rows":
            value = int(_clamp(int(value), GRID_MIN[1], GRID_MAX[1]))
        elif name == "stamp_size":
            value = int(_clamp(int(round(value)), *STAMP_SIZE_RANGE))
        elif name == "zoom":
            value = float(_clamp(float(value), *ZOOM_RANGE))
        elif name in ("follow_frames", "enlarged", "enlarge_on_hover", "hide_scores"):
            value = bool(value)
        elif name == "palette":
            from diascan.palettes import get_palette

            value = get_palette(value).name
        super().__setattr__(name, value)

    # -- derived -------------------------------------------------------------------------
    @property
    def per_page(self) -> int:
        return self.columns * self.rows

    @property
    def page(self) -> int:
        """Index of the page holding the selected tile."""
        return self.current // self.per_page

    @property
    def page_count(self) -> int:
        return max(1, -(-len(self.order) // self.per_page))

    @property
    def page_start(self) -> int:
        """Position (in ``order``) of the first tile of the current page."""
        return self.page * self.per_page

    def page_rows(self) -> tuple[int, ...]:
        """Source rows of the tiles on the current page, in order."""
        start = self.page_start
        return self.order[start : start + self.per_page]

    @property
    def selected_row(self) -> int | None:
        """Source row of the selected tile (None when the gallery is empty)."""
        return self.order[self.current] if self.order else None

    # -- order and selection -------------------------------------------------------------
    def set_order(self, rows: Sequence[int]) -> None:
        """Show ``rows`` (the table's filtered, sorted rows); the selected source stays
        selected if it is still there, else the tile at the same position is."""
        keep = self.selected_row
        with batch(self):  # listeners of ``order`` see the new ``current`` too
            self.order = tuple(rows)
            if keep is not None and keep in self.order:
                self.current = self.order.index(keep)
            else:
                self.current = self.current  # clamped to the new length

    def select_row(self, row: int) -> bool:
        """Select the tile of source ``row`` (the frames' selection); False if not shown."""
        try:
            self.current = self.order.index(int(row))
        except ValueError:
            return False
        return True

    def move(self, step: int) -> None:
        """Move the selection ``step`` tiles along the order (pages follow)."""
        self.current = self.current + int(step)

    def move_left(self) -> None:
        self.move(-1)

    def move_right(self) -> None:
        self.move(1)

    def move_up(self) -> None:
        if self.current - self.columns >= 0:
            self.move(-self.columns)

    def move_down(self) -> None:
        if self.current + self.columns < len(self.order):
            self.move(self.columns)
        elif self.page < self.page_count - 1:
            self.current = len(self.order) - 1  # the short last page

    def next_page(self) -> None:
        """The same tile position on the next page (the last tile on a short last page)."""
        if self.page < self.page_count - 1:
            self.current = self.current + self.per_page

    def previous_page(self) -> None:
        if self.page > 0:
            self.current = self.current - self.per_page

    def first(self) -> None:
        self.current = 0

    def last(self) -> None:
        self.current = len(self.order) - 1

    # -- labelling and opening -----------------------------------------------------------
    def label(self, label: str | None) -> None:
        """Label the selected tile and move to the next one."""
        row = self.selected_row
        if row is None:
            return
        self.label_requested.emit(row, label)
        self.move(1)

    def label_real(self) -> None:
        self.label("real")

    def label_bogus(self) -> None:
        self.label("bogus")

    def label_unsure(self) -> None:
        self.label("unsure")

    def clear_label(self) -> None:
        """Remove the selected tile's label (and stay on it)."""
        row = self.selected_row
        if row is not None:
            self.label_requested.emit(row, None)

    def open_selected(self) -> None:
        """Ask for the selected source in the linked frames (Enter, double click)."""
        row = self.selected_row
        if row is not None:
            self.open_requested.emit(row)

    # -- display -------------------------------------------------------------------------
    def toggle_enlarged(self) -> None:
        self.enlarged = not self.enlarged

    def toggle_enlarge_on_hover(self) -> None:
        self.enlarge_on_hover = not self.enlarge_on_hover

    def toggle_follow_frames(self) -> None:
        self.follow_frames = not self.follow_frames

    def larger_stamps(self) -> None:
        self.stamp_size = self.stamp_size + STAMP_SIZE_STEP

    def smaller_stamps(self) -> None:
        self.stamp_size = self.stamp_size - STAMP_SIZE_STEP

    def zoom_in(self) -> None:
        """Larger tiles (more screen pixels per image pixel), fewer on a page."""
        self.zoom = self.zoom * ZOOM_STEP

    def zoom_out(self) -> None:
        self.zoom = self.zoom / ZOOM_STEP


#: The gallery's registered actions (:data:`diascan.actions.ACTIONS`, context ``gallery``:
#: titles, keys and help are there) -> the :class:`GalleryState` method each runs. Labelling
#: and moving along the order (r / b / u / 0, Left / Right, n / p) are the window's labelling
#: actions, the same keys in every view: they act on the selected source, which the gallery
#: and the table share.
GALLERY_ACTIONS: dict[str, str] = {
    "gallery.up": "move_up",
    "gallery.down": "move_down",
    "gallery.next_page": "next_page",
    "gallery.previous_page": "previous_page",
    "gallery.first": "first",
    "gallery.last": "last",
    "gallery.open": "open_selected",
    "gallery.enlarge": "toggle_enlarged",
    "gallery.enlarge_on_hover": "toggle_enlarge_on_hover",
    "gallery.zoom_in": "zoom_in",
    "gallery.zoom_out": "zoom_out",
}


# -- what a tile says ------------------------------------------------------------------------


class TileFacts(Protocol):
    """What the tiles print, by source row (the viewer's ``SourceSet`` has all of it)."""

    ids: Sequence[Any]
    status: Sequence[str]
    score: np.ndarray  #: recomputed score, NaN if none
    original: np.ndarray  #: the catalog's reliability, NaN if none
    labels: Sequence[str | None]


@dataclass(frozen=True)
class TileText:
    """The text of one tile: id, status, score (empty when hidden or unknown) and label."""

    id: str
    status: str
    score: str
    label: str | None


def tile_text(facts: TileFacts, row: int, hide_scores: bool = False) -> TileText:
    """What tile ``row`` prints. The score is the recomputed one (``0.953``), else the
    catalog's reliability in parentheses (``(0.41)``); none at all while scores are hidden."""
    score = ""
    if not hide_scores:
        s, o = float(facts.score[row]), float(facts.original[row])
        if np.isfinite(s):
            score = f"{s:.3f}"
        elif np.isfinite(o):
            score = f"({o:.2f})"
    label = facts.labels[row]
    return TileText(str(facts.ids[row]), str(facts.status[row]), score,
                    None if label is None else str(label))


# -- geometry ------------------------------------------------------------------------------


@dataclass(frozen=True)
class GridLayout:
    """Where tiles go in a widget: grid, stamp size on screen and tile cells (pixels)."""

    columns: int
    rows: int
    stamp_px: int  #: on-screen side of one stamp
    cell_w: int  #: width of one tile's cell (tile + spacing)
    cell_h: int
    x0: int  #: left of the first cell (the grid is centred across, at the top)
    y0: int
    margin: int
    gap: int
    text_h: int

    def cell(self, k: int) -> tuple[int, int, int, int]:
        """``(x, y, w, h)`` of the tile at page position ``k`` (row-major)."""
        r, c = divmod(k, self.columns)
        return (self.x0 + c * self.cell_w, self.y0 + r * self.cell_h, self.cell_w, self.cell_h)

    def stamps_rect(self, k: int) -> tuple[int, int, int, int]:
        """``(x, y, w, h)`` of the three stamps inside tile ``k``."""
        x, y, _, _ = self.cell(k)
        return (x + self.margin, y + self.margin, 3 * self.stamp_px + 2 * self.gap,
                self.stamp_px)

    def at(self, px: float, py: float) -> int | None:
        """Page position of the tile under widget point (px, py), or None."""
        c = int((px - self.x0) // self.cell_w)
        r = int((py - self.y0) // self.cell_h)
        if not (0 <= c < self.columns and 0 <= r < self.rows) or px < self.x0 or py < self.y0:
            return None
        return r * self.columns + c


def grid_layout(
    width: int,
    height: int,
    stamp_size: int = DEFAULT_STAMP_SIZE,
    zoom: float = DEFAULT_ZOOM,
    text_h: int = 28,
    margin: int = 4,
    gap: int = 2,
) -> GridLayout:
    """The grid for a ``width`` x ``height`` widget: as many tiles as fit at ``zoom`` screen
    pixels per stamp pixel, at least :data:`GRID_MIN` (stamps shrink) and at most
    :data:`GRID_MAX` (stamps grow to fill); then the stamps are as large as the grid allows."""
    width, height = max(int(width), 1), max(int(height), 1)
    want = max(8.0, stamp_size * zoom)

    def cell_size(px: float) -> tuple[float, float]:
        return 3 * px + 2 * gap + 2 * margin, px + text_h + 2 * margin

    cw, ch = cell_size(want)
    cols = int(_clamp(width // cw, GRID_MIN[0], GRID_MAX[0]))
    rows = int(_clamp(height // ch, GRID_MIN[1], GRID_MAX[1]))
    px_w = (width / cols - 2 * gap - 2 * margin) / 3
    px_h = height / rows - text_h - 2 * margin
    px = int(max(4, min(px_w, px_h)))
    cw, ch = cell_size(px)
    cell_w, cell_h = int(cw), int(ch)
    x0 = max(0, (width - cols * cell_w) // 2)
    y0 = 0
    return GridLayout(cols, rows, px, cell_w, cell_h, x0, y0, margin, gap, text_h)


__all__ = [
    "DEFAULT_STAMP_SIZE",
    "ENLARGE_FACTOR",
    "GALLERY_ACTIONS",
    "GRID_MAX",
    "GRID_MIN",
    "STAMP_SIZE_RANGE",
    "GalleryState",
    "GridLayout",
    "TileFacts",
    "TileText",
    "grid_layout",
    "tile_text",
]
