"""How stamps are painted (Qt-free): display settings and RGBA rendering of triplets.

Every view that shows stamps (the frames view's stamp dock, the gallery of triplets) renders
them here with the same settings, so they never disagree:

- **per tile** (the default, :meth:`StampDisplay.per_tile`): each stamp gets its own zscale
  limits (symmetric around zero for the difference), linear, grey: every stamp uses its full
  contrast, so a faint transient is visible whatever its neighbours;
- **follow the frames** (:meth:`StampDisplay.from_frames`, the toggle): the toolbar's stretch,
  colormap and the frames' current limits applied to all tiles, so stamps compare with each
  other and with the frames above them.

:func:`render_triplets` turns a stack of float stamps into RGBA uint8 in array orientation
(row 0 = lowest y, as the frames draw it with y upwards); :func:`render_tiles` lays each
triplet side by side, top row first, ready for a top-down image (QImage), and
:func:`compose_tiles` places a page of them, scaled, in the gallery's cells.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import numpy as np

from diascan.display import compute_levels_many, lut_indices, make_lut
from diascan.stamps import FRAME_ORDER

#: Colour of pixels with no data (NaN: off the image, NO_DATA, a clipped cutout): a dark
#: slate blue no grey stretch produces, so "no pixel" is never read as "dark sky".
BLANK_RGBA = (34, 44, 78, 255)
_BLANK32 = np.array(BLANK_RGBA, dtype=np.uint8).view(np.uint32)[0]


def argb32(rgba: tuple[int, ...] | np.ndarray) -> np.ndarray:
    """RGBA uint8 colours ``(..., 4)`` as 32-bit ``0xAARRGGBB`` words: the pixels of Qt's
    ARGB32 images (B, G, R, A bytes on little-endian machines), which Qt paints without a
    conversion."""
    c = np.asarray(rgba, dtype=np.uint32)
    return (c[..., 3] << 24) | (c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2]


class FrameLike(Protocol):
    """What :meth:`StampDisplay.from_frames` reads of a frame's display state."""

    stretch: str
    colormap: str
    levels: tuple[float, float]


@dataclass(frozen=True)
class FrameDisplay:
    """Display settings of one stamp channel.

    ``levels`` fixed ``(lo, hi)`` limits, or None to compute them per stamp with ``limits``
    (a :data:`diascan.display.LIMIT_MODES` name), symmetric around zero if ``symmetric``.
    """

    stretch: str = "linear"
    colormap: str = "grey"
    limits: str = "zscale"
    symmetric: bool = False
    levels: tuple[float, float] | None = None


@dataclass(frozen=True)
class StampDisplay:
    """Display settings of a triplet: one :class:`FrameDisplay` per channel, in FRAME_ORDER.

    Frozen and hashable: renderings are cached by it.
    """

    science: FrameDisplay
    template: FrameDisplay
    difference: FrameDisplay

    @property
    def follows_frames(self) -> bool:
        """True when the limits are fixed ones (the frames'), not computed per stamp."""
        return any(self.channel(n).levels is not None for n in FRAME_ORDER)

    def channel(self, name: str) -> FrameDisplay:
        return getattr(self, name)

    def warm(self) -> None:
        """Build the colour tables these settings paint with (cached), e.g. in a load job:
        the first one imports cmap and reads its catalog (~0.15 s, measured), which would
        otherwise delay the first painted page."""
        for name in FRAME_ORDER:
            fd = self.channel(name)
            make_lut(fd.colormap, fd.stretch)

    @classmethod
    def per_tile(cls) -> StampDisplay:
        """zscale per stamp (symmetric for the difference), linear, grey: the default."""
        return cls(science=FrameDisplay(), template=FrameDisplay(),
                   difference=FrameDisplay(symmetric=True))

    @classmethod
    def from_frames(cls, frames: Mapping[str, FrameLike]) -> StampDisplay:
        """The frames' stretch, colormap and current levels, for every tile."""
        def one(name: str) -> FrameDisplay:
            f = frames[name]
            lo, hi = (float(v) for v in f.levels)
            return FrameDisplay(stretch=f.stretch, colormap=f.colormap, levels=(lo, hi))

        return cls(**{name: one(name) for name in FRAME_ORDER})


