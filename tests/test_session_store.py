"""Session files: round trip, atomic autosave under SIGKILL, errors, migration, the v1 fixture,
input verification and the resume memory."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from diascan.errors import SessionError
from diascan.session import (
    Autosave,
    FileRef,
    Label,
    Session,
    SourceRecord,
    VisitEntry,
    load_session,
    locate_in_folder,
    relocate,
    save_session,
    verify_inputs,
)
from diascan.session import store as store_mod
from diascan.session.recent import last_session, remember_last_session

FIXTURES = Path(__file__).parent / "fixtures" / "sessions"


def make_session(tmp_path, n=4):
    inputs = tmp_path / "inputs"
    inputs.mkdir(exist_ok=True)
    for name in ("sci.fits", "diff.fits", "cat.parquet"):
        (inputs / name).write_bytes(name.encode() * 100)
    srcs = [
        SourceRecord(id=500 + i, ra=150.0 + i / 1000, dec=2.0, x=10.0 * i, y=5.0, psfFlux=100.0,
                     snr=7.5, score=0.1 * i, original_reliability=float("nan"), status="matched")
        for i in range(n)
    ]
    v = VisitEntry.create(srcs, science=inputs / "sci.fits", difference=inputs / "diff.fits",
                          catalog=inputs / "cat.parquet", visit=7, detector=3,
                          model_name="tac_cnn", model_version="1")
    return Session(visits=[v], view_settings={"stretch": "zscale"})


def test_round_trip_restores_labels_and_view(tmp_path):
    s = make_session(tmp_path)
    v = s.current
    assert v.science.sha256 and v.science.size == 800
    v.labels.set_label(501, "real")
    v.labels.set_note(501, "ok, \"quoted\"\nsecond line")
    v.labels.set_label(502, "unsure")
    v.current_source = 502
    v.view["zoom"] = 3.5
    path = save_session(s, tmp_path / "s.json")
    back = load_session(path)
    bv = back.current
    assert bv.labels.label(501) is Label.REAL
    assert bv.labels.note(501) == v.labels.note(501)
    assert bv.labels.label_time(501) is not None
    assert bv.labels.label(500) is None
    assert bv.current_source == 502 and bv.view == {"zoom": 3.5}
    assert back.view_settings == {"stretch": "zscale"}
    assert bv.source(503).score == pytest.approx(0.3)
    assert bv.source(500).original_reliability is None  # NaN stored as null
    assert bv.science == v.science and bv.model_name == "tac_cnn"
    assert back.created and back.modified
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_autosave_writes_on_every_change(tmp_path):
    s = make_session(tmp_path)
    path = tmp_path / "auto.json"
    auto = Autosave(s, path)
    s.current.labels.set_label(500, "bogus")
    assert load_session(path).current.labels.label(500) is Label.BOGUS
    s.current.labels.undo()
    assert load_session(path).current.labels.label(500) is None
    assert auto.saves == 2
    auto.detach()
    s.current.labels.set_label(500, "real")
    assert auto.saves == 2


def test_autosave_error_goes_to_callback(tmp_path):
    s = make_session(tmp_path)
    errors = []
    auto = Autosave(s, tmp_path / "no_such_dir" / "s.json", on_error=errors.append)
    s.current.labels.set_label(500, "real")
    assert len(errors) == 1 and isinstance(errors[0], SessionError)
    assert auto.last_error is errors[0]


@pytest.mark.parametrize(
    "text, match",
    [
        ("{not json", "invalid JSON"),
        ('{"format": "other"}', "not a diascan session"),
        ('{"format": "diascan-session", "schema_version": 99, "visits": []}', "newer"),
        ('{"format": "diascan-session", "schema_version": 1}', "broken session file"),
        ('{"format": "diascan-session", "schema_version": 1, "visits": [{"sources": '
         '[{"id": 1, "label": "maybe"}]}]}', "unknown label"),
    ],
)
def test_broken_files_raise_session_error(tmp_path, text, match):
    p = tmp_path / "bad.json"
    p.write_text(text)
    with pytest.raises(SessionError, match=match) as info:
        load_session(p)
    assert info.value.path == p


def test_missing_file(tmp_path):
    with pytest.raises(SessionError, match="not found"):
        load_session(tmp_path / "nope.json")


def test_migration_hook_runs_for_old_versions(tmp_path, monkeypatch):
    s = make_session(tmp_path)
    path = save_session(s, tmp_path / "old.json")
    current = store_mod.SCHEMA_VERSION  # the file's version; the code pretends to be newer
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", current + 1)

    def migrate(doc):
        doc["view_settings"]["migrated"] = True
        return doc

    monkeypatch.setitem(store_mod.MIGRATIONS, current, migrate)
    assert load_session(path).view_settings["migrated"] is True
    monkeypatch.delitem(store_mod.MIGRATIONS, current)
    with pytest.raises(SessionError, match=f"no migration from schema version {current}"):
        load_session(path)


def test_v1_fixture_of_2026_11_25_loads():
    s = load_session(FIXTURES / "session_v1_2026-11-25.json")
    assert len(s.visits) == 2 and s.current_visit == 0
    a, b = s.visits
    assert (a.visit, a.detector, a.band) == (2024112500101, 4, "r")
    assert a.model_name == "tac_cnn_comcam" and a.model_version == "2025-02-18"
    assert len(a.template_patches) == 2 and a.template is None
    assert [a.labels.label(i) for i in (3000, 3001, 3002, 3003)] == [
        Label.REAL, Label.BOGUS, Label.UNSURE, None]
    assert a.labels.note(3001) == "dipole on a bright star"
    assert a.labels.note(3003) == "note without a label"
    assert a.labels.label_time(3001).isoformat() == "2026-11-25T04:00:03+00:00"
    assert a.source(3005).score is None and a.source(3004).status == "new_only"
    assert a.current_source == 3003 and a.view["stretch"] == "zscale"
    assert b.labels.statistics().real == 1
    assert s.view_settings["hide_scores"] is True
    assert s.progress() == [("visit 2024112500101 det 4", 3, 6), ("visit 2024112500102 det 5", 1, 6)]


CRASH_CHILD = r"""
import os, sys, time
import diascan.session.store as store
from diascan.session import Autosave, Session, SourceRecord, VisitEntry

