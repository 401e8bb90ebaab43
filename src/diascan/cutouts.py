"""Cutouts (stamps) around sources, following the Rubin rule exactly (rubin-facts.md section 5).

For a source at parent-pixel position ``(x, y)`` the box corner is ``round_half_up(x) - size // 2``
(same in ``y``), in parent coordinates, so images with different pixel origins (a detector
template has ``x0 = y0 = -20``) are cut at the same sky position. If the box is not entirely
inside the science image, all three stamps are zero (no padding, no shift). Otherwise each stamp
is the raw image plane in float32 with NaN -> 0 and +-inf -> +-float32 max; no normalisation.

Cutting is vectorised: a ``sliding_window_view`` of each plane is indexed with the corner arrays,
which copies whole stamps at once instead of looping over sources or pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from diascan.io.images import ImageData

#: Default stamp size of the Rubin models.
DEFAULT_SIZE = 51

_F32_MAX = float(np.finfo(np.float32).max)


def _corners(x, y, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Lower-left box corners (parent coords) ``round_half_up(v) - size // 2``."""
    x = np.atleast_1d(np.asarray(x, dtype=np.float64))
    y = np.atleast_1d(np.asarray(y, dtype=np.float64))
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-d arrays of the same length, got {x.shape}, {y.shape}")
    half = size // 2
    with np.errstate(invalid="ignore"):
        cx = np.floor(x + 0.5)
        cy = np.floor(y + 0.5)
    # Non-finite positions get a corner far outside any image (-> all-zero stamps).
    bad = ~(np.isfinite(cx) & np.isfinite(cy))
    cx = np.where(bad, -(2**40), cx).astype(np.int64) - half
    cy = np.where(bad, -(2**40), cy).astype(np.int64) - half
    return cx, cy


def _inside(cx: np.ndarray, cy: np.ndarray, img: ImageData, size: int) -> np.ndarray:
    x_min, y_min, x_max, y_max = img.bbox
    return (cx >= x_min) & (cy >= y_min) & (cx + size - 1 <= x_max) & (cy + size - 1 <= y_max)


def stamp_inside(x, y, science: ImageData, size: int = DEFAULT_SIZE) -> np.ndarray:
    """Boolean array: True where the ``size`` box around ``(x, y)`` lies entirely in ``science``."""
    cx, cy = _corners(x, y, size)
    return _inside(cx, cy, science, size)


def _cut_plane(
    plane: np.ndarray,
    x0: int,
    y0: int,
    cx: np.ndarray,
    cy: np.ndarray,
    ok: np.ndarray,
    size: int,
    out: np.ndarray,
    fill: float = 0,
) -> None:
    """Fill ``out[ok]`` ((N, size, size) view) with stamps of ``plane`` (origin ``x0, y0``) at
    corners ``cx, cy``.

    Boxes entirely inside the plane are copied through a sliding-window view; boxes partly
    outside keep ``fill`` where they leave it (zeros for scoring, where only a difference or
    template whose grid differs from the science one can be partly outside; NaN for display).
    """
    plane = np.asarray(plane)
    ny, nx = plane.shape
    col0 = cx - x0
    row0 = cy - y0
    full = ok & (col0 >= 0) & (row0 >= 0) & (col0 + size <= nx) & (row0 + size <= ny)
    if full.any() and ny >= size and nx >= size:
        windows = sliding_window_view(plane, (size, size))
        with np.errstate(over="ignore"):  # float64 > float32 max -> inf, fixed below
            out[full] = windows[row0[full], col0[full]]
    part = ok & ~full
    if part.any():
        ar = np.arange(size)
        rows = row0[part][:, None] + ar  # (M, size)
        cols = col0[part][:, None] + ar
        rok = (rows >= 0) & (rows < ny)
        cok = (cols >= 0) & (cols < nx)
        vals = plane[np.clip(rows, 0, ny - 1)[:, :, None], np.clip(cols, 0, nx - 1)[:, None, :]]
        vals = np.where(rok[:, :, None] & cok[:, None, :], vals, fill)
        with np.errstate(over="ignore"):
            out[part] = vals


def cut_stamps(
    x,
    y,
    difference: ImageData,
    science: ImageData,
    template: ImageData,
    size: int = DEFAULT_SIZE,
) -> np.ndarray:
    """Stamps ``(N, 3, size, size)`` float32 in channel order [difference, science, template].

    ``x`` and ``y`` are parent-pixel coordinates (arrays or scalars). Sources whose box is not
    entirely inside the science image get all-zero stamps in all three channels.
    """
    if size < 1:
        raise ValueError(f"stamp size must be positive, got {size}")
    cx, cy = _corners(x, y, size)
    n = cx.size
    stamps = np.zeros((n, 3, size, size), dtype=np.float32)
    ok = _inside(cx, cy, science, size)
    if ok.any():
        for channel, img in enumerate((difference, science, template)):
            # stamps[:, channel] is a view: stamps are written in place, no extra copy.
            _cut_plane(img.image, img.x0, img.y0, cx, cy, ok, size, stamps[:, channel])
        np.nan_to_num(stamps, copy=False, nan=0.0, posinf=_F32_MAX, neginf=-_F32_MAX)
    return stamps


#: Mask planes whose pixels display stamps leave blank: there is no data there.
BLANK_PLANES = ("NO_DATA",)


def cut_display_stamps(
    x,
    y,
    images: Sequence[ImageData],
    size: int,
    blank_planes: Sequence[str] = BLANK_PLANES,
) -> np.ndarray:
    """Display stamps ``(N, len(images), size, size)`` float32, in the order of ``images``.

    Same corners as :func:`cut_stamps` (``round_half_up(x) - size // 2``, parent pixels, any
    pixel origin), but for DISPLAY: each image is cut on its own, NaN where the box leaves that
    image or where one of ``blank_planes`` is set, so a source at the edge shows its pixels and
    blank beyond. Scoring never uses these (:func:`cut_stamps` keeps Rubin's all-zero rule).
    """
    if size < 1:
        raise ValueError(f"stamp size must be positive, got {size}")
    cx, cy = _corners(x, y, size)
    n = cx.size
    ok = np.ones(n, dtype=bool)
    stamps = np.empty((n, len(images), size, size), dtype=np.float32)
    for channel, img in enumerate(images):
        out = stamps[:, channel]
        _cut_plane(img.image, img.x0, img.y0, cx, cy, ok, size, out, fill=np.nan)
        bits = img.bits(*blank_planes)
        if bits:
            mask = np.zeros((n, size, size), dtype=np.asarray(img.mask).dtype)
            _cut_plane(img.mask, img.x0, img.y0, cx, cy, ok, size, mask, fill=0)
            out[(mask & bits) != 0] = np.nan
    return stamps


__all__ = ["BLANK_PLANES", "DEFAULT_SIZE", "cut_display_stamps", "cut_stamps", "stamp_inside"]
