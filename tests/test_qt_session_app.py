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
    from diascan.inputs import files_loader, folder_files

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
    assert visit.science.sha256 is None and w.jobs.busy("checksum"), "hashing runs in a job"
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
    from diascan.inputs import visits_from_arg
    from diascan.qt.qt_session import export_to
    from diascan.qt.qt_session_link import QtSessionLink

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
    assert list(w.sources.labels) == [None] * len(w.sources)  # visit 1's labels stay with visit 1
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
    from diascan.inputs import visits_from_arg

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


# --- scores, model, visits menu, key captions, the app-made fixture --------------------------
FIXTURES = Path(__file__).parent / "fixtures" / "sessions"
APP_FIXTURE = FIXTURES / "session_v1_app_2026-11-29.json"


@pytest.fixture(scope="module")
def model_dir() -> Path:
    """The bundled model package (in the repository: no shared data needed)."""
    from diascan.models import DEFAULT_MODEL_NAME
    from diascan.models.package import resolve_package_path

    return resolve_package_path(DEFAULT_MODEL_NAME)


def test_rescored_scores_and_model_are_saved_restored_and_exported(qtbot, tmp_path, demo_result,
                                                                   model_dir):
    from diascan.qt.qt_session import export_to
    from diascan.qt.qt_session_link import QtSessionLink

    path = tmp_path / "s.json"
    w, link = linked(qtbot, path, demo_result)
    w.set_models({"sim": model_dir, "sim_b": model_dir}, "sim")
    with qtbot.waitSignal(w.rescore_done, timeout=60000) as sig:
        w.rescore_all()
    idx, scores = sig.args[0]
    assert len(idx) == len(w.sources) and np.isfinite(scores).all()
    ids = w.source_ids()
    saved = load_session(path).current
    by_id = {s.id: s.score for s in saved.sources}
    assert [by_id[ids[i]] for i in idx] == pytest.approx([float(s) for s in scores])
    assert (saved.model_name, saved.model_version, saved.model_path) == (
        "sim", "1.0", str(model_dir))
    # the labelled source's score is in the export
    w.select_source(ids[3])
    press(qtbot, w.table, Qt.Key.Key_R)
    out = tmp_path / "out.csv"
    assert export_to(link.ctl, out, ask=False) == 1
    t = Table.read(out)
    assert t["score"][0] == pytest.approx(w.sources.score[3])
    assert str(t["model"][0]) == "sim" and str(t["model_version"][0]) == "1.0"
    # a model switch rescores: recorded with its scores
    with qtbot.waitSignal(w.rescore_done, timeout=60000):
        w.model_combo.setCurrentText("sim_b")
    assert load_session(path).current.model_name == "sim_b"
    shown = w.sources.score.copy()
    w.close()

    # resume: the saved scores are shown without rescoring, the saved model is selected
    w2 = make_window(qtbot)
    w2.set_models({"sim": model_dir, "sim_b": model_dir}, "sim")
    link2 = QtSessionLink(w2, session_path=path, interactive=False)
    with qtbot.waitSignal(w2.data_loaded, timeout=20000):
        link2.open_session(load_session(path), path)
    assert w2.source_ids() == ids
    np.testing.assert_allclose(w2.sources.score, shown)  # at once: no rescoring ran
    assert w2.model_combo.currentText() == "sim_b" and w2.state.model_name == "sim_b"
    assert w2.sources.labels[3] == "real"
    w2.close()


def test_scores_of_sources_no_longer_shown_are_not_saved(qtbot, tmp_path, demo_result,
                                                         visits_dir, model_dir):
    from diascan.inputs import files_loader, folder_files

    other = files_loader(folder_files(visits_dir / "v2"))()
    path = tmp_path / "s.json"
    w, link = linked(qtbot, path, demo_result)
    w.set_models({"sim": model_dir}, "sim")
    with qtbot.waitSignal(w.rescore_done, timeout=60000) as sig:
        w.rescore_all()
        w.set_result(other)  # other images opened while scoring: a new visit
    # the jobs layer cancels scoring computed for data no longer shown: nothing reaches them
    assert sig.args[0] is None and len(link.ctl.session.visits) == 2
    new = load_session(path).visits[1]
    assert new.is_loaded and not new.scores() and new.model_name is None
    w.close()


