"""Vectorised rendering primitives for simulated astronomical images (Qt-free).

Conventions used by every function here:

* ``image`` is a 2-D float array indexed ``[y, x]`` (any size: a 4072 x 4000 detector or a
  51 x 51 training stamp); it is modified IN PLACE and also returned for convenience.
* Positions ``x``, ``y`` are ARRAY pixel coordinates: ``x`` = column, ``y`` = row, pixel centres
  are integers (pixel ``i`` spans ``[i - 0.5, i + 0.5]``). Sub-pixel positions are allowed and
  sources may lie partly or wholly off the array (the off-array part is simply dropped).
* Fluxes are total fluxes in nJy (the sum over an infinite array); per-pixel values are nJy.
* Sizes (``sigma``, ``r_eff``, ``length``) are in pixels, angles in radians counter-clockwise
  from the +x axis.

Each source is rendered on a small local stamp (vectorised over all sources with numpy) and the
stamps are added to the image with one ``np.add.at`` call; there are no per-pixel Python loops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.special import erf

#: Stamp half-width of a Gaussian PSF, in units of sigma (flux beyond it is < 1e-6).
PSF_HALF_SIGMAS = 5.0

_SQRT2 = np.sqrt(2.0)


def _as1d(value, n: int, dtype=np.float64) -> np.ndarray:
    arr = np.asarray(value, dtype=dtype)
    return np.broadcast_to(arr, (n,)).copy() if arr.ndim == 0 else arr.reshape(n)


def _pixel_fractions(offset: np.ndarray, sigma: np.ndarray, half: int) -> np.ndarray:
    """Fraction of a 1-D Gaussian falling in pixels ``-half..half`` (shape (N, 2 half + 1)).

    ``offset`` is the source position relative to the stamp's central pixel. Rows sum to 1
    (renormalised after truncation) so total flux is conserved.
    """
    edges = np.arange(-half - 0.5, half + 1.0, 1.0)  # 2 half + 2 edges
    z = (edges[None, :] - offset[:, None]) / (_SQRT2 * sigma[:, None])
    cdf = 0.5 * erf(z)
    frac = np.diff(cdf, axis=1)
    frac /= np.maximum(frac.sum(axis=1, keepdims=True), 1e-300)
    return frac


def gaussian_psf_stamps(
    dx: np.ndarray, dy: np.ndarray, sigma: float | np.ndarray, half: int
) -> np.ndarray:
    """Pixel-integrated, unit-flux Gaussian PSF stamps of shape (N, 2 half + 1, 2 half + 1).

    ``dx``, ``dy`` are offsets (pixels) of each source from its stamp's central pixel.
    """
    dx = np.atleast_1d(np.asarray(dx, dtype=np.float64))
    n = dx.size
    dy = _as1d(dy, n)
    sig = _as1d(sigma, n)
    fx = _pixel_fractions(dx, sig, half)
    fy = _pixel_fractions(dy, sig, half)
    return fy[:, :, None] * fx[:, None, :]


def add_stamps(image: np.ndarray, ix: np.ndarray, iy: np.ndarray, stamps: np.ndarray) -> np.ndarray:
    """Add stamps (N, S, S) centred on integer pixels ``(ix, iy)`` to ``image``, clipping edges."""
    stamps = np.asarray(stamps)
    n, sy, sx = stamps.shape
    if n == 0:
        return image
    hy, hx = sy // 2, sx // 2
    ny, nx = image.shape
    ix = np.asarray(ix, dtype=np.int64).reshape(n)
    iy = np.asarray(iy, dtype=np.int64).reshape(n)
    # Skip stamps entirely off the array before building index arrays.
    keep = (ix + hx >= 0) & (ix - hx < nx) & (iy + hy >= 0) & (iy - hy < ny)
    if not keep.any():
        return image
    ix, iy, stamps = ix[keep], iy[keep], stamps[keep]
    cols = ix[:, None, None] + np.arange(-hx, hx + 1)[None, None, :]
    rows = iy[:, None, None] + np.arange(-hy, hy + 1)[None, :, None]
    cols, rows = np.broadcast_arrays(cols, rows)
    inside = (cols >= 0) & (cols < nx) & (rows >= 0) & (rows < ny)
    # Tuple indexing works for any (also non-contiguous) array view.
    np.add.at(image, (rows[inside], cols[inside]), stamps[inside].astype(image.dtype, copy=False))
    return image


def _split_position(x, y):
    x = np.atleast_1d(np.asarray(x, dtype=np.float64))
    y = _as1d(y, x.size)
    ix = np.floor(x + 0.5).astype(np.int64)
    iy = np.floor(y + 0.5).astype(np.int64)
    return x, y, ix, iy


def add_point_sources(
    image: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    flux: np.ndarray,
    sigma: float | np.ndarray,
    *,
    half: int | None = None,
) -> np.ndarray:
    """Add Gaussian-PSF point sources of total ``flux`` (nJy, may be negative) at ``(x, y)``.

    ``sigma`` is the PSF Gaussian sigma in pixels (scalar or one per source). The PSF is
    integrated over each pixel, so the flux of a source fully on the array is conserved.
    """
    x, y, ix, iy = _split_position(x, y)
    n = x.size
    if n == 0:
        return image
    flux = _as1d(flux, n)
    sig = _as1d(sigma, n)
    if half is None:
        half = int(np.ceil(PSF_HALF_SIGMAS * float(sig.max())))
    stamps = gaussian_psf_stamps(x - ix, y - iy, sig, half) * flux[:, None, None]
    return add_stamps(image, ix, iy, stamps)


def add_trailed_sources(
    image: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    flux: np.ndarray,
    sigma: float,
    length: float | np.ndarray,
    angle: float | np.ndarray,
    *,
    step: float = 0.5,
) -> np.ndarray:
    """Add trailed point sources (e.g. asteroids): a PSF smeared along a line.

    ``(x, y)`` is the trail midpoint, ``length`` the trail length in pixels and ``angle`` its
    direction; the total ``flux`` is spread evenly along the trail.
    """
    x, y, _, _ = _split_position(x, y)
    n = x.size
    if n == 0:
        return image
    flux = _as1d(flux, n)
    length = _as1d(length, n)
    angle = _as1d(angle, n)
    k = max(2, int(np.ceil(float(length.max()) / step)) + 1)
    t = np.linspace(-0.5, 0.5, k)
    px = (x[:, None] + t[None, :] * (length * np.cos(angle))[:, None]).ravel()
    py = (y[:, None] + t[None, :] * (length * np.sin(angle))[:, None]).ravel()
    pf = np.repeat(flux / k, k)
    return add_point_sources(image, px, py, pf, sigma)


def sersic_b(n: float | np.ndarray) -> np.ndarray:
    """The Sersic ``b_n`` constant (half of the light inside ``r_eff``); Ciotti & Bertin 1999."""
    n = np.asarray(n, dtype=np.float64)
    return 2.0 * n - 1.0 / 3.0 + 4.0 / (405.0 * n) + 46.0 / (25515.0 * n**2)


#: Stamp half-sizes used to bucket galaxies so each bucket is one array operation.
_GALAXY_HALVES = (6, 9, 12, 16, 24, 32, 48, 64, 96, 128)


def galaxy_stamps(
    dx: np.ndarray,
    dy: np.ndarray,
    r_eff: np.ndarray,
    q: np.ndarray,
    theta: np.ndarray,
    sigma_psf: float,
    half: int,
    *,
    n_sersic: float | np.ndarray = 1.0,
    oversample: int = 3,
) -> np.ndarray:
    """Unit-flux PSF-convolved Sersic stamps of shape (N, 2 half + 1, 2 half + 1).

    ``r_eff`` is the half-light radius along the major axis, ``q`` = b/a, ``theta`` the major
    axis angle. The profile is averaged over ``oversample``^2 sub-pixels, convolved with the
    Gaussian PSF and normalised to sum 1 on the stamp.
    """
    dx = np.atleast_1d(np.asarray(dx, dtype=np.float64))
    n = dx.size
    dy, r_eff, q, theta = (_as1d(v, n) for v in (dy, r_eff, q, theta))
    ns = _as1d(n_sersic, n)
    # Sub-pixel sampling matters only for small galaxies; large stamps use one sample per pixel.
    os_ = max(1, int(oversample)) if float(np.min(r_eff)) < 3.0 else 1
    sub = (np.arange(os_) + 0.5) / os_ - 0.5
    grid = (np.arange(-half, half + 1)[:, None] + sub[None, :]).ravel()  # S * os samples
    f32 = np.float32
    u = (grid[None, None, :] - dx[:, None, None]).astype(f32)  # (N, 1, S*os) along x
    v = (grid[None, :, None] - dy[:, None, None]).astype(f32)  # (N, S*os, 1) along y
    c = np.cos(theta).astype(f32)[:, None, None]
    s = np.sin(theta).astype(f32)[:, None, None]
    inv_r = (1.0 / np.maximum(r_eff, 0.05)).astype(f32)[:, None, None]
    major = (u * c + v * s) * inv_r
    minor = (v * c - u * s) * (inv_r / np.maximum(q, 0.05).astype(f32)[:, None, None])
    r = np.sqrt(major * major + minor * minor)
    b = sersic_b(ns).astype(f32)[:, None, None]
    if np.all(ns == 1.0):
        prof = np.exp(-b * (r - f32(1.0)))  # exponential disc: skip the slow power
    else:
        prof = np.exp(-b * (np.power(r, (1.0 / ns).astype(f32)[:, None, None]) - f32(1.0)))
    size = 2 * half + 1
    prof = prof.reshape(n, size, os_, size, os_).mean(axis=(2, 4))
    if sigma_psf > 0:
        # One separable filter call over the whole stack (sigma 0 along the source axis).
        prof = gaussian_filter(prof, sigma=(0.0, sigma_psf, sigma_psf), mode="constant")
    prof /= np.maximum(prof.sum(axis=(1, 2), keepdims=True), 1e-30)
    return prof


def add_galaxies(
    image: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    flux: np.ndarray,
    r_eff: np.ndarray,
    q: np.ndarray,
    theta: np.ndarray,
    sigma_psf: float,
    *,
    n_sersic: float | np.ndarray = 1.0,
    chunk: int = 256,
) -> np.ndarray:
    """Add PSF-convolved Sersic galaxies (default exponential, ``n_sersic=1``).

    ``flux`` total nJy, ``r_eff`` half-light radius along the major axis (pixels), ``q`` axis
    ratio b/a in (0, 1], ``theta`` major-axis angle (radians from +x), ``sigma_psf`` Gaussian
    PSF sigma (pixels). The stamp of each galaxy extends to ~4 r_eff + 4 sigma_psf and is
    normalised, so its flux is conserved.
    """
    x, y, ix, iy = _split_position(x, y)
    n = x.size
    if n == 0:
        return image
    flux, r_eff, q, theta = (_as1d(v, n) for v in (flux, r_eff, q, theta))
    ns = _as1d(n_sersic, n)
    need = np.ceil(4.0 * r_eff * np.where(ns > 1.5, 1.5, 1.0) + 4.0 * sigma_psf + 1).astype(int)
    halves = np.asarray(_GALAXY_HALVES)
    # Bucket by stamp size, and small (< 3 px, oversampled) vs large galaxies.
    bucket = np.searchsorted(halves, np.minimum(need, halves[-1])) * 2 + (r_eff >= 3.0)
    for b in np.unique(bucket):
        idx = np.flatnonzero(bucket == b)
        half = int(halves[b // 2])
        step = max(1, chunk * 32 * 32 // (2 * half + 1) ** 2)
        for start in range(0, idx.size, step):
            sel = idx[start : start + step]
            stamps = galaxy_stamps(
                x[sel] - ix[sel],
                y[sel] - iy[sel],
                r_eff[sel],
                q[sel],
                theta[sel],
                sigma_psf,
                half,
                n_sersic=ns[sel],
            )
            stamps *= flux[sel, None, None].astype(np.float32)
            add_stamps(image, ix[sel], iy[sel], stamps)
    return image


@dataclass
class Defects:
    """What a defect generator added: centres (array pixels), amplitudes and touched pixels."""

    x: np.ndarray
    y: np.ndarray
    value: np.ndarray  #: per-pixel peak (nJy) for cosmic rays / hot pixels, level for columns
    mask: np.ndarray  #: bool, same shape as the image: pixels that were changed
    length: np.ndarray | None = None
    angle: np.ndarray | None = None


def add_cosmic_rays(
    image: np.ndarray,
    rng: np.random.Generator,
    n: int,
    *,
    length: tuple[float, float] = (2.0, 30.0),
    peak: tuple[float, float] = (300.0, 5000.0),
    x: np.ndarray | None = None,
    y: np.ndarray | None = None,
) -> Defects:
    """Add ``n`` cosmic-ray tracks: sharp (not PSF-convolved) line segments.

    Each track has a random angle, a length drawn uniformly from ``length`` (pixels) and a
    deposit of ``peak`` nJy per pixel of track (log-uniform in the range). Centres are uniform
    over the array unless ``x``/``y`` are given. Returns the centres and the touched-pixel mask.
    """
    ny, nx = image.shape
    if x is None or y is None:
        x = rng.uniform(-0.5, nx - 0.5, n)
        y = rng.uniform(-0.5, ny - 0.5, n)
    x = _as1d(x, n)
    y = _as1d(y, n)
    lengths = rng.uniform(length[0], length[1], n)
    angles = rng.uniform(0.0, np.pi, n)
    peaks = np.exp(rng.uniform(np.log(peak[0]), np.log(peak[1]), n))
    mask = np.zeros(image.shape, dtype=bool)
    if n == 0:
        return Defects(x, y, peaks, mask, lengths, angles)
    # Sample each track densely (<= 0.25 px spacing) and give each sample to its nearest pixel:
    # cosmic rays are sharp, not PSF-convolved.
    k = int(np.ceil(lengths.max() / 0.25)) + 1
    t = np.linspace(-0.5, 0.5, k)[None, :]
    px = x[:, None] + t * (lengths * np.cos(angles))[:, None]
    py = y[:, None] + t * (lengths * np.sin(angles))[:, None]
    w = np.broadcast_to((peaks * np.maximum(lengths, 1.0) / k)[:, None], px.shape).ravel()
    cx = np.floor(px + 0.5).astype(np.int64).ravel()
    cy = np.floor(py + 0.5).astype(np.int64).ravel()
    inside = (cx >= 0) & (cx < nx) & (cy >= 0) & (cy < ny)
    np.add.at(image, (cy[inside], cx[inside]), w[inside].astype(image.dtype))
    mask[cy[inside], cx[inside]] = True
    return Defects(x, y, peaks, mask, lengths, angles)


def add_hot_pixels(
    image: np.ndarray,
    rng: np.random.Generator,
    n: int,
    *,
    value: tuple[float, float] = (500.0, 20000.0),
) -> Defects:
    """Add ``n`` single hot pixels at random integer positions (log-uniform ``value`` nJy)."""
    ny, nx = image.shape
    xs = rng.integers(0, nx, n)
    ys = rng.integers(0, ny, n)
    vals = np.exp(rng.uniform(np.log(value[0]), np.log(value[1]), n))
    mask = np.zeros(image.shape, dtype=bool)
    np.add.at(image, (ys, xs), vals.astype(image.dtype))
    mask[ys, xs] = True
    return Defects(xs.astype(np.float64), ys.astype(np.float64), vals, mask)


def add_bad_columns(
    image: np.ndarray,
    rng: np.random.Generator,
    n: int,
    *,
    value: tuple[float, float] = (-300.0, 3000.0),
    min_rows: int | None = None,
) -> Defects:
    """Add ``n`` bad columns: a constant offset over a run of rows of one column.

    Each column gets an offset drawn uniformly from ``value`` (nJy) on a random run of rows
    at least ``min_rows`` long (default a quarter of the array height). ``x`` is the column,
    ``y`` the middle of the run.
    """
    ny, nx = image.shape
    min_rows = max(1, ny // 4) if min_rows is None else min(min_rows, ny)
    cols = rng.integers(0, nx, n)
    lengths = rng.integers(min_rows, ny + 1, n)
    starts = rng.integers(0, ny - lengths + 1)
    vals = rng.uniform(value[0], value[1], n)
    mask = np.zeros(image.shape, dtype=bool)
    rows = np.arange(ny)[:, None]
    run = (rows >= starts[None, :]) & (rows < (starts + lengths)[None, :])  # (ny, n)
    for j in range(n):  # one vectorised column slice per bad column
        sel = run[:, j]
        image[sel, cols[j]] += np.asarray(vals[j], dtype=image.dtype)
        mask[sel, cols[j]] = True
    ymid = starts + (lengths - 1) / 2.0
    return Defects(
        cols.astype(np.float64), ymid.astype(np.float64), vals, mask, lengths.astype(float)
    )


__all__ = [
    "Defects",
    "add_bad_columns",
    "add_cosmic_rays",
    "add_galaxies",
    "add_hot_pixels",
    "add_point_sources",
    "add_stamps",
    "add_trailed_sources",
    "galaxy_stamps",
    "gaussian_psf_stamps",
    "sersic_b",
]