def display_settings(follow_frames: bool, frames: Mapping[str, FrameLike] | None) -> StampDisplay:
    """The settings the toggle asks for: the frames' when ``follow_frames`` (and known)."""
    if follow_frames and frames is not None:
        return StampDisplay.from_frames(frames)
    return StampDisplay.per_tile()


def stamp_levels(stack: np.ndarray, display: StampDisplay) -> np.ndarray:
    """Limits ``(N, 3, 2)`` used for each stamp of ``stack`` ``(N, 3, H, W)``.

    The channels computed with the same limits mode are computed together (one vectorised
    call for the whole page: a gallery page's 3 x 48 zscale stamps at once), each symmetric
    when its channel asks for it.
    """
    stack = np.asarray(stack)
    n = stack.shape[0]
    out = np.empty((n, len(FRAME_ORDER), 2), dtype=np.float64)
    modes: dict[str, list[int]] = {}
    for c, name in enumerate(FRAME_ORDER):
        fd = display.channel(name)
        if fd.levels is not None:
            out[:, c] = fd.levels
        else:
            modes.setdefault(fd.limits, []).append(c)
    for mode, channels in modes.items():
        symmetric = [display.channel(FRAME_ORDER[c]).symmetric for c in channels]
        many = compute_levels_many(stack[:, channels].reshape(-1, *stack.shape[2:]), mode,
                                   np.tile(symmetric, n))  # rows: stamp-major
        out[:, channels] = many.reshape(n, len(channels), 2)
    return out


def _channels_rgba32(stack: np.ndarray, display: StampDisplay, levels: np.ndarray | None,
                     words: bool = False):
    """Yield ``(channel, rgba)`` with ``rgba`` uint32 ``(N, H, W)``: one 32-bit word per RGBA
    pixel (the table lookup gathers a quarter of the elements), NaN pixels blank; with
    ``words`` the :func:`argb32` words instead of RGBA bytes."""
    stack = np.asarray(stack, dtype=np.float32)
    if levels is None:
        levels = stamp_levels(stack, display)
    blank = argb32(BLANK_RGBA) if words else _BLANK32
    for c, name in enumerate(FRAME_ORDER):
        fd = display.channel(name)
        lut = make_lut(fd.colormap, fd.stretch)
        lut = argb32(lut) if words else lut.view(np.uint32).reshape(-1)
        rgba = np.take(lut, lut_indices(stack[:, c], levels[:, c], len(lut)))
        rgba[np.isnan(stack[:, c])] = blank
        yield c, rgba


def render_triplets(
    stack: np.ndarray, display: StampDisplay, levels: np.ndarray | None = None
) -> np.ndarray:
    """RGBA uint8 ``(N, 3, H, W, 4)`` of float stamps ``(N, 3, H, W)`` (FRAME_ORDER).

    NaN pixels get :data:`BLANK_RGBA`. ``levels`` ``(N, 3, 2)`` skips computing them
    (:func:`stamp_levels`). Array orientation (row 0 = lowest y) is kept.
    """
    stack = np.asarray(stack)
    out = np.empty(stack.shape, dtype=np.uint32)
    for c, rgba in _channels_rgba32(stack, display, levels):
        out[:, c] = rgba
    return out.view(np.uint8).reshape(*stack.shape, 4)


def render_tiles(
    stack: np.ndarray, display: StampDisplay, gap: int = 1, levels: np.ndarray | None = None,
    words: bool = False,
) -> np.ndarray:
    """Each triplet side by side: ``(N, H, 3 W + 2 gap, 4)`` uint8, C-contiguous, rows flipped
    (the highest y first) so a top-down image shows the stamps the way the frames show the
    sky; ``gap`` transparent columns between the stamps (the gallery's tiles).

    ``words``: ``(N, H, 3 W + 2 gap)`` uint32 :func:`argb32` words instead (Qt's ARGB32).
    """
    stack = np.asarray(stack)
    n, k, h, w = stack.shape
    out = np.zeros((n, h, k * w + (k - 1) * gap), dtype=np.uint32)  # gaps transparent
    for c, rgba in _channels_rgba32(stack, display, levels, words):
        out[:, :, c * (w + gap) : c * (w + gap) + w] = rgba[:, ::-1]
    return out if words else out.view(np.uint8).reshape(n, h, -1, 4)


