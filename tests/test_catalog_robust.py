"""Bad catalogs: rows with NaN, infinite or out-of-range ra/dec are dropped with a note and
the rest matched; a BOM before a CSV header keeps diaSourceId; untrusted text stays small
(ECSV aliases, VOTable entity expansion, Parquet decompression bombs, a size cap); every
failure one line."""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.table import Table

from diascan.cli.main import main
from diascan.errors import CatalogReadError
from diascan.io import read_catalog, read_table
from diascan.io import tables as tables_mod
from tests._tiny_visit import score_args, tiny_visit


@pytest.fixture(scope="module")
def visit(tmp_path_factory):
    return tiny_visit(tmp_path_factory.mktemp("visit"))


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("DIASCAN_RESULTS_CACHE", str(tmp_path_factory.getbasetemp() / "rcache"))


def catalog_rows(visit):
    return read_table(visit["catalog"])


def test_bad_positions_dropped_with_a_note_rest_matched(visit, tmp_path, capsys):
    good = catalog_rows(visit)
    bad = Table({"diaSourceId": [900, 901, 902, 903, 904, 905], "visit": [7] * 6,
                 "detector": [3] * 6, "reliability": [0.5] * 6,
                 "ra": [np.nan, np.inf, 400.0, -1.0, 150.0, 150.0],
                 "dec": [2.0, 2.0, 2.0, 2.0, 95.0, -np.inf]})  # fmt: skip
    from astropy.table import vstack

    cat = tmp_path / "cat.parquet"
    tables_mod.write_table(vstack([good, bad]), cat)
    t = read_catalog(cat, visit=7, detector=3)
    assert sorted(t["diaSourceId"]) == [100, 101, 102, 103]
    assert any("dropped 6 of 10 catalog rows" in n for n in t.meta["notes"])
    out = tmp_path / "s.ecsv"
    args = score_args({**visit, "catalog": cat}, out, "--no-score", "--quiet", "--cache")
    assert main(args) == 0
    res = read_table(out)
    assert sorted(res["diaSourceId"][res["status"] == "matched"]) == [100, 101, 102, 103]
    assert any("dropped 6 of 10" in n for n in res.meta["notes"])


def test_all_positions_bad_is_one_line(tmp_path, capsys):
    p = tmp_path / "c.csv"
    p.write_text("diaSourceId,ra,dec\n1,nan,2\n2,1000,3\n")
    with pytest.raises(CatalogReadError, match="no row has a usable sky position"):
        read_catalog(p)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8"])
def test_csv_bom_keeps_dia_source_id(visit, tmp_path, encoding):
    t = catalog_rows(visit)
    lines = ["diaSourceId,ra,dec,visit,detector,reliability"] + [
        f"{r['diaSourceId']},{float(r['ra'])!r},{float(r['dec'])!r},7,3,{r['reliability']}"
        for r in t]
    cat = tmp_path / "cat.csv"
    cat.write_text("\n".join(lines) + "\n", encoding=encoding)
    assert read_catalog(cat).colnames[0] == "diaSourceId"
    out = tmp_path / "s.parquet"
    assert main(score_args({**visit, "catalog": cat}, out, "--no-score", "--quiet", "--cache")) == 0
    res = read_table(out)
    assert sorted(res["diaSourceId"][res["status"] == "matched"]) == [100, 101, 102, 103]


def test_ecsv_with_bom_and_text_visit_column(visit, tmp_path):
    t = catalog_rows(visit)
    t["visit"] = np.array(["seven"] * len(t))
    p = tmp_path / "c.ecsv"
    t.write(p, format="ascii.ecsv")
    p.write_bytes(b"\xef\xbb\xbf" + p.read_bytes())
    with pytest.raises(CatalogReadError, match="no rows for visit 7"):
        read_catalog(p, visit=7, detector=3)  # a text visit column holds no integer visit
    assert len(read_catalog(p, detector=3)) == 4