def test_resume_with_a_model_that_is_gone_says_so(qtbot, tmp_path, demo_result, model_dir,
                                                  caplog):
    from diascan.qt.qt_session_link import QtSessionLink

    path = tmp_path / "s.json"
    w, _link = linked(qtbot, path, demo_result)
    w.close()
    # the first session's hashes are saved when they are done: edit the file after that
    qtbot.waitUntil(lambda: load_session(path).current.science.sha256 is not None, timeout=10000)
    s = load_session(path)
    s.current.model_name, s.current.model_version = "old_model", "0.3"
    s.current.model_path = str(tmp_path / "gone" / "old_model")
    save_session(s, path)
    w2 = make_window(qtbot)
    w2.set_models({"sim": model_dir}, "sim")
    link2 = QtSessionLink(w2, session_path=path, interactive=False)
    with qtbot.waitSignal(w2.data_loaded, timeout=20000):
        link2.open_session(load_session(path), path)
    assert w2.model_combo.currentText() == "sim"
    msg = w2.statusBar().currentMessage()
    assert "old_model" in msg and "not available" in msg
    assert any("old_model" in r.getMessage() for r in caplog.records)
    w2.close()

    # a package found by its saved path (not in the switcher) is added and selected
    s.current.model_name, s.current.model_path = "moved_sim", str(model_dir)
    save_session(s, path)
    w3 = make_window(qtbot)
    w3.set_models({"other": model_dir / "nope"}, "other")
    link3 = QtSessionLink(w3, session_path=path, interactive=False)
    with qtbot.waitSignal(w3.data_loaded, timeout=20000):
        link3.open_session(load_session(path), path)
    assert w3.state.model_name == "moved_sim" and w3.model_specs["moved_sim"] == model_dir
    w3.close()


def test_open_visits_from_the_file_menu(qtbot, tmp_path, demo_result, visits_dir, model_dir):
    from diascan.qt import qt_session_link

    first = tmp_path / "s.json"
    w, link = linked(qtbot, first, demo_result)
    ctl = link.ctl
    act = w.actions["open_visits"]
    assert act in w.file_menu.actions() and act.text() == "Open visits…"
    lst = tmp_path / "visits.txt"
    lst.write_text(f"{visits_dir / 'v2'}\n{visits_dir / 'v1'}\n")
    with qtbot.waitSignal(w.data_loaded, timeout=20000):
        assert qt_session_link.open_visits(ctl, lst)
    assert link.ctl is ctl and len(ctl.session.visits) == 2
    assert "v2" in str(w.images["science"].path) and ctl.session.visits[0].is_loaded
    assert ctl.session_path != first  # the first session file is left as it was
    assert len(load_session(first).visits) == 1
    assert len(load_session(ctl.session_path).visits) == 2
    assert ctl.stats.visits.count() == 2
    # a visits session records the scores and model of each visit as it is rescored
    w.set_models({"sim": model_dir}, "sim")
    with qtbot.waitSignal(w.rescore_done, timeout=60000):
        w.rescore_all()
    first_visit, second_visit = load_session(ctl.session_path).visits
    assert first_visit.model_name == "sim" and second_visit.model_name is None
    assert len(first_visit.scores()) == len(w.sources) and not second_visit.sources
    listed = ctl.session_path
    with qtbot.waitSignal(w.data_loaded, timeout=20000):
        assert qt_session_link.open_visits(ctl, visits_dir)  # a folder of visit folders
    assert ctl.session_path != listed  # even within the same second: a file of its own
    assert load_session(listed).visits[0].model_name == "sim"
    v1 = (visits_dir / "v1" / "science.fits").resolve()  # v1 is a link to the small demo
    assert ctl.session.visits[0].science.path == str(v1) and w.images["science"].path == v1
    with qtbot.waitSignal(w.error_shown, timeout=2000):
        assert not qt_session_link.open_visits(ctl, tmp_path / "nope")
    w.close()