@dataclass(frozen=True)
class TileGeometry:
    """Where a tile's pixels go in its cell (screen pixels): the three stamps ``stamp_px``
    square at ``(margin, margin)``, ``gap`` apart, on ``tile_color`` inside a one-pixel frame
    of ``frame_color`` (both :func:`argb32` words); the rest (the texts' place) tile colour."""

    cell_w: int
    cell_h: int
    stamp_px: int
    margin: int
    gap: int
    frame_color: int
    tile_color: int


@lru_cache(maxsize=16)
def _cell_map(geo: TileGeometry, h: int, w: int, size: int, src_gap: int) -> np.ndarray:
    """Index ``(cell_h, cell_w)`` of each cell pixel into a rendered tile ``(h, w)`` flattened,
    ``h * w`` for the frame colour and ``h * w + 1`` for the tile colour."""
    frame, tile = h * w, h * w + 1
    out = np.full((geo.cell_h, geo.cell_w), tile, dtype=np.intp)
    out[[0, -1], :] = frame
    out[:, [0, -1]] = frame
    # nearest neighbour: screen pixel j shows stamp pixel floor((j + 0.5) size / px)
    near = np.minimum(((np.arange(geo.stamp_px) + 0.5) * size / geo.stamp_px).astype(np.intp),
                      size - 1)
    top, px = geo.margin, geo.stamp_px
    for c in range(3):
        left = geo.margin + c * (px + geo.gap)
        src = near[:, None] * w + (c * (size + src_gap) + near)[None, :]
        rows = slice(top, min(top + px, geo.cell_h - 1))
        cols = slice(left, min(left + px, geo.cell_w - 1))
        out[rows, cols] = src[: rows.stop - rows.start, : cols.stop - cols.start]
    out.setflags(write=False)
    return out


def compose_tiles(tiles: np.ndarray, size: int, geo: TileGeometry, src_gap: int = 1,
                  out: np.ndarray | None = None) -> np.ndarray:
    """The gallery's cells ``(N, cell_h, cell_w)`` uint32 of rendered tiles ``(N, h, w)``
    (:func:`render_tiles` ``words=True``, ``size`` px stamps ``src_gap`` apart): frame, tile
    background and the stamps scaled to ``geo.stamp_px`` (nearest neighbour, pixels stay
    sharp), in one gather for the whole page instead of a scaled drawing per stamp.

    ``out``: where to write (e.g. the memory of an image), uint32 ``(N, cell_h, cell_w)``.
    """
    n, h, w = tiles.shape
    src = np.empty((n, h * w + 2), dtype=np.uint32)
    src[:, : h * w] = tiles.reshape(n, -1)
    src[:, h * w] = geo.frame_color
    src[:, h * w + 1] = geo.tile_color
    # mode="clip": the indices are in range; "raise" would buffer the whole output
    return np.take(src, _cell_map(geo, h, w, size, src_gap), axis=1, out=out, mode="clip")


def render_triplet(stamps: np.ndarray, display: StampDisplay) -> np.ndarray:
    """RGBA uint8 ``(3, H, W, 4)`` of one triplet ``(3, H, W)``."""
    return render_triplets(np.asarray(stamps)[None], display)[0]


__all__ = [
    "BLANK_RGBA",
    "FrameDisplay",
    "FrameLike",
    "StampDisplay",
    "TileGeometry",
    "argb32",
    "compose_tiles",
    "display_settings",
    "render_triplet",
    "render_tiles",
    "render_triplets",
    "stamp_levels",
]
