"""What the viewer tells about its inputs (issue 12 point 3, issue 11 points 2 and 7), on the
real window offscreen: the pipeline's warnings in a banner (dismissable, one per visit, gone
with the next visit), reading and validation errors in a dialog naming the file and the
problem on every way in (one line on stderr under ``--screenshot``), File > File info…, the
layout summary in the status bar, and one mask check box per plane under either spelling."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from astropy.io import fits  # noqa: E402
from astropy.table import Table  # noqa: E402
from astropy.wcs import WCS  # noqa: E402

from tests._tiny_visit import tiny_visit  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture(autouse=True)
def dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))


@pytest.fixture(scope="module")
def visits(tmp_path_factory) -> dict:
    """A good tiny visit, one whose variance is zero everywhere, and one whose science image
    is a plain FITS file (no mask, no variance: the reader estimates it)."""
    root = tmp_path_factory.mktemp("visits")
    good = tiny_visit(root / "good")
    zero = tiny_visit(root / "zero", variance=0.0)
    plain = dict(good)
    with fits.open(good["science"]) as hdul:  # the pixels and the WCS, nothing else
        hdu = fits.PrimaryHDU(hdul["IMAGE"].data, WCS(hdul["IMAGE"].header).to_header())
    (root / "plain").mkdir()
    plain["science"] = root / "plain" / "science.fits"
    hdu.writeto(plain["science"])
    return {"good": good, "zero": zero, "plain": plain}


def run(files):
    from diascan.inputs import files_loader

    return files_loader(files)()


@pytest.fixture
def win(qtbot):
    from diascan.qt.qt_main_window import QtMainWindow

    w = QtMainWindow()
    qtbot.addWidget(w)
    w.resize(1366, 768)
    w.show()
    return w


def load(qtbot, w, files):
    from diascan.inputs import files_loader

    with qtbot.waitSignal(w.data_loaded, timeout=20000):
        w.load(files_loader(files))


def test_pipeline_warnings_banner_one_per_visit(qtbot, win, visits):
    load(qtbot, win, visits["zero"])
    warnings = win.result.warnings
    assert warnings and any("variance plane is zero everywhere" in t for t in warnings)
    banner = win.banners.banner("warnings")
    assert banner is not None and banner.isVisible() and banner.close_button.isVisible()
    assert str(visits["zero"]["difference"]) in banner.text()
    assert all(t in banner.text() for t in warnings)
    banner.close_button.click()  # dismissed
    assert win.banners.banner("warnings") is None and not win.banners.isVisible()
    load(qtbot, win, visits["zero"])  # the visit again: its warnings again
    assert win.banners.banner("warnings") is not None
    load(qtbot, win, visits["good"])  # the next visit has none: the banner goes
    assert not win.result.warnings and win.banners.banner("warnings") is None
    assert not win.banners.isVisible()


def test_catalog_off_the_image_is_a_warning_banner(qtbot, win, visits, tmp_path):
    from diascan.io.tables import read_table, write_table

    cat = read_table(visits["good"]["catalog"])
    cat["ra"] = cat["ra"] + 10.0  # another field
    files = dict(visits["good"], catalog=tmp_path / "elsewhere.parquet")
    write_table(cat, files["catalog"])
    load(qtbot, win, files)
    text = win.banners.banner("warnings").text()
    assert "elsewhere.parquet" in text and "none of its 4 rows lies on the science image" in text


def test_file_info_dialog_and_status_summary(qtbot, win, visits):
    load(qtbot, win, visits["plain"])
    status = win.statusBar().currentMessage()
    assert "plain FITS (science), afw (template, difference)" in status
    n_notes = sum(len(win.images[r].notes) for r in ("science", "difference", "template"))
    assert n_notes and f"{n_notes} note" in status
    assert win.actions.keys_text("file_info") == "Ctrl+I"
    win.actions["file_info"].trigger()  # File > File info…
    dlg = win.file_info_dialog
    qtbot.waitUntil(lambda: "reading…" not in dlg.text(), timeout=10000)
    sci = dlg.pages["science"].toPlainText()
    assert sci.startswith(str(visits["plain"]["science"]))
    assert "plain: plain FITS image" in sci and "variance estimated from the image" in sci
    assert "note       no mask in the file" in sci
    diff = dlg.pages["difference"].toPlainText()
    assert "afw: afw Exposure (HDUs by EXTNAME)" in diff and "VARIANCE: variance" in diff
    assert dlg.pages["template"].toPlainText().startswith(str(visits["plain"]["template"]))
    run_page = dlg.pages["run"].toPlainText()
    assert str(visits["plain"]["catalog"]) in run_page and "warnings: none" in run_page
    load(qtbot, win, visits["zero"])  # the dialog follows the next visit
    qtbot.waitUntil(lambda: str(visits["zero"]["science"]) in dlg.pages["science"]
                    .toPlainText(), timeout=10000)
    assert "variance plane is zero" in dlg.pages["run"].toPlainText()


def _planes_image(planes: dict[str, int], descriptions=None, seed=0):
    from diascan.io.images import ImageData

    n = 64
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [n / 2, n / 2]
    w.wcs.cdelt = [-0.2 / 3600, 0.2 / 3600]
    mask = np.zeros((n, n), np.int32)
    for bit in planes.values():
        mask[bit, :] |= 1 << bit  # row ``bit`` holds plane ``bit``
    rng = np.random.default_rng(seed)
    return ImageData(image=rng.normal(size=(n, n)).astype(np.float32), mask=mask,
                     variance=np.ones((n, n), np.float32), mask_planes=dict(planes), wcs=w,
                     mask_descriptions=descriptions or {})


def test_mask_planes_once_under_either_spelling(qtbot, win):
    """A DP2 science image (SATURATED, COSMIC_RAY, its own description) with an afw template
    and difference (SAT, CR): one check box per plane, the description as tooltip, and the
    overlay of each frame shows the plane however the frame spells it."""
    dp2 = _planes_image({"BAD": 0, "SATURATED": 1, "COSMIC_RAY": 3, "STREAK": 5},
                        {"SATURATED": "Saturated per the camera team."})
    afw = _planes_image({"BAD": 0, "SAT": 1, "CR": 3, "EDGE": 4}, seed=1)
    det = Table({"id": [1], "x": [10.0], "y": [10.0], "ra": [150.0], "dec": [2.0],
                 "snr": [9.0], "psfFlux": [1.0], "score": [0.5], "status": ["matched"]})
    res = SimpleNamespace(science=dp2, template=afw, difference=afw, detections=det,
                          missing=Table({"x": [], "y": []}))
    with qtbot.waitSignal(win.data_loaded, timeout=5000):
        win.set_result(res)
    assert list(win.mask_checks) == ["BAD", "SATURATED", "COSMIC_RAY", "STREAK", "EDGE"]
    sat = win.mask_checks["SATURATED"]
    assert sat.toolTip() == "Saturated per the camera team. (also called SAT)"
    assert win.mask_checks["EDGE"].toolTip().startswith("Too close to the image edge")
    sat.setChecked(True)
    assert win.state.mask_planes_on == frozenset({"SATURATED"})
    for name in ("science", "template", "difference"):  # row 1 of every frame is coloured
        ov = win.frames.views[name].overlays[0]
        rgba = ov.image
        assert ov.isVisible() and rgba[1].any() and not rgba[2].any(), name
    sat.setChecked(False)
    assert win.state.mask_planes_on == frozenset()
    win.state.mask_planes_on = frozenset({"SAT", "CR"})  # a session saved with afw names
    assert sat.isChecked() and win.mask_checks["COSMIC_RAY"].isChecked()
    win.mask_checks["COSMIC_RAY"].setChecked(False)  # both spellings go
    assert win.state.mask_planes_on == frozenset({"SAT"})


# --- errors: a dialog naming the file, on every way in ----------------------------------------
def test_errors_on_every_way_in_name_the_file(qtbot, win, visits, tmp_path):
    from PyQt6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PyQt6.QtGui import QDropEvent

    from diascan.qt import qt_session
    from diascan.qt.qt_labels import QtLabelController

    def dialog_texts():
        return [b.text() for b in win._dialogs if b.isVisible()]

    broken = tmp_path / "broken"
    shutil.copytree(visits["good"]["science"].parent, broken)
    (broken / "science.fits").write_bytes(b"SIMPLE  =                    T" + b"\0" * 50)
    files = {r: broken / Path(p).name for r, p in visits["good"].items()}
    # File > Open images… (what its dialog calls)
    with qtbot.waitSignal(win.error_shown, timeout=20000) as sig:
        win.open_files(files)
    assert str(broken / "science.fits") in sig.args[0] and "\n" not in sig.args[0]
    assert any(str(broken / "science.fits") in t for t in dialog_texts())
    # a dropped folder
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(broken))])
    ev = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime,
                    Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(win.error_shown, timeout=20000) as sig:
        win.dropEvent(ev)
    assert str(broken / "science.fits") in sig.args[0]
    # File > Open session… with a session that fails validation
    load(qtbot, win, visits["good"])
    ctl = QtLabelController(win, session_path=tmp_path / "s.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "diascan-session", "schema_version": 1, "visits": [{"sources": '
                   '[{"id": 1, "score": 7}]}]}')
    with qtbot.waitSignal(win.error_shown, timeout=5000) as sig:
        assert not qt_session.open_session_file(ctl, bad)
    assert sig.args[0].startswith(f"{bad}: broken session file")
    assert any(t.startswith(f"{bad}: ") for t in dialog_texts())
    win.show_errors_as_dialogs = False  # closing asks nothing at teardown


def _cli(args, tmp_path, timeout=180):
    for d in ("d", "c"):
        (tmp_path / d).mkdir(exist_ok=True)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_DATA_HOME=str(tmp_path / "d"),
               XDG_CONFIG_HOME=str(tmp_path / "c"))
    return subprocess.run([sys.executable, "-m", "diascan.cli.main", *args],
                          capture_output=True, text=True, env=env, timeout=timeout)


@pytest.mark.parametrize("way", ["session", "visits", "model"])
def test_screenshot_errors_are_one_line(tmp_path, visits, way):
    """--session whose input is corrupt, --visits with a corrupt visit, a broken model package:
    exit 2, one line naming the file, no PNG."""
    from diascan.session.model import Session
    from diascan.session.store import save_session
    from diascan.session.visits import visit_from_view

    broken = tmp_path / "visits" / "v1"
    shutil.copytree(visits["good"]["science"].parent, broken)
    bad_file = broken / "difference.fits"
    bad_file.write_bytes(b"SIMPLE  =                    T" + b"\0" * 50)
    png = tmp_path / "x.png"
    if way == "session":
        files = {r: broken / Path(p).name for r, p in visits["good"].items()}
        save_session(Session(visits=[visit_from_view(None, {}, files)]), tmp_path / "s.json")
        args = ["view", "--session", str(tmp_path / "s.json")]
    elif way == "visits":
        args = ["view", "--visits", str(tmp_path / "visits")]
    else:
        bad_file = tmp_path / "pkg"
        bad_file.mkdir()
        (bad_file / "meta.yaml").write_text("a: [1, 2")
        (bad_file / "model.pt").write_bytes(b"not a checkpoint")
        args = ["view", *(f"--{r}={p}" for r, p in visits["good"].items()),
                "--model", str(bad_file)]
    res = _cli([*args, "--screenshot", str(png)], tmp_path)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 2, res.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("diascan view: error: "), lines
    assert str(bad_file) in lines[0] and not png.exists()
