"""write_table / read_table: every format round-trips; bad paths give clear errors."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.table import MaskedColumn, Table

from diascan.errors import CatalogReadError, InputError
from diascan.io import read_table, write_table
from diascan.io.tables import TableWriteError, sniff_format, table_format


def _table() -> Table:
    t = Table()
    t["id"] = np.array([1, 2, 3], dtype=np.int64)
    t["score"] = np.array([0.25, 0.5, 0.75], dtype=np.float32)
    t["ra"] = np.array([150.1, 150.2, 150.3]) * u.deg
    t["band"] = ["g", "r", "i"]
    t["isDipole"] = [True, False, True]
    t["flux"] = MaskedColumn([1.5, 2.5, 3.5], mask=[False, True, False])
    return t


@pytest.mark.parametrize("ext", [".parquet", ".ecsv", ".fits", ".csv"])
def test_round_trip(tmp_path, ext):
    src = _table()
    path = write_table(src, tmp_path / f"t{ext}")
    out = read_table(path)
    assert out.colnames == src.colnames
    np.testing.assert_array_equal(out["id"], src["id"])
    np.testing.assert_allclose(out["score"], src["score"])
    np.testing.assert_allclose(out["ra"], src["ra"])
    assert list(out["band"]) == ["g", "r", "i"]
    assert [bool(v) for v in out["isDipole"]] == [True, False, True]
    assert bool(out["flux"].mask[1]) if hasattr(out["flux"], "mask") else np.isnan(out["flux"][1])
    assert out["flux"][0] == 1.5
    if ext != ".csv":  # CSV carries no types or units
        assert out["id"].dtype == np.int64 and out["score"].dtype == np.float32
        assert out["ra"].unit == u.deg


def test_refuses_overwrite_and_unknown_extension(tmp_path):
    path = write_table(_table(), tmp_path / "t.parquet")
    with pytest.raises(TableWriteError, match="exists"):
        write_table(_table(), path)
    small = _table()[:1]
    write_table(small, path, overwrite=True)
    assert len(read_table(path)) == 1
    with pytest.raises(TableWriteError, match="unknown table format") as info:
        write_table(_table(), tmp_path / "t.xlsx")
    assert isinstance(info.value, InputError) and "t.xlsx" in str(info.value)
    assert not (tmp_path / "t.xlsx").exists()


def test_read_errors(tmp_path):
    with pytest.raises(CatalogReadError, match="file not found"):
        read_table(tmp_path / "none.parquet")
    (tmp_path / "e.csv").write_bytes(b"")
    with pytest.raises(CatalogReadError, match="empty file"):
        read_table(tmp_path / "e.csv")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 this is not really parquet")
    with pytest.raises(CatalogReadError, match="cannot be read as parquet"):
        read_table(tmp_path / "bad.parquet")
    (tmp_path / "blob.bin").write_bytes(bytes(range(256)))
    with pytest.raises(CatalogReadError, match="unknown table format"):
        read_table(tmp_path / "blob.bin")


def test_sniffing_and_where(tmp_path):
    path = write_table(_table(), tmp_path / "t.parquet")
    renamed = path.rename(tmp_path / "t.dat")
    assert table_format(renamed) is None and sniff_format(renamed) == "parquet"
    assert len(read_table(renamed)) == 3
    ecsv = write_table(_table(), tmp_path / "t.ecsv")
    assert sniff_format(ecsv) == "ecsv"
    assert table_format("x.FITS.gz") == "fits" and table_format("x.vot") == "votable"
    for p in (renamed, ecsv):
        sel = read_table(p, where={"band": "r", "nonexistent": 5})
        assert list(sel["id"]) == [2]


def test_real_parquet_with_binary_columns(shared_dir):
    t = read_table(shared_dir / "data" / "rubin_alerts" / "rubin_alerts_sample.parquet")
    assert len(t) == 100
    assert isinstance(t["cutoutScience"][0], bytes) and t["diaSourceId"].dtype == np.int64
