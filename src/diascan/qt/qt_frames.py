"""Science / template / difference frames: linked pyqtgraph views, blink, crosshair, masks.

Speed rules (docs/viewer-anchors.md): each frame gets ONE float32, C-contiguous, NaN-free display
copy with explicit levels; stretch and colormap are one lookup table; blink toggles item
visibility and never calls ``setImage`` again.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QPoint, QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QFont, QPainterPath, QTransform
from PyQt6.QtWidgets import QApplication, QHBoxLayout, QWidget

from diascan import viewstate as vs
from diascan.display import compute_levels, make_lut, mask_overlay
from diascan.palettes import LABEL_LETTERS, MASK_COLORS, Palette, drawn_as, get_palette

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

#: Marker shape and size per status. Shape AND colour differ (colour-blind users); colours come
#: from the palette (:mod:`diascan.palettes`). The names are pyqtgraph's symbols (the plots use
#: them); the frames draw the same shapes as rings (:func:`marker_symbol`).
STATUS_SHAPES: dict[str, tuple[str, int]] = {
    "matched": ("o", 14),
    "unmatched": ("s", 14),
    "target": ("star", 22),
    "missing": ("d", 14),
}


def status_style(palette: Palette | None = None) -> dict[str, tuple[str, tuple[int, int, int], int]]:
    """Marker style per status: (symbol, colour, size) in ``palette`` (default: classic)."""
    pal = palette or get_palette()
    return {st: (sym, pal.status_color(st), size) for st, (sym, size) in STATUS_SHAPES.items()}


#: Marker style per status in the default palette: (symbol, colour, size).
STATUS_STYLE = status_style()

# -- the centre of a source stays visible ------------------------------------------------------
#: Radius (image pixels) around a source that nothing drawn over the frames covers, at any
#: zoom: the rings, their score fill, the selection ring, the crosshair and the label letter
#: all stay outside it, growing with the zoom (:func:`overlay_geometry`).
CLEAR_RADIUS = 2.5
#: ... and never less than this many screen pixels (zoomed out).
MIN_CLEAR_PX = 2.0
#: Radius of each ring's hole (unit symbol: the shape spans -0.5..0.5): inside the largest
#: circle the shape holds, so the hole is a clean disc.
_HOLES = {"o": 0.34, "s": 0.34, "d": 0.22, "star": 0.19}
#: Size of the label letter (:data:`diascan.palettes.LABEL_LETTERS`, screen pixels) drawn at the
#: upper right of a labelled source's ring: a letter, not only a colour, so colour-blind users
#: can tell labels apart; its colour comes from the palette.
LABEL_LETTER_PX = 15
#: The selection ring is this much larger than the largest marker (screen pixels).
HIGHLIGHT_MARGIN = 10


def _star(outer: float = 0.5, inner: float = 0.3) -> list[tuple[float, float]]:
    """A five-pointed star, a point up (screen y down), fatter than pyqtgraph's so it holds a
    hole."""
    pts = []
    for k in range(10):
        r = outer if k % 2 == 0 else inner
        a = np.pi / 2 + k * np.pi / 5
        pts.append((r * np.cos(a), -r * np.sin(a)))
    return pts


def _ring(shape: str) -> QPainterPath:
    """Status shape ``shape`` with a round hole in the middle (odd-even fill: the fill and the
    outline leave the hole empty)."""
    path = QPainterPath()
    path.setFillRule(Qt.FillRule.OddEvenFill)
    if shape == "o":
        path.addEllipse(QRectF(-0.5, -0.5, 1.0, 1.0))
    elif shape == "s":
        path.addRect(QRectF(-0.5, -0.5, 1.0, 1.0))
    else:
        pts = [(0.0, -0.5), (-0.4, 0.0), (0.0, 0.5), (0.4, 0.0)] if shape == "d" else _star()
        path.moveTo(*pts[0])
        for pt in pts[1:]:
            path.lineTo(*pt)
        path.closeSubpath()
    h = _HOLES[shape]
    path.addEllipse(QRectF(-h, -h, 2 * h, 2 * h))
    return path


_RINGS: dict[str, QPainterPath] = {}


def marker_symbol(status: str) -> QPainterPath:
    """The ring (a QPainterPath symbol) the frames draw for sources of ``status``."""
    shape = STATUS_SHAPES.get(status, STATUS_SHAPES["unmatched"])[0]
    if shape not in _RINGS:
        _RINGS[shape] = _ring(shape)
    return _RINGS[shape]


def overlay_geometry(scale: float) -> dict[str, float]:
    """Sizes (screen pixels) of what is drawn over a source at ``scale`` screen pixels per
    image pixel, so none of it covers the :data:`CLEAR_RADIUS` disc: each status's ring
    (``status`` keys), the selection ring (``highlight``), the gap of the crosshair
    (``gap``, a radius) and the label letter's symbol (``label``)."""
    clear = max(MIN_CLEAR_PX, CLEAR_RADIUS * float(scale))
    # half the rings' 2 px outline reaches into the hole, its antialiasing a bit more, and a
    # symbol lands on whole screen pixels
    pen = 3.5
    out: dict[str, float] = {}
    for status, (shape, base) in STATUS_SHAPES.items():
        out[status] = float(max(base, np.ceil((clear + pen) / _HOLES[shape])))
    out["highlight"] = max(30.0, max(out[s] for s in STATUS_SHAPES) + HIGHLIGHT_MARGIN)
    out["gap"] = out["highlight"] / 2
    # the letter's inner corner sits on the circle ring's outer edge, up-right
    out["label"] = float(2 * np.ceil(out["matched"] / 2 * 0.75 + LABEL_LETTER_PX) + 2)
    return out


