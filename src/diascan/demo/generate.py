"""A deterministic, realistic-looking demo data set for one LSSTComCam visit and detector.

``generate_demo(out)`` writes (see :data:`DEMO_FILES`):

* ``science.fits``: the visit image (rotated TAN-SIP WCS, 0.2"/px, nJy) with stars, galaxies,
  the new (positive) transients and asteroids, sky and Poisson noise, saturated stars (SAT),
  cosmic rays (CR), hot pixels, bad columns (BAD) and an EDGE border;
* ``template_coadd_<n>.fits``: deeper coadd PATCHES on a north-up TAN tract grid with a
  different tangent point (non-zero ``x0``/``y0``), overlapping each other and together
  covering the detector grown by 20 px except a thin sliver (so NO_DATA appears in a warped
  template); fading variables are brighter here;
* ``difference.fits``: transients + artefacts (bright-star residuals, misregistration dipoles,
  cosmic rays, hot pixels, bad columns) + noise with variance ``var_sci + var_tmpl``;
* ``truth.parquet``: every injected real and artefact source (``ra``, ``dec``, ``x``, ``y``
  in science parent pixels, ``is_real``, ``snr`` = true S/N of the optimal PSF flux measured on
  the noiseless difference signal with the difference variance (for dipoles: the larger |S/N|
  of the two lobes), ``flux`` (nJy; transients: injected PSF flux, negative for fading
  variables; artefacts: a kind-specific amplitude), ``kind`` (transient, transient_on_galaxy,
  fading_variable, asteroid, star_residual, dipole, cosmic_ray, hot_pixel, bad_column),
  ``diaSourceId`` (-1 when not in ``dia_source``));
* ``dia_source.parquet``: the sources a pipeline would have detected and kept, in DP1 column
  names. Its ``reliability`` column is SIMULATED (drawn from distributions that mimic DP1:
  real high, bogus low, negatives below 0.5); it does not come from any model;
* ``target.json``: one positive real transient on a galaxy that is in ``dia_source``.

All images are written by :func:`diascan.io.write_exposure` in one ``layout``: ``afw`` (DP1, the
default), ``dp2`` (lsst.images: MSKN plane cards with the DP2 plane names ``SATURATED``,
``COSMIC_RAY``, ..., JSON metadata, tile-compressed) or ``afw-exttype`` (afw before 2021, no
EXTNAME). The pixels are the same in every layout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from astropy.wcs import WCS, Sip

from diascan.demo import sources as src
from diascan.io.image_data import DEFAULT_MASK_PLANES, ImageData
from diascan.io.image_writer import WRITE_LAYOUTS, write_exposure
from diascan.io.mask_planes import LEGACY_TO_DP2
from diascan.progress import CancelToken, ProgressCallback, check, report

#: Bump when the content of the demo changes (cache folders are keyed by it).
DEMO_VERSION = 3
#: Seeds the random numbers: the pixels are unchanged since demo version 2 (version 3 only
#: added the INHERIT cards afw writes, so cached v2 folders are regenerated).
_RNG_VERSION = 2
N_PATCHES = 2
PATCH_NAMES = tuple(f"template_coadd_{i}.fits" for i in range(N_PATCHES))
#: Every file a complete demo folder holds.
DEMO_FILES: tuple[str, ...] = (
    "science.fits",
    "difference.fits",
    *PATCH_NAMES,
    "dia_source.parquet",
    "target.json",
    "truth.parquet",
)

PIXEL_SCALE = 0.2  # arcsec / pixel
GROW = 20  # template box grown by this many pixels on every side
VISIT = 2024120700123
DETECTOR = 4
BAND = "r"
MJD = 60651.1843287
TRACT = 5063
NJY_PER_ELECTRON = 0.144  # sets Poisson noise of sources: var += this * signal
SATURATION = 14_000.0  # nJy per pixel


@dataclass(frozen=True)
class _Config:
    nx: int
    ny: int
    n_stars: int
    n_galaxies: int
    n_transients: int
    n_on_galaxy: int
    n_fading: int
    n_asteroids: int
    n_star_residuals: int
    n_dipoles: int
    n_cosmic_rays: int
    n_hot: int
    n_bad_columns: int
    patch_overlap: int
    sliver: int  # pixels of the grown box left uncovered by the patches (NO_DATA)
    edge: int  # EDGE border width


FULL = _Config(4072, 4000, 900, 3000, 26, 16, 14, 2, 16, 12, 45, 20, 4, 200, 40, 10)
SMALL = _Config(1024, 1024, 70, 220, 8, 6, 5, 1, 4, 3, 8, 4, 1, 64, 40, 10)

SCI_PSF_SIGMA = 3.7  # pixels (0.74" sigma, ~1.74" FWHM)
TMPL_PSF_SIGMA = 3.2
SCI_SKY_SIGMA = 10.0  # nJy per pixel
TMPL_SKY_SIGMA = 4.0
RA0, DEC0 = 53.13, -28.10  # ECDFS, a DP1 field
ROTATION_DEG = 12.0


# --------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------


def _science_wcs(cfg: _Config) -> WCS:
    """Rotated TAN-SIP WCS centred on the detector (array pixel coordinates)."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
    w.wcs.crval = [RA0, DEC0]
    crpix = [(cfg.nx + 1) / 2.0, (cfg.ny + 1) / 2.0]
    w.wcs.crpix = crpix
    s = PIXEL_SCALE / 3600.0
    t = np.radians(ROTATION_DEG)
    w.wcs.cd = s * np.array([[-np.cos(t), np.sin(t)], [np.sin(t), np.cos(t)]])
    # A small, smooth optical distortion (~1 px at the corners of the full detector).
    a = np.zeros((4, 4))
    b = np.zeros((4, 4))
    a[2, 0], a[1, 1], a[0, 2], a[3, 0] = 6e-8, -2e-8, 3e-8, 1e-11
    b[2, 0], b[1, 1], b[0, 2], b[0, 3] = -2e-8, 4e-8, 5e-8, -1e-11
    w.sip = Sip(a, b, None, None, crpix)
    w.wcs.radesys = "ICRS"
    w.wcs.set()
    return w


