"""No traceback anywhere on the command line: every failure is one line
``diascan CMD: error: FILE: problem`` with exit code 2 (bad options, read-only file systems, a
full disk, unreadable files, a bug), and numeric options must be finite and in range."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from diascan.cli import main as main_mod
from diascan.cli.main import error_line, main
from tests._tiny_visit import score_args, tiny_visit
from tests._unwritable import unwritable_folder


@pytest.fixture(scope="module")
def visit(tmp_path_factory):
    return tiny_visit(tmp_path_factory.mktemp("visit"))


def one_line(capsys, command: str) -> str:
    cap = capsys.readouterr()
    err = cap.err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"diascan {command}: error: "), err
    assert "Traceback" not in cap.out + cap.err
    return err[0]


BAD_NUMBERS = ["nan", "NaN", "inf", "-inf", "1e400", "-5", "abc", "", "0x10", "1,5"]
NUMERIC_OPTIONS = [
    ("score", "--threshold"), ("score", "--radius"), ("score", "--visit"), ("score", "--detector"),
    ("score", "--workers"),
    ("export", "--visit"), ("demo", "--seed"),
    ("train", "--seed"), ("train", "--n-train"), ("train", "--epochs"), ("train", "--batch-size"),
    ("train", "--lr"), ("train", "--threads"), ("train", "--n-eval"), ("train", "--eval-seed"),
    ("train", "--threshold"), ("train", "--heldout-fraction"), ("train", "--patience"),
    ("train", "--min-per-class"),
]  # fmt: skip
BASE = {"score": ["--demo", "--out", "x.parquet"], "export": ["s.json", "--out", "x.csv"],
        "demo": ["--out", "d"], "train": ["--out", "t"]}  # fmt: skip


def test_every_numeric_option_is_checked():
    """The list above covers every numeric option of every command (none added unchecked)."""
    parser = main_mod.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    found = set()
    for name, p in sub.choices.items():
        for action in p._actions:
            if action.type is not None and action.type.__name__ in ("float", "int"):
                found.add((name, action.option_strings[-1] if action.option_strings[0].startswith(
                    "--") else action.option_strings[0]))
            assert action.type not in (int, float), f"{name} {action.option_strings}: unchecked"
    assert found == {(c, o) for c, o in NUMERIC_OPTIONS}


@pytest.mark.parametrize("command, option", NUMERIC_OPTIONS)
@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_bad_numbers_one_line_exit_2(capsys, command, option, value):
    if value == "-5" and option in ("--n-eval",):
        value = "-1"
    assert main([command, *BASE[command], f"{option}={value}"]) == 2
    line = one_line(capsys, command)
    assert f"argument {option}" in line and repr(value) in line


@pytest.mark.parametrize(
    "option, value",
    [("--threshold", "0"), ("--threshold", "-0"), ("--threshold", "2e6"), ("--radius", "0"),
     ("--radius", "3601"), ("--visit", "-1"), ("--visit", str(2**63)), ("--detector", "1.5"),
     ("--workers", "0"), ("--workers", "1025")],
)
def test_out_of_range(capsys, option, value):
    assert main(["score", *BASE["score"], f"{option}={value}"]) == 2
    assert f"argument {option}: must be" in one_line(capsys, "score")


def test_unknown_option_and_missing_argument_are_one_line(capsys):
    assert main(["score", "--bogus"]) == 2
    one_line(capsys, "score")
    assert main(["export"]) == 2
    one_line(capsys, "export")
    assert main(["frobnicate"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_read_only_file_system_for_out(visit, tmp_path, capsys):
    with unwritable_folder(tmp_path / "ro") as folder:
        folder.read_only()
        out = folder.path / "scores.parquet"
        assert main(score_args(visit, out, "--no-score", "--quiet")) == 2
        line = one_line(capsys, "score")
        assert line.startswith(f"diascan score: error: {out}: ")
        assert "read-only file system" in line or "permission denied" in line


def test_full_disk_for_out(visit, tmp_path, capsys):
    with unwritable_folder(tmp_path / "small", size_kb=64) as folder:
        filler = folder.path / "filler"
        with open(filler, "wb") as fh, pytest.raises(OSError):
            fh.write(b"\0" * 200_000)  # fill the disk to the last block
        out = folder.path / "scores.ecsv"
        assert main(score_args(visit, out, "--no-score", "--quiet", "--with-missing")) == 2
        assert "disk full" in one_line(capsys, "score")
        assert not out.exists() and sorted(p.name for p in folder.path.iterdir()) == ["filler"]


def test_out_through_a_link_to_a_device_is_refused(visit, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    out.symlink_to("/dev/null")
    assert main(score_args(visit, out, "--no-score", "--quiet", "--overwrite")) == 2
    assert "not a regular file" in one_line(capsys, "score")
    assert Path("/dev/null").is_char_device()


def test_invalid_yaml_is_one_line(visit, tmp_path, capsys):
    import shutil

    from diascan.models import bundled_models_dir

    pkg = tmp_path / "pkg"
    shutil.copytree(bundled_models_dir() / "diascan_taccnn_sim_v1", pkg)
    (pkg / "meta.yaml").write_text("version: 1\ninput_shape: [51, 51\n  description: : x\n")
    assert main(score_args(visit, tmp_path / "s.parquet", "--quiet", "--model", str(pkg))) == 2
    line = one_line(capsys, "score")
    assert f"{pkg}: meta.yaml is not valid YAML" in line and "line " in line
    assert main(["models", str(pkg)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [x for x in out if "ERROR" in x] == [x for x in out if "meta.yaml is not valid" in x]


def test_os_errors_are_worded(tmp_path):
    with pytest.raises(OSError) as info:
        os.open(tmp_path / "missing" / "x.fits", os.O_RDONLY)
    assert error_line(info.value) == f"{tmp_path / 'missing' / 'x.fits'}: no such file or folder"
    with pytest.raises(OSError) as info:
        (tmp_path / "d").mkdir()
        os.open(tmp_path / "d", os.O_WRONLY)
    assert error_line(info.value).endswith(": is a folder")


def test_a_bug_is_one_line_with_the_debug_hint(capsys, monkeypatch):
    """An exception nobody anticipated: still one line, exit 2, and how to get the traceback;
    with DIASCAN_DEBUG=1 it propagates with its traceback."""
    from diascan.cli import models as models_cli

    def broken(args):
        return {}["missing"]  # a real bug: KeyError inside a command

    monkeypatch.setattr(models_cli, "run", broken)
    monkeypatch.delenv("DIASCAN_DEBUG", raising=False)
    assert main(["models"]) == 2
    line = one_line(capsys, "models")
    assert "unexpected KeyError" in line and "DIASCAN_DEBUG=1" in line
    monkeypatch.setenv("DIASCAN_DEBUG", "1")
    with pytest.raises(KeyError):
        main(["models"])


def test_console_script_bad_input_no_traceback(tmp_path):
    """The installed script end to end (a subprocess): one line, exit 2, for a session nested
    100,000 levels deep and for an unknown option."""
    import subprocess
    import sys

    script = Path(sys.executable).with_name("diascan")
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    for args in (["export", str(deep), "--out", str(tmp_path / "x.csv")],
                 ["score", "--demo", "--out", "x.csv", "--threshold", "nan"]):  # fmt: skip
        p = subprocess.run([str(script), *args], capture_output=True, text=True, timeout=120)
        assert p.returncode == 2 and "Traceback" not in p.stderr
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr
