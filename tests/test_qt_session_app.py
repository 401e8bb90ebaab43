"""The session wired into the real viewer on the small demo (offscreen): --session round trip,
several visits, blink / Return keys versus label keys, label glyphs on markers, --visits/CLI."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from astropy.table import Table  # noqa: E402
from PyQt6.QtCore import Qt  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402

from diascan.errors import InputError  # noqa: E402
from diascan.session import Label, Session, SourceRecord, VisitEntry, load_session  # noqa: E402
from diascan.session.store import save_session  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture(autouse=True)
def dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))


@pytest.fixture(scope="module")
def visits_dir(small_demo, tmp_path_factory) -> Path:
    """A folder of two visit folders: the small demo (seed 1) and another one (seed 2)."""
    from diascan.demo import generate_demo

    root = tmp_path_factory.mktemp("visits")
    (root / "v1").symlink_to(small_demo, target_is_directory=True)
    generate_demo(root / "v2", small=True, seed=2)
    return root


@pytest.fixture(scope="module")
def demo_result(small_demo):
    """The small demo through the viewer's own loader (once per module)."""
    from diascan.qt.app import files_loader, folder_files

    return files_loader(folder_files(small_demo))()


def make_window(qtbot):
    from diascan.qt.qt_main_window import QtMainWindow

    w = QtMainWindow()
    qtbot.addWidget(w)
    w.show_errors_as_dialogs = False
    w.resize(1400, 900)
    w.show()
    w.activateWindow()  # window shortcuts (the label keys) need the active window
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w, timeout=3000)
    return w


def linked(qtbot, session_path, result):
    """A window showing ``result`` with a new session saved to ``session_path``."""
    from diascan.qt.qt_session_link import QtSessionLink

    w = make_window(qtbot)
    link = QtSessionLink(w, session_path=session_path, interactive=False)
    with qtbot.waitSignal(link.ready, timeout=5000):
        w.set_result(result)
    return w, link


def press(qtbot, widget, key, mod=Qt.KeyboardModifier.NoModifier):
    qtbot.keyClick(widget, key, mod)


def test_session_round_trip_labels_selection_view(qtbot, tmp_path, demo_result):
    from diascan.qt.qt_session_link import QtSessionLink

    path = tmp_path / "s.json"
    w, link = linked(qtbot, path, demo_result)
    ids = w.source_ids()
    w.select_source(ids[0])
    w.table.setFocus()
    press(qtbot, w.table, Qt.Key.Key_R)
    press(qtbot, w.frames, Qt.Key.Key_B)
    w.state.single = True
    w.state.frames["science"].stretch = "asinh"
    w.select_source(ids[5])
    visit = load_session(path).current
    assert visit.labels.label(ids[0]) is Label.REAL and visit.labels.label(ids[1]) is Label.BOGUS
    # the session records what reloads the visit: template patches and catalog too
    assert len(visit.template_patches) == 2 and visit.catalog.path.endswith("dia_source.parquet")
    w.close()  # closeEvent -> controller.close(): selection and view saved
    saved = load_session(path)
    assert saved.current.current_source == ids[5]
    assert saved.current.view["frames"]["science"]["stretch"] == "asinh"

    # reopen from the session file alone (as `diascan view --session FILE` does)
    w2 = make_window(qtbot)
    link2 = QtSessionLink(w2, session_path=path, interactive=False)
    with qtbot.waitSignal(w2.data_loaded, timeout=20000):
        link2.open_session(load_session(path), path)
    assert w2.source_ids() == ids
    assert w2.sources.labels[0] == "real" and w2.sources.labels[1] == "bogus"
    assert w2.selected_id() == ids[5]
    assert w2.state.single is True and w2.state.frames["science"].stretch == "asinh"
    assert link2.ctl.stats.bar.value() == 2
    w2.close()


def test_checksums_are_filled_off_the_gui_thread(qtbot, tmp_path, demo_result):
    from diascan.session.model import sha256_file

    w, link = linked(qtbot, tmp_path / "s.json", demo_result)
    visit = link.ctl.session.current
    assert link.workers, "hashing runs in a worker"
    qtbot.waitUntil(lambda: visit.science.sha256 is not None, timeout=10000)
    assert visit.science.sha256 == sha256_file(visit.science.path)
    qtbot.waitUntil(lambda: load_session(tmp_path / "s.json").current.difference.sha256
                    is not None, timeout=5000)