path, mode = sys.argv[1], sys.argv[2]
state = {"saves": 0}


class SlowFile:
    # A file whose writes go out in chunks; in the middle of a save (after a few saves) it says
    # so on stdout and stalls, so the parent's SIGKILL lands exactly mid-write.
    def __init__(self, fh):
        self._fh = fh

    def write(self, text):
        half = len(text) // 2
        self._fh.write(text[:half])
        self._fh.flush()
        if state["saves"] >= 3:
            print("mid-write", flush=True)
            time.sleep(30)
        self._fh.write(text[half:])
        return len(text)

    def __getattr__(self, name):
        return getattr(self._fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._fh.__exit__(*exc)


real_fdopen = os.fdopen
os.fdopen = lambda *a, **k: SlowFile(real_fdopen(*a, **k))
if mode == "naive":  # the negative control: a plain in-place write
    def naive_write(p, text):
        with SlowFile(open(p, "w", encoding="utf-8")) as fh:
            fh.write(text)
    store.atomic_write_text = naive_write

srcs = [SourceRecord(id=i, ra=10.0, dec=-5.0, x=float(i), y=1.0, score=0.5, status="matched")
        for i in range(300)]
s = Session(visits=[VisitEntry.create(srcs)])
Autosave(s, path).save()
labels = ["real", "bogus", "unsure", None]
i = 0
while True:
    s.current.labels.set_label(i % 300, labels[i % 4])
    state["saves"] += 1
    i += 1
"""


def _kill_mid_write(path: Path, mode: str) -> None:
    proc = subprocess.Popen([sys.executable, "-c", CRASH_CHILD, str(path), mode],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "mid-write"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL


def test_autosave_survives_sigkill_mid_write(tmp_path):
    path = tmp_path / "crash.json"
    for _ in range(2):
        _kill_mid_write(path, "atomic")
        s = load_session(path)  # the previous version, never a broken file
        assert len(s.current.sources) == 300
        assert s.current.labels.statistics().labelled >= 2


def test_sigkill_harness_catches_a_non_atomic_writer(tmp_path):
    """Negative control: the same kill breaks a plain in-place write, so the test above can fail."""
    path = tmp_path / "crash.json"
    _kill_mid_write(path, "naive")
    with pytest.raises(SessionError):
        load_session(path)


def test_verify_relocate_and_locate(tmp_path):
    s = make_session(tmp_path)
    assert verify_inputs(s) == []
    inputs = tmp_path / "inputs"
    (inputs / "diff.fits").write_bytes(b"other content of same size?")
    moved = tmp_path / "moved"
    moved.mkdir()
    (inputs / "sci.fits").rename(moved / "sci.fits")
    (inputs / "cat.parquet").rename(moved / "cat.parquet")
    problems = {p.role: p.problem for p in verify_inputs(s)}
    assert problems == {"science": "missing", "difference": "changed", "catalog": "missing"}
    with pytest.raises(ValueError, match="does not match"):
        relocate(s, s.current.science.path, moved / "cat.parquet")
    assert relocate(s, s.current.science.path, moved / "sci.fits") == 1
    assert locate_in_folder(s, tmp_path) == 1  # the catalog, by name and checksum
    assert [p.role for p in verify_inputs(s)] == ["difference"]
    assert s.current.catalog == FileRef(str((moved / "cat.parquet").resolve()),
                                        s.current.catalog.sha256, 1100)


def test_remember_last_session(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert last_session() is None
    p = save_session(make_session(tmp_path), tmp_path / "s.json")
    remember_last_session(p)
    assert last_session() == p.resolve()
    p.unlink()
    assert last_session() is None


def test_sources_from_rubin_table_and_many_visits(tmp_path):
    from astropy.table import Table

    from diascan.session import sources_from_table

    t = Table({"diaSourceId": [7, 8], "ra": [1.0, 2.0], "dec": [3.0, float("nan")],
               "x": [1.5, 2.5], "y": [3.5, 4.5], "psfFlux": [10.0, 20.0], "snr": [6.0, 7.0],
               "reliability": [0.1, 0.9], "score": [0.2, 0.8], "status": ["matched", "unmatched"]})
    srcs = sources_from_table(t)
    assert srcs[1].id == 8 and srcs[1].dec is None and srcs[1].original_reliability == 0.9
    assert srcs[0].score == 0.2 and srcs[1].status == "unmatched"
    s = Session(visits=[VisitEntry.create(srcs, visit=1), VisitEntry.create(srcs[:1], visit=2)])
    s.visits[1].labels.set_label(7, "real")
    assert s.next_unfinished_visit() == 0  # visit 2 is done, wraps to visit 1
    assert s.next_visit() is s.visits[1] and s.next_visit() is None
    assert s.next_unfinished_visit() == 0
    back = load_session(save_session(s, tmp_path / "m.json"))
    assert back.current_visit == 1 and back.progress() == [("visit 1", 0, 2), ("visit 2", 1, 1)]


APP_FIXTURE = FIXTURES / "session_v1_app_2026-11-29.json"


def test_app_made_v1_fixture_loads_scores_labels_model_and_view():
    """The fixture written by the real window (make_v1_app.py): every score, the model, labels
    with time and note, and view settings the viewer applies without skipping any."""
    from diascan.viewstate import ViewerState

    s = load_session(APP_FIXTURE)
    v = s.current
    assert v.model_name == "diascan_taccnn_sim_v1" and v.model_version == "1.0"
    assert v.model_path and v.model_path.endswith("diascan_taccnn_sim_v1")
    assert v.sources and all(src.score is not None and 0 <= src.score <= 1 for src in v.sources)
    assert {src.status for src in v.sources} <= {"matched", "unmatched", "target"}
    st = v.labels.statistics()
    assert st.real >= 1 and st.bogus >= 1 and st.unsure >= 1
    noted = [sid for sid in v.labels.ids if v.labels.note(sid)]
    assert noted and all(v.labels.label_time(sid) is not None
                         for sid in v.labels.ids if v.labels.label(sid) is not None)
    assert all(r.sha256 and r.size for _, r in v.files())
    state = ViewerState()
    assert state.update_from_dict(v.view, selection=False) == []
    assert state.single is True and state.threshold is not None
    assert s.view_settings.get("hide_scores") is False  # hidden while labelling, shown again


def test_model_path_round_trip_and_old_files_without_it(tmp_path):
    s = make_session(tmp_path)
    s.current.model_path = "/models/tac_cnn"
    back = load_session(save_session(s, tmp_path / "s.json")).current
    assert (back.model_name, back.model_version, back.model_path) == (
        "tac_cnn", "1", "/models/tac_cnn")
    old = load_session(FIXTURES / "session_v1_2026-11-25.json").current
    assert old.model_name == "tac_cnn_comcam" and old.model_path is None


def test_set_scores_records_the_model_and_skips_unknown_ids(tmp_path):
    s = make_session(tmp_path)
    v = s.current
    n = v.set_scores({500: 0.75, 501: float("nan"), 999: 0.5}, "sim", "1.0", "/m/sim")
    assert n == 2 and v.source(500).score == 0.75 and v.source(501).score is None
    assert (v.model_name, v.model_version, v.model_path) == ("sim", "1.0", "/m/sim")
    assert v.set_scores({999: 0.1}, "other") == 0 and v.model_name == "sim"  # nothing set
    assert v.scores() == {500: 0.75, 502: pytest.approx(0.2), 503: pytest.approx(0.3)}
    back = load_session(save_session(s, tmp_path / "s.json")).current
    assert back.scores() == v.scores() and back.model_path == "/m/sim"


def test_schema_1_1_source_context_round_trips_and_1_0_files_load(tmp_path):
    """diaSourceId, visit, detector and the pixel flags are recorded per source (since schema
    1.1, kept in 2); the 1.0 fixtures load with them empty."""
    import json

    from diascan.session.model import SCHEMA_MINOR

    big = 170_000_000_000_000_001  # a float would lose its last digits
    srcs = [SourceRecord(id=1, diaSourceId=big, visit=2024120700123, detector=4,
                         flags=("pixelFlags_sat", "pixelFlags_satCenter")),
            SourceRecord(id=2, visit=2024120700123, detector=4)]  # unmatched: no diaSourceId
    v = VisitEntry.create(srcs, visit=2024120700123, detector=4,
                          flag_columns=["pixelFlags_sat", "pixelFlags_satCenter", "pixelFlags_edge"])
    path = save_session(Session(visits=[v]), tmp_path / "s.json")
    doc = json.loads(path.read_text())
    assert doc["schema_version"] == 2 and doc["schema_minor"] == SCHEMA_MINOR == 0
    assert doc["visits"][0]["flag_columns"][2] == "pixelFlags_edge"
    assert doc["visits"][0]["sources"][0]["diaSourceId"] == big
    assert doc["visits"][0]["sources"][1]["diaSourceId"] is None
    back = load_session(path).current
    assert back.flag_columns == ["pixelFlags_sat", "pixelFlags_satCenter", "pixelFlags_edge"]
    assert back.source(1) == srcs[0] and back.source(2) == srcs[1]
    for name in ("session_v1_2026-11-25.json", "session_v1_app_2026-11-29.json"):
        old = load_session(FIXTURES / name)
        assert all(s.diaSourceId is None and s.flags == () and s.visit is None
                   for v in old.visits for s in v.sources)
        assert all(v.flag_columns == [] for v in old.visits)
        again = load_session(save_session(old, tmp_path / name))  # re-saved as 2
        assert [v.sources for v in again.visits] == [v.sources for v in old.visits]


def test_sources_from_table_take_the_pipeline_context():
    from astropy.table import Table

    from diascan.session import sources_from_table
    from diascan.session.model import flag_columns

    t = Table({"id": [1, 2], "diaSourceId": [170_000_000_000_000_001, -1],
               "visit": [7, 7], "detector": [3, 3], "pixelFlags_sat": [True, False],
               "pixelFlags_edge": [True, True], "status": ["matched", "unmatched"]})
    a, b = sources_from_table(t)
    assert (a.id, a.diaSourceId, a.visit, a.detector) == (1, 170_000_000_000_000_001, 7, 3)
    assert b.diaSourceId is None  # the pipeline's -1: no catalog row
    assert a.flags == ("pixelFlags_sat", "pixelFlags_edge") and b.flags == ("pixelFlags_edge",)
    assert flag_columns(t) == ["pixelFlags_sat", "pixelFlags_edge"]


def test_a_flag_no_visit_lists_is_listed_when_saved(tmp_path):
    """Records made with flags in a visit made without flag_columns still save a file that
    loads (the writer lists every flag a source has)."""
    v = VisitEntry.create([SourceRecord(id=1, flags=("pixelFlags_cr",))])
    back = load_session(save_session(Session(visits=[v]), tmp_path / "s.json")).current
    assert back.flag_columns == ["pixelFlags_cr"] and back.source(1).flags == ("pixelFlags_cr",)
