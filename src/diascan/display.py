"""Image display maths (Qt-free): limits, stretches, colour lookup tables, mask overlays.

One definition shared by every view that paints pixels: the linked frames, the stamp dock and
the gallery of triplets. Widgets get plain arrays from here (levels, ``(n, 4)`` uint8 lookup
tables, RGBA overlays) and only hand them to Qt.

Stretch choice (measured, see tests/benchmarks): a stretch is applied through the colour lookup
table (:func:`stretch_curve` composed with the colormap) instead of recomputing the display
copy, so changing the stretch costs one LUT rebuild (< 1 ms) rather than a pass over the 16 Mpix
image (~150-400 ms for astropy's stretches on 4k x 4k).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache

import numpy as np

from diascan.io.mask_planes import find_plane, spellings

STRETCHES = ("linear", "sqrt", "log", "asinh")
LIMIT_MODES = ("zscale", "minmax", "99.5%", "99%", "95%")
COLORMAPS = ("grey", "viridis", "inferno", "magma", "CET-D1")

#: diascan colormap name -> name in the ``cmap`` library (matplotlib and colorcet data).
_CMAP_NAMES = {
    "grey": "gray",
    "viridis": "viridis",
    "inferno": "inferno",
    "magma": "magma",
    "CET-D1": "colorcet:CET_D1",
}

#: Number of pixels used to compute display limits (a strided subsample of the image).
LEVEL_SAMPLE = 250_000

#: Samples zscale takes of an image (astropy's ZScaleInterval default ``n_samples``).
ZSCALE_SAMPLES = 1000

#: Entries of a colour lookup table. 256 (not more): pyqtgraph then renders through an 8-bit
#: indexed image, measured ~4x faster than a 4096-entry table on a 16 Mpix frame, and a stamp
#: renders with one uint8 index per pixel.
LUT_SIZE = 256


def display_copy(image: np.ndarray, max_side: int | None = None,
                 reuse: bool = False) -> np.ndarray:
    """Float32, C-contiguous, NaN/inf-free copy of ``image`` for display (made once per frame).

    With ``max_side`` the copy is block-subsampled by an integer stride so no side exceeds it.
    Non-finite pixels are replaced by the median of the finite ones (0 if none). With
    ``reuse`` an image that is all that already is returned itself (the display only reads
    it): a 4072 x 4000 frame is not copied on the way to the screen.
    """
    arr = np.asarray(image)
    if max_side is not None and max(arr.shape) > max_side:
        step = int(np.ceil(max(arr.shape) / max_side))
        arr = arr[::step, ::step]
    # one pass, no temporary: the float64 sum is finite iff every pixel is (an overflow of
    # the sum itself, ~1e308, would only mean a needless copy)
    if (reuse and arr.dtype == np.float32 and arr.flags.c_contiguous
            and np.isfinite(np.add.reduce(arr, axis=None, dtype=np.float64))):
        return arr
    out = np.array(arr, dtype=np.float32, order="C", copy=True)
    bad = ~np.isfinite(out)
    if bad.any():
        good = out[~bad]
        out[bad] = np.float32(np.median(good[:: max(1, good.size // LEVEL_SAMPLE)])) if good.size else 0.0
    return out


def sample(image: np.ndarray, n: int = LEVEL_SAMPLE) -> np.ndarray:
    """A strided subsample of about ``n`` finite pixels of ``image`` (flattened)."""
    flat = np.asarray(image).ravel()
    step = max(1, flat.size // n)
    s = flat[::step]
    return s[np.isfinite(s)]


def _interval(mode: str):
    from astropy.visualization import MinMaxInterval, PercentileInterval, ZScaleInterval

    if mode == "zscale":
        return ZScaleInterval()
    if mode == "minmax":
        return MinMaxInterval()
    try:
        pct = float(str(mode).rstrip("%"))
    except ValueError:
        raise ValueError(f"unknown limits mode {mode!r}") from None
    return PercentileInterval(pct)


def _finish_levels(lo: float, hi: float, symmetric: bool) -> tuple[float, float]:
    if symmetric:
        m = max(abs(lo), abs(hi))
        lo, hi = -m, m
    if not hi > lo:
        hi = lo + 1.0
    return lo, hi


def compute_levels(
    image_sample: np.ndarray, mode: str = "zscale", symmetric: bool = False
) -> tuple[float, float]:
    """Display limits ``(lo, hi)`` of a (sub)sample with astropy's interval classes.

    ``mode``: 'zscale', 'minmax' or a percentile like '99.5%' / '99.5'. ``symmetric`` makes the
    limits ``(-m, m)`` around zero with ``m = max(|lo|, |hi|)`` (difference images). No finite
    pixel gives ``(0, 1)``.
    """
    interval = _interval(mode)
    data = sample(image_sample)
    if data.size == 0:
        return (0.0, 1.0)
    lo, hi = (float(v) for v in interval.get_limits(data))
    return _finish_levels(lo, hi, symmetric)


def compute_levels_many(
    stamps: np.ndarray, mode: str = "zscale", symmetric: bool | np.ndarray = False
) -> np.ndarray:
    """Display limits of each of ``N`` small images ``(N, H, W)`` -> ``(N, 2)`` float64.

    The same limits as :func:`compute_levels` on each image (tested against it). zscale is
    computed for all images at once (:func:`zscale_many`); other modes per image.
    ``symmetric``: for all images, or a boolean per image.
    """
    stamps = np.asarray(stamps)
    n = stamps.shape[0]
    out = np.zeros((n, 2), dtype=np.float64)
    if n == 0:
        return out
    sym = np.broadcast_to(np.asarray(symmetric, dtype=bool), (n,))
    flat = stamps.reshape(n, -1)
    if mode != "zscale":
        for k in range(n):
            out[k] = compute_levels(flat[k], mode, bool(sym[k]))
        return out
    finite = np.isfinite(flat)
    counts = finite.sum(axis=1)
    # zscale samples at most ZSCALE_SAMPLES of the finite pixels (every stride-th): images with
    # at least that many give as many samples, whatever their NaN, so they all go into one
    # vectorised zscale (a page's stamps inside the image and those partly off it); smaller
    # ones (mostly off the image) in one call per number of finite pixels.
    many = np.flatnonzero(counts >= ZSCALE_SAMPLES)
    if many.size:
        samples = np.empty((many.size, ZSCALE_SAMPLES), dtype=flat.dtype)
        whole = counts[many] == flat.shape[1]
        stride = int(max(1.0, flat.shape[1] / ZSCALE_SAMPLES))
        samples[whole] = flat[many[whole], ::stride][:, :ZSCALE_SAMPLES]
        for j in np.flatnonzero(~whole):  # partly NaN: sampled as astropy samples them
            values = flat[many[j]][finite[many[j]]]
            samples[j] = values[:: int(max(1.0, values.size / ZSCALE_SAMPLES))][:ZSCALE_SAMPLES]
        out[many] = zscale_many(samples)
    few = (counts > 0) & (counts < ZSCALE_SAMPLES)
    for count in np.unique(counts[few]):
        rows = np.flatnonzero(counts == count)
        out[rows] = zscale_many(flat[rows][finite[rows]].reshape(rows.size, int(count)))
    if sym.any():
        m = np.abs(out[sym]).max(axis=1)
        out[sym] = np.column_stack([-m, m])
    same = ~(out[:, 1] > out[:, 0])
    out[same, 1] = out[same, 0] + 1.0
    out[counts == 0] = (0.0, 1.0)  # no pixel at all: as compute_levels
    return out


def zscale_many(
    values: np.ndarray,
    n_samples: int = ZSCALE_SAMPLES,
    contrast: float = 0.25,
    max_reject: float = 0.5,
    min_npixels: int = 5,
    krej: float = 2.5,
    max_iterations: int = 5,
) -> np.ndarray:
    """IRAF zscale limits of each row of ``values`` ``(N, npix)`` (finite values) -> ``(N, 2)``.

    astropy's :class:`~astropy.visualization.ZScaleInterval`, step for step (sample, sort,
    line fit with iterative k-sigma rejection and growth), vectorised over rows. Written here
    because astropy computes one image per call at ~1-3 ms of Python overhead each, so a
    gallery page (48 triplets = 144 stamps) would spend 150-400 ms in limits alone; this does
    them together in a few ms. tests/test_display.py checks it against astropy stamp by stamp.
    """
    values = np.asarray(values)
    n, size = values.shape
    stride = int(max(1.0, size / n_samples))
    # sorted in the input's type (float32 sorts twice as fast), the maths in float64
    s = np.sort(values[:, ::stride][:, :n_samples], axis=1)
    npix = s.shape[1]
    out = np.empty((n, 2), dtype=np.float64)
    if n == 0 or npix == 0:
        return out
    out[:, 0] = s[:, 0]
    out[:, 1] = s[:, -1]
    median = 0.5 * (s[:, (npix - 1) // 2].astype(np.float64) + s[:, npix // 2])
    minpix = max(min_npixels, int(npix * max_reject))
    ngrow = max(1, int(npix * 0.01))
    x = np.arange(npix, dtype=np.float64)
    # The samples about their median: the same fit (its intercept shifted), sums that keep
    # their digits on a sky level. The least-squares sums over the good samples start as
    # sums over all and lose the samples each iteration rejects: a gather of those few, not
    # a weighted pass over every sample.
    feats = np.empty((3, n, npix))  # y, x y, y^2 of each sample
    y = np.subtract(s, median[:, None], dtype=np.float64, out=feats[0])
    np.multiply(y, x, out=feats[1])
    np.multiply(y, y, out=feats[2])
    flat_feats = feats.reshape(3, -1)
    # sums of 1, x, x^2, y, x y, y^2 over the good samples of each row
    sums = np.concatenate([np.repeat([[npix], [x.sum()], [(x * x).sum()]], n, axis=1),
                           feats.sum(axis=2)])
    bad = np.zeros((n, npix), dtype=bool)  # rejected once, rejected for good
    r = np.empty((n, npix))
    new = np.empty((n, npix), dtype=bool)
    ngood = np.full(n, npix)
    last_ngood = np.full(n, npix + 1)
    slope = np.zeros(n)
    fitted = np.zeros(n, dtype=bool)
    for _ in range(max_iterations):
        active = (ngood < last_ngood) & (ngood >= minpix)
        if not active.any():
            break
        sw, sx, sxx, sy, sxy, syy = sums
        with np.errstate(invalid="ignore", divide="ignore"):  # rows out of the fit
            b = (sw * sxy - sx * sy) / (sw * sxx - sx * sx)
            a = (sy - b * sx) / sw
            # mean and variance of the good residuals r = y - a - b x, from the sums
            rmean = (sy - a * sw - b * sx) / sw
            r2 = (syy + a * a * sw + b * b * sxx - 2 * a * sy - 2 * b * sxy + 2 * a * b * sx) / sw
            threshold = krej * np.sqrt(np.maximum(r2 - rmean * rmean, 0.0))
        threshold[~active] = np.inf  # rows that are done reject nothing more
        np.multiply(b[:, None], x, out=r)
        r += a[:, None]
        np.subtract(y, r, out=r)
        np.greater(np.abs(r, out=r), threshold[:, None], out=new)
        new |= bad
        _dilate(new, active, ngrow)
        newly = np.flatnonzero(new & ~bad)
        nrow, ncol = np.divmod(newly, npix)
        ncol = ncol.astype(np.float64)
        sums[0] -= np.bincount(nrow, None, n)
        sums[1] -= np.bincount(nrow, ncol, n)
        sums[2] -= np.bincount(nrow, ncol * ncol, n)
        for f in range(3):
            sums[3 + f] -= np.bincount(nrow, flat_feats[f, newly], n)
        bad, new = new, bad
        slope[active] = b[active]
        fitted |= active
        last_ngood = np.where(active, ngood, last_ngood)
        ngood = npix - np.count_nonzero(bad, axis=1)
    ok = (ngood >= minpix) & fitted
    if ok.any():
        sl = slope[ok] / contrast if contrast > 0 else slope[ok]
        center = (npix - 1) // 2
        out[ok, 0] = np.maximum(out[ok, 0], median[ok] - (center - 1) * sl)
        out[ok, 1] = np.minimum(out[ok, 1], median[ok] + (npix - center) * sl)
    return out


def _dilate(bad: np.ndarray, rows: np.ndarray, ngrow: int) -> None:
    """``np.convolve(row, np.ones(ngrow), mode="same") != 0`` in place, for the ``rows``
    (a boolean per row) of ``bad`` ``(N, npix)``: astropy's growth of the rejected samples.

    Entry ``i`` of the "same" convolution is set when a pixel ``i + d`` is, ``d`` in
    ``[-lo, hi]`` with ``lo = (ngrow - 1) // 2``, ``hi = ngrow - 1 - lo``: so each run
    ``[s, e)`` of set samples grows to ``[s - lo, e + hi)``. Only the runs' edges are touched
    (a few per row: the rejected samples of a sorted row are mostly its two tails).
    """
    n, npix = bad.shape
    lo = (ngrow - 1) // 2
    hi = ngrow - 1 - lo
    padded = np.zeros((n, npix + 2), dtype=bool)
    padded[:, 1:-1] = bad
    edges = np.flatnonzero(padded[:, 1:] != padded[:, :-1])  # start, end, start, end, ...
    row, col = np.divmod(edges, npix + 1)
    keep = rows[row]
    row, col = row[keep], col[keep]
    grow = np.concatenate([(col[0::2, None] - np.arange(1, lo + 1)).ravel(),
                           (col[1::2, None] + np.arange(hi)).ravel()])
    grow_row = np.concatenate([np.repeat(row[0::2], lo), np.repeat(row[1::2], hi)])
    inside = (grow >= 0) & (grow < npix)
    bad[grow_row[inside], grow[inside]] = True


def stretch_curve(name: str, n: int = 4096) -> np.ndarray:
    """The stretch ``name`` evaluated on ``n`` points of [0, 1] (for a colour lookup table)."""
    from astropy.visualization import AsinhStretch, LinearStretch, LogStretch, SqrtStretch

    stretches = {
        "linear": LinearStretch,
        "sqrt": SqrtStretch,
        "log": LogStretch,
        "asinh": AsinhStretch,
    }
    if name not in stretches:
        raise ValueError(f"unknown stretch {name!r}; one of {', '.join(stretches)}")
    x = np.linspace(0.0, 1.0, n)
    return np.clip(stretches[name]()(x, clip=True), 0.0, 1.0)


def apply_stretch(image: np.ndarray, levels: tuple[float, float], name: str) -> np.ndarray:
    """Normalise ``image`` to [0, 1] with ``levels`` and apply the stretch (slow path, for tests
    and benchmarks comparing against the lookup-table route)."""
    from astropy.visualization import AsinhStretch, LinearStretch, LogStretch, SqrtStretch

    lo, hi = levels
    norm = np.clip((np.asarray(image, dtype=np.float32) - lo) / (hi - lo), 0.0, 1.0)
    cls = {"linear": LinearStretch, "sqrt": SqrtStretch, "log": LogStretch,
           "asinh": AsinhStretch}[name]
    return cls()(norm, clip=True)


@lru_cache(maxsize=64)
def _lut(colormap: str, stretch: str, n: int) -> np.ndarray:
    from cmap import Colormap

    if colormap not in _CMAP_NAMES:
        raise ValueError(f"unknown colormap {colormap!r}; one of {', '.join(COLORMAPS)}")
    lut = np.asarray(Colormap(_CMAP_NAMES[colormap])(stretch_curve(stretch, n), bytes=True))
    lut = np.ascontiguousarray(lut, dtype=np.uint8)
    lut.setflags(write=False)
    return lut


def make_lut(colormap: str, stretch: str, n: int = LUT_SIZE) -> np.ndarray:
    """``(n, 4)`` uint8 RGBA lookup table: the colormap sampled through the stretch curve.

    Entry ``k`` is the colour of the value ``lo + k / (n - 1) * (hi - lo)`` between the display
    levels. Cached and read-only (the same table serves every frame and stamp).
    """
    return _lut(colormap, stretch, int(n))


def lut_indices(image: np.ndarray, levels: tuple[float, float] | np.ndarray,
                n: int = LUT_SIZE) -> np.ndarray:
    """Lookup-table index (uint8 for ``n <= 256``) of each pixel of ``image`` with ``levels``.

    ``levels`` is ``(lo, hi)`` or, for a stack ``(N, ...)``, an ``(N, 2)`` array (one pair per
    image). Values below ``lo`` get index 0; NaN pixels get an undefined index: callers paint
    NaN themselves.
    """
    img = np.asarray(image)
    lv = np.asarray(levels, dtype=np.float32)
    if lv.ndim == 2:  # one pair per leading image
        shape = (lv.shape[0],) + (1,) * (img.ndim - 1)
        lo = lv[:, 0].reshape(shape)
        hi = lv[:, 1].reshape(shape)
    else:
        lo, hi = lv
    scale = np.float32(n - 1) / np.where(hi > lo, hi - lo, np.float32(1.0))
    # in place on one float32 buffer: this runs on every stamp of a gallery page
    buf = np.subtract(img, lo, dtype=np.float32)
    buf *= scale
    buf += np.float32(0.5)
    np.clip(buf, 0, n - 1, out=buf)
    with np.errstate(invalid="ignore"):  # NaN -> an undefined index, painted over by callers
        return buf.astype(np.uint8 if n <= 256 else np.uint16)


def mask_overlay(
    mask: np.ndarray,
    planes: Mapping[str, int],
    on: Iterable[str],
    colors: Mapping[str, tuple[int, int, int]],
    alpha: float,
) -> np.ndarray | None:
    """An RGBA uint8 overlay ``(H, W, 4)`` of the mask planes in ``on``; None if none is on.

    The overlay has the mask's shape exactly (one overlay pixel per image pixel). Works for any
    integer mask (int32, or int64 for files with more than 31 planes); a plane whose bit the
    mask's type cannot hold is never set. Later planes in ``on`` are painted over earlier ones.
    A plane Rubin renamed matches in either spelling (``SAT`` in ``on`` shows a DP2 file's
    ``SATURATED``), and its colour is looked up under both.
    """
    names = [(p, held) for p in on if (held := find_plane(planes, p)) is not None]
    if not names:
        return None
    mask = np.asarray(mask)
    if mask.dtype.kind not in "iu":
        raise ValueError(f"a mask must hold integers, not {mask.dtype}")
    out = np.zeros((*mask.shape, 4), dtype=np.uint8)
    a = int(round(255 * float(np.clip(alpha, 0.0, 1.0))))
    nbits = mask.dtype.itemsize * 8
    one = mask.dtype.type(1)
    for name, held in names:
        bit = int(planes[held])
        if not 0 <= bit < nbits:
            continue
        # a bit value of the mask's own type (1 << 31 of int32 is its sign bit, still right)
        with np.errstate(over="ignore"):
            value = np.left_shift(one, mask.dtype.type(bit))
        hit = np.bitwise_and(mask, value) != 0
        out[hit] = (*plane_color(name, colors), a)
    return out


#: Colour of a plane without one of its own.
OTHER_PLANE_COLOR = (255, 0, 255)


def plane_color(name: str, colors: Mapping[str, tuple[int, int, int]]) -> tuple[int, int, int]:
    """The overlay colour of plane ``name``, looked up under either spelling."""
    return next((colors[n] for n in spellings(name) if n in colors), OTHER_PLANE_COLOR)


def plane_list(images: Iterable) -> list[tuple[str, str]]:
    """``(name, description)`` of every mask plane of ``images`` (ImageData or None), ONCE
    even when the images spell it differently (a DP2 science image's ``SATURATED`` and an afw
    template's ``SAT`` are one entry, under the first image's name), in bit order of the image
    that defines it first. The overlay (:func:`mask_overlay`) matches either spelling."""
    out: dict[str, str] = {}
    for img in images:
        if img is None:
            continue
        for name, _bit in sorted(img.mask_planes.items(), key=lambda kv: kv[1]):
            held = next((n for n in spellings(name) if n in out), None)
            if held is None:
                out[name] = img.description(name)
            elif not out[held]:
                out[held] = img.description(name)
    return list(out.items())


def plane_is_on(name: str, on: Iterable[str]) -> bool:
    """True when plane ``name`` is in ``on`` under either spelling."""
    on = set(on)
    return any(n in on for n in spellings(name))


def planes_with(on: Iterable[str], name: str, shown: bool) -> frozenset[str]:
    """The planes ``on`` with plane ``name`` shown or hidden, under either spelling (``SAT``
    is ``SATURATED``: hiding one hides both)."""
    planes = set(on) - set(spellings(name))
    if shown:
        planes.add(name)
    return frozenset(planes)


__all__ = [
    "COLORMAPS",
    "LEVEL_SAMPLE",
    "LIMIT_MODES",
    "LUT_SIZE",
    "OTHER_PLANE_COLOR",
    "STRETCHES",
    "apply_stretch",
    "compute_levels",
    "compute_levels_many",
    "display_copy",
    "lut_indices",
    "make_lut",
    "mask_overlay",
    "plane_color",
    "plane_is_on",
    "planes_with",
    "plane_list",
    "sample",
    "stretch_curve",
    "zscale_many",
]
