"""Science / template / difference frames: linked pyqtgraph views, blink, crosshair, masks.

Speed rules (docs/viewer-anchors.md): each frame gets ONE float32, C-contiguous, NaN-free display
copy with explicit levels; stretch and colormap are one lookup table; blink toggles item
visibility and never calls ``setImage`` again.
"""

from __future__ import annotations

import functools

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QFont, QPainterPath, QTransform
from PyQt6.QtWidgets import QApplication, QHBoxLayout, QWidget

from diascan import viewstate as vs
from diascan.display import compute_levels, make_lut, mask_overlay
from diascan.palettes import LABEL_LETTERS, MASK_COLORS, Palette, get_palette

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

#: Marker shape and size per status. Shape AND colour differ (colour-blind users); colours come
#: from the palette (:mod:`diascan.palettes`).
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

#: Size of the label letter (:data:`diascan.palettes.LABEL_LETTERS`) drawn at the upper right
#: of a labelled source's marker: a letter, not only a colour, so colour-blind users can tell
#: labels apart; its colour comes from the palette.
LABEL_GLYPH_SIZE = 36

_STYLE_CACHE: dict[tuple[str, str], tuple] = {}
_LABEL_CACHE: dict[tuple[str, str], tuple] = {}


def _glyph(letter: str) -> QPainterPath:
    """A unit-size letter path offset up-right of the centre (a pxMode scatter symbol)."""
    font = QFont()
    font.setBold(True)
    path = QPainterPath()
    path.addText(0, 0, font, letter)
    br = path.boundingRect()
    scale = 0.42 / max(br.width(), br.height())
    tr = QTransform()
    tr.translate(0.36, -0.36)  # beside the status marker, not on the source
    tr.scale(scale, scale)
    tr.translate(-br.x() - br.width() / 2, -br.y() - br.height() / 2)
    return tr.map(path)


def _label_styles(palette: Palette) -> dict[str, tuple]:
    """label -> (symbol path, pen, brush), built once per palette."""
    out = {}
    for label, letter in LABEL_LETTERS.items():
        key = (palette.name, label)
        if key not in _LABEL_CACHE:
            _LABEL_CACHE[key] = (_glyph(letter), pg.mkPen((0, 0, 0), width=1),
                                 pg.mkBrush(*palette.label_color(label)))
        out[label] = _LABEL_CACHE[key]
    return out


def _marker_styles(palette: Palette) -> dict[str, tuple]:
    """status -> (symbol, size, pen, brush), built once per palette (mkPen per spot is slow)."""
    out = {}
    for status, (sym, col, size) in status_style(palette).items():
        key = (palette.name, status)
        if key not in _STYLE_CACHE:
            _STYLE_CACHE[key] = (sym, size, pg.mkPen(col, width=2), pg.mkBrush(*col, 40))
        out[status] = _STYLE_CACHE[key]
    return out


#: Fill opacity of a marker by recomputed score: the outline's colour and shape say the match
#: status, the fill says what the model thinks (hollow = bogus, solid = real). Quantised, so a
#: few brushes serve every marker.
SCORE_FILL_LEVELS = 6
SCORE_FILL_ALPHA = (0, 110)  # at most half opaque: the source stays visible under it
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
        pen = pg.mkPen((0, 255, 0, 160), width=1, style=Qt.PenStyle.DashLine)
        self.hline = pg.InfiniteLine(angle=0, pen=pen, movable=False)
        self.vline = pg.InfiniteLine(angle=90, pen=pen, movable=False)
        for line in (self.hline, self.vline):
            line.setZValue(9)
            line.setVisible(False)
            pi.addItem(line, ignoreBounds=True)
        self.title = title


