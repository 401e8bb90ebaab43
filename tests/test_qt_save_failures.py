"""Labels are never lost in the viewer (issue 12 point 1), on the real window offscreen with
real key presses and a real visit on disk: when the session file cannot be saved (a read-only
folder, a disk that fills up, the file replaced by a folder, a file-size limit) the window says
so at once in ONE dialog per failure streak and in a banner that stays until a save works, keeps
every label, saves again on the next change, offers Save As, and refuses to close or to switch
sessions until the user saves elsewhere or discards."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
from PyQt6.QtCore import Qt  # noqa: E402
from PyQt6.QtWidgets import QApplication, QFileDialog, QMessageBox  # noqa: E402

from diascan.session import Label, load_session  # noqa: E402
from tests._qt_dialogs import answer, click, save_file_as, then_save_as  # noqa: E402
from tests._tiny_visit import tiny_visit  # noqa: E402
from tests._unwritable import unwritable_folder  # noqa: E402

pytestmark = pytest.mark.gui
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # Save As starts there
    (tmp_path / "home").mkdir()


@pytest.fixture(scope="module")
def visit(tmp_path_factory) -> dict:
    return tiny_visit(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def result(visit):
    """The tiny visit through the viewer's own loader (the pipeline, unscored)."""
    from diascan.inputs import files_loader

    return files_loader(visit)()


@pytest.fixture
def opened(qtbot, result):
    """``open(session_path)``: the real window showing the visit, with dialogs on, its new
    session autosaved to ``session_path``; at teardown dialogs go off (closing asks nothing)."""
    from diascan.qt.qt_main_window import QtMainWindow
    from diascan.qt.qt_session_link import QtSessionLink

    windows = []

    def open_(session_path: Path):
        w = QtMainWindow()
        qtbot.addWidget(w)
        windows.append(w)
        w.show()
        link = QtSessionLink(w, session_path=session_path)
        with qtbot.waitSignal(link.ready, timeout=10000):
            w.set_result(result)
        activate(qtbot, w)
        w.select_source(w.source_ids()[0])
        w.table.setFocus()
        return w, link.ctl

    yield open_
    for w in windows:
        w.show_errors_as_dialogs = False


def activate(qtbot, w) -> None:
    """Window shortcuts (the label keys) need the active window; a dialog took it."""
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w, timeout=3000)


def press(qtbot, w, key) -> None:
    qtbot.keyClick(w.table, key)


def failure_dialogs(w) -> list[QMessageBox]:
    return [b for b in w._dialogs if b.windowTitle() == "Labels not saved"]


def labels(session_or_path) -> dict:
    s = load_session(session_or_path) if isinstance(session_or_path, Path) else session_or_path
    out = {}
    for v in s.visits:
        for sid in v.labels.ids:
            if v.labels.label(sid) is not None or v.labels.note(sid):
                out[sid] = (v.labels.label(sid), v.labels.note(sid))
    return out


def test_read_only_folder_one_dialog_banner_until_saved_and_retry(qtbot, opened, tmp_path):
    with unwritable_folder(tmp_path / "sessions") as folder:
        path = folder.path / "s.json"
        w, ctl = opened(path)
        press(qtbot, w, Qt.Key.Key_R)
        assert labels(path) == {1: (Label.REAL, "")}
        folder.read_only()
        press(qtbot, w, Qt.Key.Key_B)
        # at once: a dialog naming the file and the reason, and the banner
        boxes = failure_dialogs(w)
        assert len(boxes) == 1 and boxes[0].isVisible()
        assert str(path) in boxes[0].text()
        assert "read-only file system" in boxes[0].text() or "permission denied" in boxes[0].text()
        assert any(b.text() == "Save As…" for b in boxes[0].buttons())
        banner = w.banners.banner("not_saved")
        assert banner is not None and banner.isVisible() and str(path) in banner.text()
        assert not banner.close_button.isVisible()  # stays until a save works
        activate(qtbot, w)
        press(qtbot, w, Qt.Key.Key_R)
        press(qtbot, w, Qt.Key.Key_U)  # more failures of the same streak: no more dialogs
        assert len(failure_dialogs(w)) == 1 and ctl.autosave.dirty
        assert labels(ctl.session) == {1: (Label.REAL, ""), 2: (Label.BOGUS, ""),
                                       3: (Label.REAL, ""), 4: (Label.UNSURE, "")}
        assert labels(path) == {1: (Label.REAL, "")}  # the previous file, intact
        folder.writable()
        press(qtbot, w, Qt.Key.Key_0)  # any change: clear the selected source's label
        # the next change saved everything: banner and dialog gone, the status bar says so
        assert not ctl.autosave.dirty and w.banners.banner("not_saved") is None
        qtbot.waitUntil(lambda: not failure_dialogs(w), timeout=3000)
        assert "labels saved to" in w.statusBar().currentMessage()
        assert labels(path) == labels(ctl.session)
        folder.read_only()
        press(qtbot, w, Qt.Key.Key_B)  # a new streak: a new dialog
        assert len(failure_dialogs(w)) == 1
        folder.writable()
        banner = w.banners.banner("not_saved")
        banner.buttons["Retry"].click()  # after fixing the folder: Retry saves now
        assert not ctl.autosave.dirty and w.banners.banner("not_saved") is None
        assert labels(path) == labels(ctl.session)


