"""Failures the fuzz suite (tests/fuzz) found, kept as ordinary regression tests: each is the
shrunk example hypothesis reported, run through the same command."""

from __future__ import annotations

import numpy as np
import pytest

from diascan.cli.main import main
from diascan.io import read_table
from tests._tiny_visit import score_args, tiny_visit


@pytest.fixture(scope="module")
def visit(tmp_path_factory):
    return tiny_visit(tmp_path_factory.mktemp("visit"))


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("DIASCAN_RESULTS_CACHE", str(tmp_path_factory.getbasetemp() / "rcache"))


def test_csv_with_an_empty_reliability_column(visit, tmp_path, capsys):
    """Found by test_fuzz_catalogs: astropy reads an all-empty CSV column as a masked int
    column, and filling it with NaN raised TypeError (a traceback-worthy bug)."""
    t = read_table(visit["catalog"])
    cat = tmp_path / "c.csv"
    cat.write_text("ra,dec,diaSourceId,reliability\n" + "".join(
        f"{float(r)!r},{float(d)!r},{i},\n" for r, d, i in zip(t["ra"], t["dec"], t["diaSourceId"],
                                                               strict=True)))  # fmt: skip
    out = tmp_path / "s.parquet"
    assert main(score_args({**visit, "catalog": cat}, out, "--no-score", "--quiet", "--cache")) == 0
    res = read_table(out)
    matched = res[res["status"] == "matched"]
    assert sorted(matched["diaSourceId"]) == [100, 101, 102, 103]
    assert np.all(np.isnan(matched["original_reliability"]))
