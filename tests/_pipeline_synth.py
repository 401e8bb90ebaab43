"""Synthetic images for the pipeline tests: Gaussian stars rendered exactly on any WCS."""

from __future__ import annotations

import numpy as np
from astropy.wcs import WCS
from scipy.special import erf

from diascan.io.images import DEFAULT_MASK_PLANES, ImageData

RA0, DEC0 = 150.0, 2.0
SCALE = 0.2 / 3600.0  # deg / pixel


def tan_wcs(nx: int, ny: int, rot_deg: float = 0.0, crval=(RA0, DEC0), crpix=None) -> WCS:
    """A TAN WCS with 0.2 arcsec pixels rotated by ``rot_deg``."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = list(crval)
    w.wcs.crpix = list(crpix) if crpix is not None else [nx / 2 + 0.5, ny / 2 + 0.5]
    t = np.deg2rad(rot_deg)
    w.wcs.cd = SCALE * np.array([[-np.cos(t), np.sin(t)], [np.sin(t), np.cos(t)]])
    w.wcs.set()
    return w


def render_stars(shape, xs, ys, fluxes, sigma: float) -> np.ndarray:
    """Pixel-integrated Gaussian stars at array positions ``xs, ys`` (pixel centres integers)."""
    ny, nx = shape
    img = np.zeros(shape, dtype=np.float64)
    r = int(np.ceil(6 * sigma))
    s2 = np.sqrt(2.0) * sigma
    for x, y, f in zip(xs, ys, fluxes, strict=True):
        ix, iy = int(round(x)), int(round(y))
        x_lo, x_hi = max(ix - r, 0), min(ix + r + 1, nx)
        y_lo, y_hi = max(iy - r, 0), min(iy + r + 1, ny)
        if x_lo >= x_hi or y_lo >= y_hi:
            continue
        px = np.arange(x_lo, x_hi)
        py = np.arange(y_lo, y_hi)
        gx = 0.5 * (erf((px + 0.5 - x) / s2) - erf((px - 0.5 - x) / s2))
        gy = 0.5 * (erf((py + 0.5 - y) / s2) - erf((py - 0.5 - y) / s2))
        img[y_lo:y_hi, x_lo:x_hi] += f * np.outer(gy, gx)
    return img


def make_image(image, variance, wcs, x0=0, y0=0, mask=None, **meta) -> ImageData:
    return ImageData(
        image=np.asarray(image, dtype=np.float32),
        mask=np.zeros(image.shape, np.int32) if mask is None else mask.astype(np.int32),
        variance=np.asarray(variance, dtype=np.float32),
        mask_planes=dict(DEFAULT_MASK_PLANES),
        wcs=wcs,
        x0=x0,
        y0=y0,
        bunit="nJy",
        metadata=dict(meta),
    )


def sky_star_field(n: int, rng, radius_deg: float):
    """Random star positions (deg) within ``radius_deg`` of the field centre, fluxes in nJy."""
    ra = RA0 + rng.uniform(-radius_deg, radius_deg, n) / np.cos(np.deg2rad(DEC0))
    dec = DEC0 + rng.uniform(-radius_deg, radius_deg, n)
    flux = rng.uniform(2e4, 2e5, n)
    return ra, dec, flux