def test_save_as_from_the_dialog_rescues_every_label(qtbot, opened, tmp_path):
    with unwritable_folder(tmp_path / "sessions") as folder:
        path = folder.path / "s.json"
        w, ctl = opened(path)
        folder.read_only()
        for key in (Qt.Key.Key_R, Qt.Key.Key_B, Qt.Key.Key_R):
            press(qtbot, w, key)
            activate(qtbot, w)
        assert len(failure_dialogs(w)) == 1
        rescued = tmp_path / "rescued.json"
        answer(QFileDialog, save_file_as(rescued))
        next(b for b in failure_dialogs(w)[0].buttons() if b.text() == "Save As…").click()
        assert rescued.is_file() and not ctl.autosave.dirty
        assert labels(rescued) == {1: (Label.REAL, ""), 2: (Label.BOGUS, ""),
                                   3: (Label.REAL, "")}
        assert ctl.session_path == rescued and w.banners.banner("not_saved") is None
        activate(qtbot, w)
        press(qtbot, w, Qt.Key.Key_U)  # autosave goes to the new file from now on
        assert labels(rescued)[4] == (Label.UNSURE, "")


def test_file_replaced_by_a_folder_then_save_as(qtbot, opened, tmp_path):
    path = tmp_path / "s.json"
    w, ctl = opened(path)
    press(qtbot, w, Qt.Key.Key_R)
    path.unlink()
    path.mkdir()  # someone put a folder where the session file was
    press(qtbot, w, Qt.Key.Key_B)
    assert "is a folder" in failure_dialogs(w)[0].text()
    rescued = tmp_path / "elsewhere.json"
    answer(QFileDialog, save_file_as(rescued))
    w.actions["save_session_as"].trigger()  # File > Save session as…
    assert labels(rescued) == {1: (Label.REAL, ""), 2: (Label.BOGUS, "")}
    assert path.is_dir() and not any(path.iterdir())  # the folder is not touched


def test_save_as_onto_an_input_file_is_refused_in_a_dialog(qtbot, opened, tmp_path, visit):
    w, ctl = opened(tmp_path / "s.json")
    press(qtbot, w, Qt.Key.Key_R)
    science = visit["science"]
    before = science.read_bytes()
    with qtbot.waitSignal(w.error_shown, timeout=3000) as sig:
        assert not ctl.guard.save_as(science)
    assert sig.args[0].startswith(f"{science}: ") and "never writes over an input file" in sig.args[0]
    assert any(b.windowTitle() == "Save As failed" for b in w._dialogs)
    assert science.read_bytes() == before and ctl.autosave.path == tmp_path / "s.json"


def test_closing_while_unsaved_is_refused_until_the_user_chooses(qtbot, opened, tmp_path):
    with unwritable_folder(tmp_path / "sessions") as folder:
        path = folder.path / "s.json"
        w, ctl = opened(path)
        folder.read_only()
        press(qtbot, w, Qt.Key.Key_R)
        activate(qtbot, w)
        press(qtbot, w, Qt.Key.Key_B)
        answer(QMessageBox, click("Cancel"))
        assert not w.close()  # Cancel: the window stays, every label in memory
        assert w.isVisible() and w.label_controller is ctl
        assert labels(ctl.session) == {1: (Label.REAL, ""), 2: (Label.BOGUS, "")}
        # Save As…, the file dialog cancelled: asked again; then Save As to a file for real
        rescued = tmp_path / "rescued.json"
        asked = []

        def second(box):
            asked.append(box.text())
            then_save_as(rescued)(box)

        def first(box):
            asked.append(box.text())
            answer(QMessageBox, second)
            answer(QFileDialog, lambda d: d.reject())
            click("Save As…")(box)

        answer(QMessageBox, first)
        assert w.close() and not w.isVisible()
        assert len(asked) == 2 and "could not be saved" in asked[0] and str(path) in asked[0]
        assert labels(rescued) == {1: (Label.REAL, ""), 2: (Label.BOGUS, "")}