def test_blink_keys_do_not_label_and_labels_mark_markers(qtbot, tmp_path, demo_result):
    w, link = linked(qtbot, tmp_path / "s.json", demo_result)
    store = link.ctl.session.current.labels
    first = w.source_ids()[0]
    w.select_source(first)
    w.frames.setFocus()
    n_markers = w.frames.marker_count
    press(qtbot, w.frames, Qt.Key.Key_BracketRight)
    assert w.state.blink_index == 1 and store.statistics().labelled == 0
    press(qtbot, w.frames, Qt.Key.Key_BracketLeft)
    assert w.state.blink_index == 0
    press(qtbot, w.frames, Qt.Key.Key_B)
    assert store.label(first) is Label.BOGUS and w.state.blink_index == 0
    second = w.selected_id()
    press(qtbot, w.frames, Qt.Key.Key_R)
    for view in (*w.frames.views.values(), w.frames.blink_view):
        pts = view.label_markers.points()
        assert sorted(int(p.data()) for p in pts) == [0, 1]
    row = w.sources.index_of(second)
    assert list(w.frames.labelled_rows) == [0, row]
    assert w.frames.marker_count == n_markers  # status markers (colour + shape) kept
    press(qtbot, w.table, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert [int(p.data()) for p in w.frames.views["science"].label_markers.points()] == [0]


def test_return_rescores_only_from_the_table(qtbot, tmp_path, demo_result):
    w, _link = linked(qtbot, tmp_path / "s.json", demo_result)
    w.select_source(w.source_ids()[0])
    # no model in this window: a rescore shows the "No model" error, which we watch for
    w.filter_edit.setFocus()
    with qtbot.assertNotEmitted(w.error_shown, wait=100):
        press(qtbot, w.filter_edit, Qt.Key.Key_Return)
        press(qtbot, w.goto_edit, Qt.Key.Key_Enter)
    w.table.setFocus()
    with qtbot.waitSignal(w.error_shown, timeout=2000):
        press(qtbot, w.table, Qt.Key.Key_Return)


def test_two_visits_next_visit_and_export(qtbot, tmp_path, visits_dir):
    from diascan.qt.qt_session import export_to
    from diascan.qt.qt_session_link import QtSessionLink, visits_from_arg

    visits = visits_from_arg(visits_dir)
    assert [Path(v["science"]).parent.name for v in visits] == ["v1", "v2"]
    w = make_window(qtbot)
    link = QtSessionLink(w, session_path=tmp_path / "multi.json", interactive=False)
    with qtbot.waitSignal(w.data_loaded, timeout=20000):
        link.start_visits(visits)
    ctl = link.ctl
    assert ctl.session.visits[0].is_loaded and not ctl.session.visits[1].is_loaded
    ids1 = w.source_ids()
    w.select_source(ids1[0])
    w.table.setFocus()
    press(qtbot, w.table, Qt.Key.Key_R)
    items = [ctl.stats.visits.item(i).text() for i in range(ctl.stats.visits.count())]
    assert len(items) == 2 and f"1 / {len(ids1)} labelled" in items[0]
    assert "not opened yet" in items[1]
    with qtbot.waitSignal(w.data_loaded, timeout=20000):
        press(qtbot, w.table, Qt.Key.Key_N, Qt.KeyboardModifier.ShiftModifier)  # next visit
    assert ctl.session.current_visit == 1 and "v2" in str(w.images["science"].path)
    v2 = ctl.session.visits[1]
    assert v2.is_loaded and set(v2.labels.ids) == set(w.source_ids())
    assert w.sources.labels == [None] * len(w.sources)  # visit 1's labels stay with visit 1
    w.select_source(w.source_ids()[0])
    press(qtbot, w.table, Qt.Key.Key_B)
    assert "1 / " in ctl.stats.visits.item(1).text()
    on_disk = load_session(tmp_path / "multi.json")
    assert [v.progress()[0] for v in on_disk.visits] == [1, 1]
    assert on_disk.current_visit == 1
    out = tmp_path / "all.csv"
    assert export_to(ctl, out, ask=False) == 2
    assert sorted(Table.read(out)["label"]) == ["bogus", "real"]
    assert not ctl.next_visit()  # the last one
    # back to visit 1 from the visit list: its labels come back
    with qtbot.waitSignal(w.data_loaded, timeout=20000):
        ctl.stats.visit_activated.emit(0)
    assert w.source_ids() == ids1 and w.sources.labels[0] == "real"
    w.close()


def test_visits_from_a_list_file_and_errors(tmp_path, visits_dir):
    from diascan.qt.qt_session_link import visits_from_arg

    lst = tmp_path / "visits.txt"
    lst.write_text(f"# my visits\n{visits_dir / 'v2'}\n\n{visits_dir / 'v1'}\n")
    assert [Path(v["science"]).parent.name for v in visits_from_arg(lst)] == ["v2", "v1"]
    lst.write_text(f"{visits_dir / 'v1'}\n{tmp_path}\n")
    with pytest.raises(InputError, match="line 2"):
        visits_from_arg(lst)
    with pytest.raises(InputError, match="no visit folders"):
        visits_from_arg(tmp_path)
    assert len(visits_from_arg(visits_dir / "v1")) == 1  # a visit folder itself


def _cli(args, tmp_path, timeout=120):
    for d in ("d", "c"):
        (tmp_path / d).mkdir(exist_ok=True)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_DATA_HOME=str(tmp_path / "d"),
               XDG_CONFIG_HOME=str(tmp_path / "c"))
    return subprocess.run([sys.executable, "-m", "diascan.cli.main", *args],
                          capture_output=True, text=True, env=env, timeout=timeout)


