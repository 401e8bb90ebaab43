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


def test_meta_yaml_with_an_integer_of_5000_digits(tmp_path):
    """Found by test_fuzz_meta_yaml: PyYAML's int() of a 5001-digit scalar raised ValueError
    (Python's integer string limit), which escaped as an unexpected error."""
    import shutil

    from diascan.errors import ModelPackageError
    from diascan.models import bundled_models_dir, load_model

    pkg = tmp_path / "pkg"
    shutil.copytree(bundled_models_dir() / "diascan_taccnn_sim_v1", pkg)
    (pkg / "meta.yaml").write_text("input_shape: [51, 51, 3]\nversion: 1" + "0" * 5000 + "\n")
    with pytest.raises(ModelPackageError, match="a value cannot be read"):
        load_model(pkg)
    assert main(["models", str(pkg)]) == 0