def test_text_ids_and_reliability_are_noted_not_fatal(visit, tmp_path):
    t = catalog_rows(visit)
    t["diaSourceId"] = np.array(["a", "b", "c", "d"])
    t["reliability"] = np.array(["hi", "lo", "hi", "lo"])
    cat = tmp_path / "c.parquet"
    tables_mod.write_table(t, cat)
    out = tmp_path / "s.parquet"
    assert main(score_args({**visit, "catalog": cat}, out, "--no-score", "--quiet", "--cache")) == 0
    res = read_table(out)
    assert (res["status"] == "matched").sum() == 4 and set(res["diaSourceId"]) == {-1}
    assert any("diaSourceId is not numeric" in n for n in res.meta["notes"])


def _cost(fn):
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        fn()
    finally:
        seconds = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return seconds, peak


LAUGHS = "".join(
    [f"# a0: &a0 [{', '.join(['lol'] * 9)}]\n"]
    + [f"# a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9)]
)


def test_ecsv_billion_laughs_refused_fast(tmp_path):
    p = tmp_path / "laughs.ecsv"
    header = ("# %ECSV 1.0\n# ---\n# datatype:\n# - {name: ra, datatype: float64}\n"
              "# - {name: dec, datatype: float64}\n# meta:\n" + LAUGHS.replace("# a", "#   a"))
    p.write_text(header + "ra dec\n1.0 2.0\n")
    assert len(p.read_bytes()) < 1500
    seconds, peak = _cost(lambda: pytest.raises(CatalogReadError, read_table, p).match("alias"))
    assert seconds < 1.0 and peak < 100e6


def test_votable_entity_expansion_refused_fast(tmp_path):
    ents = '<!ENTITY l0 "lollollollollol">' + "".join(
        f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    p = tmp_path / "laughs.vot"
    p.write_text(f'<?xml version="1.0"?><!DOCTYPE VOTABLE [{ents}]><VOTABLE version="1.4">'
                 '<RESOURCE><TABLE><FIELD name="ra" datatype="double"/><DATA><TABLEDATA>'
                 "<TR><TD>&l9;</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>")
    seconds, peak = _cost(lambda: pytest.raises(CatalogReadError, read_table, p))
    assert seconds < 1.0 and peak < 100e6


def test_parquet_decompression_bomb_refused(tmp_path):
    """20 million equal doubles in 175 kB: 320 MB once decoded, refused from the footer."""
    p = tmp_path / "bomb.parquet"
    n = 20_000_000
    arr = pa.array(np.zeros(n))
    pq.write_table(pa.table({"ra": arr, "dec": arr}), p, compression="zstd", row_group_size=n)
    assert p.stat().st_size < 300_000
    seconds, peak = _cost(lambda: pytest.raises(CatalogReadError, read_table, p).match("bomb"))
    assert seconds < 1.0 and peak < 100e6


def test_text_table_size_cap(tmp_path, monkeypatch):
    p = tmp_path / "c.csv"
    p.write_text("ra,dec\n" + "1.0,2.0\n" * 100)
    monkeypatch.setattr(tables_mod, "MAX_TEXT_TABLE_BYTES", 100)
    with pytest.raises(CatalogReadError, match="larger than the 0 MB diascan reads as text"):
        read_table(p)


@pytest.mark.parametrize(
    "name, content, fragment",
    [
        ("scrambled.parquet", b"PAR1" + bytes(range(256)) * 4 + b"PAR1", "cannot be read as parquet"),
        ("latin1.csv", "ra,dec,n\u00e9\n1,2,3\n".encode("latin-1"), "cannot be read as csv"),
        ("truncated.fits", b"SIMPLE  =                    T" + b" " * 50, "cannot be read as fits"),
        ("garbage.ecsv", b"# %ECSV 1.0\n# ---\n# datatype: [\n", "ECSV header: did not find"),
        ("columns.ecsv", b"# %ECSV 1.0\n# ---\n# x: 1\nra dec\n1 2\n", "cannot be read as ecsv"),
        ("empty.csv", b"", "empty file"),
        ("header_only.csv", b"ra,dec\n", "catalog has no rows"),
    ],
)
def test_broken_catalogs_are_one_line(visit, tmp_path, capsys, name, content, fragment):
    cat = tmp_path / name
    cat.write_bytes(content)
    out = tmp_path / "s.parquet"
    assert main(score_args({**visit, "catalog": cat}, out, "--no-score", "--quiet", "--cache")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"diascan score: error: {cat}: ") and fragment in err[0]
    assert not out.exists()