def test_dropping_a_folder_of_visits_opens_them(qtbot, tmp_path, demo_result, visits_dir):
    from PyQt6.QtCore import QMimeData, QPoint, QPointF, QUrl
    from PyQt6.QtGui import QDragEnterEvent, QDropEvent

    w, link = linked(qtbot, tmp_path / "s.json", demo_result)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(visits_dir))])
    no_button, no_mod = Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier
    enter = QDragEnterEvent(QPoint(20, 20), Qt.DropAction.CopyAction, mime, no_button, no_mod)
    assert QApplication.sendEvent(w, enter) and enter.isAccepted()  # as Qt does: enter, drop
    drop = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, no_button, no_mod)
    with qtbot.assertNotEmitted(w.error_shown), qtbot.waitSignal(w.data_loaded, timeout=20000):
        QApplication.sendEvent(w, drop)
    v1 = (visits_dir / "v1" / "science.fits").resolve()
    assert len(link.ctl.session.visits) == 2 and link.ctl.session.visits[0].science.path == str(v1)
    assert link.ctl.session.visits[0].is_loaded and not link.ctl.session.visits[1].is_loaded
    w.close()


def test_drop_rules_and_a_controller_without_a_link(qtbot, tmp_path, demo_result, visits_dir):
    from diascan.inputs import dropped_visits
    from diascan.qt import qt_session_link
    from diascan.qt.qt_labels import QtLabelController

    assert dropped_visits([visits_dir]) == visits_dir
    assert dropped_visits([visits_dir / "v1"]) is None  # one visit: the window's own
    assert dropped_visits([visits_dir / "v1" / "science.fits"]) is None
    assert dropped_visits([tmp_path]) is None
    w = make_window(qtbot)
    with qtbot.waitSignal(w.data_loaded, timeout=5000):
        w.set_result(demo_result)
    ctl = QtLabelController(w, session_path=tmp_path / "s.json")
    with qtbot.waitSignal(w.data_loaded, timeout=20000):
        assert qt_session_link.open_visits(ctl, visits_dir)
    assert len(ctl.session.visits) == 2 and ctl.session.visits[0].is_loaded
    assert set(w.source_ids()) == set(ctl.session.visits[0].labels.ids)
    w.close()


def test_label_button_captions_follow_remapped_keys(qtbot, tmp_path, demo_result):
    from PyQt6.QtWidgets import QPushButton

    w, link = linked(qtbot, tmp_path / "s.json", demo_result)
    ctl = link.ctl

    def caption(word):
        return next(b.text() for b in ctl.panel.findChildren(QPushButton)
                    if b.text().startswith(word))

    assert caption("Real") == "Real [R]" and caption("Clear") == "Clear [0]"
    w.show_key_prefs()
    dlg = w.key_prefs
    dlg.edits["label_real"].setText("1")
    dlg.edits["clear_label"].setText("9, Backspace")
    with qtbot.waitSignal(dlg.accepted, timeout=1000):
        dlg.accept()
    assert caption("Real") == "Real [1]" and caption("Clear") == "Clear [9/Backspace]"
    assert caption("Bogus") == "Bogus [B]"
    w.close()


