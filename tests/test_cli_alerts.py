"""``diascan alerts PATH... --out TABLE [--model M]`` end to end on the real packets."""

from __future__ import annotations

import numpy as np
import pytest

from diascan.alerts import FIELDS
from diascan.cli.main import main
from diascan.io import read_table


@pytest.fixture(scope="module")
def packets(shared_dir):
    return shared_dir / "data" / "ztf_alerts" / "packets", shared_dir / "data" / "rubin_alerts" / "packets"


def test_alerts_writes_one_row_per_alert_with_scores(packets, shared_dir, tmp_path, capsys):
    out = tmp_path / "alerts.parquet"
    braai = shared_dir / "data" / "braai_d6_m7"
    assert main(["alerts", *map(str, packets), "--out", str(out), "--model", str(braai)]) == 0
    err = capsys.readouterr().err
    for stage in ("[1/3] open", "[2/3] fields", "[3/3] score", "100%"):
        assert stage in err
    assert "11 alerts ->" in err and "scored 8 with braai_d6_m7" in err
    t = read_table(out)
    assert len(t) == 11
    for col in [f.name for f in FIELDS] + ["score", "score_model", "score_note", "note"]:
        assert col in t.colnames, col
    ztf = np.asarray(t["survey"]) == "ztf"
    drb, score = np.asarray(t["drb"], float), np.asarray(t["score"], float)
    both = np.isfinite(drb)
    assert both.sum() == 7
    assert (np.abs(score[both] - drb[both]) < 1e-3).sum() == 6  # see test_models_braai
    rubin = ~ztf
    assert np.isnan(score[rubin]).all() and np.isfinite(np.asarray(t["reliability"])[rubin]).all()
    assert all("meant for ZTF stamps" in n for n in np.asarray(t["score_note"])[rubin])
    jpeg = np.char.find(np.asarray(t["file"], dtype=str), "JPEG") >= 0
    assert "JPEG cutout" in t["note"][jpeg][0] and np.isnan(score[jpeg]).all()


def test_rescoring_rubin_alerts_with_the_dp1_model_is_refused(packets, dp1_model_dir, tmp_path,
                                                              capsys):
    out = tmp_path / "x.parquet"
    rc = main(["alerts", str(packets[1]), "--out", str(out), "--model", str(dp1_model_dir)])
    assert rc == 2 and not out.exists()
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("diascan alerts: error: ") and str(dp1_model_dir) in err
    assert "none of the 2 alerts could be scored" in err and "smaller than the 51x51" in err


def test_fields_only_and_bad_input(packets, tmp_path, capsys):
    out = tmp_path / "fields.csv"
    assert main(["alerts", str(packets[0]), "--out", str(out), "--no-score", "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    t = read_table(out)
    assert len(t) == 9 and "score" not in t.colnames
    cases = [
        (["alerts", str(tmp_path / "nope"), "--out", str(tmp_path / "a.parquet")],
         "nope: no such file or folder"),
        (["alerts", str(out), "--out", str(tmp_path / "b.parquet")],
         "fields.csv: not an alert file"),
        (["alerts", str(packets[0]), "--out", str(out)], "exists; refusing to overwrite"),
        (["alerts", str(packets[0]), "--out", str(tmp_path / "c.txt")], "unknown table format"),
        (["alerts", str(tmp_path), "--out", str(tmp_path / "d.parquet")],
         "no alert files found"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("diascan alerts: error: ") and message in err[-1], err


def test_out_never_replaces_an_alert_file(shared_dir, tmp_path, capsys):
    """--out naming an input broker table (itself or a hard link to it) is refused, even with
    --overwrite, and the table is left as it was."""
    import hashlib
    import os
    import shutil

    table = tmp_path / "alerts.parquet"
    shutil.copy(shared_dir / "data" / "ztf_alerts" / "ztf_alerts_sample.parquet", table)
    link = tmp_path / "link.parquet"
    os.link(table, link)
    before = hashlib.sha256(table.read_bytes()).hexdigest()
    for out in (table, link):
        rc = main(["alerts", str(table), "--out", str(out), "--overwrite", "--no-score"])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and "never writes over an input file" in err[-1], err
    assert hashlib.sha256(table.read_bytes()).hexdigest() == before
