"""LabelStore, KeyMap and Triage: the Qt-free labelling logic."""

from datetime import UTC, datetime, timedelta

import pytest

from diascan.errors import InputError
from diascan.session import KeyMap, Label, LabelStore, Session, SourceRecord, Triage, VisitEntry
from diascan.session.keymap import KeyMapConflict, default_keys_path, normalize_key
from diascan.session.labels import parse_label


def clock(step_s=2.0):
    t = [datetime(2026, 11, 25, 10, 0, tzinfo=UTC)]

    def now():
        t[0] += timedelta(seconds=step_s)
        return t[0]

    return now


def test_parse_label():
    assert parse_label("Real") is Label.REAL
    assert parse_label(" bogus ") is Label.BOGUS
    assert parse_label("none") is None and parse_label(None) is None
    with pytest.raises(ValueError, match="valid: real, bogus, unsure"):
        parse_label("fake")


def test_set_clear_note_undo_and_listeners():
    store = LabelStore([1, 2, 3], clock=clock())
    seen = []
    store.add_listener(seen.append)
    store.set_label(2, "real")
    assert store.label(2) is Label.REAL and store.label_time(2) is not None
    store.set_note(2, "nice PSF")
    store.set_label(2, Label.BOGUS)
    assert store.record(2).note == "nice PSF"
    store.clear(2)
    assert store.label(2) is None and store.label_time(2) is None and store.note(2) == "nice PSF"
    assert seen == [[2], [2], [2], [2]]
    store.set_label(2, None)  # no change, no event
    assert len(seen) == 4
    assert store.undo() == [2]
    assert store.label(2) is Label.BOGUS
    assert store.undo() == [2] and store.label(2) is Label.REAL
    assert store.undo() == [2] and store.note(2) == ""
    assert store.undo() == [2] and store.label(2) is None
    assert not store.can_undo and store.undo() == []
    with pytest.raises(KeyError):
        store.set_label(99, "real")


def test_label_remaining_is_one_undo_step():
    store = LabelStore(list(range(5)), clock=clock())
    store.set_label(1, "real")
    assert store.label_remaining() == 4
    assert store.ids_with([Label.BOGUS]) == [0, 2, 3, 4]
    assert store.label_remaining() == 0
    store.undo()
    assert store.ids_with([None]) == [0, 2, 3, 4]
    assert store.label(1) is Label.REAL


def test_navigation():
    store = LabelStore(["a", "b", "c", "d"])
    assert store.next(None) == "a" and store.previous(None) == "d"
    assert store.next("b") == "c" and store.next("d") is None and store.previous("a") is None
    store.set_label("c", "real")
    assert store.next("b", skip=lambda s: store.label(s) is not None) == "d"
    assert store.next_unlabelled("b") == "d"
    store.set_label("d", "bogus")
    assert store.next_unlabelled("b") == "a"  # wraps around
    store.label_remaining("unsure")
    assert store.next_unlabelled("a") is None


def test_statistics_and_rate():
    store = LabelStore(list(range(10)), clock=clock(step_s=6.0))
    assert store.statistics().rate_per_min is None
    for i, lab in enumerate(["real", "real", "bogus", "unsure", "bogus"]):
        store.set_label(i, lab)
    st = store.statistics()
    assert (st.real, st.bogus, st.unsure, st.labelled, st.unlabelled) == (2, 2, 1, 5, 5)
    assert st.rate_per_min == pytest.approx(10.0)  # one label every 6 s
    assert st.fraction == 0.5
    # a reloaded store gets the rate from the stored label times
    again = LabelStore(store.ids, store.records())
    assert again.statistics().rate_per_min == pytest.approx(10.0)


def test_normalize_key():
    assert normalize_key("r") == "R"
    assert normalize_key("ctrl+z") == "Ctrl+Z"
    assert normalize_key("shift+ctrl+n") == "Ctrl+Shift+N"
    assert normalize_key("space") == "Space"
    assert normalize_key("?") == "?"
    for bad in ("", "Hyper+x", "Foo"):
        with pytest.raises(ValueError):
            normalize_key(bad)


