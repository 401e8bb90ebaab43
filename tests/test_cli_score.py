"""``diascan score`` end to end on the small demo."""

from __future__ import annotations

import numpy as np

from diascan.cli.main import main
from diascan.io import read_table


def _args(demo, out):
    return [
        "score", "--science", str(demo / "science.fits"),
        "--difference", str(demo / "difference.fits"),
        "--template-patches", *map(str, sorted(demo.glob("template_coadd_*.fits"))),
        "--catalog", str(demo / "dia_source.parquet"), "--out", str(out),
    ]  # fmt: skip


def test_score_writes_table_with_progress(small_demo, tmp_path, capsys):
    out = tmp_path / "scores.ecsv"
    assert main([*_args(small_demo, out), "--target", "53.13,-28.11", "--with-missing"]) == 0
    err = capsys.readouterr().err
    for stage in ("load", "template", "detect", "score", "match"):
        assert stage in err
    t = read_table(out)
    for col in (
        "id",
        "x",
        "y",
        "coord_ra",
        "psfFlux",
        "snr",
        "is_negative",
        "score",
        "original_reliability",
        "status",
        "model_name",
        "model_version",
    ):
        assert col in t.colnames
    det = t[t["status"] != "missing"]
    assert np.all((det["score"] >= 0) & (det["score"] <= 1))
    assert (np.asarray(det["status"]) == "matched").sum() > 10


def test_quiet_parquet_and_overwrite_refused(small_demo, tmp_path, capsys):
    out = tmp_path / "s.parquet"
    assert main([*_args(small_demo, out), "--quiet", "--no-score"]) == 0
    assert capsys.readouterr().err == ""
    assert len(read_table(out)) > 10
    assert main([*_args(small_demo, out), "--quiet", "--no-score"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "overwrite" in err[0]
    assert main([*_args(small_demo, out), "--quiet", "--no-score", "--overwrite"]) == 0


def test_bad_input_is_one_line_and_exit_2(small_demo, tmp_path, capsys):
    args = _args(small_demo, tmp_path / "x.csv")
    args[2] = str(tmp_path / "missing.fits")
    assert main([*args, "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.fits" in err[0]
    assert main(["score", "--science", "a.fits", "--out", str(tmp_path / "y.csv")]) == 2
    assert main([*_args(small_demo, tmp_path / "z.txt"), "--quiet"]) == 2
    assert main([*_args(small_demo, tmp_path / "w.csv"), "--target", "1,100"]) == 2


def test_console_script_flushes_output_and_exit_codes(small_demo, tmp_path):
    """The installed ``diascan`` script leaves headless commands without the interpreter's
    teardown: the table, the summary line on a pipe and the exit codes must all survive that."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(sys.executable).with_name("diascan")
    out = tmp_path / "scores.csv"
    p = subprocess.run([str(script), *_args(small_demo, out)], capture_output=True,
                       text=True, timeout=300)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert f"-> {out}" in p.stderr and "matched" in p.stderr
    assert len(read_table(out)) > 0
    listed = subprocess.run([str(script), "models"], capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0 and "diascan_taccnn_sim_v1" in listed.stdout  # a pipe, flushed
    bad = subprocess.run([str(script), *_args(small_demo, out)], capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert bad.returncode == 2 and "exists" in bad.stderr and "Traceback" not in bad.stderr