def _tract_wcs() -> WCS:
    """North-up TAN tract WCS (tract pixel coordinates) with its own tangent point."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [RA0 + 0.35, DEC0 - 0.25]
    w.wcs.crpix = [12000.5, 12000.5]
    s = PIXEL_SCALE / 3600.0
    w.wcs.cd = np.array([[-s, 0.0], [0.0, s]])
    w.wcs.radesys = "ICRS"
    w.wcs.set()
    return w


def _shifted(wcs: WCS, x0: int, y0: int) -> WCS:
    """The WCS of a sub-array whose pixel (0, 0) is pixel (x0, y0) of ``wcs``."""
    w = wcs.deepcopy()
    w.wcs.crpix = [w.wcs.crpix[0] - x0, w.wcs.crpix[1] - y0]
    w.wcs.set()
    return w


def _patch_boxes(cfg: _Config, sci: WCS, tract: WCS) -> list[tuple[int, int, int, int]]:
    """Patch boxes ``(x0, y0, nx, ny)`` in tract pixels covering the grown science box."""
    lo_x, hi_x = -GROW - 0.5, cfg.nx - 1 + GROW + 0.5
    lo_y, hi_y = -GROW - 0.5, cfg.ny - 1 + GROW + 0.5
    t = np.linspace(0.0, 1.0, 64)
    bx = np.concatenate(
        [lo_x + t * (hi_x - lo_x), np.full(64, hi_x), hi_x - t * (hi_x - lo_x), np.full(64, lo_x)]
    )
    by = np.concatenate(
        [np.full(64, lo_y), lo_y + t * (hi_y - lo_y), np.full(64, hi_y), hi_y - t * (hi_y - lo_y)]
    )
    ra, dec = sci.all_pix2world(bx, by, 0)
    tx, ty = tract.all_world2pix(ra, dec, 0)
    xmin, xmax = int(np.floor(tx.min())) - 3, int(np.ceil(tx.max())) + 3
    ymin, ymax = int(np.floor(ty.min())) - 3, int(np.ceil(ty.max())) + 3
    ymax -= cfg.sliver  # leave a thin sliver of the grown box uncovered: NO_DATA
    width = xmax - xmin + 1
    pw = int(np.ceil((width + (N_PATCHES - 1) * cfg.patch_overlap) / N_PATCHES))
    boxes = []
    for i in range(N_PATCHES):
        x0 = xmin + i * (pw - cfg.patch_overlap)
        nx = min(pw, xmax + 1 - x0)
        boxes.append((x0, ymin, nx, ymax - ymin + 1))
    return boxes


def _pixels(wcs: WCS, ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if ra.size == 0:
        return np.empty(0), np.empty(0)
    x, y = wcs.all_world2pix(ra, dec, 0)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def _pixel_angle(wcs: WCS, ra, dec, pa_deg) -> np.ndarray:
    """Angle (radians from +x) on the pixel grid of a sky position angle (deg E of N)."""
    d = 1.0 / 3600.0
    pa = np.radians(pa_deg)
    ra2 = ra + d * np.sin(pa) / np.cos(np.radians(dec))
    dec2 = dec + d * np.cos(pa)
    x1, y1 = _pixels(wcs, ra, dec)
    x2, y2 = _pixels(wcs, ra2, dec2)
    return np.arctan2(y2 - y1, x2 - x1)


# --------------------------------------------------------------------------------------------
# Sky model
# --------------------------------------------------------------------------------------------


def _mag_to_njy(m: np.ndarray) -> np.ndarray:
    return 10.0 ** ((31.4 - m) / 2.5)


def _power_law_mags(rng: np.random.Generator, n: int, m1: float, m2: float, slope: float):
    """Magnitudes with dN/dm ~ 10^(slope m) on [m1, m2] (number counts)."""
    u = rng.uniform(size=n)
    a, b = 10.0 ** (slope * m1), 10.0 ** (slope * m2)
    return np.log10(a + u * (b - a)) / slope


@dataclass
class _Sky:
    star_ra: np.ndarray
    star_dec: np.ndarray
    star_flux: np.ndarray
    gal_ra: np.ndarray
    gal_dec: np.ndarray
    gal_flux: np.ndarray
    gal_reff: np.ndarray  # arcsec
    gal_q: np.ndarray
    gal_pa: np.ndarray  # deg E of N
    gal_n: np.ndarray
    var_ra: np.ndarray  # fading variables: base flux in both, extra flux in the template
    var_dec: np.ndarray
    var_base: np.ndarray
    var_extra: np.ndarray


def _sky_model(rng: np.random.Generator, cfg: _Config, sci: WCS) -> _Sky:
    """Stars and galaxies over the grown detector plus a margin, stored in sky coordinates."""
    margin = GROW + 40

    def positions(n):
        x = rng.uniform(-margin, cfg.nx - 1 + margin, n)
        y = rng.uniform(-margin, cfg.ny - 1 + margin, n)
        return sci.all_pix2world(x, y, 0)

    sr, sd = positions(cfg.n_stars)
    smag = _power_law_mags(rng, cfg.n_stars, 14.0, 24.5, 0.18)
    # Guarantee a few saturated stars (mag < ~16) on every demo, also the small one.
    n_bright = max(2, cfg.n_stars // 250)
    smag[:n_bright] = rng.uniform(14.3, 15.6, n_bright)
    gr, gd = positions(cfg.n_galaxies)
    gmag = _power_law_mags(rng, cfg.n_galaxies, 18.0, 25.5, 0.32)
    reff = 0.55 * 10.0 ** (-0.12 * (gmag - 22.0)) * np.exp(rng.normal(0.0, 0.3, cfg.n_galaxies))
    reff = np.clip(reff, 0.25, 4.0)
    gal_n = np.where(rng.uniform(size=cfg.n_galaxies) < 0.2, 4.0, 1.0)
    return _Sky(
        sr, sd, _mag_to_njy(smag),
        gr, gd, _mag_to_njy(gmag), reff, rng.uniform(0.3, 1.0, cfg.n_galaxies),
        rng.uniform(0.0, 180.0, cfg.n_galaxies), gal_n,
        np.empty(0), np.empty(0), np.empty(0), np.empty(0),
    )  # fmt: skip


def _render_static(
    shape: tuple[int, int], wcs: WCS, sky: _Sky, sigma: float, *, template: bool
) -> np.ndarray:
    """Noiseless image of the static sky (+ variable base flux, + their extra in templates)."""
    img = np.zeros(shape, dtype=np.float32)
    ny, nx = shape
    pad = 80.0

    def on(x, y):
        return (x > -pad) & (x < nx - 1 + pad) & (y > -pad) & (y < ny - 1 + pad)

    x, y = _pixels(wcs, sky.star_ra, sky.star_dec)
    k = on(x, y)
    src.add_point_sources(img, x[k], y[k], sky.star_flux[k], sigma)
    x, y = _pixels(wcs, sky.gal_ra, sky.gal_dec)
    k = on(x, y)
    theta = _pixel_angle(wcs, sky.gal_ra[k], sky.gal_dec[k], sky.gal_pa[k])
    src.add_galaxies(
        img, x[k], y[k], sky.gal_flux[k], sky.gal_reff[k] / PIXEL_SCALE, sky.gal_q[k], theta,
        sigma, n_sersic=sky.gal_n[k],
    )  # fmt: skip
    x, y = _pixels(wcs, sky.var_ra, sky.var_dec)
    flux = sky.var_base + (sky.var_extra if template else 0.0)
    k = on(x, y)
    src.add_point_sources(img, x[k], y[k], flux[k], sigma)
    return img


# --------------------------------------------------------------------------------------------
# Truth bookkeeping and measurements
# --------------------------------------------------------------------------------------------


def _stamps(arr: np.ndarray, ix: np.ndarray, iy: np.ndarray, half: int, fill: float):
    """Gather (N, 2h+1, 2h+1) stamps around integer pixels; outside the array -> ``fill``."""
    ny, nx = arr.shape
    off = np.arange(-half, half + 1)
    rows = iy[:, None, None] + off[None, :, None]
    cols = ix[:, None, None] + off[None, None, :]
    rows, cols = np.broadcast_arrays(rows, cols)
    inside = (rows >= 0) & (rows < ny) & (cols >= 0) & (cols < nx)
    out = np.full(rows.shape, fill, dtype=np.float64)
    out[inside] = arr[rows[inside], cols[inside]]
    return out


def _psf_flux(signal: np.ndarray, var: np.ndarray, x, y, sigma: float):
    """Optimal (PSF-weighted) flux and its error at (x, y): returns (flux, err)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.size == 0:
        return np.empty(0), np.empty(0)
    ix = np.floor(x + 0.5).astype(np.int64)
    iy = np.floor(y + 0.5).astype(np.int64)
    half = int(np.ceil(3.0 * sigma))
    p = src.gaussian_psf_stamps(x - ix, y - iy, sigma, half)
    s = _stamps(signal, ix, iy, half, 0.0)
    v = _stamps(var, ix, iy, half, np.inf)
    v = np.where(np.isfinite(v) & (v > 0), v, np.inf)
    s = np.nan_to_num(s)
    w = (p * p / v).sum(axis=(1, 2))
    flux = (p * s / v).sum(axis=(1, 2)) / np.maximum(w, 1e-300)
    err = 1.0 / np.sqrt(np.maximum(w, 1e-300))
    return flux, err


