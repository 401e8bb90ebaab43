"""The gallery of triplets: a grid of tiles, one per source, painted by hand (QPainter).

A thin view of :class:`diascan.gallery.GalleryState`: it paints the page the state points at,
turns mouse clicks into state changes (click selects, double click opens) and fits the grid to
its size; every action (arrows, labels, pages, enlarge, ...) is a method of the state, listed in
:data:`diascan.gallery.GALLERY_ACTIONS` and returned bound by :meth:`QtGallery.actions` for the
action registry to give keys to. The widget binds no key itself.

Speed (benchmarks/bench_gallery.py): a page's stamps are cut, given their limits and rendered
in one vectorised pass (:mod:`diascan.stamp_display`); the page's tiles are then composed at
the grid's size into one image, the frames, backgrounds and scaled stamps in one numpy gather
(:func:`~diascan.stamp_display.compose_tiles`) and only the texts and badges by QPainter;
each tile is cached by source row as a view of that image, so a repaint is one image copy per
tile; a selection move repaints only the two tiles involved; the next and previous pages are
composed while the GUI is idle.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping

import numpy as np
from PyQt6.QtCore import QPoint, QRect, QRectF, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter, QPen
from PyQt6.QtWidgets import QSizePolicy, QWidget

from diascan.gallery import (
    ENLARGE_FACTOR,
    GALLERY_ACTIONS,
    GalleryState,
    GridLayout,
    TileFacts,
    grid_layout,
    tile_text,
)
from diascan.palettes import LABEL_LETTERS, get_palette
from diascan.stamp_display import (
    FrameLike,
    StampDisplay,
    TileGeometry,
    argb32,
    compose_tiles,
    display_settings,
    render_tiles,
)
from diascan.stamps import StampSource, stack_triplets

BACKGROUND = QColor(24, 24, 28)
TILE_BACKGROUND = QColor(40, 40, 46)
SELECTED = QColor(120, 255, 120)
TEXT = QColor(225, 225, 225)
#: Tiles kept rendered (a few pages of the largest grid).
CACHE_TILES = 600
#: The images' pixel format: the rendered stamps are ARGB32 words (opaque, the gaps clear),
#: which QPainter draws onto the screen without a conversion.
_FORMAT = QImage.Format.Format_ARGB32_Premultiplied


class QtGallery(QWidget):
    """The gallery widget; ``state`` says what it shows."""

    #: The display settings changed (the stamp dock follows them): a StampDisplay.
    display_changed = pyqtSignal(object)
    #: A right-click on a tile: (source row, global position for its menu).
    menu_requested = pyqtSignal(int, QPoint)

    def __init__(self, state: GalleryState | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state if state is not None else GalleryState()
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(240, 160)
        self.setMouseTracking(True)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.font_small = QFont(self.font())
        self.font_small.setPointSizeF(max(7.0, self.font().pointSizeF() - 1))
        self.fm = QFontMetrics(self.font_small)
        self.source: StampSource | None = None
        self.facts: TileFacts | None = None
        self._frames: Mapping[str, FrameLike] | None = None
        self.display = StampDisplay.per_tile()
        self.grid: GridLayout = self._layout()
        #: row -> (ARGB32 array kept alive, QImage over it), for the current size and display.
        self._tiles: OrderedDict[int, tuple[np.ndarray, QImage]] = OrderedDict()
        #: row -> (the page image holding it, the composed tile: stamps at the grid's size,
        #: texts, badge; not selected) - a view of the page image's memory, which lives as
        #: long as one of its tiles is cached.
        self._screen: OrderedDict[int, tuple[QImage, QImage]] = OrderedDict()
        self._hover: int | None = None  # page position under the mouse
        #: Render the next page ahead when idle (benchmarks switch it off to time cold flips).
        self.prefetch = True
        self._prefetch_timer = QTimer(self)
        self._prefetch_timer.setSingleShot(True)
        self._prefetch_timer.setInterval(0)
        self._prefetch_timer.timeout.connect(self._prefetch_next)
        #: ``decode_ahead(rows)``: have the stamps of ``rows`` decoded off the GUI thread (a
        #: job) and call :meth:`prefetch_more` when done (False: it cannot, the idle prefetch
        #: decodes them itself); used for a source whose stamps are decoded lazily
        #: (``decoded(row)``: alerts), None: the idle prefetch always decodes itself.
        self.decode_ahead: Callable[[list[int]], bool] | None = None
        self._ahead: list[int] = []  # the rows asked of decode_ahead last
        #: Paint events handled (tests and benchmarks check a change was painted).
        self.paint_count = 0
        ev = self.state.events
        ev.current.connect(self._on_current)
        ev.order.connect(self._on_page_content)
        for name in ("columns", "rows"):
            getattr(ev, name).connect(self._on_page_content)
        for name in ("hide_scores", "palette"):
            getattr(ev, name).connect(self._on_text_settings)
        ev.stamp_size.connect(self._on_render_settings)
        ev.zoom.connect(self._on_zoom)
        ev.follow_frames.connect(self.frames_changed)
        ev.enlarged.connect(self._on_enlarged)
        ev.enlarge_on_hover.connect(self._on_enlarged)

    # -- data ----------------------------------------------------------------------------
    def actions(self) -> dict[str, Callable[[], None]]:
        """Action id -> the bound method it runs (:data:`GALLERY_ACTIONS`), for key binding."""
        return {action_id: getattr(self.state, method)
                for action_id, method in GALLERY_ACTIONS.items()}

    def set_source(self, source: StampSource | None, facts: TileFacts | None) -> None:
        """Show the stamps of ``source`` and the texts of ``facts`` (rows alike)."""
        self.source = source
        self.facts = facts
        self._ahead = []
        self._clear_cache()
        self.update()

    def set_frames(self, frames: Mapping[str, FrameLike] | None) -> None:
        """The frames whose stretch and limits the tiles follow when ``follow_frames``."""
        self._frames = frames
        self.frames_changed()

    def frames_changed(self, *_args) -> None:
        """The frames' stretch or levels (or the toggle) changed: re-render if it matters."""
        display = display_settings(self.state.follow_frames, self._frames)
        if display != self.display:
            self.display = display
            self._clear_cache()
            self.update()
            self.display_changed.emit(display)

    def refresh_rows(self, rows=None) -> None:
        """Texts of ``rows`` changed (labels, scores); None = all. Repaints those tiles."""
        if rows is None:
            self._screen.clear()
            self.update()
            return
        page = self.state.page_rows()
        for row in np.atleast_1d(rows):
            self._screen.pop(int(row), None)
            if int(row) in page:
                self.update(self._tile_rect(page.index(int(row))))

    # -- geometry ------------------------------------------------------------------------
    def _layout(self) -> GridLayout:
        text_h = 2 * self.fm.lineSpacing() + 2
        footer = self.fm.lineSpacing() + 4  # the page line
        return grid_layout(self.width(), self.height() - footer, self.state.stamp_size,
                           self.state.zoom, text_h=text_h)

    def _refit(self) -> None:
        old = self.grid
        self.grid = self._layout()
        with self.state.events.paused():
            self.state.columns = self.grid.columns
            self.state.rows = self.grid.rows
        # the state clamps: the grid must agree with it
        if (self.state.columns, self.state.rows) != (self.grid.columns, self.grid.rows):
            self.grid = self._layout()
        if (old.stamp_px, old.cell_w, old.cell_h) != (self.grid.stamp_px, self.grid.cell_w,
                                                      self.grid.cell_h):
            self._screen.clear()  # composed at the old size

    def _tile_rect(self, k: int) -> QRect:
        x, y, w, h = self.grid.cell(k)
        return QRect(x, y, w, h)

    def _enlarged_rect(self, k: int) -> QRect:
        """Where tile ``k`` goes when enlarged: ENLARGE_FACTOR x, centred on it, inside."""
        g = self.grid
        px = g.stamp_px * ENLARGE_FACTOR
        w = 3 * px + 2 * g.gap * ENLARGE_FACTOR + 2 * g.margin
        h = px + g.text_h + 2 * g.margin
        scale = min(1.0, self.width() / w, self.height() / h)
        w, h = int(w * scale), int(h * scale)
        cell = self._tile_rect(k)
        x = int(np.clip(cell.center().x() - w / 2, 0, max(0, self.width() - w)))
        y = int(np.clip(cell.center().y() - h / 2, 0, max(0, self.height() - h)))
        return QRect(x, y, w, h)

    def _enlarged_position(self) -> int | None:
        st = self.state
        if st.enlarge_on_hover and self._hover is not None:
            return self._hover
        if st.enlarged and st.order:
            return st.current - st.page_start
        return None

    def tile_at(self, x: float, y: float) -> int | None:
        """Position in the order of the tile under widget point (x, y), or None."""
        k = self.grid.at(x, y)
        if k is None:
            return None
        pos = self.state.page_start + k
        return pos if pos < len(self.state.order) else None

    # -- rendering -----------------------------------------------------------------------
    def _clear_cache(self) -> None:
        """Forget every rendering (stamps and composed tiles)."""
        self._tiles.clear()
        self._screen.clear()

    def _compose(self, rows: list[int]) -> None:
        """Compose the tiles of ``rows`` missing from the screen cache into one image: frames,
        backgrounds and stamps scaled to the grid in one gather, then the texts and badges;
        a paint is then one image copy per tile."""
        missing = [r for r in rows if r not in self._screen]
        if not missing or self.source is None:
            return
        self._render(missing)
        g = self.grid
        n = len(missing)
        page = QImage(g.cell_w, g.cell_h * n, _FORMAT)
        bits = page.bits()
        bits.setsize(page.sizeInBytes())
        cells = np.frombuffer(bits, np.uint32).reshape(n, g.cell_h, g.cell_w)
        geo = TileGeometry(g.cell_w, g.cell_h, g.stamp_px, g.margin, g.gap,
                           int(argb32(BACKGROUND.getRgb())), int(argb32(TILE_BACKGROUND.getRgb())))
        compose_tiles(np.stack([self._tiles[r][0] for r in missing]), self.state.stamp_size,
                      geo, out=cells)
        palette = get_palette(self.state.palette)
        p = QPainter(page)
        p.setFont(self.font_small)
        for k, row in enumerate(missing):
            rect = QRect(0, k * g.cell_h, g.cell_w, g.cell_h)
            self._draw_texts(p, row, rect, rect.y() + g.margin + g.stamp_px + 1, palette)
        p.end()
        for k, row in enumerate(missing):
            # a view of the page's memory (the page is kept with it)
            tile = QImage(cells[k].data, g.cell_w, g.cell_h, 4 * g.cell_w, _FORMAT)
            self._screen[row] = (page, tile)
        while len(self._screen) > CACHE_TILES:
            self._screen.popitem(last=False)

    def _render(self, rows: list[int]) -> None:
        """Render the tiles of ``rows`` not in the cache, in one vectorised pass."""
        missing = [r for r in rows if r not in self._tiles]
        if not missing or self.source is None:
            return
        stack = stack_triplets(self.source, missing, self.state.stamp_size)
        tiles = render_tiles(stack, self.display, gap=1, words=True)
        _, h, w = tiles.shape
        for row, arr in zip(missing, tiles, strict=True):
            # the image reads the array's memory: both are kept together in the cache
            img = QImage(arr.data, w, h, arr.strides[0], _FORMAT)
            self._tiles[row] = (arr, img)
        while len(self._tiles) > CACHE_TILES:
            self._tiles.popitem(last=False)

    def _prefetch_next(self) -> None:
        """Compose the next page's tiles, then the previous page's (one page per idle turn)."""
        if not self.prefetch:  # switched off while the timer's chain was running
            return
        st = self.state
        for page in (st.page + 1, st.page - 1):
            if 0 <= page < st.page_count:
                start = page * st.per_page
                rows = list(st.order[start : start + st.per_page])
                if any(r not in self._screen for r in rows):
                    if not self._decoded(rows):
                        if rows == self._ahead:
                            return  # asked for already: prefetch_more comes
                        if self.decode_ahead(rows):  # type: ignore[misc]
                            self._ahead = rows
                            return
                    self._compose(rows)
                    self._prefetch_timer.start()  # the other direction on the next idle turn
                    return

    def _decoded(self, rows: list[int]) -> bool:
        """False when ``rows``' stamps are to be decoded by :attr:`decode_ahead` first."""
        decoded = getattr(self.source, "decoded", None)
        return decoded is None or self.decode_ahead is None or all(decoded(r) for r in rows)

    def prefetch_more(self) -> None:
        """Stamps were decoded ahead: go on composing the pages around the current one."""
        self._ahead = []
        if self.prefetch and not self._prefetch_timer.isActive():
            self._prefetch_timer.start()

    # -- state ---------------------------------------------------------------------------
    def _on_current(self, new: int, old: int | None = None) -> None:
        st = self.state
        if old is None or old // st.per_page != new // st.per_page:
            self.update()  # a new page
            return
        start = st.page_start
        for pos in (old, new):
            self.update(self._tile_rect(pos - start))
        if st.enlarged:
            for pos in (old, new):
                self.update(self._enlarged_rect(pos - start))

    def _on_page_content(self, *_args) -> None:
        self.update()

    def _on_text_settings(self, *_args) -> None:
        self._screen.clear()
        self.update()

    def _on_render_settings(self, *_args) -> None:
        self._clear_cache()
        self._refit()
        self.update()

    def _on_zoom(self, *_args) -> None:
        self._refit()
        self.update()

    def _on_enlarged(self, *_args) -> None:
        self.update()

    # -- Qt events -----------------------------------------------------------------------
    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        self._refit()
        super().resizeEvent(event)

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.paint_count += 1
        st = self.state
        painter = QPainter(self)
        painter.setFont(self.font_small)
        clip = event.rect()
        painter.fillRect(clip, BACKGROUND)
        rows = list(st.page_rows())
        if not rows or self.source is None or self.facts is None:
            painter.setPen(TEXT)
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter,
                             "no sources to show" if self.source is not None else "no data")
            painter.end()
            return
        palette = get_palette(st.palette)
        selected = st.current - st.page_start
        shown = [(k, row) for k, row in enumerate(rows) if self._tile_rect(k).intersects(clip)]
        self._compose([row for _, row in shown])
        for k, row in shown:
            rect = self._tile_rect(k)
            painter.drawImage(rect.topLeft(), self._screen[row][1])
            if k == selected:
                self._draw_selection(painter, rect)
        self._draw_page_line(painter, clip)
        big = self._enlarged_position()
        if big is not None and 0 <= big < len(rows):
            rect = self._enlarged_rect(big)
            if rect.intersects(clip):
                self._render([rows[big]])
                px = (rect.height() - self.grid.text_h - 2 * self.grid.margin)
                self._draw_tile(painter, rows[big], rect, px, big == selected, palette,
                                enlarged=True)
        painter.end()
        if self.prefetch and not self._prefetch_timer.isActive():
            self._prefetch_timer.start()

    def _draw_tile(self, painter: QPainter, row: int, rect: QRect, px: int, selected: bool,
                   palette, enlarged: bool = False) -> None:
        """A tile drawn by QPainter at any size (the enlarged one; the grid's are composed)."""
        g = self.grid
        painter.fillRect(rect.adjusted(1, 1, -1, -1), TILE_BACKGROUND)
        tile = self._tiles.get(row)
        gap = g.gap * (ENLARGE_FACTOR if enlarged else 1)
        stamps = QRectF(rect.x() + g.margin, rect.y() + g.margin, 3 * px + 2 * gap, px)
        if tile is not None:
            # each stamp into its own px x px square (nearest neighbour: pixels stay sharp)
            size = self.state.stamp_size
            for c in range(3):
                target = QRectF(stamps.x() + c * (px + gap), stamps.y(), px, px)
                painter.drawImage(target, tile[1], QRectF(c * (size + 1), 0, size, size))
        self._draw_texts(painter, row, rect, int(stamps.bottom()) + 1, palette)
        if selected or enlarged:
            self._draw_selection(painter, rect, SELECTED if selected else TEXT)

    def _draw_texts(self, painter: QPainter, row: int, rect: QRect, y: int, palette) -> None:
        """The id, status, score and label badge of tile ``rect`` from height ``y`` on."""
        g = self.grid
        text = tile_text(self.facts, row, self.state.hide_scores)
        line = self.fm.lineSpacing()
        x = rect.x() + g.margin
        width = rect.width() - 2 * g.margin
        id_width = width
        if text.label is not None:  # the badge goes at the right of the id line
            id_width -= self._draw_badge(painter, text.label, palette, x + width, y, line,
                                         short=width < 2 * self._badge_width(text.label)) + 4
        # at a point, not in a rectangle: no layout pass per text (a page draws 100-150)
        base = y + self.fm.ascent()
        painter.setPen(TEXT)
        painter.drawText(x, base, self.fm.elidedText(text.id, Qt.TextElideMode.ElideMiddle,
                                                     id_width))
        painter.setPen(QColor(*palette.status_color(text.status)))
        painter.drawText(x, base + line, text.status)
        if text.score:
            painter.setPen(TEXT)
            painter.drawText(x + self.fm.horizontalAdvance(text.status) + 6, base + line,
                             text.score)

    @staticmethod
    def _draw_selection(painter: QPainter, rect: QRect, color: QColor = SELECTED) -> None:
        painter.setPen(QPen(color, 2))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(rect.adjusted(1, 1, -2, -2))

    def _draw_page_line(self, painter: QPainter, clip: QRect) -> None:
        """"page 1 of 3 (tiles 1-48 of 130)" under the grid, where there is room."""
        st, g = self.state, self.grid
        top = g.y0 + g.rows * g.cell_h
        line = QRect(g.x0, top, g.columns * g.cell_w, self.fm.lineSpacing() + 4)
        if line.bottom() > self.height() or not line.intersects(clip):
            return
        first = st.page_start + 1
        last = min(st.page_start + st.per_page, len(st.order))
        painter.setPen(TEXT)
        painter.drawText(line, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                         f"page {st.page + 1} of {st.page_count}  (tiles {first}-{last} of "
                         f"{len(st.order)})")

    def _badge_text(self, label: str, short: bool = False) -> str:
        letter = LABEL_LETTERS.get(label, "·")
        return letter if short else f"{letter} {label}"

    def _badge_width(self, label: str, short: bool = False) -> int:
        return self.fm.horizontalAdvance(self._badge_text(label, short)) + 8

    def _draw_badge(self, painter: QPainter, label: str, palette, right: int, y: int,
                    h: int, short: bool = False) -> int:
        """The label badge (its letter, and the word when there is room) on the label's
        colour, right-aligned at ``right``; returns its width."""
        w = self._badge_width(label, short)
        box = QRect(right - w, y, w, h)
        color = palette.label_color(label) or (200, 200, 200)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(*color))
        painter.drawRoundedRect(box, 3, 3)
        painter.setPen(QColor(0, 0, 0))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, self._badge_text(label, short))
        return w

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt API
        pos = self.tile_at(event.position().x(), event.position().y())
        if pos is not None and event.button() == Qt.MouseButton.LeftButton:
            self.state.current = pos
        super().mousePressEvent(event)

    def contextMenuEvent(self, event) -> None:  # noqa: N802 - Qt API
        pos = self.tile_at(event.pos().x(), event.pos().y())
        if pos is None:
            return
        self.state.current = pos
        self.menu_requested.emit(self.state.order[pos], event.globalPos())

    def mouseDoubleClickEvent(self, event) -> None:  # noqa: N802 - Qt API
        pos = self.tile_at(event.position().x(), event.position().y())
        if pos is not None and event.button() == Qt.MouseButton.LeftButton:
            self.state.current = pos
            self.state.open_selected()

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt API
        k = self.grid.at(event.position().x(), event.position().y())
        if k != self._hover:
            old, self._hover = self._hover, k
            if self.state.enlarge_on_hover:
                for pos in (old, k):
                    if pos is not None:
                        self.update(self._enlarged_rect(pos))
                        self.update(self._tile_rect(pos))
        super().mouseMoveEvent(event)

    def leaveEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self._hover is not None and self.state.enlarge_on_hover:
            self.update()
        self._hover = None
        super().leaveEvent(event)
