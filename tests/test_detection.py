"""Detection and measurement on difference images (diascan.detection)."""

from __future__ import annotations

import numpy as np
import pytest

from diascan.detection import FLAG_NAMES, detect_and_measure, estimate_psf_sigma
from diascan.errors import ImageReadError
from diascan.io.images import DEFAULT_MASK_PLANES
from tests._pipeline_synth import make_image, render_stars, tan_wcs

SIGMA = 1.8
NOISE = 10.0
SHAPE = (500, 600)


def _flux_for_snr(snr):
    # PSF-optimal S/N of a Gaussian in white noise: flux / (noise * sqrt(4 pi sigma^2)).
    return np.asarray(snr) * NOISE * np.sqrt(4 * np.pi) * SIGMA


@pytest.fixture(scope="module")
def scene():
    rng = np.random.default_rng(42)
    ny, nx = SHAPE
    # Positive sources on a jittered grid away from the borders, then a negative and a dipole.
    gx, gy = np.meshgrid(np.arange(40, nx - 40, 45.0), np.arange(40, ny - 40, 45.0))
    xs = gx.ravel() + rng.uniform(-0.5, 0.5, gx.size)
    ys = gy.ravel() + rng.uniform(-0.5, 0.5, gy.size)
    snr = rng.uniform(8, 40, xs.size)
    flux = _flux_for_snr(snr)
    neg = 3  # source 3 is negative
    flux[neg] *= -1
    dip = 7  # source 7 is a dipole: a negative twin 3 px away
    img = render_stars(SHAPE, xs, ys, flux, SIGMA)
    img += render_stars(SHAPE, [xs[dip] + 3.0], [ys[dip]], [-flux[dip]], SIGMA)
    img += rng.normal(0, NOISE, SHAPE)
    mask = np.zeros(SHAPE, np.int32)
    nodata = 12  # source 12 sits in a NO_DATA hole
    iy, ix = int(round(ys[nodata])), int(round(xs[nodata]))
    mask[iy - 8 : iy + 9, ix - 8 : ix + 9] |= 1 << DEFAULT_MASK_PLANES["NO_DATA"]
    img[iy - 8 : iy + 9, ix - 8 : ix + 9] = 0
    sat = 20  # source 20 has a saturated core
    mask[int(round(ys[sat])), int(round(xs[sat]))] |= 1 << DEFAULT_MASK_PLANES["SAT"]
    wcs = tan_wcs(nx, ny, rot_deg=25)
    diff = make_image(img, np.full(SHAPE, NOISE**2), wcs, mask=mask, psf_sigma=SIGMA)
    sci_img = render_stars(SHAPE, xs, ys, np.abs(flux) * 3, SIGMA) + rng.normal(0, NOISE, SHAPE)
    sci = make_image(sci_img, np.full(SHAPE, NOISE**2), wcs)
    det = detect_and_measure(diff, sci)
    return dict(
        xs=xs,
        ys=ys,
        flux=flux,
        snr=snr,
        neg=neg,
        dip=dip,
        nodata=nodata,
        sat=sat,
        diff=diff,
        sci=sci,
        det=det,
    )


def _nearest(det, x, y):
    d = np.hypot(det["x"] - x, det["y"] - y)
    k = int(np.argmin(d))
    return k, d[k]


def test_completeness_positions_and_fluxes(scene):
    det = scene["det"]
    assert det["id"].dtype == np.int64
    assert list(det["id"]) == list(range(1, len(det) + 1))
    offsets, pulls, found = [], [], 0
    ordinary = [i for i in range(len(scene["xs"])) if i not in (scene["dip"], scene["nodata"])]
    for i in ordinary:
        k, d = _nearest(det, scene["xs"][i], scene["ys"][i])
        if d < 2:
            found += 1
            offsets.append(d)
            pulls.append((det["psfFlux"][k] - scene["flux"][i]) / det["psfFluxErr"][k])
    assert found >= 0.95 * len(ordinary)
    assert np.median(offsets) < 0.3
    assert np.max(offsets) < 1.0  # S/N 8: sigma_pos ~ 0.3 px per axis
    # PSF fluxes are unbiased within their errors (flux error ~ 1/snr).
    assert abs(np.median(pulls)) < 1.0
    assert np.std(pulls) < 2.0
    assert len(det) <= len(ordinary) + 4  # few spurious detections at 5 sigma
    assert det.meta["psf_sigma"] == SIGMA and det.meta["psf_sigma_source"] == "difference header"


def test_negative_dipole_and_masked_sources(scene):
    det = scene["det"]
    k, d = _nearest(det, scene["xs"][scene["neg"]], scene["ys"][scene["neg"]])
    assert d < 0.5 and det["is_negative"][k] and not det["is_dipole"][k]
    assert det["psfFlux"][k] < 0 and det["peak_significance"][k] < -5
    k, d = _nearest(det, scene["xs"][scene["dip"]] + 1.5, scene["ys"][scene["dip"]])
    assert d < 1.5 and det["is_dipole"][k] and not det["is_negative"][k]
    assert (det["is_dipole"]).sum() == 1
    # The source inside the NO_DATA hole does not survive; nothing sits on NO_DATA or EDGE.
    _, d = _nearest(det, scene["xs"][scene["nodata"]], scene["ys"][scene["nodata"]])
    assert d > 5
    diff = scene["diff"]
    ix = np.rint(det["x"] - diff.x0).astype(int)
    iy = np.rint(det["y"] - diff.y0).astype(int)
    assert not (diff.plane("NO_DATA")[iy, ix]).any()
    assert not det["pixelFlags_nodataCenter"].any() and not det["pixelFlags_offimage"].any()
    k, _ = _nearest(det, scene["xs"][scene["sat"]], scene["ys"][scene["sat"]])
    assert det["pixelFlags_satCenter"][k] and det["pixelFlags_sat"][k]
    assert det["pixelFlags_sat"].sum() == 1
    for f in FLAG_NAMES:
        assert f"pixelFlags_{f}" in det.colnames and f"pixelFlags_{f}Center" in det.colnames


def test_sky_positions_forced_science_and_apertures(scene):
    det, diff = scene["det"], scene["diff"]
    ra, dec = diff.wcs.pixel_to_world_values(det["x"] - diff.x0, det["y"] - diff.y0)
    np.testing.assert_allclose(det["ra"], ra, atol=1e-10)
    np.testing.assert_allclose(det["coord_dec"], np.deg2rad(dec), atol=1e-12)
    pos = ~det["is_negative"] & ~det["is_dipole"]
    # Science has 3x the |flux| at the same positions; apertures hold ~all of a PSF.
    ratio = det["scienceFlux"][pos] / det["psfFlux"][pos]
    assert abs(np.median(ratio) - 3.0) < 0.1
    assert abs(np.median(det["apFlux"][pos] / det["psfFlux"][pos]) - 1.0) < 0.1
    assert np.all(det["snr"] > 0)


def test_parent_coordinates_follow_x0_y0(scene):
    diff = scene["diff"]
    shifted = make_image(
        diff.image, diff.variance, diff.wcs, x0=100, y0=-30, mask=diff.mask, psf_sigma=SIGMA
    )
    det = detect_and_measure(shifted)
    np.testing.assert_allclose(np.sort(det["x"]), np.sort(scene["det"]["x"] + 100), atol=1e-9)
    np.testing.assert_allclose(np.sort(det["y"]), np.sort(scene["det"]["y"] - 30), atol=1e-9)
    assert np.isnan(det["scienceFlux"]).all()


def test_pure_noise_and_threshold():
    rng = np.random.default_rng(7)
    img = rng.normal(0, NOISE, SHAPE)
    diff = make_image(img, np.full(SHAPE, NOISE**2), tan_wcs(600, 500), psf_sigma=SIGMA)
    assert len(detect_and_measure(diff)) <= 2
    assert len(detect_and_measure(diff, threshold=3.0)) > 10


def test_psf_sigma_estimated_from_science(scene):
    est = estimate_psf_sigma(scene["sci"])
    assert abs(est - SIGMA) < 0.15 * SIGMA
    diff = scene["diff"]
    nohdr = make_image(diff.image, diff.variance, diff.wcs, mask=diff.mask)
    det = detect_and_measure(nohdr, scene["sci"])
    assert det.meta["psf_sigma_source"] == "estimated from science"
    with pytest.raises(ImageReadError, match="PSF"):
        detect_and_measure(nohdr)


def test_unphysical_is_one_plane_on_all_centre_pixels(tmp_path):
    """Rubin removes a source when ONE plane covers all central 3 x 3 pixels (the OR over planes
    of the per-plane ``CenterAll`` flags); a centre of 6 SAT + 3 BAD pixels is kept."""
    from diascan.io import read_image
    from diascan.io.images import write_exposure

    rng = np.random.default_rng(3)
    shape = (300, 300)
    sat, bad, intrp = (1 << DEFAULT_MASK_PLANES[p] for p in ("SAT", "BAD", "INTRP"))
    cases = {  # centre (x, y) -> (3 x 3 mask layout, removed?)
        (60, 60): (np.full((3, 3), sat), True),  # all SAT
        (150, 60): (np.where(np.arange(3) == 1, bad, sat)[None, :].repeat(3, 0), False),
        (240, 60): (np.where(np.arange(3) == 1, 0, sat)[None, :].repeat(3, 0), False),
        (60, 150): (np.where(np.arange(3) == 1, sat | bad, sat)[None, :].repeat(3, 0), True),
        (150, 150): (np.full((3, 3), intrp), True),  # all INTRP
        (240, 150): (np.where(np.eye(3, dtype=bool), intrp, bad), False),  # 3 INTRP + 6 BAD
        (150, 240): (np.zeros((3, 3), int), False),  # a plain star
    }
    xs = [x for x, _ in cases]
    ys = [y for _, y in cases]
    img = render_stars(shape, xs, ys, [2e4] * len(xs), SIGMA) + rng.normal(0, NOISE, shape)
    mask = np.zeros(shape, np.int32)
    for (x, y), (layout, _) in cases.items():
        mask[y - 1 : y + 2, x - 1 : x + 2] = layout
    assert sorted(np.unique(mask[mask > 0])) == sorted({sat, bad, intrp, sat | bad})
    path = write_exposure(
        tmp_path / "diff.fits",
        make_image(img, np.full(shape, NOISE**2), tan_wcs(300, 300), mask=mask, psf_sigma=SIGMA),
    )
    det = detect_and_measure(read_image(path))
    for (x, y), (_, removed) in cases.items():
        _, d = _nearest(det, x, y)
        assert (d > 3) == removed, ((x, y), d)
    assert det.meta["n_unphysical"] == sum(r for _, r in cases.values())