def _glyph(letter: str, size: float) -> QPainterPath:
    """Label ``letter`` as a symbol of ``size`` screen pixels: the letter, LABEL_LETTER_PX
    high, in the upper right corner of the symbol, away from its centre."""
    font = QFont()
    font.setBold(True)
    path = QPainterPath()
    path.addText(0, 0, font, letter)
    br = path.boundingRect()
    frac = LABEL_LETTER_PX / size  # the letter's size in the unit symbol
    scale = frac / max(br.width(), br.height())
    tr = QTransform()
    tr.translate(0.5 - frac / 2 - 1 / size, -0.5 + frac / 2 + 1 / size)
    tr.scale(scale, scale)
    tr.translate(-br.x() - br.width() / 2, -br.y() - br.height() / 2)
    return tr.map(path)


_STYLE_CACHE: dict[tuple[str, str], tuple] = {}
_LABEL_CACHE: dict[tuple[str, str, float], tuple] = {}


def _label_styles(palette: Palette, size: float) -> dict[str, tuple]:
    """label -> (symbol path, pen, brush), built once per palette and symbol size."""
    out = {}
    for label, letter in LABEL_LETTERS.items():
        key = (palette.name, label, size)
        if key not in _LABEL_CACHE:
            _LABEL_CACHE[key] = (_glyph(letter, size), pg.mkPen((0, 0, 0), width=1),
                                 pg.mkBrush(*palette.label_color(label)))
        out[label] = _LABEL_CACHE[key]
    return out


def _marker_styles(palette: Palette) -> dict[str, tuple]:
    """status -> (ring symbol, pen, brush), built once per palette (mkPen per spot is slow)."""
    out = {}
    for status, (_sym, col, _size) in status_style(palette).items():
        key = (palette.name, status)
        if key not in _STYLE_CACHE:
            _STYLE_CACHE[key] = (marker_symbol(status), pg.mkPen(col, width=2),
                                 pg.mkBrush(*col, 40))
        out[status] = _STYLE_CACHE[key]
    return out


#: Fill opacity of a marker by recomputed score: the outline's colour and shape say the match
#: status, the fill of the ring says what the model thinks (hollow = bogus, solid = real).
#: Quantised, so a few brushes serve every marker.
SCORE_FILL_LEVELS = 6
SCORE_FILL_ALPHA = (0, 110)  # at most half opaque
_SCORE_BRUSHES: dict[tuple[str, str, int], object] = {}


