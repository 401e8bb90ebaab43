"""Alerts in the real window (offscreen): the gallery over an alert collection, labels, undo,
hide scores, autosave and resume, exports, rescoring in the jobs layer, bad files, drops.

Packets made here (tests/_alert_packets.py: Rubin's own schemas and sample alerts, cutouts
made by the test) need no ../shared; the real packets and the braai model of ../shared are used
by the tests that say so (skipped only without ../shared)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from astropy.table import Table  # noqa: E402
from PyQt6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402

from diascan.session.store import load_session  # noqa: E402
from tests._alert_packets import SYNTH_SIZE, write_synthetic_folder  # noqa: E402
from tests.test_models_braai import DRB_EXCEPTIONS  # noqa: E402

pytestmark = pytest.mark.gui

N = 6


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    folder = tmp_path_factory.mktemp("alerts") / "rubin"
    write_synthetic_folder(folder, N)
    return folder


def make_window(qtbot, models=None):
    from diascan.models.locate import model_choices
    from diascan.qt.qt_main_window import QtMainWindow

    w = QtMainWindow()
    qtbot.addWidget(w)
    w.show_errors_as_dialogs = False
    w.resize(1400, 900)
    w.set_models(*model_choices(models))
    w.show()
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w, timeout=3000)
    return w


def banner_text(w, key: str) -> str:
    banner = w.banners.banner(key)
    return "" if banner is None else banner.text()


def open_linked(qtbot, paths, session_path, models=None):
    """A window with a new session over the alerts ``paths`` (as ``diascan view --alerts``)."""
    from diascan.alerts.viewer import alerts_loader
    from diascan.qt.qt_session_link import QtSessionLink

    w = make_window(qtbot, models)
    link = QtSessionLink(w, session_path=session_path, interactive=False)
    with qtbot.waitSignal(link.ready, timeout=20000):
        link.start_new(alerts_loader(paths))
    return w, link


def test_alerts_open_in_the_gallery_with_their_fields(qtbot, tmp_path, synth):
    w, link = open_linked(qtbot, [synth], tmp_path / "s.json")
    assert w.gallery_shown() and w.gallery.source is w.alerts
    assert len(w.sources) == N and list(w.gallery_state.order) == list(range(N))
    cols = w.sources.columns
    assert list(cols["diaSourceId"]) == list(range(5000, 5000 + N))  # the alerts' own ids
    assert set(cols["status"]) == {"rubin"} and set(cols["schema"]) == {"lsst.v9_0"}
    headers = {w.table_model.headerData(c, Qt.Orientation.Horizontal) for c in
               range(w.table_model.columnCount())}
    assert {"diaSourceId", "band", "time", "is_negative", "ss_match", "flags"} <= headers
    # the tile stamps are the alerts' cutouts, centred, blank beyond the 31 x 31 cutout
    t = w.gallery.source.triplet(0, 51)
    assert np.isnan(t.difference[0, 0]) and np.isfinite(t.difference[25, 25])
    assert np.nanargmax(t.difference) == 25 * 51 + 25
    # go-to takes the alert's own id as well as the row id
    assert w.goto("5003") and w.selected_id() == 4
    assert w.goto("2") and w.selected_id() == 2
    # the filter box's expressions reach the gallery (every third alert is bright)
    assert w.set_filter("snr > 10 and status == 'rubin'")
    qtbot.waitUntil(lambda: len(w.gallery_state.order) == 2)
    assert w.set_filter("")
    # no frames for alerts: the frames' place says so, and Enter enlarges the tile instead
    w.show_gallery(False)
    assert w.view_stack.currentWidget() is w.no_frames and "cutouts" in w.no_frames.text()
    w.show_gallery(True)
    w.open_in_frames(0)
    assert w.gallery_shown() and w.gallery_state.enlarged
    w.close()


def test_labels_undo_hide_scores_autosave_resume_export(qtbot, tmp_path, synth):
    from diascan.qt.qt_session import export_to
    from diascan.qt.qt_session_link import QtSessionLink

    path = tmp_path / "s.json"
    w, link = open_linked(qtbot, [synth], path)
    w.gallery.setFocus()
    qtbot.keyClick(w.gallery, Qt.Key.Key_R)  # label the selected tile real, move on
    qtbot.keyClick(w.gallery, Qt.Key.Key_B)
    qtbot.keyClick(w.gallery, Qt.Key.Key_B)
    qtbot.keyClick(w.gallery, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # undo
    assert list(w.sources.labels[:3]) == ["real", "bogus", None]
    saved = load_session(path)
    entry = saved.current
    assert [r.path for r in entry.alerts] == [str(p) for p in sorted(synth.iterdir())]
    assert entry.labels.label(1) == "real" and entry.labels.label(2) == "bogus"
    assert entry.labels.label(3) is None
    assert entry.source(1).diaSourceId == 5000 and entry.source(1).extra["band"]
    link.ctl.hide_scores_check.setChecked(True)
    assert w.gallery_state.hide_scores
    link.ctl.hide_scores_check.setChecked(False)
    out = tmp_path / "labels.csv"
    assert export_to(link.ctl, out, ask=False) == 2
    t = Table.read(out)
    assert list(t["diaSourceId"]) == [5000, 5001] and list(t["label"]) == ["real", "bogus"]
    assert {"band", "time", "schema", "file"} <= set(t.colnames)
    w.select_source(4)
    w.close()
    # resume from the session file alone (diascan view --session FILE)
    w2 = make_window(qtbot)
    link2 = QtSessionLink(w2, session_path=path, interactive=False)
    with qtbot.waitSignal(w2.data_loaded, timeout=20000):
        link2.open_session(load_session(path), path)
    assert w2.alerts is not None and w2.gallery_shown()
    assert list(w2.sources.labels[:3]) == ["real", "bogus", None]
    assert w2.selected_id() == 4 and w2.gallery_state.selected_row == 3
    w2.close()


def test_rescoring_small_rubin_stamps_says_they_are_too_small(qtbot, tmp_path, synth):
    """The bundled 51 x 51 model and 31 x 31 Rubin cutouts: no score, a plain banner."""
    w, link = open_linked(qtbot, [synth], tmp_path / "s.json")
    with qtbot.waitSignal(w.rescore_done, timeout=60000) as sig:
        assert w.rescore_all() is not None  # a job of the jobs layer, as for visits
    rows, scores = sig.args[0]
    assert len(rows) == N and np.all(np.isnan(scores)) and np.all(np.isnan(w.sources.score))
    text = banner_text(w, "alert_scores")
    assert f"{N} of {N} alerts not rescored" in text
    assert f"stamps {SYNTH_SIZE}x{SYNTH_SIZE} are smaller than the 51x51 model input" in text
    assert np.isfinite(w.sources.original).all() or np.isnan(w.sources.original).all()
    w.close()


def test_bad_files_are_named_and_the_rest_open(qtbot, tmp_path, synth):
    bad = tmp_path / "broken.avro"
    bad.write_bytes(b"Obj\x01" + b"\x00" * 40)
    text = tmp_path / "notes.parquet"
    text.write_text("not parquet")
    w, link = open_linked(qtbot, [synth, bad, text], tmp_path / "s.json")
    assert len(w.sources) == N
    lines = banner_text(w, "warnings")
    assert "2 file(s) or record(s) could not be read as alerts" in lines
    assert str(bad) in lines and str(text) in lines
    # nothing readable at all: one line naming the file, the window stays as it was
    from diascan.alerts.viewer import alerts_loader

    with qtbot.waitSignal(w.load_failed, timeout=20000) as sig:
        w.load(alerts_loader([text]))
    assert str(text) in sig.args[0] and "\n" not in sig.args[0]
    assert len(w.sources) == N
    w.close()


def test_dropping_alert_files_opens_them(qtbot, tmp_path, synth):
    from PyQt6.QtGui import QDragEnterEvent, QDropEvent

    w = make_window(qtbot)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in sorted(synth.iterdir())[:4]])
    no_button, no_mod = Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier
    enter = QDragEnterEvent(QPoint(20, 20), Qt.DropAction.CopyAction, mime, no_button, no_mod)
    assert QApplication.sendEvent(w, enter) and enter.isAccepted()
    drop = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, no_button, no_mod)
    with qtbot.assertNotEmitted(w.error_shown), qtbot.waitSignal(w.data_loaded, timeout=20000):
        QApplication.sendEvent(w, drop)
    assert len(w.sources) == 4 and w.gallery_shown()
    w.close()


# -- real packets of ../shared ---------------------------------------------------------------


def test_real_ztf_packets_rescored_with_braai_in_the_worker(qtbot, tmp_path, shared_dir):
    """ZTF alerts follow the braai package (given beside the bundled model); its scores are
    the packets' drb; the 2016 JPEG packet is opened, not scored, and says why."""
    packets = shared_dir / "data" / "ztf_alerts" / "packets"
    braai = shared_dir / "data" / "braai_d6_m7"
    w, link = open_linked(qtbot, [packets], tmp_path / "s.json")
    specs = dict(w.model_specs)
    specs["braai_d6_m7"] = braai  # in the switcher, not selected: the alerts pick it
    w.set_models(specs, next(iter(w.model_specs)))
    with qtbot.waitSignal(w.rescore_done, timeout=120000) as sig:
        w.rescore_all()
    assert sig.args[0] is not None and w.state.model_name == "braai_d6_m7"
    drb = np.asarray(w.sources.columns["drb"], dtype=float)
    have = np.isfinite(drb) & np.isfinite(w.sources.score)
    assert have.sum() == 7  # the packets with a drb
    err = np.abs(w.sources.score[have] - drb[have])
    off = set(np.asarray(w.sources.dia_source_id)[have][err >= 1e-3].tolist())
    assert off <= DRB_EXCEPTIONS and (err < 1e-3).sum() >= 6  # the known exception (see there)
    jpeg = [i for i, f in enumerate(w.sources.columns["file"]) if "JPEG" in f]
    assert jpeg and np.isnan(w.sources.score[jpeg[0]])
    assert "not rescored" in banner_text(w, "alert_scores")
    w.close()


