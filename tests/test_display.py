"""Display maths (Qt-free): limits, the vectorised zscale, stretches, lookup tables, overlays."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.visualization import ZScaleInterval

from diascan import display


def test_display_copy_is_float32_contiguous_nan_free():
    a = np.arange(20.0, dtype=np.float64).reshape(4, 5).T  # Fortran-ordered view
    a[0, 0] = np.nan
    a[1, 1] = np.inf
    out = display.display_copy(a)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    assert np.isfinite(out).all()
    assert out.shape == a.shape
    assert out[2, 2] == a[2, 2]
    small = display.display_copy(np.ones((1000, 400)), max_side=250)
    assert max(small.shape) <= 250


def test_compute_levels_modes():
    rng = np.random.default_rng(0)
    img = rng.normal(10.0, 2.0, (512, 512)).astype(np.float32)
    img[0, :5] = 1e6  # a few hot pixels
    lo, hi = display.compute_levels(img, "minmax")
    assert hi == pytest.approx(1e6)
    lo, hi = display.compute_levels(img, "zscale")
    assert 0 < lo < 10 < hi < 30
    lo99, hi99 = display.compute_levels(img, "99%")
    lo95, hi95 = display.compute_levels(img, "95%")
    assert lo99 < lo95 < hi95 < hi99 < 1e6
    slo, shi = display.compute_levels(img - 10, "99.5%", symmetric=True)
    assert slo == -shi and shi > 0
    with pytest.raises(ValueError):
        display.compute_levels(img, "bogus")
    assert display.compute_levels(np.full((4, 4), np.nan)) == (0.0, 1.0)


@pytest.mark.parametrize("name", display.STRETCHES)
def test_stretch_curve_monotonic(name):
    c = display.stretch_curve(name, 256)
    assert c[0] == pytest.approx(0.0) and c[-1] == pytest.approx(1.0)
    assert np.all(np.diff(c) >= 0)
    if name != "linear":
        assert c[64] > 0.25  # boosts faint values


def test_stretch_lut_matches_direct_stretch():
    """The LUT route (levels + curve lookup) gives the same result as stretching the pixels."""
    rng = np.random.default_rng(1)
    img = rng.normal(0, 1, (64, 64)).astype(np.float32)
    levels = (-1.0, 2.0)
    direct = display.apply_stretch(img, levels, "asinh")
    curve = display.stretch_curve("asinh", 4096)
    norm = np.clip((img - levels[0]) / (levels[1] - levels[0]), 0, 1)
    via_lut = curve[np.round(norm * 4095).astype(int)]
    assert np.max(np.abs(direct - via_lut)) < 0.01
    with pytest.raises(ValueError):
        display.stretch_curve("gamma")


def _stamps(n: int, size: int, seed: int) -> np.ndarray:
    """Noise stamps with a source, some with heavy tails and some on a bright background."""
    rng = np.random.default_rng(seed)
    st = rng.normal(0, 1, (n, size, size)).astype(np.float32)
    st[:, size // 2 - 2 : size // 2 + 2, size // 2 - 2 : size // 2 + 2] += rng.uniform(
        0, 200, (n, 1, 1)).astype(np.float32)
    st[::5] += rng.standard_cauchy((len(st[::5]), size, size)).astype(np.float32)
    st[1::3] += 5000.0  # sky level: the line fit sums must not lose precision
    st[2] = 3.0  # a flat stamp
    return st


@pytest.mark.parametrize("size", [31, 40, 51, 101])
def test_zscale_many_matches_astropy_stamp_by_stamp(size):
    """The vectorised zscale is astropy's ZScaleInterval, to float rounding."""
    stamps = _stamps(60, size, seed=size)
    got = display.compute_levels_many(stamps, "zscale")
    ref = np.array([ZScaleInterval().get_limits(s) for s in stamps])
    np.testing.assert_allclose(got[:, 0], ref[:, 0], rtol=1e-6, atol=1e-6)
    flat = ref[:, 1] > ref[:, 0]
    np.testing.assert_allclose(got[flat, 1], ref[flat, 1], rtol=1e-6, atol=1e-6)
    assert np.all(got[~flat, 1] == got[~flat, 0] + 1.0)  # as compute_levels widens flat limits


