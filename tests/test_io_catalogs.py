"""read_catalog: DP1 columns, formats, visit/detector selection, position aliases, errors."""

from __future__ import annotations

import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from diascan.errors import CatalogReadError
from diascan.io import read_catalog, write_table


def _dia_sources(n: int = 12) -> Table:
    rng = np.random.default_rng(5)
    t = Table()
    t["diaSourceId"] = np.arange(1000, 1000 + n, dtype=np.int64)
    t["visit"] = np.where(np.arange(n) < 8, 2024120700123, 2024120700124).astype(np.int64)
    t["detector"] = np.where(np.arange(n) % 2 == 0, 4, 5).astype(np.int64)
    t["ra"] = rng.uniform(53.0, 53.2, n)
    t["dec"] = rng.uniform(-28.2, -28.0, n)
    t["x"] = rng.uniform(0, 4072, n)
    t["y"] = rng.uniform(0, 4000, n)
    t["psfFlux"] = rng.normal(5000, 100, n)
    t["psfFluxErr"] = np.full(n, 300.0)
    t["snr"] = t["psfFlux"] / t["psfFluxErr"]
    t["reliability"] = rng.uniform(0, 1, n).astype(np.float32)
    t["band"] = ["r"] * n
    t["midpointMjdTai"] = np.full(n, 60653.1)
    t["isDipole"] = np.arange(n) % 3 == 0
    return t


@pytest.mark.parametrize("ext", [".parquet", ".fits", ".ecsv", ".csv", ".vot"])
def test_every_format_and_selection(tmp_path, ext):
    src = _dia_sources()
    path = tmp_path / f"dia_source{ext}"
    if ext == ".vot":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            src.write(path, format="votable")
    else:
        write_table(src, path)
    full = read_catalog(path)
    assert len(full) == 12 and full.meta["notes"] == []
    np.testing.assert_allclose(full["ra"], src["ra"])
    assert full["ra"].unit == u.deg
    sel = read_catalog(path, visit=2024120700123, detector=4)
    assert list(sel["diaSourceId"]) == [1000, 1002, 1004, 1006]
    assert len(read_catalog(path, detector=5)) == 6
    np.testing.assert_allclose(sel["reliability"], src["reliability"][[0, 2, 4, 6]], rtol=1e-6)


def test_selection_without_columns_is_noted(tmp_path):
    src = _dia_sources()
    src.remove_columns(["visit", "detector"])
    path = write_table(src, tmp_path / "c.parquet")
    out = read_catalog(path, visit=1, detector=2)
    assert len(out) == 12
    assert len(out.meta["notes"]) == 2 and "visit" in out.meta["notes"][0]


def test_no_rows_for_selection_lists_what_exists(tmp_path):
    path = write_table(_dia_sources(), tmp_path / "c.parquet")
    with pytest.raises(CatalogReadError, match="no rows for visit 7") as info:
        read_catalog(path, visit=7)
    assert "2024120700123" in str(info.value) and "c.parquet" in str(info.value)


def test_lsst_coord_columns_in_radians(tmp_path):
    src = _dia_sources()
    t = Table()
    t["id"] = src["diaSourceId"]
    t["coord_ra"] = np.radians(src["ra"])
    t["coord_dec"] = np.radians(src["dec"])
    no_unit = write_table(t, tmp_path / "noun.parquet")
    out = read_catalog(no_unit)
    np.testing.assert_allclose(out["ra"], src["ra"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(out["dec"], src["dec"], rtol=0, atol=1e-12)
    assert "coord_ra" in out.colnames and "coord_ra/coord_dec" in out.meta["notes"][0]
    # as afw writes it: a FITS table whose columns carry TUNIT 'rad'
    cols = [
        fits.Column(name="id", format="K", array=np.asarray(t["id"])),
        fits.Column(name="coord_ra", format="D", unit="rad", array=np.asarray(t["coord_ra"])),
        fits.Column(name="coord_dec", format="D", unit="rad", array=np.asarray(t["coord_dec"])),
    ]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(
        tmp_path / "src.fits"
    )
    out = read_catalog(tmp_path / "src.fits")
    np.testing.assert_allclose(out["ra"], src["ra"], rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("ra", "dec", "scale"),
    [("RA", "DEC", 1.0), ("RAJ2000", "DEJ2000", 1.0), ("ra", "dec", np.pi / 180.0)],
)
def test_aliases_and_units(tmp_path, ra, dec, scale):
    src = _dia_sources()
    t = Table()
    t[ra] = src["ra"] * scale
    t[dec] = src["dec"] * scale
    if scale != 1.0:
        t[ra].unit = t[dec].unit = u.rad
    out = read_catalog(write_table(t, tmp_path / "c.ecsv"))
    np.testing.assert_allclose(out["ra"], src["ra"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(out["dec"], src["dec"], rtol=0, atol=1e-12)


def test_missing_position_columns(tmp_path):
    t = _dia_sources()
    t.remove_column("dec")
    path = write_table(t, tmp_path / "c.csv")
    with pytest.raises(CatalogReadError, match=r"missing column\(s\) dec:") as info:
        read_catalog(path)
    assert "c.csv" in str(info.value) and "diaSourceId" in str(info.value)
    t.remove_column("ra")
    path = write_table(t, tmp_path / "d.csv")
    with pytest.raises(CatalogReadError, match=r"missing column\(s\) ra, dec"):
        read_catalog(path)


def test_missing_unreadable_and_empty(tmp_path):
    with pytest.raises(CatalogReadError, match="file not found"):
        read_catalog(tmp_path / "none.parquet")
    (tmp_path / "junk.fits").write_bytes(b"SIMPLE  = this is not really FITS" * 3)
    with pytest.raises(CatalogReadError, match="cannot be read"):
        read_catalog(tmp_path / "junk.fits")
    empty = write_table(_dia_sources()[:0], tmp_path / "empty.parquet")
    with pytest.raises(CatalogReadError, match="no rows"):
        read_catalog(empty)


def test_real_alert_sample_parquet(shared_dir):
    path = shared_dir / "data" / "rubin_alerts" / "rubin_alerts_sample.parquet"
    full = read_catalog(path)
    sel = read_catalog(path, visit=int(full["visit"][0]), detector=int(full["detector"][0]))
    assert 1 <= len(sel) < len(full)
    assert set(sel["visit"]) == {full["visit"][0]} and set(sel["detector"]) == {full["detector"][0]}
    assert {"diaSourceId", "reliability", "psfFlux", "midpointMjdTai"} <= set(sel.colnames)