def test_app_made_fixture_opens_on_the_demo(qtbot, tmp_path, small_demo, model_dir, caplog):
    """The fixture made by make_v1_app.py (the real window on the small demo) opens in the
    window: labels, notes, scores, model and view settings come back, nothing is skipped."""
    import shutil

    from diascan.qt.qt_session_link import QtSessionLink
    from diascan.session import locate_in_folder

    path = tmp_path / "fixture.json"
    shutil.copy(APP_FIXTURE, path)
    session = load_session(path)
    refs = [r for v in session.visits for _, r in v.files()]
    if locate_in_folder(session, small_demo) != len(refs):
        # The demo's bytes follow the numpy/scipy/astropy/pyarrow versions installed (float
        # round-off, writer metadata), so checksums alone cannot tell a changed demo. Relink the
        # files by name (as the locate dialog would after the user picks them) and let the
        # sources decide: the same detections at the same positions mean the same demo.
        from diascan.inputs import folder_files, inputs_from_files
        from diascan.pipeline import detect, load_inputs
        from diascan.session.model import FileRef

        for _, ref in session.current.files():
            new = FileRef.from_path(small_demo / Path(ref.path).name)
            ref.path, ref.sha256, ref.size = new.path, new.sha256, new.size
        loaded = load_inputs(inputs_from_files(folder_files(small_demo)), read_templates=False)
        det = detect(loaded.difference, loaded.science)
        got = {int(i): (x, y) for i, x, y in zip(det["id"], det["x"], det["y"], strict=True)}
        same = len(got) == len(session.current.sources) and all(
            s.id in got and max(abs(got[s.id][0] - s.x), abs(got[s.id][1] - s.y)) < 1e-4
            for s in session.current.sources
        )
        if not same:
            pytest.fail("the small demo differs from the one this fixture was made on: keep this "
                        "file for the schema tests and make a new one with make_v1_app.py")
    visit = session.current
    w = make_window(qtbot)
    w.set_models({"other": model_dir, visit.model_name: model_dir}, "other")
    link = QtSessionLink(w, session_path=path, interactive=False)
    with caplog.at_level("WARNING"), qtbot.waitSignal(w.data_loaded, timeout=20000):
        link.open_session(session, path)
    assert not [r for r in caplog.records if "not restored" in r.getMessage()]
    assert sorted(w.source_ids()) == sorted(s.id for s in visit.sources)
    for s in visit.sources:
        row = w.sources.index_of(s.id)
        lab = visit.labels.label(s.id)
        assert w.sources.labels[row] == (lab.value if lab else None)
        assert w.sources.score[row] == pytest.approx(s.score)
    assert link.ctl.stats.bar.value() == visit.labels.statistics().labelled > 0
    view = visit.view
    assert w.state.single == view["single"]
    assert w.state.frames["science"].stretch == view["frames"]["science"]["stretch"]
    assert w.state.threshold == view["threshold"] and w.selected_id() == visit.current_source
    assert w.state.model_name == visit.model_name
    w.close()


def test_cli_resume_shows_saved_scores_without_rescoring(tmp_path):
    """A resumed session whose scores came from the selected model is not rescored at start."""
    import json

    session = tmp_path / "s.json"
    args = ["view", "--small-demo", "--session", str(session), "--screenshot",
            str(tmp_path / "x.png")]  # fmt: skip
    first = _cli(args, tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    data = json.loads(session.read_text())
    visit = data["visits"][0]
    assert visit["model"]["name"] and all(s["score"] is not None for s in visit["sources"])
    for s in visit["sources"]:  # marks no model could give: a rescore would overwrite them
        s["score"] = 0.5
    session.write_text(json.dumps(data))
    second = _cli(args, tmp_path)
    assert second.returncode == 0, second.stderr[-2000:]
    again = json.loads(session.read_text())["visits"][0]
    assert [s["score"] for s in again["sources"]] == [0.5] * len(visit["sources"])
    # a source without a saved score makes the start rescore (and save) them all
    again["sources"][0]["score"] = None
    data["visits"][0] = again
    session.write_text(json.dumps(data))
    third = _cli(args, tmp_path)
    assert third.returncode == 0, third.stderr[-2000:]
    last = json.loads(session.read_text())["visits"][0]
    assert last["sources"][0]["score"] is not None
    assert any(s["score"] != 0.5 for s in last["sources"])