def test_compute_levels_many_nan_stamps_and_symmetric():
    stamps = _stamps(12, 51, seed=3)
    stamps[0, :, :20] = np.nan  # a stamp at the image edge
    stamps[1, 10:15, 10:15] = np.nan  # NO_DATA pixels
    stamps[4] = np.nan  # nothing at all
    got = display.compute_levels_many(stamps, "zscale", symmetric=True)
    for k, s in enumerate(stamps):
        assert tuple(got[k]) == pytest.approx(display.compute_levels(s, "zscale", True), rel=1e-6)
    assert tuple(got[4]) == (0.0, 1.0)
    pct = display.compute_levels_many(stamps[:3], "99.5%")
    assert tuple(pct[2]) == pytest.approx(display.compute_levels(stamps[2], "99.5%"))


def test_batched_zscale_matches_astropy_on_real_stamps(small_demo_result):
    """The gallery's page path (cut a page of stamps, limits of all 3 x N at once) gives
    astropy's ZScaleInterval limits on the finite pixels of each real stamp: inside the image,
    partly off it (NaN columns), with a NO_DATA-like hole, and entirely off it (all blank)."""
    from diascan import viewstate as vs
    from diascan.stamp_display import StampDisplay, stamp_levels
    from diascan.visit_stamps import VisitStamps

    res = small_demo_result
    sources = vs.SourceSet.from_table(res.detections)
    sci = res.science
    x = np.append(np.asarray(sources.x, float)[:30], [sci.x0 + 10.0, sci.x0 - 500.0])
    y = np.append(np.asarray(sources.y, float)[:30], [sci.y0 + 300.0, sci.y0 + 300.0])
    visit = VisitStamps({n: getattr(res, n) for n in vs.FRAMES}, x, y)
    for size in (31, 51, 101):
        stack = visit.triplets(range(len(x)), size)
        stack[3, :, 5:9, 5:9] = np.nan  # a hole in one triplet
        assert np.isnan(stack[-2, 0]).any() and np.isfinite(stack[-2, 0]).any()  # partly off
        assert np.isnan(stack[-1]).all()  # entirely off the images
        got = stamp_levels(stack, StampDisplay.per_tile())
        for k in range(len(x)):
            for c in range(3):
                finite = stack[k, c][np.isfinite(stack[k, c])]
                if finite.size == 0:
                    assert tuple(got[k, c]) == (0.0, 1.0)
                    continue
                lo, hi = ZScaleInterval().get_limits(finite)
                if c == 2:  # the difference: symmetric around zero
                    lo, hi = -max(abs(lo), abs(hi)), max(abs(lo), abs(hi))
                if not hi > lo:
                    hi = lo + 1.0
                np.testing.assert_allclose(got[k, c], (lo, hi), rtol=1e-6, atol=1e-6,
                                           err_msg=f"stamp {k}, channel {c}, size {size}")


def test_dilate_matches_numpy_convolve():
    """The growth of the rejected samples is astropy's np.convolve(..., mode="same"), on the
    rows asked for only."""
    rng = np.random.default_rng(0)
    bad = rng.random((20, 500)) > 0.97
    bad[3, :40] = bad[4, -40:] = True  # runs at both ends of a row
    bad[5] = True
    rows = np.ones(20, dtype=bool)
    rows[7] = False
    for n in (1, 2, 3, 4, 9, 10):
        ref = np.array([np.convolve(r, np.ones(n, bool), mode="same") for r in bad])
        ref[7] = bad[7]
        got = bad.copy()
        display._dilate(got, rows, n)
        np.testing.assert_array_equal(got, ref)


