"""Are two images on the same pixel grid? One comparison of two WCS pixel mappings.

Used where diascan must know whether pixels line up: a template already on the science grid is
copied rather than resampled (:mod:`diascan.template`, 1e-3 px), and a difference image must share
the science image's grid (:func:`diascan.pipeline.load_inputs`, 0.1 px).

The mapping goes through the sky with astropy's ``pixel_to_pixel`` (frame conversions included)
on a regular grid of points over the whole image, corners and edges included: a WCS pair that
agrees at the centre but differs in rotation, scale or distortion shows at the border.
"""

from __future__ import annotations

import warnings

import numpy as np
from astropy.wcs import WCS
from astropy.wcs.utils import pixel_to_pixel

#: Points per axis of the comparison grid (17 x 17: every ~250 px of a detector).
GRID_POINTS = 17


def _grid(shape: tuple[int, int], points: int) -> tuple[np.ndarray, np.ndarray]:
    ny, nx = shape
    gx, gy = np.meshgrid(
        np.linspace(0.0, max(nx - 1, 0), min(points, max(nx, 1))),
        np.linspace(0.0, max(ny - 1, 0), min(points, max(ny, 1))),
    )
    return gx.ravel(), gy.ravel()


def _mapped(wcs_from: WCS, wcs_to: WCS, x: np.ndarray, y: np.ndarray):
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            px, py = pixel_to_pixel(wcs_from.celestial, wcs_to.celestial, x, y)
        return np.asarray(px, dtype=float), np.asarray(py, dtype=float)
    except Exception:  # noqa: BLE001 - wcslib/astropy raise many types when a mapping fails
        return np.full_like(x, np.nan), np.full_like(y, np.nan)


def max_pixel_offset(
    wcs_from: WCS,
    wcs_to: WCS,
    shape: tuple[int, int],
    shift: tuple[float, float] = (0.0, 0.0),
    points: int = GRID_POINTS,
) -> float:
    """Largest distance (pixels of ``wcs_to``) between where ``wcs_to`` puts the sky positions of
    a grid of array pixels of ``wcs_from`` (an image of ``shape``) and those pixels moved by
    ``shift`` = ``(dx, dy)``. ``inf`` when the mapping fails anywhere."""
    x, y = _grid(shape, points)
    px, py = _mapped(wcs_from, wcs_to, x, y)
    d = np.hypot(px - (x + shift[0]), py - (y + shift[1]))
    return float(np.max(d)) if np.all(np.isfinite(d)) else float("inf")


def integer_shift(
    wcs_from: WCS, wcs_to: WCS, shape: tuple[int, int], tol: float = 1e-3
) -> tuple[int, int] | None:
    """``(dx, dy)`` when ``wcs_to``'s array pixels are ``wcs_from``'s moved by whole pixels
    (within ``tol`` over the whole image of ``shape``), else None."""
    ny, nx = shape
    cx, cy = np.array([(nx - 1) / 2.0]), np.array([(ny - 1) / 2.0])
    px, py = _mapped(wcs_from, wcs_to, cx, cy)
    if not (np.isfinite(px[0]) and np.isfinite(py[0])) or max(abs(px[0]), abs(py[0])) > 1e9:
        return None
    dx, dy = round(float(px[0] - cx[0])), round(float(py[0] - cy[0]))
    if max_pixel_offset(wcs_from, wcs_to, shape, (dx, dy)) > tol:
        return None
    return int(dx), int(dy)


__all__ = ["GRID_POINTS", "integer_shift", "max_pixel_offset"]
