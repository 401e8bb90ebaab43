"""Stamp simulator for training and evaluating real/bogus models.

Every stamp is a [difference, science, template] triple in nJy, as :func:`diascan.cutouts.cut_stamps`
yields from a Rubin-like visit: sky-subtracted science with per-pixel noise 6-150 nJy
(log-uniform; a 30 s LSST visit has ~20 nJy, the diascan demo 10 nJy) and a PSF of sigma
1.5-4.5 px, a deeper template (noise 0.3-0.6 of the science) with its own PSF, and a
difference = science - PSF-matched template, whose noise is the science noise minus the
(smoothed) template noise, so the three channels are correlated as in real data.

Classes (``KINDS``): real = PSF point sources on empty sky, on galaxies and on stars, with
positive AND negative flux (a negative source is one present in the template and gone now), and
trailed asteroids; bogus = bright-star subtraction residuals, dipoles from misregistration,
cosmic rays, hot pixels, bad columns, image edges, NaN rows/columns (zeros after the NaN -> 0
rule), and noise peaks. Everything is vectorised over stamps (no per-pixel Python loops) and
deterministic for a given ``numpy.random.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIZE = 51

#: (kind, is_real, relative frequency)
KINDS: tuple[tuple[str, bool, float], ...] = (
    ("point_sky", True, 0.32),
    ("point_galaxy", True, 0.30),
    ("point_star", True, 0.20),
    ("asteroid", True, 0.18),
    ("star_residual", False, 0.20),
    ("dipole", False, 0.20),
    ("cosmic_ray", False, 0.13),
    ("hot_pixel", False, 0.10),
    ("bad_column", False, 0.09),
    ("edge", False, 0.10),
    ("nan_line", False, 0.08),
    ("noise_peak", False, 0.10),
)
KIND_NAMES = tuple(k for k, _, _ in KINDS)
REAL_KINDS = tuple(k for k, r, _ in KINDS if r)
BOGUS_KINDS = tuple(k for k, r, _ in KINDS if not r)

#: Fraction of real (non-asteroid) sources with negative flux (fading sources).
NEGATIVE_FRACTION = 0.4
#: nJy per photo-electron per nJy of sky sigma: Poisson variance of objects = signal * this * sigma
#: (sigma 10 nJy -> 0.144 nJy/e-, as in the diascan demo).
NJY_PER_ELECTRON_PER_SIGMA = 0.0144


@dataclass
class StampSet:
    """Simulated stamps with their truth."""

    stamps: np.ndarray  # (N, 3, SIZE, SIZE) float32: difference, science, template
    label: np.ndarray  # (N,) float32, 1 = real
    kind: np.ndarray  # (N,) int index into KIND_NAMES
    snr: np.ndarray  # (N,) PSF SNR of the real source in the difference (NaN for bogus)
    negative: np.ndarray  # (N,) bool, real source with negative flux

    def __len__(self) -> int:
        return len(self.label)


_Y, _X = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
_C = SIZE // 2


def _col(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)[:, None, None]


def psf(flux, cx, cy, sigma) -> np.ndarray:
    """Unit-normalised double-Gaussian PSF times ``flux`` at (cx, cy) (pixel coords of the stamp).

    90% core of ``sigma`` + 10% wing of ``2 sigma``: a Gaussian with Moffat-like wings.
    """
    f, x, y, s = _col(flux), _col(cx), _col(cy), _col(sigma)
    r2 = (_X - x) ** 2 + (_Y - y) ** 2
    core = np.exp(-r2 / (2 * s * s)) / (2 * np.pi * s * s)
    wing = np.exp(-r2 / (8 * s * s)) / (8 * np.pi * s * s)
    return f * (0.9 * core + 0.1 * wing)


def galaxy(flux, cx, cy, r, q, theta, sigma) -> np.ndarray:
    """Elliptical bulge+disc galaxy (two Gaussians) already convolved with a Gaussian PSF."""
    f, x, y = _col(flux), _col(cx), _col(cy)
    r, q, t, s = _col(r), _col(q), _col(theta), _col(sigma)
    dx, dy = _X - x, _Y - y
    u = dx * np.cos(t) + dy * np.sin(t)
    v = -dx * np.sin(t) + dy * np.cos(t)
    out = np.zeros(np.broadcast_shapes(f.shape, _X.shape), np.float32)
    for frac, scale in ((0.35, 0.35), (0.65, 1.0)):  # bulge, disc
        a2 = (scale * r) ** 2 + s * s
        b2 = (scale * r * q) ** 2 + s * s
        out += frac * np.exp(-0.5 * (u * u / a2 + v * v / b2)) / (2 * np.pi * np.sqrt(a2 * b2))
    return f * out


def _loguniform(rng, lo, hi, n) -> np.ndarray:
    return np.exp(rng.uniform(np.log(lo), np.log(hi), n))


def _psf_flux_for_snr(snr, noise, sigma) -> np.ndarray:
    """Flux whose optimal PSF-photometry SNR is ``snr`` for per-pixel ``noise`` (Gaussian PSF)."""
    return snr * noise * np.sqrt(4 * np.pi) * sigma


def _segment(n, rng, cx, cy, length, angle, amp, width) -> np.ndarray:
    """Sharp line segments (cosmic rays, unconvolved; or trails before convolution)."""
    t = np.linspace(-0.5, 0.5, 24, dtype=np.float32)
    px = cx[:, None] + np.cos(angle)[:, None] * length[:, None] * t
    py = cy[:, None] + np.sin(angle)[:, None] * length[:, None] * t
    # Distance of each pixel to the nearest sample point (24 samples are dense enough).
    d2 = (_X[None, None] - px[:, :, None, None]) ** 2 + (_Y[None, None] - py[:, :, None, None]) ** 2
    d2 = d2.min(axis=1)
    return _col(amp) * np.exp(-d2 / (2 * _col(width) ** 2))


class _Ctx:
    """Per-stamp observing conditions and static sky shared by all classes."""

    def __init__(self, n: int, rng: np.random.Generator) -> None:
        self.n = n
        self.rng = rng
        self.sig_s = rng.uniform(1.5, 4.5, n).astype(np.float32)  # science PSF sigma (px)
        self.sig_t = self.sig_s * rng.uniform(0.65, 1.0, n).astype(np.float32)  # template PSF
        self.noise_s = _loguniform(rng, 6, 150, n).astype(np.float32)  # science noise (nJy)
        self.noise_t = self.noise_s * rng.uniform(0.3, 0.6, n).astype(np.float32)
        # Template noise left in the difference after PSF matching (convolution smooths it).
        self.k_t = rng.uniform(0.5, 0.9, n).astype(np.float32)
        self.noise_d = np.sqrt(self.noise_s**2 + (self.k_t * self.noise_t) ** 2)
        self.cx = _C + rng.uniform(-0.5, 0.5, n).astype(np.float32)
        self.cy = _C + rng.uniform(-0.5, 0.5, n).astype(np.float32)
        # Static sky in science PSF / template PSF: a few field stars and galaxies.
        self.static_s = np.zeros((n, SIZE, SIZE), np.float32)
        self.static_t = np.zeros((n, SIZE, SIZE), np.float32)
        for _ in range(3):
            on = rng.random(n) < 0.35
            x = rng.uniform(-5, SIZE + 5, n)
            y = rng.uniform(-5, SIZE + 5, n)
            # Keep field objects away from the centre (the centre is set by the class).
            far = np.hypot(x - _C, y - _C) > 10
            f = _loguniform(rng, 2e3, 2e5, n) * (on & far)
            if rng.random() < 0.5:
                self.add_static(psf, f, x, y)
            else:
                r = rng.uniform(1.5, 6, n)
                q = rng.uniform(0.3, 1, n)
                th = rng.uniform(0, np.pi, n)
                self.add_static(galaxy, f, x, y, r, q, th)

    def add_static(self, fn, flux, cx, cy, *shape) -> None:
        """Add a static object to science and template, each with its own PSF."""
        self.static_s += fn(flux, cx, cy, *shape, self.sig_s)
        self.static_t += fn(flux, cx, cy, *shape, self.sig_t)

    def assemble(
        self, trans_s, trans_t=None, trans_t_s=None, extra_s=None, extra_d=None
    ) -> np.ndarray:
        """Science, template and difference from the static sky and the transient parts.

        ``trans_s`` (science-PSF transient) appears in science and difference; ``trans_t``
        (in template PSF) in the template and, PSF-matched (``trans_t_s``, the same source in the
        science PSF), negatively in the difference;
        ``extra_s`` (artefacts on the science detector) in science and difference; ``extra_d``
        only in the difference (subtraction residuals).
        """
        rng, n = self.rng, self.n
        z = np.zeros((n, SIZE, SIZE), np.float32)
        trans_s = z if trans_s is None else trans_s
        extra_s = z if extra_s is None else extra_s
        extra_d = z if extra_d is None else extra_d
        sci_true = self.static_s + trans_s
        tmpl_true = self.static_t + (z if trans_t is None else trans_t)
        # The template seen through the matching kernel has the science PSF.
        matched_t = self.static_s + (z if trans_t_s is None else trans_t_s)
        # Noise: sky + Poisson noise of bright objects (science), deeper template.
        gain = _col(NJY_PER_ELECTRON_PER_SIGMA * self.noise_s)
        phot = np.sqrt(np.clip(sci_true, 0, None) * gain)  # Poisson sigma of objects
        sd_s = np.sqrt(_col(self.noise_s) ** 2 + phot**2)
        n_s = rng.standard_normal((n, SIZE, SIZE), dtype=np.float32) * sd_s
        n_t = rng.standard_normal((n, SIZE, SIZE), dtype=np.float32) * _col(self.noise_t)
        sci = sci_true + n_s + extra_s
        tmpl = tmpl_true + n_t
        diff = sci_true - matched_t + n_s - _col(self.k_t) * n_t + extra_s + extra_d
        return np.stack([diff, sci, tmpl], axis=1)


def _sim_real(kind: str, ctx: _Ctx, negative: np.ndarray, snr: np.ndarray) -> np.ndarray:
    rng, n = ctx.rng, ctx.n
    if kind == "point_galaxy":
        r = rng.uniform(1.5, 8, n)
        off = rng.uniform(0, 1.5, n) * r
        ang = rng.uniform(0, 2 * np.pi, n)
        gflux = _loguniform(rng, 3e3, 3e5, n)
        ctx.add_static(
            galaxy, gflux, ctx.cx + off * np.cos(ang), ctx.cy + off * np.sin(ang),
            r, rng.uniform(0.3, 1, n), rng.uniform(0, np.pi, n),
        )
    flux = _psf_flux_for_snr(snr, ctx.noise_d, ctx.sig_s)
    if kind == "point_star":
        # Variable star: static part always present; the change is +flux or -flux.
        base = _loguniform(rng, 1, 30, n) * flux + np.where(negative, flux, 0)
        ctx.add_static(psf, base, ctx.cx, ctx.cy)
    if kind == "asteroid":
        length = rng.uniform(0, 12, n)
        ang = rng.uniform(0, np.pi, n)
        # Trail = PSF convolved with a segment: sum of PSFs along it.
        trail = np.zeros((n, SIZE, SIZE), np.float32)
        steps = 9
        for t in np.linspace(-0.5, 0.5, steps):
            trail += psf(flux / steps, ctx.cx + t * length * np.cos(ang),
                         ctx.cy + t * length * np.sin(ang), ctx.sig_s)
        return ctx.assemble(trail)
    pos = np.where(negative, 0.0, flux)
    neg = np.where(negative, flux, 0.0)
    trans_s = psf(pos, ctx.cx, ctx.cy, ctx.sig_s)
    # A fading source: in the template (template PSF) and gone from the science image.
    trans_t = psf(neg, ctx.cx, ctx.cy, ctx.sig_t)
    return ctx.assemble(trans_s, trans_t, psf(neg, ctx.cx, ctx.cy, ctx.sig_s))


def _sim_bogus(kind: str, ctx: _Ctx) -> np.ndarray:
    rng, n = ctx.rng, ctx.n
    sd = ctx.noise_d
    if kind == "star_residual":
        f = _loguniform(rng, 3e4, 3e6, n)
        ctx.add_static(psf, f, ctx.cx, ctx.cy)
        # Imperfect PSF matching: a fraction ``a`` of the star left as star(sigma) minus
        # star(sigma * (1 + eps)), either sign, plus a small flux-scale error ``delta``.
        a = _loguniform(rng, 0.005, 1.0, n) * rng.choice([-1, 1], n, p=[0.3, 0.7])
        eps = rng.uniform(0.05, 0.3, n) * rng.choice([-1, 1], n)
        delta = rng.normal(0, 0.005, n)
        resid = psf(a * f, ctx.cx, ctx.cy, ctx.sig_s) - psf(
            a * f * (1 + delta), ctx.cx, ctx.cy, ctx.sig_s * (1 + eps)
        )
        return ctx.assemble(None, extra_d=resid)
    if kind == "dipole":
        f = _loguniform(rng, 1e4, 1e6, n)
        d = _loguniform(rng, 0.03, 1.2, n)
        a = rng.uniform(0, 2 * np.pi, n)
        if rng.random() < 0.5:
            ctx.add_static(psf, f, ctx.cx, ctx.cy)
            shifted = psf(f, ctx.cx + d * np.cos(a), ctx.cy + d * np.sin(a), ctx.sig_s)
            resid = shifted - psf(f, ctx.cx, ctx.cy, ctx.sig_s)
        else:
            r, q, th = rng.uniform(1, 4, n), rng.uniform(0.4, 1, n), rng.uniform(0, np.pi, n)
            ctx.add_static(galaxy, f, ctx.cx, ctx.cy, r, q, th)
            shifted = galaxy(f, ctx.cx + d * np.cos(a), ctx.cy + d * np.sin(a), r, q, th, ctx.sig_s)
            resid = shifted - galaxy(f, ctx.cx, ctx.cy, r, q, th, ctx.sig_s)
        return ctx.assemble(None, extra_d=resid)
    if kind == "cosmic_ray":
        amp = _loguniform(rng, 5, 200, n) * ctx.noise_s
        cr = _segment(n, rng, ctx.cx, ctx.cy, rng.uniform(0, 10, n), rng.uniform(0, np.pi, n),
                      amp, rng.uniform(0.3, 0.8, n))
        return ctx.assemble(None, extra_s=cr)
    if kind == "hot_pixel":
        amp = _loguniform(rng, 5, 500, n) * ctx.noise_s
        ix = np.floor(ctx.cx + 0.5).astype(int)
        iy = np.floor(ctx.cy + 0.5).astype(int)
        hot = np.zeros((n, SIZE, SIZE), np.float32)
        hot[np.arange(n), iy, ix] = amp
        # Some hot pixels bleed into a neighbour.
        two = rng.random(n) < 0.3
        hot[np.arange(n)[two], iy[two], ix[two] + 1] = amp[two] * rng.uniform(0.2, 0.8, two.sum())
        return ctx.assemble(None, extra_s=hot)
    if kind == "bad_column":
        level = _loguniform(rng, 3, 100, n) * ctx.noise_s * rng.choice([-1, 1], n)
        col = np.floor(ctx.cx + 0.5).astype(int) + rng.integers(-2, 3, n)
        start = np.where(rng.random(n) < 0.5, 0, rng.integers(0, _C, n))
        mask = (_X[None] == col[:, None, None]) & (_Y[None] >= start[:, None, None])
        bad = mask * _col(level)
        # Half of them are horizontal (transposed).
        flip = rng.random(n) < 0.3
        bad[flip] = np.swapaxes(bad[flip], 1, 2)
        return ctx.assemble(None, extra_s=bad)
    if kind == "edge":
        # A no-data border (image 0) crosses the stamp near the centre in science or template.
        stack = ctx.assemble(None)
        pos = _C + rng.integers(-6, 7, n)
        horizontal = rng.random(n) < 0.5
        side = rng.random(n) < 0.5
        coord = np.where(horizontal[:, None, None], _Y[None], _X[None])
        region = np.where(side[:, None, None], coord < pos[:, None, None], coord > pos[:, None, None])
        in_sci = rng.random(n) < 0.5
        # Science missing: science 0 and difference = -template there; template missing:
        # template 0 and difference = science there.
        sci_region = region & in_sci[:, None, None]
        tmp_region = region & ~in_sci[:, None, None]
        diff, sci, tmpl = stack[:, 0], stack[:, 1], stack[:, 2]
        diff = np.where(sci_region, -tmpl, diff)
        diff = np.where(tmp_region, sci, diff)
        sci = np.where(sci_region, 0, sci)
        tmpl = np.where(tmp_region, 0, tmpl)
        # Edge pixels of real detectors have a ramp (vignetting/amplifier roll-off).
        ramp = np.exp(-np.abs(coord - pos[:, None, None]) / 2.0) * _col(
            _loguniform(rng, 3, 50, n) * sd * rng.choice([-1, 1], n)
        )
        diff = diff + np.where(region, 0, ramp)
        return np.stack([diff, sci, tmpl], axis=1).astype(np.float32)
    if kind == "nan_line":
        stack = ctx.assemble(None)
        width = rng.integers(1, 4, n)
        pos = _C + rng.integers(-3, 4, n)
        horizontal = rng.random(n) < 0.5
        coord = np.where(horizontal[:, None, None], _Y[None], _X[None])
        band = (coord >= pos[:, None, None]) & (coord < (pos + width)[:, None, None])
        # Interpolation next to the band leaves a residual ridge.
        ridge = (np.abs(coord - pos[:, None, None] + 0.5) < 2) & ~band
        ridge_amp = _loguniform(rng, 2, 30, n) * sd * rng.choice([-1, 1], n)
        which = rng.integers(0, 3, n)  # NaN in diff only, diff+science, all three
        out = stack.copy()
        out[:, 0] = np.where(band, 0, out[:, 0] + ridge * _col(ridge_amp))
        m1 = (which >= 1)[:, None, None]
        m2 = (which >= 2)[:, None, None]
        out[:, 1] = np.where(band & m1, 0, out[:, 1])
        out[:, 2] = np.where(band & m2, 0, out[:, 2])
        return out
    if kind == "noise_peak":
        # Noise excursions that crossed the 5-sigma threshold: a sharp (sub-PSF) or blotchy bump
        # in the difference only, or nothing but noise.
        amp = rng.uniform(1, 5, n) * sd * rng.choice([-1, 1], n)
        sigma = rng.uniform(0.4, 1.0, n) * np.where(rng.random(n) < 0.5, 1.0, ctx.sig_s * 0.6)
        bump = psf(amp * 2 * np.pi * sigma**2 / 0.9, ctx.cx, ctx.cy, sigma)
        bump *= (rng.random(n) < 0.8)[:, None, None]
        return ctx.assemble(None, extra_d=bump)
    raise ValueError(f"unknown kind {kind}")


def simulate(
    n: int,
    rng: np.random.Generator,
    *,
    real_fraction: float = 0.5,
    snr: float | None = None,
    kinds: tuple[str, ...] | None = None,
) -> StampSet:
    """Simulate ``n`` stamps: ``real_fraction`` real, the rest bogus, kinds by ``KINDS`` weights.

    ``snr`` fixes the SNR of every real source (else log-uniform 4-300 with a tail to 3000);
    ``kinds`` restricts the kinds drawn.
    """
    names = [k for k in KIND_NAMES if kinds is None or k in kinds]
    real = [k for k in names if k in REAL_KINDS]
    bogus = [k for k in names if k in BOGUS_KINDS]
    w = {k: f for k, _, f in KINDS}
    frac = real_fraction if real and bogus else (1.0 if real else 0.0)
    is_real = rng.random(n) < frac
    kind = np.empty(n, dtype=np.int64)
    for mask, group in ((is_real, real), (~is_real, bogus)):
        if group and mask.any():
            p = np.array([w[k] for k in group])
            pick = rng.choice(len(group), size=int(mask.sum()), p=p / p.sum())
            kind[mask] = [KIND_NAMES.index(group[i]) for i in pick]
    stamps = np.empty((n, 3, SIZE, SIZE), np.float32)
    snrs = np.full(n, np.nan, np.float32)
    negative = np.zeros(n, bool)
    for k_index, name in enumerate(KIND_NAMES):
        idx = np.flatnonzero(kind == k_index)
        if idx.size == 0:
            continue
        ctx = _Ctx(idx.size, rng)
        if name in REAL_KINDS:
            if snr is None:
                s = _loguniform(rng, 4, 300, idx.size)
                tail = rng.random(idx.size) < 0.1
                s[tail] = _loguniform(rng, 300, 3000, int(tail.sum()))
            else:
                s = np.full(idx.size, float(snr))
            neg = (rng.random(idx.size) < NEGATIVE_FRACTION) & (name != "asteroid")
            stamps[idx] = _sim_real(name, ctx, neg, s)
            snrs[idx] = s
            negative[idx] = neg
        else:
            stamps[idx] = _sim_bogus(name, ctx)
    label = np.array([KINDS[k][1] for k in kind], dtype=np.float32) if n else np.zeros(0, np.float32)
    return StampSet(stamps=stamps, label=label, kind=kind, snr=snrs, negative=negative)


__all__ = ["BOGUS_KINDS", "KINDS", "KIND_NAMES", "REAL_KINDS", "SIZE", "StampSet", "psf", "simulate"]
