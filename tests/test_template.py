"""Template warping onto the science grid (diascan.template)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.wcs import Sip

from diascan.errors import InputError
from diascan.template import build_template, output_grid
from tests._pipeline_synth import make_image, render_stars, sky_star_field, tan_wcs

SIGMA = 1.7


def _sip_science(nx=300, ny=260, rot=35.0):
    w = tan_wcs(nx, ny, rot_deg=rot)
    a = np.zeros((3, 3))
    b = np.zeros((3, 3))
    a[2, 0] = 2e-6
    a[0, 2] = -1e-6
    b[1, 1] = 1.5e-6
    w.sip = Sip(a, b, None, None, w.wcs.crpix)
    w.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
    w.wcs.set()
    return make_image(np.zeros((ny, nx)), np.ones((ny, nx)), w)


def _stars_on(wcs, shape, ra, dec, flux):
    x, y = wcs.world_to_pixel_values(ra, dec)
    return render_stars(shape, x, y, flux, SIGMA)


def _grid_stars(n_side=6, spacing_deg=36 * 0.2 / 3600, seed=3):
    rng = np.random.default_rng(seed)
    k = np.arange(n_side) - (n_side - 1) / 2
    gx, gy = np.meshgrid(k, k)
    ra = 150.0 + (gx.ravel() * spacing_deg + rng.uniform(-2e-5, 2e-5, gx.size)) / np.cos(
        np.deg2rad(2.0)
    )
    dec = 2.0 + gy.ravel() * spacing_deg + rng.uniform(-2e-5, 2e-5, gx.size)
    flux = rng.uniform(2e4, 1e5, gx.size)
    return ra, dec, flux


def _moments(img, x, y, r=14):
    ix, iy = int(round(x)), int(round(y))
    cut = img[iy - r : iy + r + 1, ix - r : ix + r + 1].astype(np.float64)
    yy, xx = np.mgrid[iy - r : iy + r + 1, ix - r : ix + r + 1]
    f = cut.sum()
    return (cut * xx).sum() / f, (cut * yy).sum() / f, f


def test_star_field_on_rotated_grid_keeps_positions_and_fluxes():
    sci = _sip_science()
    ra, dec, flux = _grid_stars()
    tw = tan_wcs(520, 520, rot_deg=0.0)
    timg = _stars_on(tw, (520, 520), ra, dec, flux) + 5.0
    tmpl = make_image(timg, np.full(timg.shape, 4.0), tw)
    out = build_template(sci, [tmpl], grow=20)

    assert (out.x0, out.y0) == (-20, -20)
    assert out.shape == (260 + 40, 300 + 40)
    assert out.bit("NO_DATA") != 0
    assert not out.plane("NO_DATA").any()
    np.testing.assert_allclose(out.variance, 4.0, rtol=1e-5)
    # Expected positions from the science WCS, in the grown array.
    sx, sy = sci.wcs.world_to_pixel_values(ra, dec)
    ax, ay = sx + 20, sy + 20
    ok = (ax > 16) & (ax < out.shape[1] - 17) & (ay > 16) & (ay < out.shape[0] - 17)
    assert ok.sum() >= 20
    img = out.image - 5.0
    dpos, dflux = [], []
    for x, y, f in zip(ax[ok], ay[ok], flux[ok], strict=True):
        mx, my, mf = _moments(img, x, y)
        dpos.append(np.hypot(mx - x, my - y))
        dflux.append(mf / f - 1)
    print(f"max offset {max(dpos):.4f} px, max flux error {np.max(np.abs(dflux)):.4%}")
    assert max(dpos) < 0.05, max(dpos)
    assert np.max(np.abs(dflux)) < 0.01, dflux
    # The output WCS puts the same sky position on the same parent pixel as the science WCS.
    px, py = out.wcs.world_to_pixel_values(ra[:3], dec[:3])
    np.testing.assert_allclose(px + out.x0, sx[:3] + sci.x0, atol=1e-9)
    np.testing.assert_allclose(py + out.y0, sy[:3] + sci.y0, atol=1e-9)


def test_smooth_field_matches_truth_and_reproject():
    from reproject import reproject_interp

    sci = _sip_science(120, 100, rot=20.0)
    tw = tan_wcs(200, 200, rot_deg=-10.0)

    def field(x, y):
        return 100 + 10 * np.sin(x / 9.0) * np.cos(y / 7.0)

    yy, xx = np.mgrid[0:200, 0:200]
    out = build_template(sci, [make_image(field(xx, yy), np.ones((200, 200)), tw)], grow=20)
    gx, gy = tw.world_to_pixel_values(
        *out.wcs.pixel_to_world_values(
            *np.meshgrid(np.arange(out.shape[1]), np.arange(out.shape[0]))
        )
    )
    inner = (gx > 2) & (gx < 197) & (gy > 2) & (gy < 197)
    assert inner.sum() > 0.5 * inner.size
    assert not out.plane("NO_DATA")[inner].any()
    # Keys cubic (a = -0.75): < 1 % of the amplitude on a 57 px wave (reproject bilinear: 0.4 %).
    assert np.max(np.abs(out.image - field(gx, gy))[inner]) < 0.1
    ref, fp = reproject_interp((field(xx, yy), tw), out.wcs, shape_out=out.shape, order="bicubic")
    assert np.max(np.abs(out.image - ref)[inner & (fp > 0)]) < 0.1


def _split_patches(timg, tw, var, overlap=8):
    """Two 'patches' of one tract: the left and right part of one coadd, overlapping."""
    n = timg.shape[1]
    cut = n // 2
    left = make_image(timg[:, : cut + overlap], var[:, : cut + overlap], tw)
    rw = tw.deepcopy()
    rw.wcs.crpix = rw.wcs.crpix - [cut - overlap, 0]
    rw.wcs.set()
    right = make_image(timg[:, cut - overlap :], var[:, cut - overlap :], rw)
    return left, right


def test_patch_seam_leaves_no_step():
    sci = _sip_science(200, 160, rot=30.0)
    ra, dec, flux = sky_star_field(40, np.random.default_rng(5), 0.004)
    tw = tan_wcs(320, 320, rot_deg=0.0)
    rng = np.random.default_rng(6)
    timg = _stars_on(tw, (320, 320), ra, dec, flux) + rng.normal(0, 3, (320, 320)) + 50
    var = np.full(timg.shape, 9.0)
    whole = build_template(sci, [make_image(timg, var, tw)])
    left, right = _split_patches(timg, tw, var)
    mosaic = build_template(sci, [left, right])
    assert not mosaic.plane("NO_DATA").any()
    # Same tract, same pixels: the mosaic equals the warp of the whole coadd (no step at the seam).
    np.testing.assert_allclose(mosaic.image, whole.image, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(mosaic.variance, whole.variance, rtol=1e-5)


def test_row_blocks_warped_in_threads_equal_one_block_and_cancel_stops(monkeypatch):
    """Many row blocks, warped one block ahead in the worker threads, give the same pixels as
    one block; cancelling between blocks raises and stops the pending work."""
    from diascan import template as tm
    from diascan.errors import Cancelled
    from diascan.progress import CancelToken

    sci = _sip_science(200, 160, rot=30.0)
    ra, dec, flux = sky_star_field(40, np.random.default_rng(5), 0.004)
    tw = tan_wcs(320, 320, rot_deg=0.0)
    timg = _stars_on(tw, (320, 320), ra, dec, flux) + 50
    var = np.full(timg.shape, 9.0)
    patches = _split_patches(timg, tw, var)
    for inputs in (patches, patches[:1]):  # the mosaic and the single-input path
        monkeypatch.setattr(tm, "BLOCK_ROWS", 1000)  # 200 rows: one block
        ref = build_template(sci, inputs)
        monkeypatch.setattr(tm, "BLOCK_ROWS", 16)
        blocks = build_template(sci, inputs)
        for plane in ("image", "variance", "mask"):
            np.testing.assert_array_equal(getattr(blocks, plane), getattr(ref, plane))

    token, seen = CancelToken(), []

    def progress(stage, fraction, message=""):
        seen.append(fraction)
        if len(seen) == 3:  # after the first block
            token.cancel()

    with pytest.raises(Cancelled):
        build_template(sci, patches, progress=progress, cancel=token)
    assert len(seen) == 3


def test_tracts_combine_with_inverse_sigma_weights_and_nodata_outside():
    sci = _sip_science(100, 80, rot=10.0)
    # Tract A covers everything with I=1, V=1; tract B (other WCS) only the left part, I=2, V=4.
    ta = make_image(np.ones((200, 200)), np.ones((200, 200)), tan_wcs(200, 200, rot_deg=5))
    wb = tan_wcs(60, 200, rot_deg=-7.0, crpix=[100.5, 100.5])
    tb = make_image(np.full((200, 60), 2.0), np.full((200, 60), 4.0), wb)
    out = build_template(sci, [ta, tb])
    bx, by = wb.world_to_pixel_values(
        *out.wcs.pixel_to_world_values(
            *np.meshgrid(np.arange(out.shape[1]), np.arange(out.shape[0]))
        )
    )
    both = (bx > 3) & (bx < 56) & (by > 3) & (by < 196)
    only_a = (bx < -2) | (bx > 62)
    assert both.sum() > 100 and only_a.sum() > 100
    # w = 1/sigma: 1 and 0.5 -> image (1 + 1) / 1.5, variance (1 + 2) / 1.5.
    np.testing.assert_allclose(out.image[both], 4 / 3, rtol=1e-4)
    np.testing.assert_allclose(out.variance[both], 2.0, rtol=1e-4)
    np.testing.assert_allclose(out.image[only_a], 1.0, rtol=1e-5)

    # Only tract B: the uncovered part is 0, variance 0 and NO_DATA.
    out_b = build_template(sci, [tb])
    nd = out_b.plane("NO_DATA")
    assert nd[only_a].all() and not nd[both].any()
    assert (out_b.image[nd] == 0).all() and (out_b.variance[nd] == 0).all()


def test_mask_planes_follow_names_and_nodata_inputs_do_not_contribute():
    sci = _sip_science(100, 80, rot=0.0)
    w = tan_wcs(200, 200)
    planes_a = {"BAD": 0, "SAT": 1, "NO_DATA": 8}
    planes_b = {"NO_DATA": 2, "SAT": 5, "STREAK": 7}
    ma = np.zeros((200, 200), np.int32)
    mb = np.zeros((200, 200), np.int32)
    mb[100, 100] = 1 << 5  # SAT in B's bits
    mb[:, :60] = 1 << 2  # B has no data on its left part
    a = make_image(np.ones((200, 200)), np.ones((200, 200)), w, mask=ma)
    a.mask_planes = planes_a
    b = make_image(np.full((200, 200), 3.0), np.ones((200, 200)), w, mask=mb)
    b.mask_planes = planes_b
    out = build_template(sci, [a, b])
    assert set(out.mask_planes) >= {"BAD", "SAT", "NO_DATA", "STREAK"}
    gx, gy = w.world_to_pixel_values(
        *out.wcs.pixel_to_world_values(
            *np.meshgrid(np.arange(out.shape[1]), np.arange(out.shape[0]))
        )
    )
    sat = out.plane("SAT")
    assert (
        sat.any() and np.all(np.abs(gx[sat] - 100) < 1.01) and np.all(np.abs(gy[sat] - 100) < 1.01)
    )
    left = gx < 55
    np.testing.assert_allclose(out.image[left], 1.0, rtol=1e-5)  # only A contributes there
    assert not out.plane("NO_DATA")[left].any()
    np.testing.assert_allclose(out.image[gx > 65], 2.0, rtol=1e-5)


def test_template_on_the_science_grid_passes_through_untouched():
    sci = _sip_science(100, 80)
    x0, y0, nx, ny, wcs = output_grid(sci, 20)
    t = make_image(np.random.default_rng(0).normal(size=(ny, nx)), np.ones((ny, nx)), wcs, x0, y0)
    assert build_template(sci, [t]) is t


def test_bad_inputs_raise_input_errors():
    sci = _sip_science(100, 80)
    with pytest.raises(InputError, match="no template"):
        build_template(sci, [])
    far = make_image(np.ones((50, 50)), np.ones((50, 50)), tan_wcs(50, 50, crval=(10.0, -40.0)))
    with pytest.raises(InputError, match="overlaps"):
        build_template(sci, [far])
    nowcs = make_image(np.ones((50, 50)), np.ones((50, 50)), None)
    with pytest.raises(InputError, match="WCS"):
        build_template(sci, [nowcs])


def test_galactic_template_warps_like_an_equatorial_one(tmp_path):
    """A template on a GLON/GLAT WCS (read from a FITS file) puts the stars where an equatorial
    template of the same field does: RA/Dec are converted to the template's frame, not reused."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astropy.wcs import WCS

    from diascan.io import read_image
    from diascan.io.images import write_exposure

    sci = _sip_science()
    ra, dec, flux = _grid_stars()
    n = 520
    eq = tan_wcs(n, n, rot_deg=0.0)
    centre = SkyCoord(150.0 * u.deg, 2.0 * u.deg).galactic
    gal = WCS(naxis=2)
    gal.wcs.ctype = ["GLON-TAN", "GLAT-TAN"]
    gal.wcs.crval = [centre.l.deg, centre.b.deg]
    gal.wcs.crpix = [n / 2 + 0.5, n / 2 + 0.5]
    t = np.deg2rad(15.0)
    gal.wcs.cd = 0.2 / 3600 * np.array([[-np.cos(t), np.sin(t)], [np.sin(t), np.cos(t)]])
    gal.wcs.set()
    stars = SkyCoord(ra * u.deg, dec * u.deg)
    paths = {}
    for name, w in (("eq", eq), ("gal", gal)):
        x, y = w.world_to_pixel(stars)
        img = render_stars((n, n), x, y, flux, SIGMA) + 5.0
        paths[name] = write_exposure(
            tmp_path / f"{name}.fits", make_image(img, np.full((n, n), 4.0), w)
        )
    tmpl = {name: read_image(p) for name, p in paths.items()}
    assert tmpl["gal"].wcs.wcs.ctype[0] == "GLON-TAN"
    out = {name: build_template(sci, [t]) for name, t in tmpl.items()}
    sx, sy = sci.wcs.world_to_pixel_values(ra, dec)
    ax, ay = sx + 20, sy + 20
    ok = (ax > 16) & (ax < out["eq"].shape[1] - 17) & (ay > 16) & (ay < out["eq"].shape[0] - 17)
    assert ok.sum() >= 20
    for x, y in zip(ax[ok], ay[ok], strict=True):
        ex, ey, ef = _moments(out["eq"].image - 5.0, x, y)
        gx, gy, gf = _moments(out["gal"].image - 5.0, x, y)
        assert np.hypot(gx - ex, gy - ey) < 0.05 and np.hypot(gx - x, gy - y) < 0.05
        assert abs(gf / ef - 1) < 0.01
    assert not out["gal"].plane("NO_DATA")[20:-20, 20:-20].any()