class _Truth:
    """Accumulates truth rows (positions in science array pixels)."""

    def __init__(self) -> None:
        self.rows: dict[str, list] = {
            k: [] for k in ("x", "y", "flux", "kind", "is_real", "lobe_dx", "lobe_dy")
        }

    def add(self, x, y, flux, kind: str, is_real: bool, lobe_dx=None, lobe_dy=None) -> None:
        x = np.atleast_1d(np.asarray(x, dtype=np.float64))
        n = x.size
        self.rows["x"].append(x)
        self.rows["y"].append(np.broadcast_to(np.asarray(y, dtype=np.float64), (n,)))
        self.rows["flux"].append(np.broadcast_to(np.asarray(flux, dtype=np.float64), (n,)))
        self.rows["kind"].append(np.full(n, kind, dtype=object))
        self.rows["is_real"].append(np.full(n, is_real))
        for key, val in (("lobe_dx", lobe_dx), ("lobe_dy", lobe_dy)):
            val = np.zeros(n) if val is None else np.asarray(val, dtype=np.float64)
            self.rows[key].append(np.broadcast_to(val, (n,)))

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate(v) for k, v in self.rows.items()}


def _mask_any(mask: np.ndarray, ix, iy, half: int, bits: int) -> np.ndarray:
    st = _stamps(mask.astype(np.float64), ix, iy, half, 0.0).astype(np.int64)
    return ((st & bits) != 0).any(axis=(1, 2))


