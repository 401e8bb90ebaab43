"""``diascan view`` from the command line: errors, no display, and the screenshot smoke test."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.gui


def _run(args, env_extra=None, drop=(), timeout=120):
    env = {k: v for k, v in os.environ.items() if k not in drop}
    # the viewer autosaves a session and remembers it: keep that out of the user's folders
    data = Path(tempfile.mkdtemp(prefix="diascan-cli-"))
    (data / "config").mkdir()
    env.update(XDG_DATA_HOME=str(data), XDG_CONFIG_HOME=str(data / "config"))
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "diascan.cli.main", *args],
        capture_output=True, text=True, env=env, timeout=timeout,
    )


def test_help_works_without_qt_imported():
    code = (
        "import sys\n"
        "from diascan.cli.main import build_parser\n"
        "build_parser().parse_args(['view', '--small-demo'])\n"
        "print('PyQt6' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    res = _run(["view", "--help"])
    assert res.returncode == 0 and "--screenshot" in res.stdout and "--template-patches" in res.stdout


def test_no_display_is_a_clear_error():
    res = _run(["view", "--small-demo"], drop=("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))
    assert res.returncode == 2
    assert "xvfb-run" in res.stderr and "QT_QPA_PLATFORM=offscreen" in res.stderr
    assert "Traceback" not in res.stderr


def test_missing_file_exits_2_with_one_line(tmp_path):
    missing = tmp_path / "nope.fits"
    res = _run(
        ["view", "--science", str(missing), "--difference", str(missing), "--template",
         str(missing), "--screenshot", str(tmp_path / "x.png")],
        env_extra={"QT_QPA_PLATFORM": "offscreen"},
    )
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "nope.fits" in lines[0] and "no such file" in lines[0]


def test_bad_target_exits_2(tmp_path):
    f = tmp_path / "a.fits"
    f.write_bytes(b"")
    res = _run(
        ["view", "--science", str(f), "--difference", str(f), "--template", str(f),
         "--target", "abc"],
        env_extra={"QT_QPA_PLATFORM": "offscreen"},
    )
    assert res.returncode == 2 and "--target" in res.stderr


def test_unreadable_image_under_screenshot_exits_2(tmp_path):
    bad = tmp_path / "science.fits"
    bad.write_text("this is not FITS")
    res = _run(
        ["view", "--science", str(bad), "--difference", str(bad), "--template", str(bad),
         "--screenshot", str(tmp_path / "x.png")],
        env_extra={"QT_QPA_PLATFORM": "offscreen"},
    )
    assert res.returncode == 2, res.stderr
    assert "science.fits" in res.stderr
    assert not (tmp_path / "x.png").exists()


def test_screenshot_smoke_small_demo(tmp_path):
    """`diascan view --small-demo --screenshot out.png` loads, scores, saves a real PNG."""
    out = tmp_path / "out.png"
    res = _run(
        ["view", "--small-demo", "--screenshot", str(out)],
        env_extra={"QT_QPA_PLATFORM": "offscreen"}, timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert out.stat().st_size > 20_000
    from PyQt6.QtGui import QImage

    img = QImage(str(out))
    assert img.width() >= 800 and img.height() >= 600
    ptr = img.convertToFormat(QImage.Format.Format_RGB32).constBits()
    ptr.setsize(img.width() * img.height() * 4)
    px = np.frombuffer(bytes(ptr), np.uint8).reshape(img.height(), img.width(), 4)[..., :3]
    assert px.std() > 20  # not blank
    assert len(np.unique(px.reshape(-1, 3)[::97], axis=0)) > 50


def test_screenshot_is_written_where_asked(tmp_path):
    # A path in a missing folder is an error with one line, not a crash.
    target = Path(tmp_path) / "missing_dir" / "out.png"
    res = _run(["view", "--small-demo", "--screenshot", str(target)],
               env_extra={"QT_QPA_PLATFORM": "offscreen"}, timeout=300)
    assert res.returncode == 2 and "out.png" in res.stderr