def test_no_overlap_message_names_in_memory_templates():
    sci = _sip_science(100, 80)
    far = make_image(np.ones((50, 50)), np.ones((50, 50)), tan_wcs(50, 50, crval=(10.0, -40.0)))
    with pytest.raises(InputError) as info:
        build_template(sci, [far, far])
    msg = str(info.value)
    assert "(template 1 (in memory), template 2 (in memory))" in msg and "None" not in msg


@pytest.mark.parametrize("shape", [(300, 420), (40, 2)])
def test_grid_spline_blocks_equal_fitpack(shape):
    """The block-wise tensor-product evaluation of the mapping spline gives fitpack's values
    (cubic, and linear along an axis of only 2 nodes) on any block of rows and columns."""
    from scipy.interpolate import RectBivariateSpline

    from diascan.template import _GridSpline

    ny, nx = shape
    node_y = np.linspace(0.0, ny - 1, max(2, ny // 32 + 1))
    node_x = np.linspace(0.0, nx - 1, max(2, nx // 32 + 1))
    gx, gy = np.meshgrid(node_x, node_y)
    values = 1.001 * gx + 0.02 * gy + 3e-5 * gx * gy + 2.0 * np.sin(gy / 50.0) + 100.25
    ky, kx = min(3, len(node_y) - 1), min(3, len(node_x) - 1)
    ref = RectBivariateSpline(node_y, node_x, values, kx=ky, ky=kx)
    spline = _GridSpline(node_y, node_x, values, nx)
    for r0, r1, c0, c1 in ((0, ny, 0, nx), (7, 23, 1, nx - 1), (ny - 5, ny, 0, 1)):
        want = ref(np.arange(r0, r1, dtype=float), np.arange(c0, c1, dtype=float))
        np.testing.assert_allclose(spline.block(r0, r1, c0, c1), want, rtol=0, atol=1e-9)