# --------------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------------


def _write(path: Path, data: ImageData, layout: str, data_model: str) -> None:
    """Write one image in ``layout``; DP2 files name their planes as DP2 does (``SATURATED``)."""
    if layout == "dp2":
        data.mask_planes = {LEGACY_TO_DP2.get(k, k): v for k, v in data.mask_planes.items()}
    write_exposure(path, data, layout=layout, overwrite=True, data_model=data_model)


def generate_demo(
    out: Path,
    *,
    small: bool = False,
    seed: int = 1,
    visit: int = VISIT,
    layout: str = "afw",
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Path:
    """Write the demo data set (:data:`DEMO_FILES`) into ``out`` and return ``out``.

    Deterministic for a given ``seed`` and size, whatever the ``layout`` (``afw``, ``dp2`` or
    ``afw-exttype``, see :data:`diascan.io.image_writer.WRITE_LAYOUTS`). ``small=True`` makes a
    1024 x 1024 detector with the same structure (two template patches), for tests. ``visit`` is
    the visit number in the headers and the catalog (different seeds give different skies, not
    different visits).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = SMALL if small else FULL
    if layout not in WRITE_LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {', '.join(WRITE_LAYOUTS)}")
    rng = np.random.default_rng([_RNG_VERSION, int(seed), int(small)])
    stage = "demo"
    report(progress, stage, 0.0, "sky model")
    sci_wcs = _science_wcs(cfg)
    tract = _tract_wcs()
    sky = _sky_model(rng, cfg, sci_wcs)
    shape = (cfg.ny, cfg.nx)
    nx, ny = cfg.nx, cfg.ny
    sig = SCI_PSF_SIGMA
    truth = _Truth()
    inner = 40  # keep injected transients away from the border

    # --- real transients (positions on the science grid) ---------------------------------
    var_est = SCI_SKY_SIGMA**2 + TMPL_SKY_SIGMA**2
    err_est = np.sqrt(4.0 * np.pi * sig**2 * var_est)  # PSF-flux error on plain sky

    def snrs(n):
        return np.exp(rng.uniform(np.log(4.0), np.log(100.0), n))

    tx = rng.uniform(inner, nx - 1 - inner, cfg.n_transients)
    ty = rng.uniform(inner, ny - 1 - inner, cfg.n_transients)
    tflux = snrs(cfg.n_transients) * err_est
    # On galaxies: pick galaxies of moderate brightness inside the detector.
    gx, gy = _pixels(sci_wcs, sky.gal_ra, sky.gal_dec)
    gmag = 31.4 - 2.5 * np.log10(sky.gal_flux)
    ok = np.flatnonzero(
        (gx > inner + 10) & (gx < nx - 1 - inner - 10) & (gy > inner + 10)
        & (gy < ny - 1 - inner - 10) & (gmag > 19.0) & (gmag < 23.0)
    )  # fmt: skip
    hosts = rng.choice(ok, size=min(cfg.n_on_galaxy, ok.size), replace=False)
    r_off = rng.uniform(0.1, 1.0, hosts.size) * sky.gal_reff[hosts] / PIXEL_SCALE
    a_off = rng.uniform(0.0, 2 * np.pi, hosts.size)
    hx = gx[hosts] + r_off * np.cos(a_off)
    hy = gy[hosts] + r_off * np.sin(a_off)
    hsnr = snrs(hosts.size)
    hsnr[0] = 30.0  # the target: a comfortably detected transient on a galaxy
    hflux = hsnr * err_est
    # Fading variables: a star that was brighter in the template.
    fx = rng.uniform(inner, nx - 1 - inner, cfg.n_fading)
    fy = rng.uniform(inner, ny - 1 - inner, cfg.n_fading)
    fdelta = snrs(cfg.n_fading) * err_est
    fbase = _mag_to_njy(rng.uniform(20.0, 23.5, cfg.n_fading))
    sky.var_ra, sky.var_dec = sci_wcs.all_pix2world(fx, fy, 0)
    sky.var_base, sky.var_extra = fbase, fdelta
    # Asteroids: slightly trailed, in the science image only.
    ax = rng.uniform(inner + 20, nx - 1 - inner - 20, cfg.n_asteroids)
    ay = rng.uniform(inner + 20, ny - 1 - inner - 20, cfg.n_asteroids)
    aflux = rng.uniform(15.0, 60.0, cfg.n_asteroids) * err_est * 1.3
    alen = rng.uniform(8.0, 18.0, cfg.n_asteroids)
    aang = rng.uniform(0.0, np.pi, cfg.n_asteroids)

    def add_transients(img: np.ndarray, sign: float) -> None:
        src.add_point_sources(img, tx, ty, tflux, sig)
        src.add_point_sources(img, hx, hy, hflux, sig)
        src.add_trailed_sources(img, ax, ay, aflux, sig, alen, aang)
        if sign < 0:
            src.add_point_sources(img, fx, fy, -fdelta, sig)

    truth.add(tx, ty, tflux, "transient", True)
    truth.add(hx, hy, hflux, "transient_on_galaxy", True)
    truth.add(fx, fy, -fdelta, "fading_variable", True)
    truth.add(ax, ay, aflux, "asteroid", True)
    check(cancel)

    # --- science image -------------------------------------------------------------------
    report(progress, stage, 0.08, "science image")
    model = _render_static(shape, sci_wcs, sky, sig, template=False)
    add_transients(model, +1.0)
    check(cancel)
    mask_sci = np.zeros(shape, dtype=np.int32)
    planes = DEFAULT_MASK_PLANES
    bit = {name: np.int32(1 << b) for name, b in planes.items()}
    sat = model > SATURATION
    model[sat] = SATURATION
    mask_sci[sat] |= bit["SAT"]
    var_sci = (SCI_SKY_SIGMA**2 + NJY_PER_ELECTRON * np.maximum(model, 0.0)).astype(np.float32)
    noise = rng.standard_normal(shape, dtype=np.float32)
    sci = model
    sci += noise * np.sqrt(var_sci)
    del noise
    sci[sat] = SATURATION
    # Detector defects and cosmic rays: same pixels in the science and difference images.
    defects = np.zeros(shape, dtype=np.float32)
    crs = src.add_cosmic_rays(defects, rng, cfg.n_cosmic_rays, length=(2.0, 30.0),
                              peak=(400.0, 6000.0))  # fmt: skip
    hot = src.add_hot_pixels(defects, rng, cfg.n_hot, value=(400.0, 8000.0))
    badc = src.add_bad_columns(defects, rng, cfg.n_bad_columns, value=(150.0, 2500.0))
    sci += defects
    mask_sci[crs.mask] |= bit["CR"]
    mask_sci[badc.mask] |= bit["BAD"]
    e = cfg.edge
    edge = np.zeros(shape, dtype=bool)
    edge[:e, :] = edge[-e:, :] = True
    edge[:, :e] = edge[:, -e:] = True
    mask_sci[edge] |= bit["EDGE"]
    truth.add(crs.x, crs.y, crs.value, "cosmic_ray", False)
    truth.add(hot.x, hot.y, hot.value, "hot_pixel", False)
    truth.add(badc.x, badc.y, badc.value, "bad_column", False)
    meta = {
        "visit": int(visit), "detector": DETECTOR, "band": BAND, "mjd": MJD, "psf_sigma": sig,
        "exptime": 30.0, "instrument": "LSSTComCam", "telescope": "Rubin:Simonyi",
    }  # fmt: skip
    sci_data = ImageData(sci, mask_sci, var_sci, dict(planes), sci_wcs, 0, 0, "nJy", meta)
    _write(out / "science.fits", sci_data, layout, "visit_image")
    check(cancel)

    # --- template patches ------------------------------------------------------------------
    boxes = _patch_boxes(cfg, sci_wcs, tract)
    for i, (x0, y0, pnx, pny) in enumerate(boxes):
        report(progress, stage, 0.3 + 0.3 * i / len(boxes), f"template patch {i}")
        pwcs = _shifted(tract, x0, y0)
        pmodel = _render_static((pny, pnx), pwcs, sky, TMPL_PSF_SIGMA, template=True)
        pvar = (TMPL_SKY_SIGMA**2 + 0.25 * NJY_PER_ELECTRON * np.maximum(pmodel, 0.0)).astype(
            np.float32
        )
        pmodel += rng.standard_normal(pmodel.shape, dtype=np.float32) * np.sqrt(pvar)
        pmeta = {"band": BAND, "psf_sigma": TMPL_PSF_SIGMA, "tract": TRACT, "patch": i}
        pdata = ImageData(pmodel, np.zeros(pmodel.shape, np.int32), pvar, dict(planes), pwcs,
                          x0, y0, "nJy", pmeta)  # fmt: skip
        _write(out / PATCH_NAMES[i], pdata, layout, "masked_image")
        del pmodel, pvar, pdata
        check(cancel)

    # --- template coverage on the science grid (for NO_DATA and the template variance) ---
    report(progress, stage, 0.62, "difference image")
    step = 4
    cy, cx = np.mgrid[0 : ny + step - 1 : step, 0 : nx + step - 1 : step]
    cra, cdec = sci_wcs.all_pix2world(cx.ravel().astype(float), cy.ravel().astype(float), 0)
    ttx, tty = tract.all_world2pix(cra, cdec, 0)
    covered_c = np.zeros(ttx.size, dtype=bool)
    for x0, y0, pnx, pny in boxes:
        covered_c |= (ttx >= x0) & (ttx <= x0 + pnx - 1) & (tty >= y0) & (tty <= y0 + pny - 1)
    covered_c = covered_c.reshape(cx.shape)
    covered = np.repeat(np.repeat(covered_c, step, axis=0), step, axis=1)
    covered = covered[step // 2 : step // 2 + ny, step // 2 : step // 2 + nx]
    if covered.shape != shape:  # pad on the far side when the grid was short
        covered = np.pad(covered, ((0, ny - covered.shape[0]), (0, nx - covered.shape[1])),
                         mode="edge")  # fmt: skip
    nodata = ~covered

    # --- difference image --------------------------------------------------------------------
    signal = np.zeros(shape, dtype=np.float32)
    add_transients(signal, -1.0)
    # Artefacts at bright stars: PSF-mismatch rings and misregistration dipoles.
    sx, sy = _pixels(sci_wcs, sky.star_ra, sky.star_dec)
    on_det = np.flatnonzero((sx > 30) & (sx < nx - 31) & (sy > 30) & (sy < ny - 31))
    order = on_det[np.argsort(-sky.star_flux[on_det])]
    rs = order[: cfg.n_star_residuals]
    rflux = sky.star_flux[rs] * rng.uniform(0.006, 0.02, rs.size)
    rflux *= rng.choice([-1.0, 1.0], rs.size, p=[0.3, 0.7])
    src.add_point_sources(signal, sx[rs], sy[rs], rflux, sig)
    src.add_point_sources(signal, sx[rs], sy[rs], -rflux, sig * 1.2)
    truth.add(sx[rs], sy[rs], rflux, "star_residual", False)
    # Dipoles: the next brightest stars, shifted by a small misregistration.
    ds = order[cfg.n_star_residuals : cfg.n_star_residuals + cfg.n_dipoles]
    shift = rng.uniform(0.04, 0.15, ds.size)
    ang = rng.uniform(0.0, 2 * np.pi, ds.size)
    ddx, ddy = shift * np.cos(ang), shift * np.sin(ang)
    dflux = sky.star_flux[ds]
    src.add_point_sources(signal, sx[ds] + ddx / 2, sy[ds] + ddy / 2, dflux, sig)
    src.add_point_sources(signal, sx[ds] - ddx / 2, sy[ds] - ddy / 2, -dflux, sig)
    # Lobes sit about one sigma from the centre along the shift direction.
    truth.add(sx[ds], sy[ds], dflux * shift / sig, "dipole", False,
              np.cos(ang) * sig, np.sin(ang) * sig)  # fmt: skip
    var_tmpl = np.where(nodata, 0.0, TMPL_SKY_SIGMA**2).astype(np.float32)
    var_diff = var_sci + var_tmpl
    del var_tmpl
    diff = signal + rng.standard_normal(shape, dtype=np.float32) * np.sqrt(var_diff)
    diff += defects
    mask_diff = (mask_sci & (bit["SAT"] | bit["CR"] | bit["BAD"] | bit["EDGE"])).astype(np.int32)
    mask_diff[nodata] |= bit["NO_DATA"]
    check(cancel)

    # --- truth: true S/N of the PSF flux in the difference image --------------------------
    t = truth.arrays()
    flux_c, err_c = _psf_flux(signal + defects, var_diff, t["x"], t["y"], sig)
    snr = flux_c / err_c
    is_dip = t["kind"] == "dipole"
    if is_dip.any():
        lobes = []
        for s_ in (1.0, -1.0):
            fl, er = _psf_flux(signal, var_diff, t["x"][is_dip] + s_ * t["lobe_dx"][is_dip],
                               t["y"][is_dip] + s_ * t["lobe_dy"][is_dip], sig)  # fmt: skip
            lobes.append(fl / er)
        snr[is_dip] = np.maximum(np.abs(lobes[0]), np.abs(lobes[1]))
    ra, dec = sci_wcs.all_pix2world(t["x"], t["y"], 0)
    n_truth = t["x"].size

    # --- dia_source: what the pipeline detected and kept ---------------------------------
    ix = np.floor(t["x"] + 0.5).astype(np.int64)
    iy = np.floor(t["y"] + 0.5).astype(np.int64)
    border = 25
    inside = (ix >= border) & (ix < nx - border) & (iy >= border) & (iy < ny - border)
    ixc, iyc = np.clip(ix, 0, nx - 1), np.clip(iy, 0, ny - 1)
    bad_centre = (mask_diff[iyc, ixc] & (bit["EDGE"] | bit["NO_DATA"])) != 0
    # Rubin removes "unphysical" sources: ONE of the planes INTRP, BAD, EDGE, NO_DATA, SAT on all
    # central 3 x 3 pixels (e.g. the saturated core of a bright-star residual); the released
    # catalog never holds them. The same function as detection's, so catalog and detections agree.
    from diascan.detection import UNPHYSICAL_PLANES, centre_all_planes  # scipy/sep: import late

    bad_centre |= centre_all_planes(mask_diff, ix, iy, [bit[p_] for p_ in UNPHYSICAL_PLANES])
    detectable = (np.abs(snr) >= 7.0) & inside & ~bad_centre & (t["kind"] != "bad_column")
    rejected = ~t["is_real"] & (rng.uniform(size=n_truth) < 0.2)
    keep = np.flatnonzero(detectable & ~rejected)
    # No deblending in Rubin DIA: of two sources closer than ~6 PSF sigma only the one with the
    # higher |S/N| becomes a catalog row (their footprints merge into one source).
    keep = keep[np.argsort(-np.abs(snr[keep]), kind="stable")]
    lonely: list[int] = []
    for k in keep:
        if all(np.hypot(t["x"][k] - t["x"][j], t["y"][k] - t["y"][j]) > 6 * sig for j in lonely):
            lonely.append(int(k))
    keep = np.sort(np.array(lonely, dtype=np.int64))
    nk = keep.size
    noise_xy = np.clip(rng.normal(0.0, 0.12, (2, nk)), -0.45, 0.45)  # < 0.1 arcsec
    dx_ = t["x"][keep] + noise_xy[0]
    dy_ = t["y"][keep] + noise_xy[1]
    ptrue, perr = _psf_flux(signal + defects, var_diff, dx_, dy_, sig)
    pflux = ptrue + rng.normal(0.0, 1.0, nk) * perr
    sflux, _ = _psf_flux(sci, var_sci, dx_, dy_, sig)
    dra, ddec = sci_wcs.all_pix2world(dx_, dy_, 0)
    kinds = t["kind"][keep]
    real = t["is_real"][keep]
    rel = np.where(real, rng.beta(8.0, 1.5, nk), rng.beta(1.2, 6.0, nk))
    rel = np.where(pflux < 0, np.minimum(rel, rng.uniform(0.02, 0.45, nk)), rel)
    ids = (
        (np.int64(int(visit) % 10**9) << np.int64(24))
        + np.int64(DETECTOR << 16)
        + np.arange(1, nk + 1, dtype=np.int64)
    )
    flags = {}
    fp_half = 3
    for name, planes_ in (
        ("bad", ("BAD",)), ("cr", ("CR",)), ("edge", ("EDGE",)), ("interpolated", ("INTRP",)),
        ("saturated", ("SAT",)), ("suspect", ("SUSPECT",)), ("nodata", ("NO_DATA",)),
    ):  # fmt: skip
        b_ = 0
        for p_ in planes_:
            b_ |= int(bit[p_])
        kx, ky = ix[keep], iy[keep]
        flags[f"pixelFlags_{name}"] = _mask_any(mask_diff, kx, ky, fp_half, b_)
        if name in ("cr", "interpolated", "saturated", "suspect"):
            flags[f"pixelFlags_{name}Center"] = _mask_any(mask_diff, kx, ky, 1, b_)
    flags["pixelFlags_offimage"] = np.zeros(nk, dtype=bool)
    dia = {
        "diaSourceId": ids,
        "visit": np.full(nk, int(visit), dtype=np.int64),
        "detector": np.full(nk, DETECTOR, dtype=np.int64),
        "band": np.full(nk, BAND, dtype=object),
        "midpointMjdTai": np.full(nk, MJD),
        "ra": np.asarray(dra, dtype=np.float64),
        "dec": np.asarray(ddec, dtype=np.float64),
        "x": dx_,
        "y": dy_,
        "psfFlux": pflux,
        "psfFluxErr": perr,
        "snr": pflux / perr,
        "scienceFlux": sflux,
        "isDipole": kinds == "dipole",
        "reliability": rel.astype(np.float32),
        **flags,
    }
    note = {b"diascan.reliability": b"simulated (demo data): not computed by any model"}
    pq.write_table(pa.table(dia).replace_schema_metadata(note), out / "dia_source.parquet")

    truth_ids = np.full(n_truth, -1, dtype=np.int64)
    truth_ids[keep] = ids
    truth_table = {
        "ra": np.asarray(ra, dtype=np.float64),
        "dec": np.asarray(dec, dtype=np.float64),
        "x": t["x"],
        "y": t["y"],
        "is_real": t["is_real"].astype(bool),
        "snr": snr,
        "flux": t["flux"],
        "kind": t["kind"].astype(str),
        "diaSourceId": truth_ids,
    }
    pq.write_table(pa.table(truth_table), out / "truth.parquet")

    # --- target: the first transient on a galaxy (S/N 30 by construction) ------------------
    host_rows = np.flatnonzero((t["kind"] == "transient_on_galaxy") & (truth_ids >= 0))
    if host_rows.size == 0:  # pragma: no cover - S/N 30 far from the border is always kept
        raise RuntimeError("demo: no detected transient on a galaxy for the target")
    tr = host_rows[np.argmin(np.abs(snr[host_rows] - 30.0))]
    target = {
        "ra": float(ra[tr]),
        "dec": float(dec[tr]),
        "diaSourceId": int(truth_ids[tr]),
        "name": "DemoSN 2024abc",
        "mjd": MJD,
        "band": BAND,
    }
    (out / "target.json").write_text(json.dumps(target, indent=2) + "\n")
    check(cancel)

    report(progress, stage, 0.85, "writing difference image")
    diff_data = ImageData(diff, mask_diff, var_diff, dict(planes), sci_wcs, 0, 0, "nJy",
                          dict(meta))  # fmt: skip
    _write(out / "difference.fits", diff_data, layout, "difference_image")
    report(progress, stage, 1.0, "done")
    return out


__all__ = ["DEMO_FILES", "DEMO_VERSION", "generate_demo"]