def test_discard_closes_and_the_old_file_stays(qtbot, opened, tmp_path):
    with unwritable_folder(tmp_path / "sessions") as folder:
        path = folder.path / "s.json"
        w, ctl = opened(path)
        press(qtbot, w, Qt.Key.Key_R)
        folder.read_only()
        press(qtbot, w, Qt.Key.Key_B)
        answer(QMessageBox, click("Discard changes"))
        assert w.close() and not w.isVisible()
        assert labels(path) == {1: (Label.REAL, "")}


def test_opening_another_session_or_visits_asks_first(qtbot, opened, tmp_path, visit):
    from diascan.qt import qt_session
    from diascan.qt.qt_session_link import open_visits
    from diascan.session.model import Session
    from diascan.session.store import save_session

    with unwritable_folder(tmp_path / "sessions") as folder:
        path = folder.path / "s.json"
        w, ctl = opened(path)
        other = save_session(Session(visits=[qt_session.visit_from_window(w)]),
                             tmp_path / "other.json")
        folder.read_only()
        press(qtbot, w, Qt.Key.Key_R)
        before = ctl.session
        answer(QMessageBox, click("Cancel"))
        assert not qt_session.open_session_file(ctl, other, locate=False)  # File > Open session
        assert ctl.session is before and ctl.autosave.path == path
        answer(QMessageBox, click("Cancel"))
        assert not open_visits(ctl, visit["science"].parent)  # File > Open visits…
        assert ctl.session is before and labels(before) == {1: (Label.REAL, "")}
        answer(QMessageBox, click("Discard changes"))
        with qtbot.waitSignal(w.data_loaded, timeout=10000):
            assert qt_session.open_session_file(ctl, other, locate=False)
        assert ctl.session is not before and ctl.autosave.path == other
        assert w.banners.banner("not_saved") is None  # the old session's warning went with it


def test_saving_keeps_the_files_permissions(qtbot, opened, tmp_path):
    """The GUI saves through the core's atomic writer: a shared 0664 file stays 0664."""
    path = tmp_path / "shared.json"
    w, ctl = opened(path)
    path.chmod(0o664)
    press(qtbot, w, Qt.Key.Key_R)
    press(qtbot, w, Qt.Key.Key_B)
    assert stat.S_IMODE(path.stat().st_mode) == 0o664
    assert labels(path) == {1: (Label.REAL, ""), 2: (Label.BOGUS, "")}
    old = os.umask(0o022)
    try:
        new = tmp_path / "copy.json"
        assert ctl.guard.save_as(new)
    finally:
        os.umask(old)
    assert stat.S_IMODE(new.stat().st_mode) == 0o644  # a new file follows the umask


def test_disk_fills_mid_session_then_save_as(qtbot, opened, tmp_path):
    """A real 16 kB tmpfs (root only; skipped elsewhere, the file-size limit test below runs
    everywhere): notes typed with the keyboard until the disk is full."""
    with unwritable_folder(tmp_path / "disk", size_kb=16) as folder:
        path = folder.path / "s.json"
        w, ctl = opened(path)
        typed = 0
        while not ctl.guard.failing:
            press(qtbot, w, Qt.Key.Key_E)  # edit the note of the selected source
            qtbot.keyClicks(ctl.note_edit, f"note {typed} " + "x" * 2000)
            qtbot.keyClick(ctl.note_edit, Qt.Key.Key_Return)
            typed += 1
            assert typed < 8, "the disk never filled"
            press(qtbot, w, Qt.Key.Key_N)
        assert "disk full" in failure_dialogs(w)[0].text()
        in_memory = labels(ctl.session)
        assert len(in_memory) == min(typed, 4) and ctl.autosave.dirty
        rescued = tmp_path / "rescued.json"
        answer(QFileDialog, save_file_as(rescued))
        w.banners.banner("not_saved").buttons["Save As…"].click()
        assert labels(rescued) == in_memory


def test_file_size_limit_in_the_real_window(tmp_path, visit):
    """RLIMIT_FSIZE in a child process running the real window: labels and notes by key
    presses until a save fails (EFBIG); one dialog; closing asks; Save As under the limit fails
    too and the question comes back; with the limit lifted Save As keeps every label."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_DATA_HOME=str(tmp_path / "d"),
               XDG_CONFIG_HOME=str(tmp_path / "c"), HOME=str(tmp_path))
    p = subprocess.run([sys.executable, "-m", "tests._fsize_child", str(tmp_path),
                        json.dumps({k: str(v) for k, v in visit.items()})],
                       capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads(p.stdout.strip().splitlines()[-1])
    assert "file too large" in r["error"] and r["dialogs"] == 1
    assert r["typed"] >= 2 and r["on_disk"] < r["in_memory"]
    assert r["questions"] == 2 and "file too large" in r["save_as_error"]
    assert r["closed"] and r["rescued"] == r["in_memory_labels"]
