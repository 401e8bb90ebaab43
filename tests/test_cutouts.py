"""Cutouts follow the Rubin rule: corner = round_half_up(x) - half, parent coords, zeros outside."""

from __future__ import annotations

import numpy as np
import pytest

from diascan.cutouts import cut_stamps, stamp_inside
from diascan.io.images import ImageData


def _coded(ny: int, nx: int, x0: int = 0, y0: int = 0, channel: int = 0) -> ImageData:
    """Image whose pixel value encodes its parent position: channel*1e6 + 1000*y + x."""
    yy, xx = np.mgrid[0:ny, 0:nx]
    img = (channel * 1_000_000 + 1000.0 * (yy + y0) + (xx + x0)).astype(np.float32)
    return ImageData(
        image=img, mask=np.zeros((ny, nx), np.int32), variance=np.ones((ny, nx), np.float32),
        x0=x0, y0=y0,
    )


@pytest.fixture
def triple():
    ny, nx = 120, 150
    diff = _coded(ny, nx, channel=1)
    sci = _coded(ny, nx, channel=2)
    tmpl = _coded(ny + 40, nx + 40, x0=-20, y0=-20, channel=3)
    return diff, sci, tmpl


def _expected(cx: int, cy: int, channel: int, size: int) -> np.ndarray:
    yy, xx = np.mgrid[cy : cy + size, cx : cx + size]
    return (channel * 1_000_000 + 1000.0 * yy + xx).astype(np.float32)


def test_channels_order_and_template_offset(triple):
    diff, sci, tmpl = triple
    stamps = cut_stamps(np.array([60.2]), np.array([70.0]), diff, sci, tmpl)
    assert stamps.shape == (1, 3, 51, 51) and stamps.dtype == np.float32
    for ch in range(3):
        np.testing.assert_array_equal(stamps[0, ch], _expected(60 - 25, 70 - 25, ch + 1, 51))
    # Centre pixel of every channel is the source's own parent pixel (template x0 = -20 honoured).
    assert stamps[0, 2, 25, 25] == 3_000_000 + 70_000 + 60


def test_round_half_up_not_bankers(triple):
    diff, sci, tmpl = triple
    # 60.5 -> 61 and 61.5 -> 62 (numpy's round would give 60 and 62); 59.4999 -> 59.
    stamps = cut_stamps([60.5, 61.5, 59.4999], [70.5, 70.5, 70.0], diff, sci, tmpl)
    assert stamps[0, 1, 25, 25] == 2_000_000 + 71_000 + 61
    assert stamps[1, 1, 25, 25] == 2_000_000 + 71_000 + 62
    assert stamps[2, 1, 25, 25] == 2_000_000 + 70_000 + 59


def test_borders_all_zero_when_box_leaves_science(triple):
    diff, sci, tmpl = triple
    ny, nx = sci.shape
    # Exactly fitting at each border, then one pixel further out.
    x = np.array([25, 24, nx - 26, nx - 25, 60, 60, 60, 60], dtype=float)
    y = np.array([60, 60, 60, 60, 25, 24, ny - 26, ny - 25], dtype=float)
    stamps = cut_stamps(x, y, diff, sci, tmpl)
    inside = stamp_inside(x, y, sci)
    np.testing.assert_array_equal(inside, [True, False, True, False, True, False, True, False])
    for k in range(len(x)):
        if inside[k]:
            np.testing.assert_array_equal(
                stamps[k, 0], _expected(int(x[k]) - 25, int(y[k]) - 25, 1, 51)
            )
        else:
            # All three channels zero although the template covers the box.
            assert not stamps[k].any()
    # Left edge: 24.5 rounds up to 25 -> inside; 24.4999 -> 24 -> outside.
    np.testing.assert_array_equal(stamp_inside([24.5, 24.4999], [60, 60], sci), [True, False])


def test_nan_inf_and_no_normalisation(triple):
    diff, sci, tmpl = triple
    diff.image[70, 60] = np.nan
    sci.image[70, 61] = np.inf
    tmpl.image[70 + 20, 62 + 20] = -np.inf
    stamps = cut_stamps([60.0, np.nan], [70.0, 70.0], diff, sci, tmpl)
    fmax = np.finfo(np.float32).max
    assert stamps[0, 0, 25, 25] == 0.0
    assert stamps[0, 1, 25, 26] == fmax
    assert stamps[0, 2, 25, 27] == -fmax
    assert np.isfinite(stamps).all()
    assert stamps[0, 1, 0, 0] == 2_000_000 + 45_000 + 35  # raw value, not rescaled
    assert not stamps[1].any()  # NaN position -> outside -> zeros


def test_configurable_size_and_vectorised_matches_loop(triple):
    diff, sci, tmpl = triple
    rng = np.random.default_rng(3)
    x = rng.uniform(-5, 155, 300)
    y = rng.uniform(-5, 125, 300)
    size = 21
    stamps = cut_stamps(x, y, diff, sci, tmpl, size=size)
    assert stamps.shape == (300, 3, 21, 21)
    for k in range(300):
        cx = int(np.floor(x[k] + 0.5)) - 10
        cy = int(np.floor(y[k] + 0.5)) - 10
        if cx >= 0 and cy >= 0 and cx + size <= 150 and cy + size <= 120:
            for ch in range(3):
                np.testing.assert_array_equal(stamps[k, ch], _expected(cx, cy, ch + 1, size))
        else:
            assert not stamps[k].any()


def test_template_smaller_than_science_is_zero_filled():
    diff = _coded(100, 100, channel=1)
    sci = _coded(100, 100, channel=2)
    tmpl = _coded(60, 60, channel=3)  # covers only x, y < 60
    stamps = cut_stamps([50.0], [30.0], diff, sci, tmpl)
    # Science box x in [25, 75]; template columns >= 60 are missing -> zeros there only.
    assert stamps[0, 1].all()
    assert stamps[0, 2, :, : 60 - 25].all()
    assert not stamps[0, 2, :, 60 - 25 :].any()


def test_science_with_nonzero_origin():
    diff = _coded(80, 80, x0=100, y0=200, channel=1)
    sci = _coded(80, 80, x0=100, y0=200, channel=2)
    tmpl = _coded(120, 120, x0=80, y0=180, channel=3)
    # Second box: y corner 224 - 25 = 199 < y0 = 200 -> outside the science image.
    stamps = cut_stamps([140.0, 130.0], [240.0, 224.0], diff, sci, tmpl)
    assert stamps[0, 2, 25, 25] == 3_000_000 + 240_000 + 140
    assert stamps[0, 0, 0, 0] == 1_000_000 + 215_000 + 115
    assert not stamps[1].any()
