"""The demo data set: LSST layout, geometry, physics, tables, determinism, CLI and cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from astropy.io import fits
from astropy.wcs.utils import proj_plane_pixel_scales

from diascan.cli.main import main as cli_main
from diascan.demo import DEMO_FILES, cached_demo, generate_demo
from diascan.io import read_image
from diascan.io.images import DEFAULT_MASK_PLANES

FITS_FILES = [f for f in DEMO_FILES if f.endswith(".fits")]
PATCHES = [f for f in FITS_FILES if f.startswith("template_coadd_")]
TRUTH_COLUMNS = {"ra", "dec", "x", "y", "is_real", "snr", "flux", "kind", "diaSourceId"}
DIA_COLUMNS = {
    "diaSourceId", "ra", "dec", "x", "y", "psfFlux", "psfFluxErr", "snr", "scienceFlux",
    "isDipole", "reliability", "visit", "detector", "band", "midpointMjdTai",
    "pixelFlags_bad", "pixelFlags_cr", "pixelFlags_edge", "pixelFlags_saturated",
}  # fmt: skip
REAL_KINDS = {"transient", "transient_on_galaxy", "fading_variable", "asteroid"}
BOGUS_KINDS = {"star_residual", "dipole", "cosmic_ray", "hot_pixel", "bad_column"}


def _table(folder: Path, name: str) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in pq.read_table(folder / name).to_pydict().items()}


@pytest.fixture(scope="module")
def images(small_demo):
    return {name: read_image(small_demo / name) for name in FITS_FILES}


def test_all_files_present(small_demo):
    assert len(PATCHES) >= 2
    for name in DEMO_FILES:
        assert (small_demo / name).is_file(), name


@pytest.mark.parametrize("name", FITS_FILES)
def test_lsst_exposure_layout(small_demo, name):
    with fits.open(small_demo / name) as hdul:
        assert hdul[0].data is None
        names = [h.name for h in hdul]
        assert names[:4] == ["PRIMARY", "IMAGE", "MASK", "VARIANCE"]
        assert hdul["IMAGE"].data.dtype.kind == "f" and hdul["IMAGE"].data.itemsize == 4
        assert hdul["MASK"].data.dtype.kind == "i" and hdul["MASK"].data.itemsize == 4
        assert hdul["IMAGE"].header["BUNIT"] == "nJy"
        mhdr = hdul["MASK"].header
        for plane in ("BAD", "SAT", "CR", "EDGE", "NO_DATA"):
            assert mhdr[f"MP_{plane}"] == DEFAULT_MASK_PLANES[plane]
        assert "PSFSIGMA" in hdul[0].header and "BAND" in hdul[0].header


def test_science_and_difference_metadata_and_grid(images):
    sci, diff = images["science.fits"], images["difference.fits"]
    for im in (sci, diff):
        assert im.shape == (1024, 1024)
        assert (im.x0, im.y0) == (0, 0)
        assert im.bunit == "nJy"
        assert im.metadata["visit"] == sci.metadata["visit"]
        assert im.metadata["detector"] == sci.metadata["detector"]
        assert im.metadata["band"] == "r"
        assert 60000 < im.metadata["mjd"] < 62000
        assert 3.0 < im.metadata["psf_sigma"] < 4.5
        assert im.has_sky
    assert sci.wcs.sip is not None and sci.wcs.wcs.ctype[0] == "RA---TAN-SIP"
    np.testing.assert_allclose(proj_plane_pixel_scales(sci.wcs) * 3600, 0.2, rtol=1e-3)
    pc = sci.wcs.wcs.get_pc()
    assert abs(pc[0, 1]) > 0.05 * abs(pc[0, 0])  # rotated, not north-up
    # Same pixel grid for science and difference.
    assert diff.wcs.to_header_string(relax=True) == sci.wcs.to_header_string(relax=True)


def test_template_patches_differ_from_science_and_overlap(images):
    sci = images["science.fits"]
    boxes = []
    for name in PATCHES:
        t = images[name]
        assert t.wcs.sip is None and t.wcs.wcs.ctype[0] == "RA---TAN"
        assert not np.allclose(t.wcs.wcs.crval, sci.wcs.wcs.crval)
        np.testing.assert_allclose(proj_plane_pixel_scales(t.wcs) * 3600, 0.2, rtol=1e-6)
        pc = t.wcs.wcs.get_pc()
        assert pc[0, 1] == 0 and pc[1, 0] == 0  # north-up
        assert (t.x0, t.y0) != (0, 0)  # patches live in the tract frame
        assert t.metadata["psf_sigma"] < sci.metadata["psf_sigma"]  # better seeing
        assert np.median(t.variance) < 0.5 * np.median(sci.variance)  # deeper
        boxes.append((t.x0, t.y0, t.x0 + t.shape[1] - 1, t.y0 + t.shape[0] - 1))
    # Same tract grid (same CRVAL) and the patch boxes overlap pairwise in that grid.
    assert np.allclose(images[PATCHES[0]].wcs.wcs.crval, images[PATCHES[1]].wcs.wcs.crval)
    a, b = boxes[0], boxes[1]
    assert a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_patches_cover_the_grown_detector_but_a_sliver(images):
    sci = images["science.fits"]
    yy, xx = np.mgrid[-20:1044:8, -20:1044:8]
    ra, dec = sci.wcs.all_pix2world(xx.ravel(), yy.ravel(), 0)
    covered = np.zeros(ra.size, dtype=bool)
    for name in PATCHES:
        t = images[name]
        px, py = t.wcs.all_world2pix(ra, dec, 0)
        ny, nx = t.shape
        covered |= (px >= -0.5) & (px <= nx - 0.5) & (py >= -0.5) & (py <= ny - 0.5)
    frac = covered.mean()
    assert 0.97 < frac < 1.0
    nodata = images["difference.fits"].plane("NO_DATA")
    assert 0 < nodata.sum() < 0.01 * nodata.size


def test_masks_and_defects(images):
    sci, diff = images["science.fits"], images["difference.fits"]
    for plane in ("SAT", "CR", "BAD", "EDGE"):
        assert sci.plane(plane).any(), plane
        assert diff.plane(plane).any(), plane
    sat = sci.plane("SAT")
    assert np.ptp(sci.image[sat]) == 0  # saturated pixels are clipped to one level
    assert sci.image[sat].min() > 100 * np.sqrt(np.median(sci.variance))
    cr = sci.plane("CR")
    assert np.median(diff.image[cr]) > 5 * np.sqrt(np.median(diff.variance))
    edge = sci.plane("EDGE")
    assert edge[0].all() and edge[-1].all() and edge[:, 0].all() and not edge[512, 512]


def test_difference_noise_matches_its_variance(images):
    sci, diff = images["science.fits"], images["difference.fits"]
    clean = diff.mask == 0
    z = diff.image[clean] / np.sqrt(diff.variance[clean])
    robust_sigma = 1.4826 * np.median(np.abs(z - np.median(z)))
    assert robust_sigma == pytest.approx(1.0, abs=0.05)
    # var_diff = var_sci + var_tmpl: larger than the science variance where covered.
    assert (diff.variance[clean] > sci.variance[clean]).all()
    assert np.isfinite(diff.image).all() and np.isfinite(diff.variance).all()


def test_truth_table(small_demo):
    t = _table(small_demo, "truth.parquet")
    assert set(t) >= TRUTH_COLUMNS
    kinds = set(t["kind"])
    assert kinds >= REAL_KINDS
    assert {"star_residual", "dipole", "cosmic_ray", "hot_pixel", "bad_column"} <= kinds
    assert kinds <= REAL_KINDS | BOGUS_KINDS
    is_real = np.isin(t["kind"], list(REAL_KINDS))
    np.testing.assert_array_equal(t["is_real"], is_real)
    assert ((t["x"] >= 0) & (t["x"] <= 1023) & (t["y"] >= 0) & (t["y"] <= 1023)).all()
    fading = t["kind"] == "fading_variable"
    assert (t["flux"][fading] < 0).all() and (t["flux"][~fading & is_real] > 0).all()
    real_snr = np.abs(t["snr"][is_real])
    assert real_snr.min() < 7 < 25 < real_snr.max()  # spread across the detection limit


def test_dia_source_table(small_demo, images):
    d = _table(small_demo, "dia_source.parquet")
    t = _table(small_demo, "truth.parquet")
    assert set(d) >= DIA_COLUMNS
    schema = pq.read_schema(small_demo / "dia_source.parquet")
    assert str(schema.field("diaSourceId").type) == "int64"
    n = d["x"].size
    assert 15 <= n <= 60
    assert np.unique(d["diaSourceId"]).size == n
    sci = images["science.fits"]
    assert (d["visit"] == sci.metadata["visit"]).all()
    assert (d["detector"] == sci.metadata["detector"]).all()
    # Every row is one injected source, with a little centroid noise (< 0.1 arcsec).
    rows = {int(i): k for k, i in enumerate(t["diaSourceId"]) if i >= 0}
    assert set(rows) == {int(i) for i in d["diaSourceId"]}
    idx = np.array([rows[int(i)] for i in d["diaSourceId"]])
    offset = np.hypot(d["x"] - t["x"][idx], d["y"] - t["y"][idx]) * 0.2
    assert offset.max() < 0.1
    ra, dec = sci.wcs.all_pix2world(d["x"], d["y"], 0)
    np.testing.assert_allclose(ra, d["ra"], atol=1e-9)
    np.testing.assert_allclose(dec, d["dec"], atol=1e-9)
    # Detected = clearly detectable and away from the border; real and bogus both present.
    assert (np.abs(t["snr"][idx]) >= 7).all()
    assert ((d["x"] > 24) & (d["x"] < 999) & (d["y"] > 24) & (d["y"] < 999)).all()
    kinds = t["kind"][idx]
    assert t["is_real"][idx].any() and (~t["is_real"][idx]).any()
    assert "bad_column" not in set(kinds)
    np.testing.assert_array_equal(d["isDipole"], kinds == "dipole")
    np.testing.assert_allclose(d["snr"], d["psfFlux"] / d["psfFluxErr"], rtol=1e-9)
    # Simulated reliability: in [0, 1], negatives below 0.5, real mostly high.
    rel = d["reliability"]
    assert ((rel >= 0) & (rel <= 1)).all()
    assert (rel[d["psfFlux"] < 0] < 0.5).all()
    assert np.median(rel[t["is_real"][idx] & (d["psfFlux"] > 0)]) > 0.7
    # CR flags where the truth is a cosmic ray.
    assert d["pixelFlags_cr"][kinds == "cosmic_ray"].all()


def test_target_is_a_detected_transient_on_a_galaxy(small_demo):
    target = json.loads((small_demo / "target.json").read_text())
    assert {"ra", "dec", "diaSourceId", "name"} <= set(target)
    d = _table(small_demo, "dia_source.parquet")
    t = _table(small_demo, "truth.parquet")
    (row,) = np.flatnonzero(d["diaSourceId"] == target["diaSourceId"])
    assert d["psfFlux"][row] > 0
    (trow,) = np.flatnonzero(t["diaSourceId"] == target["diaSourceId"])
    assert t["kind"][trow] == "transient_on_galaxy"
    cosd = np.cos(np.radians(target["dec"]))
    sep = np.hypot((d["ra"][row] - target["ra"]) * cosd, d["dec"][row] - target["dec"]) * 3600
    assert sep < 0.1


def _box_sum(image: np.ndarray, x: float, y: float, half: int = 6) -> float:
    ix, iy = int(round(x)), int(round(y))
    return float(image[iy - half : iy + half + 1, ix - half : ix + half + 1].sum())


def test_science_holds_new_transients_and_template_holds_fading_ones(small_demo, images):
    t = _table(small_demo, "truth.parquet")
    sci = images["science.fits"]
    diff = images["difference.fits"]
    new = np.flatnonzero((t["kind"] == "transient") & (t["snr"] > 15))
    assert new.size >= 1
    for k in new:
        s = _box_sum(sci.image, t["x"][k], t["y"][k])
        assert s > 0.6 * t["flux"][k]
        assert _box_sum(diff.image, t["x"][k], t["y"][k]) > 0.6 * t["flux"][k]
    fading = np.flatnonzero((t["kind"] == "fading_variable") & (t["snr"] < -10))
    assert fading.size >= 1
    for k in fading:
        ra, dec = t["ra"][k], t["dec"][k]
        for name in PATCHES:
            tm = images[name]
            px, py = tm.wcs.all_world2pix([ra], [dec], 0)
            if 10 < px[0] < tm.shape[1] - 10 and 10 < py[0] < tm.shape[0] - 10:
                break
        else:
            pytest.fail("fading variable not on any template patch")
        brighter = _box_sum(tm.image, px[0], py[0]) - _box_sum(sci.image, t["x"][k], t["y"][k])
        assert brighter > 0.6 * -t["flux"][k]


def test_cli_refuses_non_empty_folder(tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    rc = cli_main(["demo", "--out", str(tmp_path), "--small"])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not empty" in err[0] and "--overwrite" in err[0]
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def _fits_arrays(path: Path) -> list[np.ndarray]:
    with fits.open(path) as hdul:
        return [hdul[n].data.copy() for n in ("IMAGE", "MASK", "VARIANCE")]


def test_cli_same_seed_is_identical_to_fixture(tmp_path, small_demo):
    out = tmp_path / "again"
    (out).mkdir()
    (out / "keep.txt").write_text("mine")
    rc = cli_main(["demo", "--out", str(out), "--small", "--seed", "1", "--overwrite"])
    assert rc == 0
    assert (out / "keep.txt").read_text() == "mine"  # --overwrite never deletes other files
    for name in FITS_FILES:
        for a, b in zip(_fits_arrays(out / name), _fits_arrays(small_demo / name), strict=True):
            np.testing.assert_array_equal(a, b)
    for name in ("truth.parquet", "dia_source.parquet"):
        assert pq.read_table(out / name).equals(pq.read_table(small_demo / name))
    assert (out / "target.json").read_text() == (small_demo / "target.json").read_text()


def test_different_seed_differs(tmp_path, small_demo):
    out = generate_demo(tmp_path / "seed2", small=True, seed=2)
    a = _fits_arrays(out / "science.fits")[0]
    b = _fits_arrays(small_demo / "science.fits")[0]
    assert a.shape == b.shape and not np.array_equal(a, b)
    assert not pq.read_table(out / "truth.parquet").equals(
        pq.read_table(small_demo / "truth.parquet")
    )


def test_cached_demo_generates_once(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    stages = []
    first = cached_demo(small=True, seed=3, progress=lambda s, f, m: stages.append(f))
    assert first.parent == tmp_path / "cache" / "diascan"
    assert first.name.endswith("-small-seed3") and first.name.startswith("demo-v")
    assert all((first / f).is_file() for f in DEMO_FILES)
    assert stages and stages[-1] == 1.0
    assert [p.name for p in first.parent.iterdir()] == [first.name]  # no temp folder left
    mtime = (first / "science.fits").stat().st_mtime_ns
    stages.clear()
    again = cached_demo(small=True, seed=3, progress=lambda s, f, m: stages.append(f))
    assert again == first and not stages
    assert (first / "science.fits").stat().st_mtime_ns == mtime
    # An incomplete folder (no marker) is regenerated.
    (first / ".complete").unlink()
    (first / "truth.parquet").unlink()
    third = cached_demo(small=True, seed=3)
    assert third == first and (first / "truth.parquet").is_file()