def score_brush(status: str, score: float, palette: Palette | None = None):
    """The fill of a marker of ``status`` whose recomputed score is ``score`` (0..1)."""
    pal = palette or get_palette()
    level = int(round(float(np.clip(score, 0.0, 1.0)) * (SCORE_FILL_LEVELS - 1)))
    key = (pal.name, status, level)
    if key not in _SCORE_BRUSHES:
        col = pal.status_color(status)
        lo, hi = SCORE_FILL_ALPHA
        _SCORE_BRUSHES[key] = pg.mkBrush(*col, lo + (hi - lo) * level // (SCORE_FILL_LEVELS - 1))
    return _SCORE_BRUSHES[key]


def adopt_menus(widget: QWidget) -> None:
    """Parent pyqtgraph's parentless context menus to ``widget`` so they die with it.

    pyqtgraph creates ViewBox and PlotItem menus as top-level QMenus with no parent; without
    this they outlive the window (a top-level widget leak).
    """
    for item in widget.findChildren(pg.GraphicsView) if not isinstance(
        widget, pg.GraphicsView
    ) else [widget]:
        for gi in item.scene().items():
            for menu in (getattr(gi, "menu", None), getattr(gi, "ctrlMenu", None)):
                if menu is not None and hasattr(menu, "setParent") and menu.parent() is None:
                    menu.setParent(widget, menu.windowFlags())


#: Default screen pixels per image pixel when zooming to a source (``Z``): a 51 px stamp fills
#: about 400 screen pixels.
DEFAULT_SOURCE_SCALE = 8.0
#: Factor of one zoom step (``+`` / ``-``).
ZOOM_STEP = 2.0


class QtFrameView(pg.PlotWidget):
    """One view: image item(s), mask overlay(s), source markers, highlight and crosshair."""

    def __init__(self, title: str, n_images: int = 1, parent: QWidget | None = None) -> None:
        super().__init__(parent=parent)
        self.setBackground("k")
        pi = self.getPlotItem()
        pi.setTitle(title, color="w", size="9pt")
        pi.hideAxis("left")
        pi.hideAxis("bottom")
        pi.setMenuEnabled(False)
        pi.hideButtons()
        self.vb = pi.getViewBox()
        self.vb.setAspectLocked(True)
        self.images = [pg.ImageItem(axisOrder="row-major") for _ in range(n_images)]
        self.overlays = [pg.ImageItem(axisOrder="row-major") for _ in range(n_images)]
        for img, ov in zip(self.images, self.overlays, strict=True):
            pi.addItem(img)
            pi.addItem(ov)
            ov.setZValue(5)
            ov.setVisible(False)
        self.markers = pg.ScatterPlotItem(pxMode=True, hoverable=True)
        self.markers.setZValue(10)
        pi.addItem(self.markers)
        self.label_markers = pg.ScatterPlotItem(pxMode=True)
        self.label_markers.setZValue(10.5)
        pi.addItem(self.label_markers)
        self.highlight = pg.ScatterPlotItem(pxMode=True)
        self.highlight.setZValue(11)
        pi.addItem(self.highlight)
        # The crosshair on the selected source: four segments to the view's edges, with a gap
        # around the source (its centre pixels stay visible); see QtFrames._update_crosshair.
        pen = pg.mkPen((0, 255, 0, 160), width=1, style=Qt.PenStyle.DashLine)
        self.crosshair = pg.PlotCurveItem(pen=pen, connect="pairs")
        self.crosshair.setZValue(9)
        self.crosshair.setVisible(False)
        pi.addItem(self.crosshair, ignoreBounds=True)
        self.title = title


class QtFrames(QWidget):
    """The three linked frames plus a blink view; emits clicks and cursor moves in parent pixels."""

    source_clicked = pyqtSignal(int)  # row index into the SourceSet
    #: A right-click on a source's marker: (row, global position for its menu).
    source_menu_requested = pyqtSignal(int, QPoint)
    cursor_moved = pyqtSignal(float, float)  # parent pixel x, y

    def __init__(self, state: vs.ViewerState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.views = {name: QtFrameView(name) for name in vs.FRAMES}
        self.blink_view = QtFrameView("blink: science", n_images=3)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        for v in (*self.views.values(), self.blink_view):
            lay.addWidget(v)
            v.markers.sigClicked.connect(self._on_marker_clicked)
            v.scene().sigMouseMoved.connect(lambda pos, v=v: self._on_mouse(v, pos))
            v.scene().sigMouseClicked.connect(lambda ev, v=v: self._on_scene_click(v, ev))
        first = self.views["science"].vb
        for v in (*list(self.views.values())[1:], self.blink_view):
            v.vb.setXLink(first)
            v.vb.setYLink(first)
        self.blink_view.setVisible(False)
        #: Colours of statuses and labels (:mod:`diascan.palettes`; View > palette later).
        self.colors = get_palette()
        # The legend goes where it hides least: the top-right corner of the template (the frame
        # users look at least) and of the single-frame view, small and see-through.
        self.legends = {
            "triple": self._make_legend(self.views["template"]),
            "single": self._make_legend(self.blink_view),
        }
        self.data: dict[str, np.ndarray] = {}
        self.images: dict[str, object] = {}
        self.sources: vs.SourceSet | None = None
        self.missing_xy = np.empty((0, 2))
        #: Parent-pixel rectangle of each frame's image (its overlay covers exactly the same).
        self.rects: dict[str, QRectF] = {}
        #: The filter box's rows (None: every row), see :meth:`set_row_mask`.
        self.row_mask: np.ndarray | None = None
        #: Markers, label letters and the selection shown (``M`` hides them all).
        self.markers_visible = True
        #: Screen pixels per image pixel of "zoom to the source" (``Z``).
        self.source_scale = DEFAULT_SOURCE_SCALE
        #: Sizes of what is drawn over the sources at the current zoom (overlay_geometry).
        self.geometry = overlay_geometry(1.0)
        first.sigRangeChanged.connect(self._on_range_changed)
        self._connect_state()

    def _make_legend(self, view: QtFrameView) -> pg.LegendItem:
        legend = pg.LegendItem(
            offset=(-4, 4),  # negative x: from the right edge
            labelTextColor=(230, 230, 230), labelTextSize="7pt", brush=(0, 0, 0, 110),
            verSpacing=-6, horSpacing=4,
        )
        legend.setParentItem(view.getPlotItem().getViewBox())
        names = {"matched": "matched", "unmatched": "unmatched", "target": "target",
                 "missing": "catalog only"}
        for status, (_sym, col, size) in status_style(self.colors).items():
            sample = pg.ScatterPlotItem(
                symbol=marker_symbol(status), size=min(size, 12) - 1,
                pen=pg.mkPen(col, width=1.5), brush=(*col, 40),
            )
            legend.addItem(sample, names[status])
        grey = (200, 200, 200)
        sample = pg.ScatterPlotItem(symbol=marker_symbol("matched"), size=11,
                                    pen=pg.mkPen(grey, width=1.5),
                                    brush=(*grey, SCORE_FILL_ALPHA[1]))  # fmt: skip
        legend.addItem(sample, "fill: score 0-1")
        return legend

    def set_legend_visible(self, on: bool) -> None:
        """Show or hide the marker legends (View > Legend)."""
        for legend in self.legends.values():
            legend.setVisible(bool(on))

    def set_palette(self, name: str) -> None:
        """Colour statuses and labels with palette ``name`` (:data:`diascan.palettes.PALETTES`)."""
        self.colors = get_palette(name)
        for key, view in (("triple", self.views["template"]), ("single", self.blink_view)):
            old = self.legends[key]
            visible = old.isVisible()
            view.scene().removeItem(old)  # (a legend refuses a None parent: it anchors to it)
            self.legends[key] = self._make_legend(view)
            self.legends[key].setVisible(visible)
        self.refresh_markers()

    # -- data ----------------------------------------------------------------------------
    def _all_items(self, name: str) -> list[pg.ImageItem]:
        k = vs.FRAMES.index(name)
        return [self.views[name].images[0], self.blink_view.images[k]]

    def _all_overlays(self, name: str) -> list[pg.ImageItem]:
        k = vs.FRAMES.index(name)
        return [self.views[name].overlays[0], self.blink_view.overlays[k]]

    def set_images(self, images: dict[str, object], display: dict | None = None,
                   fit: bool = True) -> None:
        """Show ImageData objects keyed 'science', 'template', 'difference'.

        ``display`` (from :func:`viewstate.prepare_display`, made in the loading worker) holds
        the display copies and levels; without it they are made here, once. A frame missing
        from ``images`` is blanked (a progressive load fills it in later with
        :meth:`add_image`). ``fit=False`` keeps the user's pan and zoom.
        """
        self.images = {}
        display = display or vs.prepare_display(images, self.state.frames)
        for name in vs.FRAMES:
            img = images.get(name)
            if img is None or name not in display:
                self.images[name] = None
                self.data.pop(name, None)
                for item in self._all_items(name):
                    item.clear()
                continue
            self.add_image(name, img, display[name], update=False)
        self._apply_blink()
        self._update_masks()
        if fit:
            self.fit()  # new data (another visit) open fitted

    def add_image(self, name: str, img: Any, display: tuple, update: bool = True) -> None:
        """Show one frame's ImageData with its ``(display copy, levels)``, keeping the view
        (a frame that arrives during a progressive load)."""
        self.images[name] = img
        disp, levels = display
        self.data[name] = disp
        fs = self.state.frames[name]
        fs.levels = levels
        ny, nx = disp.shape
        rect = QRectF(img.x0 - 0.5, img.y0 - 0.5, nx, ny)
        self.rects[name] = rect
        for item in self._all_items(name):
            item.setImage(disp, levels=fs.levels, autoLevels=False)
            item.setLookupTable(make_lut(fs.colormap, fs.stretch))
            item.setRect(rect)
        if update:
            self._apply_blink()
            self._update_masks()

    def set_sources(self, sources: vs.SourceSet, missing_xy: np.ndarray | None = None) -> None:
        """Draw every detection (and catalog rows no detection matched) on all views."""
        self.sources = sources
        self.missing_xy = np.empty((0, 2)) if missing_xy is None else np.asarray(missing_xy)
        self.refresh_markers()

    def set_row_mask(self, mask: np.ndarray | None) -> None:
        """Show only the sources where ``mask`` is True (the filter box's rows; None: all)."""
        self.row_mask = None if mask is None else np.asarray(mask, dtype=bool)
        self.refresh_markers()

    def _shown(self) -> np.ndarray:
        """Rows whose markers are drawn: the state's threshold, hidden statuses and labels,
        and the filter box (the table and the gallery show the same rows)."""
        src = self.sources
        shown = src.visible(self.state.threshold, self.state.hidden_statuses,
                            self.state.hidden_labels)
        mask = self.row_mask
        return shown if mask is None or len(mask) != len(shown) else shown & mask

    def refresh_markers(self) -> None:
        """Rebuild markers (after scores, threshold or status filters change)."""
        src = self.sources
        xs: list[np.ndarray] = []
        ys: list[np.ndarray] = []
        syms: list[str] = []
        sizes: list[int] = []
        pens: list = []
        brushes: list = []
        data: list[np.ndarray] = []
        styles = _marker_styles(self.colors)
        geo = self.geometry
        if src is not None:
            shown = np.flatnonzero(self._shown())
            xs.append(src.x[shown])
            ys.append(src.y[shown])
            data.append(shown)
            show_scores = not self.state.hide_scores
            for i in shown:
                status = drawn_as(str(src.status[i]))
                if status not in styles:
                    status = "unmatched"
                sym, pen, brush = styles[status]
                size = geo[status]
                score = src.score[i]
                if show_scores and np.isfinite(score):
                    brush = score_brush(status, score, self.colors)
                syms.append(sym)
                sizes.append(size)
                pens.append(pen)
                brushes.append(brush)
        if "missing" not in self.state.hidden_statuses and len(self.missing_xy):
            m = len(self.missing_xy)
            sym, pen, _ = styles["missing"]
            size = geo["missing"]
            xs.append(self.missing_xy[:, 0])
            ys.append(self.missing_xy[:, 1])
            data.append(np.full(m, -1))
            syms += [sym] * m
            sizes += [size] * m
            pens += [pen] * m
            brushes += [pg.mkBrush(None)] * m
        x = np.concatenate(xs) if xs else np.empty(0)
        y = np.concatenate(ys) if ys else np.empty(0)
        d = np.concatenate(data).astype(int) if data else np.empty(0, int)
        for v in (*self.views.values(), self.blink_view):
            v.markers.setData(x=x, y=y, symbol=syms, size=sizes, pen=pens, brush=brushes,
                              data=d, tip=self.tooltip)
        self.marker_count = len(x)
        self.refresh_labels()
        self._update_highlight()

    def refresh_labels(self) -> None:
        """Redraw the label glyphs (R / B / ?) next to the markers of labelled sources."""
        src = self.sources
        rows: list[int] = []
        if src is not None:
            shown = self._shown()
            rows = [i for i, lab in enumerate(src.labels) if lab in LABEL_LETTERS and shown[i]]
        size = self.geometry["label"]
        styles = _label_styles(self.colors, size)
        syms = [styles[src.labels[i]][0] for i in rows]
        pens = [styles[src.labels[i]][1] for i in rows]
        brushes = [styles[src.labels[i]][2] for i in rows]
        idx = np.asarray(rows, dtype=int)
        x = src.x[idx] if rows else np.empty(0)
        y = src.y[idx] if rows else np.empty(0)
        for v in (*self.views.values(), self.blink_view):
            v.label_markers.setData(x=x, y=y, symbol=syms, size=size, pen=pens,
                                    brush=brushes, data=idx)
        self.labelled_rows = idx

    def tooltip(self, x: float = 0.0, y: float = 0.0, data: int = -1) -> str:
        """Tooltip text of marker ``data`` (a row index; -1 = catalog-only row)."""
        src = self.sources
        if src is None or data is None or int(data) < 0:
            return "catalog row with no matching detection"
        i = int(data)
        text = f"id {src.ids[i]}  {src.status[i]}\nSNR {src.snr[i]:.1f}"
        if self.state.hide_scores:  # asked for each hover, so toggling applies at once
            return text
        return f"{text}  reliability {src.original[i]:.3f}  score {src.score[i]:.3f}"

    # -- selection, navigation -----------------------------------------------------------
    def _selected_xy(self) -> tuple[float, float] | None:
        src, sel = self.sources, self.state.selected_id
        k = None if src is None or sel is None else src.index_of(sel)
        return None if k is None else (float(src.x[k]), float(src.y[k]))

    def _update_highlight(self) -> None:
        xy = self._selected_xy()
        for v in (*self.views.values(), self.blink_view):
            if xy is None:
                v.highlight.setData([])
                continue
            v.highlight.setData([xy[0]], [xy[1]], symbol="o", size=self.geometry["highlight"],
                                pen=pg.mkPen((0, 255, 0), width=3), brush=None)
        self._update_crosshair()

    def _update_crosshair(self) -> None:
        """The crosshair through the selected source, to the view's edges, with a gap of
        ``geometry['gap']`` screen pixels around it."""
        xy = self._selected_xy()
        on = xy is not None and self.markers_visible
        (xa, xb), (ya, yb) = self.view_range()
        for v in (*self.views.values(), self.blink_view):
            v.crosshair.setVisible(on)
        if not on:
            return
        x, y = xy
        gap = self.geometry["gap"] * self.pixel_size()
        lo_x, hi_x = min(xa, x - gap), max(xb, x + gap)  # never a segment turned inside out
        lo_y, hi_y = min(ya, y - gap), max(yb, y + gap)
        xs = np.array([lo_x, x - gap, x + gap, hi_x, x, x, x, x])
        ys = np.array([y, y, y, y, lo_y, y - gap, y + gap, hi_y])
        for v in (*self.views.values(), self.blink_view):
            v.crosshair.setData(xs, ys)

    def crosshair_position(self) -> tuple[float, float] | None:
        """Where the crosshair crosses (parent pixels), None when it is not shown."""
        curve = self.views["science"].crosshair
        if not curve.isVisible():
            return None
        xs, ys = curve.getData()
        return float(xs[4]), float(ys[0])

    def pixel_size(self) -> float:
        """Image pixels per screen pixel in the linked views (1 before they have a size)."""
        px = self.views["science"].vb.viewPixelSize()[0]
        return float(px) if np.isfinite(px) and px > 0 else 1.0

    def set_markers_visible(self, on: bool) -> None:
        """Show or hide (``M``) the markers, label letters, selection ring and crosshair."""
        self.markers_visible = bool(on)
        for v in (*self.views.values(), self.blink_view):
            for item in (v.markers, v.label_markers, v.highlight):
                item.setVisible(self.markers_visible)
        self._update_crosshair()

    def center_on(self, x: float, y: float, half_width: float | None = None) -> None:
        """Pan the linked views so (x, y) is centred; keeps the zoom unless ``half_width``."""
        vb = self.views["science"].vb
        (xa, xb), (ya, yb) = vb.viewRange()
        hw = half_width if half_width is not None else (xb - xa) / 2
        hh = half_width if half_width is not None else (yb - ya) / 2
        vb.setRange(xRange=(x - hw, x + hw), yRange=(y - hh, y + hh), padding=0)

    def fit(self) -> None:
        """Show the whole image (``F``; new data open so)."""
        img = self.images.get("science") or self.images.get("difference")
        if img is None:
            return
        x0, y0, x1, y1 = img.bbox
        self.views["science"].vb.setRange(xRange=(x0 - 0.5, x1 + 0.5),
                                          yRange=(y0 - 0.5, y1 + 0.5), padding=0)

    def zoom(self, factor: float) -> None:
        """Zoom the linked views by ``factor`` (> 1 in) about the centre of the view."""
        vb = self.views["science"].vb
        (xa, xb), (ya, yb) = vb.viewRange()
        cx, cy = (xa + xb) / 2, (ya + yb) / 2
        hw, hh = (xb - xa) / 2 / factor, (yb - ya) / 2 / factor
        vb.setRange(xRange=(cx - hw, cx + hw), yRange=(cy - hh, cy + hh), padding=0)

    def zoom_to(self, x: float, y: float, scale: float | None = None) -> None:
        """Centre on (x, y) at ``scale`` screen pixels per image pixel (default
        :attr:`source_scale`)."""
        scale = float(scale or self.source_scale)
        vb = self.views["science"].vb
        w, h = max(vb.width(), 1.0), max(vb.height(), 1.0)
        hw, hh = w / 2 / scale, h / 2 / scale
        vb.setRange(xRange=(x - hw, x + hw), yRange=(y - hh, y + hh), padding=0)

    def zoom_to_selected(self, scale: float | None = None) -> bool:
        """``Z``: zoom to the selected source; False when none is selected."""
        xy = self._selected_xy()
        if xy is None:
            return False
        self.zoom_to(*xy, scale)
        return True

    def view_range(self) -> list[list[float]]:
        return self.views["science"].vb.viewRange()

    def _on_range_changed(self, _vb: object, ranges: list) -> None:
        # Mirror pan/zoom into the plain state, so a session saves and restores it.
        (xa, xb), (ya, yb) = ranges
        self.state.view_range = ((float(xa), float(xb)), (float(ya), float(yb)))
        geometry = overlay_geometry(1.0 / self.pixel_size())
        if geometry != self.geometry:  # the zoom changed what the rings must leave clear
            self.geometry = geometry
            self.refresh_markers()  # the highlight and crosshair too
        else:
            self._update_crosshair()

    def _apply_view_range(self, value: object) -> None:
        if value is None:
            return
        (xa, xb), (ya, yb) = value
        cur = self.view_range()
        if np.allclose([xa, xb, ya, yb], [*cur[0], *cur[1]], atol=1e-6):
            return  # the change came from the views themselves
        self.views["science"].vb.setRange(xRange=(xa, xb), yRange=(ya, yb), padding=0)

    # -- state ---------------------------------------------------------------------------
    def _connect_state(self) -> None:
        """Per-field listeners of the state (psygnal; see ``diascan.viewstate``)."""
        ev = self.state.events
        ev.selected_id.connect(self._update_highlight)
        ev.blink_index.connect(self._apply_blink)
        ev.single.connect(self._apply_blink)
        for name in ("threshold", "hidden_statuses", "hidden_labels", "hide_scores"):
            ev[name].connect(self.refresh_markers)
        ev.mask_planes_on.connect(self._update_masks)
        ev.view_range.connect(self._apply_view_range)
        ev.mask_alpha.connect(self._set_mask_alpha)
        for name, fs in self.state.frames.items():
            fs.events.limits.connect(functools.partial(self._update_levels, name))
            fs.events.symmetric.connect(functools.partial(self._update_levels, name))
            fs.events.levels.connect(functools.partial(self._show_levels, name))
            fs.events.stretch.connect(functools.partial(self._show_lut, name))
            fs.events.colormap.connect(functools.partial(self._show_lut, name))

    def _set_mask_alpha(self, alpha: float) -> None:
        for name in vs.FRAMES:
            for ov in self._all_overlays(name):
                ov.setOpacity(float(alpha))

    def _update_levels(self, name: str) -> None:
        fs = self.state.frames[name]
        if name in self.data:  # the levels' own signal redraws
            fs.levels = compute_levels(self.data[name], fs.limits, fs.symmetric)

    def _show_levels(self, name: str) -> None:
        for item in self._all_items(name):
            item.setLevels(self.state.frames[name].levels)

    def _show_lut(self, name: str) -> None:
        fs = self.state.frames[name]
        for item in self._all_items(name):
            item.setLookupTable(make_lut(fs.colormap, fs.stretch))

    def _apply_blink(self) -> None:
        single = self.state.single
        shown = [self.blink_view] if single else list(self.views.values())
        hidden = list(self.views.values()) if single else [self.blink_view]
        # Hiding the focused view passes the focus on to the next widget (the filter box,
        # where the next ] would be typed): it comes back to a view on screen. (Hidden before
        # shown: the other order lays the frames out for four views until the next event.)
        focus = QApplication.focusWidget()
        had_focus = focus is not None and any(v is focus or v.isAncestorOf(focus) for v in hidden)
        for v in hidden:
            v.setVisible(False)
        for v in shown:
            v.setVisible(True)
        if had_focus:
            shown[0].setFocus(Qt.FocusReason.OtherFocusReason)
        k = self.state.blink_index
        for i, (img, ov) in enumerate(
            zip(self.blink_view.images, self.blink_view.overlays, strict=True)
        ):
            img.setVisible(i == k)
            ov.setVisible(i == k and bool(self.state.mask_planes_on))
        self.blink_view.getPlotItem().setTitle(f"blink: {vs.FRAMES[k]}", color="w", size="9pt")

    def _update_masks(self) -> None:
        on = self.state.mask_planes_on
        for name in vs.FRAMES:
            img = self.images.get(name)
            rgba = None
            if img is not None and on:
                rgba = mask_overlay(img.mask, img.mask_planes, on, MASK_COLORS, 1.0)
            for k, ov in enumerate(self._all_overlays(name)):
                if rgba is None:
                    ov.setVisible(False)
                    continue
                ov.setImage(rgba, autoLevels=False, levels=(0, 255))
                # After setImage: ImageItem.setRect scales by the rect over the image's own size,
                # so set before any image it blew each overlay pixel up to the whole frame.
                ov.setRect(self.rects.get(name, QRectF(img.x0 - 0.5, img.y0 - 0.5,
                                                       img.shape[1], img.shape[0])))
                ov.setOpacity(self.state.mask_alpha)
                in_blink = k == 1
                ov.setVisible(
                    not in_blink or vs.FRAMES.index(name) == self.state.blink_index
                )

    # -- events --------------------------------------------------------------------------
    def _on_marker_clicked(self, item, points, ev=None) -> None:
        if len(points) == 0:
            return
        k = points[0].data()
        if k is not None and int(k) >= 0:
            self.source_clicked.emit(int(k))

    def source_at(self, view: QtFrameView, scene_pos: QPointF) -> int | None:
        """Row of the source whose marker is under ``scene_pos`` in ``view`` (the nearest
        within its ring), or None."""
        if self.sources is None or not self.markers_visible:
            return None
        p = view.vb.mapSceneToView(scene_pos)
        radius = self.geometry["matched"] / 2 * self.pixel_size()
        k = self.sources.nearest(float(p.x()), float(p.y()), max_dist=max(radius, 1.0))
        if k is None or not self._shown()[k]:
            return None
        return k

    def _on_scene_click(self, view: QtFrameView, ev) -> None:
        if ev.button() != Qt.MouseButton.RightButton:
            return
        k = self.source_at(view, ev.scenePos())
        if k is not None:
            ev.accept()
            self.source_menu_requested.emit(k, ev.screenPos().toPoint())

    def _on_mouse(self, view: QtFrameView, pos: QPointF) -> None:
        if not view.vb.sceneBoundingRect().contains(pos):
            return
        p = view.vb.mapSceneToView(pos)
        self.cursor_moved.emit(float(p.x()), float(p.y()))

    def click_source_marker(self, index: int) -> None:
        """Emit the click of the marker of row ``index`` (used by tests and keyboard)."""
        pts = [p for p in self.views["difference"].markers.points() if p.data() == index]
        self._on_marker_clicked(self.views["difference"].markers, pts)