def test_real_rubin_broker_table_in_the_gallery(qtbot, tmp_path, shared_dir):
    table = shared_dir / "data" / "rubin_alerts" / "rubin_alerts_sample.parquet"
    w, link = open_linked(qtbot, [table], tmp_path / "s.json")
    started: list[str] = []
    w.jobs.started.connect(lambda job: started.append(job.kind))
    assert len(w.sources) > 0 and w.gallery_shown()
    assert np.isfinite(w.sources.original).any()  # Rubin's production reliability
    t = w.gallery.source.triplet(0, 51)
    assert np.isfinite(t.difference).sum() > 400  # a ~30 x 30 cutout, blank around it
    # the fields job starts after the first page (it may end within the same event batch)
    qtbot.waitUntil(lambda: "fields" in started, timeout=10000)
    qtbot.waitUntil(lambda: not w.jobs.running, timeout=60000)  # fields, checksums: done
    w.close()


def test_first_page_decoded_in_the_load_job_next_page_ahead_the_rest_lazily(qtbot, tmp_path):
    """File > Open alerts: the load job decodes the cutouts of the gallery's first page (it is
    painted from ready stamps), a quiet 'stamps' job the next page's; no other alert's."""
    from diascan.qt import qt_alerts

    folder = tmp_path / "many"
    n = 40
    write_synthetic_folder(folder, n)
    w = make_window(qtbot)
    w.resize(900, 600)
    w.show_gallery(True)
    qtbot.wait(50)
    per_page = w.gallery_state.per_page
    assert 2 * per_page < n  # a first, a second and further pages
    kinds = []
    w.jobs.started.connect(lambda job: kinds.append(job.kind))
    with qtbot.waitSignal(w.data_loaded, timeout=20000):
        qt_alerts.open_alerts(w, [folder])
    alerts = w.alerts
    decoded = [alerts.decoded(i) for i in range(n)]
    first = per_page + w.gallery_state.columns  # the grid may gain a row when loaded
    assert decoded[:first] == [True] * first  # before the GUI painted anything
    assert not any(decoded[first:])
    # the grid may grow once the job is done (the progress bar goes): the page painted
    qtbot.waitUntil(lambda: all(r in w.gallery._screen for r in w.gallery_state.page_rows()))
    per_page = w.gallery_state.per_page
    second = list(range(per_page, 2 * per_page))
    qtbot.waitUntil(lambda: all(r in w.gallery._screen for r in second), timeout=20000)
    assert "stamps" in kinds
    assert all(alerts.decoded(i) for i in second)
    assert not any(alerts.decoded(i) for i in range(2 * per_page, n))  # lazy beyond
    # the next page shows at once: composed already
    paints = w.gallery.paint_count
    w.gallery_state.next_page()
    qtbot.waitUntil(lambda: w.gallery.paint_count > paints)
    qtbot.waitUntil(lambda: any(alerts.decoded(i) for i in range(2 * per_page, 3 * per_page)),
                    timeout=20000)  # and the one after it is decoded ahead in turn
    w.close()


def test_survey_status_is_painted_neutral_not_unmatched_red(qtbot, tmp_path, synth):
    from diascan.palettes import get_palette

    w, link = open_linked(qtbot, [synth], tmp_path / "s.json")
    pal = get_palette(w.gallery_state.palette)
    g = w.gallery
    qtbot.waitUntil(lambda: 0 in g._screen, timeout=10000)
    assert w.sources.status[0] == "rubin"
    tile = g._screen[0][1]  # (the page image, this tile's view of it)
    img = tile.convertToFormat(tile.Format.Format_RGB32)
    ptr = img.constBits()
    ptr.setsize(img.sizeInBytes())
    bgra = np.frombuffer(ptr, np.uint8).reshape(img.height(), img.bytesPerLine() // 4, 4)
    rgb = {tuple(int(v) for v in px[2::-1]) for px in bgra.reshape(-1, 4)}
    assert pal.neutral in rgb  # the status line ("rubin")
    assert pal.status["unmatched"] not in rgb
    w.close()