def test_make_lut_colormaps_and_stretches():
    grey = display.make_lut("grey", "linear")
    assert grey.shape == (256, 4) and grey.dtype == np.uint8
    assert grey[0].tolist() == [0, 0, 0, 255] and grey[-1].tolist() == [255, 255, 255, 255]
    assert np.all(np.diff(grey[:, 0].astype(int)) >= 0)
    asinh = display.make_lut("grey", "asinh")
    assert asinh[64, 0] > grey[64, 0]  # the stretch boosts faint values
    viridis = display.make_lut("viridis", "linear")
    assert viridis[0, :3].tolist() == pytest.approx([68, 1, 84], abs=2)  # matplotlib's viridis
    d1 = display.make_lut("CET-D1", "linear")
    assert d1[0, 2] > d1[0, 0] and d1[-1, 0] > d1[-1, 2]  # blue -> red diverging
    for name in display.COLORMAPS:
        assert display.make_lut(name, "sqrt").shape == (256, 4)
    with pytest.raises(ValueError, match="unknown colormap"):
        display.make_lut("jet", "linear")
    assert not display.make_lut("grey", "log").flags.writeable  # shared, cached table


def test_lut_indices_per_image_levels_and_nan():
    img = np.array([[[0.0, 5.0, 10.0, np.nan]], [[0.0, 5.0, 10.0, 20.0]]], dtype=np.float32)
    idx = display.lut_indices(img, np.array([[0.0, 10.0], [0.0, 20.0]]))
    assert idx.dtype == np.uint8
    assert idx[0, 0].tolist() == [0, 128, 255, 0]
    assert idx[1, 0].tolist() == [0, 64, 128, 255]


def test_mask_overlay_any_integer_mask():
    planes = {"BAD": 0, "SAT": 3}
    mask = np.array([[0, 1], [8, 9]], dtype=np.int32)
    assert display.mask_overlay(mask, planes, [], {}, 0.5) is None
    ov = display.mask_overlay(mask, planes, ["SAT"], {"SAT": (0, 255, 0)}, 1.0)
    assert ov.shape == (2, 2, 4)
    assert ov[1, 0].tolist() == [0, 255, 0, 255] and ov[0, 1, 3] == 0
    # int64 masks (files with more than 31 planes), bits above 31 and the sign bit
    big = {"BAD": 0, "PLANE40": 40, "PLANE63": 63}
    m64 = np.zeros((3, 3), dtype=np.int64)
    m64[0, 0] = 1 << 40
    m64[1, 1] = np.int64(-(2**63))  # bit 63 only
    m64[2, 2] = 1
    ov = display.mask_overlay(m64, big, ["PLANE40", "PLANE63"], {"PLANE40": (1, 2, 3)}, 0.5)
    assert ov.shape == (3, 3, 4)
    assert ov[0, 0].tolist() == [1, 2, 3, 128]
    assert ov[1, 1].tolist() == [255, 0, 255, 128]  # no colour given: magenta
    assert ov[2, 2, 3] == 0
    # a plane beyond an int32 mask's bits is never set; bit 31 of int32 is its sign bit
    m32 = np.array([[np.int32(-(2**31)), 0]], dtype=np.int32)
    ov = display.mask_overlay(m32, {"TOP": 31, "FAR": 40}, ["TOP", "FAR"], {}, 1.0)
    assert ov[0, 0, 3] == 255 and ov[0, 1, 3] == 0
    with pytest.raises(ValueError, match="integers"):
        display.mask_overlay(m32.astype(float), planes, ["BAD"], {}, 1.0)


def test_display_copy_reuses_a_frame_that_needs_no_copy():
    display_copy = display.display_copy
    """``reuse``: a float32, C-contiguous, finite frame is shown as it is (not copied); any
    other is copied as without it (the input is never changed)."""
    good = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert display_copy(good, reuse=True) is good
    assert display_copy(good) is not good
    bad = good.copy()
    bad[1, 1] = np.nan
    out = display_copy(bad, reuse=True)
    assert out is not bad and np.isfinite(out).all() and np.isnan(bad[1, 1])
    for other in (good.astype(np.float64), np.asfortranarray(good), good[:, ::2]):
        out = display_copy(other, reuse=True)
        assert out is not other and out.dtype == np.float32 and out.flags.c_contiguous
        np.testing.assert_array_equal(out, other)
