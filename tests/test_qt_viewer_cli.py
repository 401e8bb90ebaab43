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


SCREENS = Path(__file__).parent / "fixtures" / "screens"


def _on_screen(name: str) -> dict:
    """The environment of an offscreen desktop of screen ``name`` (tests/fixtures/screens)."""
    return {"QT_QPA_PLATFORM": f"offscreen:configfile={SCREENS / (name + '.json')}"}


def test_screenshot_smoke_small_demo(tmp_path):
    """`diascan view --small-demo --screenshot out.png` loads, scores, saves a real PNG."""
    out = tmp_path / "out.png"
    res = _run(
        ["view", "--small-demo", "--screenshot", str(out)],
        env_extra=_on_screen("1920x1080"), timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert out.stat().st_size > 20_000
    from PyQt6.QtGui import QImage

    img = QImage(str(out))
    assert (img.width(), img.height()) == (1500, 950)  # room for the preferred size
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


def test_gallery_on_a_laptop_screen_opens_within_90_percent(tmp_path):
    """`--gallery --palette okabe-ito` on a 1366 x 768 screen: the window takes at most 90 %
    of it, and shows the gallery's tiles."""
    from PyQt6.QtGui import QImage

    out = tmp_path / "laptop.png"
    res = _run(["view", "--small-demo", "--gallery", "--palette", "okabe-ito", "--screenshot",
                str(out)], env_extra=_on_screen("1366x768"), timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    img = QImage(str(out))
    assert 0 < img.width() <= int(1366 * 0.9) and 0 < img.height() <= int(768 * 0.9)
    assert img.width() >= 1200 and img.height() >= 650  # and uses the room it has
    ptr = img.convertToFormat(QImage.Format.Format_RGB32).constBits()
    ptr.setsize(img.width() * img.height() * 4)
    bgra = np.frombuffer(bytes(ptr), np.uint8).reshape(img.height(), img.width(), 4)
    from diascan.qt.qt_gallery import BACKGROUND, TILE_BACKGROUND

    for colour in (BACKGROUND, TILE_BACKGROUND):  # the gallery, not the frames, is shown
        rgb = (colour.blue(), colour.green(), colour.red())
        assert np.all(bgra[..., :3] == rgb, axis=-1).mean() > 0.02


def test_bad_palette_exits_2_before_any_window():
    res = _run(["view", "--small-demo", "--palette", "pink"],
               env_extra={"QT_QPA_PLATFORM": "offscreen"})
    assert res.returncode == 2 and "--palette" in res.stderr and "okabe-ito" in res.stderr