def test_cli_session_with_moved_inputs_under_screenshot_exits_2(tmp_path):
    gone = tmp_path / "gone"
    gone.mkdir()
    for name in ("science.fits", "difference.fits"):
        (gone / name).write_bytes(b"x" * 10)
    s = Session(visits=[VisitEntry.create([SourceRecord(id=1)], science=gone / "science.fits",
                                          difference=gone / "difference.fits")])
    save_session(s, tmp_path / "s.json")
    (gone / "science.fits").unlink()
    res = _cli(["view", "--session", str(tmp_path / "s.json"), "--screenshot",
                str(tmp_path / "x.png")], tmp_path)
    assert res.returncode == 2, res.stderr[-2000:]
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "science.fits" in lines[0] and "missing" in lines[0]
    assert not (tmp_path / "x.png").exists()


def test_cli_bad_visits_and_broken_session_exit_2(tmp_path):
    res = _cli(["view", "--visits", str(tmp_path / "nope")], tmp_path)
    assert res.returncode == 2 and "nope" in res.stderr and "Traceback" not in res.stderr
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    res = _cli(["view", "--session", str(bad), "--screenshot", str(tmp_path / "x.png")],
               tmp_path)
    assert res.returncode == 2 and "broken.json" in res.stderr
    assert len([ln for ln in res.stderr.splitlines() if ln.strip()]) == 1


def test_window_with_labels_dock_screenshot(qtbot, tmp_path, demo_result):
    """The window with the Labels dock and labelled markers renders (not blank)."""
    w, link = linked(qtbot, tmp_path / "s.json", demo_result)
    w.select_source(w.source_ids()[0])
    for key in (Qt.Key.Key_R, Qt.Key.Key_B, Qt.Key.Key_U):
        press(qtbot, w.table, key)
    assert link.ctl.dock.isVisible()
    out = Path(os.environ.get("DIASCAN_SHOT_DIR", tmp_path)) / "window_labels.png"
    assert w.grab().save(str(out), "PNG")
    from PyQt6.QtGui import QImage

    img = QImage(str(out)).convertToFormat(QImage.Format.Format_RGB32)
    ptr = img.constBits()
    ptr.setsize(img.width() * img.height() * 4)
    px = np.frombuffer(bytes(ptr), np.uint8).reshape(img.height(), img.width(), 4)[..., :3]
    assert px.std() > 20
    assert "real 1 · bogus 1 · unsure 1" in link.ctl.stats.text.text()