def test_keymap_defaults_dispatch_conflicts_and_persistence(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert default_keys_path() == tmp_path / "diascan" / "keys.json"
    km = KeyMap.load()  # no file -> defaults
    assert km.action_for("r") == "label_real"
    assert km.action_for("Space") == "next_unlabelled"
    assert km.action_for("Right") == "next" and km.action_for("left") == "previous"
    assert km.action_for("ctrl+z") == "undo" and km.action_for("?") == "cheat_sheet"
    assert km.action_for("0") == "clear_label"
    assert km.action_for("x") is None
    with pytest.raises(KeyMapConflict, match="key B is bound to"):
        km.set_keys("label_real", ["b"])
    assert km.keys_for("label_real") == ["R"]  # unchanged after the refused rebind
    with pytest.raises(KeyMapConflict, match="key T is bound to toggle_single, label_real"):
        km.set_keys("label_real", ["1", "T"])  # every action's keys count, not only labelling
    km.set_keys("label_real", ["1", "Y"])
    km.save()
    again = KeyMap.load()
    assert again.action_for("1") == "label_real" and again.action_for("r") is None
    assert again.action_for("y") == "label_real" and again.notes == []
    (tmp_path / "diascan" / "keys.json").write_text("{broken")
    with pytest.raises(InputError, match="keys.json"):
        KeyMap.load()


def _triage(n=5):
    srcs = [SourceRecord(id=10 + i, ra=1.0, dec=2.0) for i in range(n)]
    return Triage(Session(visits=[VisitEntry.create(srcs)]))


def test_triage_actions_by_name():
    tr = _triage()
    moves = []
    tr.add_selection_listener(moves.append)
    assert not tr.perform("label_real")  # nothing selected
    assert tr.perform("next_unlabelled") and tr.current == 10
    assert tr.perform("label_real")  # labels 10, advances to 11
    assert tr.store.label(10) is Label.REAL and tr.current == 11
    tr.perform("label_bogus")
    assert tr.current == 12
    assert tr.perform("previous") and tr.current == 11
    assert tr.perform("clear_label") and tr.store.label(11) is None and tr.current == 11
    assert tr.perform("undo") and tr.store.label(11) is Label.BOGUS
    tr.set_option("hide_labelled", True)
    tr.select(10)
    assert tr.perform("next") and tr.current == 12  # 11 is labelled and hidden
    assert tr.visible_ids() == [12, 13, 14]
    assert tr.session.view_settings["hide_labelled"] is True
    assert not tr.perform("edit_note")  # UI action
    assert moves[:2] == [10, 11]


def test_held_catalog_labels_move_to_their_detections_or_stay_on_the_kept_row():
    """Labels given to catalog rows before a visit's detections exist (a progressive load)
    are in the visit at once; its first sources take them over by diaSourceId."""
    from diascan.session.model import HELD

    visit = VisitEntry()
    assert not visit.is_loaded
    seen = []
    visit.labels.add_listener(seen.append)
    assert visit.hold_label(SourceRecord(id=-1, diaSourceId=500), "real") == -1
    assert visit.hold_label(SourceRecord(id=-3, diaSourceId=502), "bogus") == -3
    assert [s.status for s in visit.sources] == [HELD, HELD] and not visit.is_loaded
    assert visit.labels.label(-1) == Label.REAL  # what the autosave writes now
    # the detections: row 0 (id 500) matched detection 7, row 2 kept as source -3
    dets = [SourceRecord(id=7, diaSourceId=500, status="matched"),
            SourceRecord(id=8, status="unmatched"),
            SourceRecord(id=-3, diaSourceId=502, status="missing")]
    assert visit.fill_sources(dets) == 2
    assert visit.is_loaded and [s.id for s in visit.sources] == [7, 8, -3]
    assert visit.labels.ids == [7, 8, -3] and -1 not in visit.labels
    assert visit.labels.label(7) == Label.REAL and visit.labels.label(-3) == Label.BOGUS
    assert visit.labels.label(8) is None and [7] in seen  # listeners told of the move
    visit.labels.undo()  # the held row's undo step went with it; the kept row's stays
    assert visit.labels.label(-3) is None and visit.labels.label(7) == Label.REAL
    # a reload: a matched row's label goes to its detection, an unmatched one is held
    assert visit.hold_label(SourceRecord(id=-1, diaSourceId=500), "bogus") == 7
    assert visit.labels.label(7) == Label.BOGUS
    assert visit.hold_label(SourceRecord(id=-5, diaSourceId=504), "real") == -5
    assert visit.source(-5).status == HELD
    assert visit.settle_held([SourceRecord(id=-5, diaSourceId=504, status="missing")]) == 1
    assert visit.source(-5).status == "missing" and visit.labels.label(-5) == Label.REAL
