"""Rendering primitives of diascan.demo.sources: flux conservation, positions, shapes, defects."""

from __future__ import annotations

import numpy as np
import pytest

from diascan.demo import sources as src


def _centroid(img: np.ndarray) -> tuple[float, float]:
    yy, xx = np.indices(img.shape)
    tot = img.sum()
    return float((img * xx).sum() / tot), float((img * yy).sum() / tot)


@pytest.mark.parametrize("sigma", [0.7, 2.0, 3.7])
def test_point_source_flux_and_centroid(sigma):
    img = np.zeros((81, 91), dtype=np.float32)
    src.add_point_sources(img, [40.3], [37.8], [1234.5], sigma)
    assert img.sum() == pytest.approx(1234.5, rel=1e-5)
    cx, cy = _centroid(img)
    assert cx == pytest.approx(40.3, abs=1e-3)
    assert cy == pytest.approx(37.8, abs=1e-3)
    # x is the column: the peak is in column 40, row 38.
    assert np.unravel_index(np.argmax(img), img.shape) == (38, 40)


def test_point_sources_vectorised_add_negative_and_clip():
    img = np.zeros((51, 51), dtype=np.float64)
    x = np.array([10.0, 25.0, 50.5, -30.0])  # the last one is entirely off the array
    y = np.array([10.0, 25.0, 25.0, 10.0])
    flux = np.array([100.0, -50.0, 80.0, 1e6])
    src.add_point_sources(img, x, y, flux, 2.0)
    assert img[10, 10] > 0 and img[25, 25] < 0
    # Half of the edge source falls off the array; the off-array source adds nothing.
    total = 100.0 - 50.0 + 80.0 * 0.5
    assert img.sum() == pytest.approx(total, rel=0.02)


def test_point_sources_on_a_non_contiguous_view():
    big = np.zeros((60, 60), dtype=np.float32)
    view = big[::2, ::2]  # 30 x 30, not contiguous
    src.add_point_sources(view, [15.0], [15.0], [100.0], 1.5)
    assert view.sum() == pytest.approx(100.0, rel=1e-5)
    assert big[30, 30] == view[15, 15] > 0


def test_per_source_sigma():
    img = np.zeros((64, 128), dtype=np.float32)
    src.add_point_sources(img, [30.0, 90.0], [32.0, 32.0], [100.0, 100.0], [1.0, 4.0])
    assert img[32, 30] > 5 * img[32, 90]


def test_galaxy_flux_orientation_and_ellipticity():
    img = np.zeros((161, 161), dtype=np.float64)
    theta = np.radians(30.0)
    src.add_galaxies(img, [80.4], [79.6], [5000.0], [8.0], [0.4], [theta], 2.0)
    assert img.sum() == pytest.approx(5000.0, rel=1e-4)
    cx, cy = _centroid(img)
    assert cx == pytest.approx(80.4, abs=0.02) and cy == pytest.approx(79.6, abs=0.02)
    yy, xx = np.indices(img.shape)
    w = img / img.sum()
    cxx = (w * (xx - cx) ** 2).sum()
    cyy = (w * (yy - cy) ** 2).sum()
    cxy = (w * (xx - cx) * (yy - cy)).sum()
    angle = 0.5 * np.arctan2(2 * cxy, cxx - cyy)
    assert angle == pytest.approx(theta, abs=np.radians(2.0))
    evals = np.linalg.eigvalsh([[cxx, cxy], [cxy, cyy]])
    assert evals[0] / evals[1] < 0.5  # clearly elongated


def test_galaxies_de_vaucouleurs_more_concentrated_than_exponential():
    exp_img = np.zeros((121, 121))
    dev_img = np.zeros((121, 121))
    src.add_galaxies(exp_img, [60.0], [60.0], [1000.0], [6.0], [1.0], [0.0], 1.0, n_sersic=1.0)
    src.add_galaxies(dev_img, [60.0], [60.0], [1000.0], [6.0], [1.0], [0.0], 1.0, n_sersic=4.0)
    assert exp_img.sum() == pytest.approx(1000.0, rel=1e-4)
    assert dev_img.sum() == pytest.approx(1000.0, rel=1e-4)
    assert dev_img[60, 60] > 2 * exp_img[60, 60]


def test_galaxies_many_sizes_in_one_call():
    rng = np.random.default_rng(3)
    img = np.zeros((400, 400), dtype=np.float32)
    n = 60
    reff = np.exp(rng.uniform(np.log(0.8), np.log(25.0), n))
    src.add_galaxies(
        img, rng.uniform(150, 250, n), rng.uniform(150, 250, n), np.full(n, 100.0), reff,
        rng.uniform(0.3, 1.0, n), rng.uniform(0, np.pi, n), 3.0,
    )  # fmt: skip
    assert img.sum() == pytest.approx(6000.0, rel=1e-3)


def test_trailed_source_is_elongated_along_its_angle():
    img = np.zeros((81, 81))
    src.add_trailed_sources(img, [40.0], [40.0], [1000.0], 1.5, 20.0, 0.0)
    assert img.sum() == pytest.approx(1000.0, rel=1e-5)
    assert img[40, 48] > 10 * img[48, 40]


def test_cosmic_rays_hot_pixels_bad_columns():
    rng = np.random.default_rng(7)
    img = np.zeros((200, 300), dtype=np.float32)
    crs = src.add_cosmic_rays(img, rng, 12, length=(5.0, 20.0), peak=(1000.0, 2000.0))
    assert crs.x.shape == (12,) and crs.mask.shape == img.shape
    assert crs.mask.sum() >= 12 * 4
    assert (img[crs.mask] > 0).all() and (img[~crs.mask] == 0).all()
    # Sharp: most of a track's deposit is in single pixels of ~peak level, no PSF wings.
    assert np.median(img[crs.mask]) > 500.0

    img2 = np.zeros((50, 60), dtype=np.float32)
    hot = src.add_hot_pixels(img2, rng, 5, value=(1000.0, 1001.0))
    assert hot.mask.sum() <= 5 and (img2[hot.mask] >= 1000.0).all()
    assert img2[hot.y.astype(int), hot.x.astype(int)].min() >= 1000.0

    img3 = np.zeros((100, 80), dtype=np.float32)
    bad = src.add_bad_columns(img3, rng, 2, value=(500.0, 600.0), min_rows=30)
    cols = np.flatnonzero(bad.mask.any(axis=0))
    assert set(cols) <= set(bad.x.astype(int)) and len(cols) >= 1
    assert bad.mask.sum(axis=0).max() >= 30


def test_stamps_are_training_stamp_friendly():
    """The models engineer renders 51 x 51 stamps: centred source, exact flux, float32 in/out."""
    stamp = np.zeros((51, 51), dtype=np.float32)
    src.add_point_sources(stamp, 25.0, 25.0, 1000.0, 2.0)
    assert stamp.dtype == np.float32
    assert stamp.sum() == pytest.approx(1000.0, rel=1e-5)
    assert stamp[25, 25] == stamp.max()
    assert stamp[25, 25] == pytest.approx(1000.0 / (2 * np.pi * 4.0), rel=0.05)