class QtFrames(QWidget):
    """The three linked frames plus a blink view; emits clicks and cursor moves in parent pixels."""

    source_clicked = pyqtSignal(int)  # row index into the SourceSet
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
        for status, (sym, col, size) in status_style(self.colors).items():
            sample = pg.ScatterPlotItem(
                symbol=sym, size=min(size, 12) - 3, pen=pg.mkPen(col, width=1.5),
                brush=(*col, 40),
            )
            legend.addItem(sample, names[status])
        grey = (200, 200, 200)
        sample = pg.ScatterPlotItem(symbol="o", size=9, pen=pg.mkPen(grey, width=1.5),
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
            old.setParentItem(None)
            view.scene().removeItem(old)
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

    def set_images(self, images: dict[str, object], display: dict | None = None) -> None:
        """Show ImageData objects keyed 'science', 'template', 'difference'.

        ``display`` (from :func:`viewstate.prepare_display`, made in the loading worker) holds
        the display copies and levels; without it they are made here, once.
        """
        self.images = dict(images)
        display = display or vs.prepare_display(images, self.state.frames)
        for name in vs.FRAMES:
            img = images.get(name)
            if img is None or name not in display:
                continue
            disp, levels = display[name]
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
        self._apply_blink()
        self._update_masks()
        sci = images.get("science") or images.get("difference")
        if sci is not None:
            x0, y0, x1, y1 = sci.bbox
            self.views["science"].vb.setRange(
                xRange=(x0 - 0.5, x1 + 0.5), yRange=(y0 - 0.5, y1 + 0.5), padding=0
            )

    def set_sources(self, sources: vs.SourceSet, missing_xy: np.ndarray | None = None) -> None:
        """Draw every detection (and catalog rows no detection matched) on all views."""
        self.sources = sources
        self.missing_xy = np.empty((0, 2)) if missing_xy is None else np.asarray(missing_xy)
        self.refresh_markers()

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
        if src is not None:
            shown = np.flatnonzero(src.visible(self.state.threshold, self.state.hidden_statuses,
                                               self.state.hidden_labels))
            xs.append(src.x[shown])
            ys.append(src.y[shown])
            data.append(shown)
            show_scores = not self.state.hide_scores
            for i in shown:
                status = str(src.status[i])
                sym, size, pen, brush = styles.get(status, styles["unmatched"])
                score = src.score[i]
                if show_scores and np.isfinite(score):
                    brush = score_brush(status if status in styles else "unmatched", score,
                                        self.colors)
                syms.append(sym)
                sizes.append(size)
                pens.append(pen)
                brushes.append(brush)
        if "missing" not in self.state.hidden_statuses and len(self.missing_xy):
            m = len(self.missing_xy)
            sym, size, pen, _ = styles["missing"]
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
            shown = src.visible(self.state.threshold, self.state.hidden_statuses,
                                self.state.hidden_labels)
            rows = [i for i, lab in enumerate(src.labels) if lab in LABEL_LETTERS and shown[i]]
        styles = _label_styles(self.colors)
        syms = [styles[src.labels[i]][0] for i in rows]
        pens = [styles[src.labels[i]][1] for i in rows]
        brushes = [styles[src.labels[i]][2] for i in rows]
        idx = np.asarray(rows, dtype=int)
        x = src.x[idx] if rows else np.empty(0)
        y = src.y[idx] if rows else np.empty(0)
        for v in (*self.views.values(), self.blink_view):
            v.label_markers.setData(x=x, y=y, symbol=syms, size=LABEL_GLYPH_SIZE, pen=pens,
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
    def _update_highlight(self) -> None:
        src, sel = self.sources, self.state.selected_id
        k = None if src is None or sel is None else src.index_of(sel)
        for v in (*self.views.values(), self.blink_view):
            if k is None:
                v.highlight.setData([])
                v.hline.setVisible(False)
                v.vline.setVisible(False)
                continue
            x, y = float(src.x[k]), float(src.y[k])
            v.highlight.setData(
                [x], [y], symbol="o", size=30, pen=pg.mkPen((0, 255, 0), width=3), brush=None
            )
            v.hline.setPos(y)
            v.vline.setPos(x)
            v.hline.setVisible(True)
            v.vline.setVisible(True)

    def center_on(self, x: float, y: float, half_width: float | None = None) -> None:
        """Pan the linked views so (x, y) is centred; keeps the zoom unless ``half_width``."""
        vb = self.views["science"].vb
        (xa, xb), (ya, yb) = vb.viewRange()
        hw = half_width if half_width is not None else (xb - xa) / 2
        hh = half_width if half_width is not None else (yb - ya) / 2
        vb.setRange(xRange=(x - hw, x + hw), yRange=(y - hh, y + hh), padding=0)

    def view_range(self) -> list[list[float]]:
        return self.views["science"].vb.viewRange()

    def _on_range_changed(self, _vb: object, ranges: list) -> None:
        # Mirror pan/zoom into the plain state, so a session saves and restores it.
        (xa, xb), (ya, yb) = ranges
        self.state.view_range = ((float(xa), float(xb)), (float(ya), float(yb)))

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

    def _on_mouse(self, view: QtFrameView, pos: QPointF) -> None:
        if not view.vb.sceneBoundingRect().contains(pos):
            return
        p = view.vb.mapSceneToView(pos)
        self.cursor_moved.emit(float(p.x()), float(p.y()))

    def click_source_marker(self, index: int) -> None:
        """Emit the click of the marker of row ``index`` (used by tests and keyboard)."""
        pts = [p for p in self.views["difference"].markers.points() if p.data() == index]
        self._on_marker_clicked(self.views["difference"].markers, pts)
