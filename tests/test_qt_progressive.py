"""Progressive loading and prefetch in the real window on the small demo (issue 15.3/15.4)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from diascan.inputs import files_starter, folder_files


@pytest.fixture
def win(qtbot, tmp_path, monkeypatch):
    from diascan.qt.qt_main_window import QtMainWindow

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # a results-cache miss
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    w = QtMainWindow()
    qtbot.addWidget(w)
    w.show_errors_as_dialogs = False
    w.show()
    yield w
    w.cancel_work()
    w.wait_idle()


def gated(start, gate: threading.Event, stage_gated: str = "detect"):
    """A starter whose ``stage_gated`` stage (detection by default) waits for ``gate`` (a real
    slow stage)."""

    def start_gated(progress=None, cancel=None):
        def report(stage, fraction, message=""):
            if stage == stage_gated:
                gate.wait(30)
            progress(stage, fraction, message)

        return start(progress=report, cancel=cancel)

    return start_gated


def test_frames_and_catalog_before_detections_and_labels_survive(win, qtbot, small_demo,
                                                                 tmp_path):
    from diascan.qt.qt_loading import CATALOG_STATUS, QtProgressiveLoad
    from diascan.qt.qt_session_link import QtSessionLink
    from diascan.session.store import load_session

    link = QtSessionLink(win, session_path=tmp_path / "s.json", interactive=False)
    gate = threading.Event()
    load = QtProgressiveLoad(win, gated(files_starter(folder_files(small_demo)), gate))
    with qtbot.waitSignal(load.catalog_shown, timeout=20000):
        load.start()
    # The catalog needs only the science image, so it may be shown before the difference frame
    # is painted; both come before the detections, which the gate holds back.
    qtbot.waitUntil(lambda: "frames" in load.shown, timeout=20000)
    assert not gate.is_set() and "detections" not in load.shown
    assert win.frames.data["science"].shape == win.frames.data["difference"].shape
    assert "template" not in win.frames.data and win.images["template"] is None
    assert set(win.sources.status) == {CATALOG_STATUS} and len(win.sources) > 0
    # the user labels a catalog source while the detections are still being made
    cat_id = int(win.sources.ids[0])
    win.select_source(cat_id)
    assert load.label(cat_id, "real")
    assert win.sources.labels[0] == "real"
    with qtbot.waitSignal(win.data_loaded, timeout=30000):
        gate.set()
    assert CATALOG_STATUS not in set(win.sources.status)
    row = int(np.flatnonzero(np.ma.filled(win.sources.dia_source_id, -1) == cat_id)[0])
    assert win.sources.labels[row] == "real"
    # the session made from this load has it under the matched detection's id, autosaved
    det_id = int(win.sources.ids[row])
    assert link.ctl.session.current.labels.label(det_id).value == "real"
    saved = load_session(tmp_path / "s.json").visits[0]
    assert saved.labels.label(det_id).value == "real"


def test_labels_are_in_the_session_file_at_once_and_detections_before_the_template(
        win, qtbot, small_demo, tmp_path):
    """A label given to a catalog source is in the session file before the detections exist;
    the detections are shown (matched, unscored) while the template is still being warped,
    and a label given to one then is an ordinary autosaved label."""
    from diascan.qt.qt_loading import QtProgressiveLoad
    from diascan.qt.qt_session_link import QtSessionLink
    from diascan.session.model import HELD
    from diascan.session.store import load_session

    path = tmp_path / "s.json"
    link = QtSessionLink(win, session_path=path, interactive=False)
    detect, warp = threading.Event(), threading.Event()
    start = gated(gated(files_starter(folder_files(small_demo)), detect), warp, "template")
    load = QtProgressiveLoad(win, start)
    with qtbot.waitSignal(load.catalog_shown, timeout=20000):
        load.start()
    cat_id = int(win.sources.ids[0])
    win.select_source(cat_id)
    assert link.ctl is None  # no session until a label needs one
    assert load.label(cat_id, "bogus")
    held = [s for s in load_session(path).visits[0].sources if s.diaSourceId == cat_id]
    assert len(held) == 1 and held[0].status == HELD  # in the file, the load still running
    assert load_session(path).visits[0].labels.label(held[0].id).value == "bogus"
    assert not load.job.finished
    with qtbot.waitSignal(load.detections_shown, timeout=30000):
        detect.set()
    assert win.images["template"] is None and not load.job.finished  # the warp waits
    assert set(win.sources.status) <= {"matched", "unmatched", "target"}
    assert np.isnan(win.sources.score).all()  # unscored
    row = int(np.flatnonzero(np.ma.filled(win.sources.dia_source_id, -1) == cat_id)[0])
    det_id = int(win.sources.ids[row])
    assert win.sources.labels[row] == "bogus"
    saved = load_session(path).visits[0]
    assert saved.labels.label(det_id).value == "bogus" and HELD not in {
        s.status for s in saved.sources}
    # a detection labelled by key while the template is warped: autosaved at once
    other = int(win.sources.ids[(row + 1) % len(win.sources)])
    win.select_source(other)
    assert link.ctl.trigger("label_real")
    assert load_session(path).visits[0].labels.label(other).value == "real"
    assert "detections ✓" in load.status() and "template" in load.status()
    with qtbot.waitSignal(win.data_loaded, timeout=30000):
        warp.set()
    assert win.images["template"] is not None
    assert win.sources.labels[win.sources.index_of(other)] == "real"
    assert win.sources.labels[win.sources.index_of(det_id)] == "bogus"
    saved = load_session(path)
    assert len(saved.visits) == 1 and saved.visits[0].labels.label(other).value == "real"


def two_visits(small_demo):
    files = folder_files(small_demo)
    return [dict(files), dict(files)]


def linked(win, tmp_path, depth: int):
    from diascan.prefetch import PrefetchSettings
    from diascan.qt.qt_session_link import QtSessionLink

    link = QtSessionLink(win, session_path=tmp_path / "multi.json", interactive=False)
    link.prefetcher.set_settings(PrefetchSettings(depth=depth), save=False)
    return link


def test_next_visit_prefetched_and_used(win, qtbot, small_demo, tmp_path):
    link = linked(win, tmp_path, 1)
    with qtbot.waitSignal(link.prefetcher.prefetched, timeout=60000):
        link.start_visits(two_visits(small_demo))
    assert 1 in link.prefetcher.kept
    with qtbot.waitSignal(link.prefetcher.used, timeout=1000):
        assert link.ctl.next_visit()
    assert link.ctl.session.current_visit == 1 and link.ctl.session.visits[1].is_loaded
    assert len(win.sources) and set(link.ctl.session.visits[1].labels.ids) == set(
        win.source_ids())


def test_depth_zero_disables_prefetch(win, qtbot, small_demo, tmp_path):
    link = linked(win, tmp_path, 0)
    with qtbot.waitSignal(win.data_loaded, timeout=30000):
        link.start_visits(two_visits(small_demo))
    qtbot.wait(300)
    assert not win.jobs.busy("prefetch") and not link.prefetcher.kept


def test_prefetch_yields_to_a_users_load(win, qtbot, small_demo, tmp_path, monkeypatch):
    """A load the user asks for (here: visit 0 opened again through the session) stops the
    prefetch of visit 1, which waits while that load runs and is asked for again after it.

    (A load of files outside the session would add a visit at the end of the session, after
    which nothing is left to prefetch: not what this test is about.)"""
    from diascan.qt import qt_session_link

    link = linked(win, tmp_path, 1)
    with qtbot.waitSignal(win.data_loaded, timeout=30000):
        link.start_visits(two_visits(small_demo))
    qtbot.waitUntil(lambda: win.jobs.current("prefetch") is not None, timeout=10000)
    prefetch = win.jobs.current("prefetch")
    gate = threading.Event()  # the user's load stays running until the gate opens
    monkeypatch.setattr(qt_session_link, "files_starter",
                        lambda files: gated(files_starter(files), gate))
    assert link.load_visit(0)
    load_job = win.jobs.current("load")
    assert prefetch.is_cancelled and load_job is not None and load_job.running
    qtbot.wait(200)
    assert win.jobs.current("prefetch") is None  # waits while the user's load runs
    gate.set()
    qtbot.waitUntil(lambda: load_job.finished, timeout=30000)
    assert link.ctl.session.current_visit == 0 and link.prefetcher.wanted() == [1]
    qtbot.waitUntil(lambda: win.jobs.busy("prefetch") or bool(link.prefetcher.kept),
                    timeout=30000)  # asked for again once the user's work is done


@pytest.fixture
def demo_with_a_lone_catalog_row(small_demo, tmp_path):
    """The small demo's images (linked, not copied) with its catalog plus two rows 20 arcsec
    from any source: catalog sources no detection matches."""
    from astropy.table import vstack

    from diascan.io.tables import read_table, write_table

    folder = tmp_path / "visit"
    folder.mkdir()
    for p in small_demo.glob("*.fits"):
        (folder / p.name).symlink_to(p)
    cat = read_table(small_demo / "dia_source.parquet")
    extra = cat[:2].copy()
    extra["diaSourceId"] = int(np.max(cat["diaSourceId"])) + np.array([1, 2])
    extra["dec"] = extra["dec"] + 20 / 3600
    write_table(vstack([cat, extra]), folder / "dia_source.parquet")
    return folder


def test_label_of_an_unmatched_catalog_row_is_saved_and_shown_again(
        win, qtbot, demo_with_a_lone_catalog_row, tmp_path):
    """Every catalog source labelled during the load ends up in the session file: on its
    matched detection, or (no detection matched it) as a kept source with status 'missing',
    shown again with its label when the visit is loaded again."""
    from diascan.qt.qt_loading import QtProgressiveLoad
    from diascan.qt.qt_session_link import QtSessionLink
    from diascan.session.store import load_session

    link = QtSessionLink(win, session_path=tmp_path / "s.json", interactive=False)
    gate = threading.Event()
    load = QtProgressiveLoad(
        win, gated(files_starter(folder_files(demo_with_a_lone_catalog_row)), gate))
    with qtbot.waitSignal(load.catalog_shown, timeout=20000):
        load.start()
    cat_ids = sorted(int(i) for i in win.sources.ids)
    lone, labelled = cat_ids[-1], cat_ids[:-1]  # the last lone row is labelled later
    for cid in labelled:
        assert load.label(cid, "bogus")
    with qtbot.waitSignal(win.data_loaded, timeout=30000):
        gate.set()
    kept = win.sources.ids[win.sources.status == "missing"]
    assert len(kept) == 1 and all(int(i) < 0 for i in kept)
    assert lone - 1 in set(np.ma.filled(win.sources.dia_source_id[win.sources.status ==
                                                                     "missing"], -1))
    saved = load_session(tmp_path / "s.json").visits[0]
    by_dia = {s.diaSourceId: s for s in saved.sources if s.diaSourceId is not None}
    for cid in labelled:  # every label given during the load is in the file
        assert cid in by_dia and saved.labels.label(by_dia[cid].id).value == "bogus"
    assert {s.status for s in saved.sources if s.id in set(map(int, kept))} == {"missing"}
    # loading the visit again shows the kept rows with their labels
    with qtbot.waitSignal(win.data_loaded, timeout=30000):
        assert link.load_visit(0)
    qtbot.waitUntil(lambda: set(map(int, kept)) <= set(win.source_ids()), timeout=5000)
    row = win.sources.index_of(int(kept[0]))
    qtbot.waitUntil(lambda: win.sources.labels[row] == "bogus", timeout=5000)
    # a catalog row first labelled during a reload is added to the (loaded) visit as well
    gate2 = threading.Event()
    link.loading_visit = 0
    load2 = QtProgressiveLoad(win, gated(files_starter(folder_files(demo_with_a_lone_catalog_row)),
                                          gate2), keep_rows={-int(kept[0]) - 1})
    with qtbot.waitSignal(load2.catalog_shown, timeout=20000):
        load2.start()
    assert load2.label(lone, "real")
    with qtbot.waitSignal(win.data_loaded, timeout=30000):
        gate2.set()
    visit = link.ctl.session.visits[0]
    assert set(visit.labels.ids) == set(win.source_ids())
    new = [s for s in visit.sources if s.diaSourceId == lone]
    assert len(new) == 1 and new[0].status == "missing"
    assert visit.labels.label(new[0].id).value == "real"
    assert visit.labels.label(int(kept[0])).value == "bogus"
    saved = load_session(tmp_path / "s.json").visits[0]
    assert saved.labels.label(new[0].id).value == "real"


def test_prefetch_settings_from_the_session_menu(win, qtbot, small_demo, tmp_path):
    """Session > Prefetch… opens the dialog; raising 'visits ahead' from 0 to 1 there starts
    prefetching the next visit, and the setting is saved for the next sessions."""
    from diascan.prefetch import load_settings

    link = linked(win, tmp_path, 0)
    with qtbot.waitSignal(win.data_loaded, timeout=30000):
        link.start_visits(two_visits(small_demo))
    assert not link.prefetcher.kept
    action = win.actions["prefetch_settings"]
    assert action.text().startswith("Prefetch")
    action.trigger()
    dlg = win.prefetch_prefs
    qtbot.waitUntil(dlg.isVisible, timeout=2000)
    assert dlg.depth.value() == 0
    dlg.depth.setValue(1)
    dlg.budget.setValue(2048)
    with qtbot.waitSignal(link.prefetcher.prefetched, timeout=60000):
        dlg.accept()
    assert link.prefetcher.settings.depth == 1 and 1 in link.prefetcher.kept
    assert load_settings().depth == 1 and load_settings().budget_mb == 2048
