"""Qt-free viewer state and display preparation."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from astropy.table import Table

from diascan import viewstate as vs


def test_viewstate_does_not_import_qt():
    code = "import sys, diascan.viewstate; print('PyQt6' in sys.modules, 'pyqtgraph' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def _record(state) -> list[tuple[str, object]]:
    """Every field signal of ``state`` as ``(field, new value)``, in emission order."""
    seen: list[tuple[str, object]] = []

    def recorder(name):
        return lambda new: seen.append((name, new))

    for name in state.events:
        state.events[name].connect(recorder(name))
    return seen


def test_field_signals_fire_only_on_change():
    st = vs.ViewerState()
    seen = _record(st)
    olds = []
    st.events.selected_id.connect(lambda new, old: olds.append(old))
    st.selected_id = 5
    st.selected_id = 5
    st.threshold = 0.3
    st.selected_id = 6
    assert seen == [("selected_id", 5), ("threshold", 0.3), ("selected_id", 6)]
    assert olds == [None, 5]


def test_bad_values_are_refused_on_set():
    st = vs.ViewerState()
    seen = _record(st)
    frame = st.frames["science"]
    frame_seen = _record(frame)
    for name, bad in (("stretch", "zscale"), ("limits", "50%"), ("colormap", "jet"),
                      ("stretch", None), ("levels", (1.0, float("nan"))), ("levels", (3, 1))):
        with pytest.raises(ValueError, match=f"bad {name}"):
            setattr(frame, name, bad)
    for name, bad in (("mask_alpha", 1.5), ("mask_alpha", float("nan")), ("mask_alpha", "x"),
                      ("threshold", -0.1), ("threshold", "high"), ("view_range", [[5, 1], [0, 1]]),
                      ("view_range", [[0, float("inf")], [0, 1]]), ("blink_index", 3),
                      ("selected_id", "17"), ("mask_planes_on", "BAD")):
        with pytest.raises(ValueError):
            setattr(st, name, bad)
    assert seen == [] and frame_seen == []  # nothing changed, nothing said
    assert st.to_dict() == vs.ViewerState().to_dict()
    st.mask_alpha, st.threshold = 1, 0  # the ends of the range are fine
    assert (st.mask_alpha, st.threshold) == (1.0, 0.0)
    with pytest.raises(ValueError, match="bad stretch"):
        vs.FrameState(stretch="log10")


def test_batch_emits_once_per_changed_field_at_the_end():
    st = vs.ViewerState()
    seen = _record(st)
    frame_seen = _record(st.frames["difference"])
    with st.batch():
        st.selected_id = 3
        st.selected_id = 4
        st.threshold = 0.2  # set and set back: unchanged, not emitted
        st.threshold = None
        st.frames["difference"].colormap = "viridis"
        st.frames["difference"].colormap = "magma"
        assert seen == [] and frame_seen == []
    assert seen == [("selected_id", 4)] and frame_seen == [("colormap", "magma")]
    with pytest.raises(RuntimeError), st.batch():  # what changed before an error is said
        st.single = True
        raise RuntimeError
    assert seen[-1] == ("single", True)
    st.single = False  # not blocked any more
    assert seen[-1] == ("single", False)


def test_restore_is_one_batch_and_checks_every_value():
    st = vs.ViewerState()
    seen = _record(st)
    frame_seen = _record(st.frames["science"])
    values_seen = []
    # a listener sees the whole restored state, not half of it
    st.events.single.connect(lambda _: values_seen.append((st.single, st.mask_alpha)))
    skipped = st.update_from_dict({
        "single": True, "mask_alpha": 0.25, "mask_planes_on": ["BAD", "SAT"],
        "blink_index": 4, "threshold": 7, "view_range": "x",
        "frames": {"science": {"stretch": "asinh"}, "template": {"limits": "nope"}},
    })  # fmt: skip
    assert sorted(skipped) == ["frames", "threshold", "view_range"]
    assert values_seen == [(True, 0.25)]
    assert sorted(n for n, _ in seen) == ["blink_index", "mask_alpha", "mask_planes_on", "single"]
    # a frame's settings are all or nothing: asinh was not applied beside the bad limits
    assert st.frames["science"].stretch == "linear" and frame_seen == []
    assert st.blink_index == 1 and st.mask_planes_on == frozenset({"BAD", "SAT"})


def test_blink_cycles_forwards_and_backwards():
    st = vs.ViewerState()
    assert [st.blink(1) for _ in range(4)] == [1, 2, 0, 1]
    assert [st.blink(-1) for _ in range(3)] == [0, 2, 1]
    assert st.blink_frame == "template"


def test_blink_shows_the_single_frame_view():
    st = vs.ViewerState()
    seen = _record(st)
    assert not st.single
    assert st.blink(-1) == 2
    assert st.single and ("single", True) in seen
    st.single = False  # back to three frames: the next blink shows the single view again
    st.blink(1)
    assert st.single and st.blink_frame == "science"


def test_hide_scores_is_observed_but_not_saved_with_the_view():
    st = vs.ViewerState()
    seen = _record(st)
    st.hide_scores = True
    assert seen == [("hide_scores", True)]
    assert "hide_scores" not in st.to_dict()  # the session keeps that option itself


def test_mask_toggles_and_dict():
    st = vs.ViewerState()
    st.toggle_mask_plane("SAT", True)
    st.toggle_mask_plane("EDGE", True)
    st.toggle_mask_plane("SAT", False)
    d = st.to_dict()
    assert d["mask_planes_on"] == ["EDGE"]
    assert d["frames"]["difference"]["symmetric"] is True


def test_view_range_round_trips_and_bad_ranges_are_skipped():
    st = vs.ViewerState()
    seen = _record(st)
    st.view_range = ((10.0, 90.0), (-5.0, 75.0))
    d = json.loads(json.dumps(st.to_dict()))
    back = vs.ViewerState.from_dict(d)
    assert back.view_range == ((10.0, 90.0), (-5.0, 75.0))
    assert [n for n, _ in seen] == ["view_range"]
    for bad in ([[5, 1], [0, 1]], [[0, float("nan")], [0, 1]], [1, 2], "x"):
        assert back.update_from_dict({"view_range": bad}) == ["view_range"]
    assert back.view_range == ((10.0, 90.0), (-5.0, 75.0))


def test_planes_set():
    assert vs.planes_set(9, {"BAD": 0, "SAT": 3}) == ["BAD", "SAT"]
    assert vs.planes_set(0, {"BAD": 0}) == []


def _table():
    return Table(
        {
            "id": [10, 11, 12, 13],
            "x": [10.0, 50.0, 90.0, 30.0],
            "y": [10.0, 50.0, 90.0, 70.0],
            "ra": [150.0, 150.001, 150.002, 150.003],
            "dec": [2.0, 2.001, 2.002, 2.003],
            "snr": [6.0, 7.0, 8.0, 9.0],
            "psfFlux": [1.0, 2.0, 3.0, 4.0],
            "original_reliability": [0.9, 0.2, 0.6, 0.1],
            "score": [np.nan] * 4,
            "status": ["matched", "unmatched", "target", "matched"],
        }
    )


def test_sourceset_scores_filter_nearest():
    s = vs.SourceSet.from_table(_table())
    events = []
    s.connect(lambda kind, idx: events.append((kind, list(idx))))
    assert s.index_of(12) == 2 and s.index_of(99) is None
    # Threshold uses the original reliability until a score exists.
    assert s.visible(0.5).tolist() == [True, False, True, False]
    s.set_scores([1], [0.8])
    assert events == [("scores", [1])]
    assert s.visible(0.5).tolist() == [True, True, True, False]
    assert s.visible(None, hidden={"matched"}).tolist() == [False, True, True, False]
    assert s.nearest(49, 52) == 1 and s.nearest(49, 52, max_dist=1) is None


def test_sourceset_tolerates_missing_columns():
    s = vs.SourceSet.from_table(Table({"x": [1.0], "y": [2.0]}))
    assert s.ids.tolist() == [0] and s.status.tolist() == ["unmatched"]
    assert np.isnan(s.score[0])


def _pipeline_like_table():
    """The columns the pipeline's detection table has beyond the core ones."""
    from astropy.table import MaskedColumn

    t = _table()
    t["diaSourceId"] = np.array([170_000_000_000_000_001, -1, 5, -1], dtype=np.int64)
    t["pixelFlags_sat"] = [True, False, False, True]
    t["pixelFlags_edgeCenter"] = [False, False, True, False]
    t["psfFluxErr"] = MaskedColumn([0.1, 0.2, 0.3, 0.4], mask=[False, True, False, False])
    t["kind"] = np.array([b"star", b"sn", b"star", b"agn"])  # bytes, as FITS gives text
    t["cutout"] = np.zeros((4, 3))  # a vector column: not a table column
    return t


def test_sourceset_keeps_every_table_column():
    t = _pipeline_like_table()
    s = vs.SourceSet.from_table(t, visit=2024120700123, detector=4)
    assert list(s.columns)[:14] == list(vs.CORE_COLUMNS)
    assert list(s.columns)[14:] == ["pixelFlags_sat", "pixelFlags_edgeCenter", "psfFluxErr",
                                    "kind"]
    assert s.flag_names == ["pixelFlags_sat", "pixelFlags_edgeCenter"]
    # the matched catalog row's id exactly (int64), empty (masked) for an unmatched detection
    dia = s.dia_source_id
    assert dia.dtype == np.int64 and int(dia[0]) == 170_000_000_000_000_001
    assert np.ma.getmaskarray(dia).tolist() == [False, True, False, True]
    assert s.visit.tolist() == [2024120700123] * 4 and s.detector.tolist() == [4] * 4
    assert s.columns["kind"].tolist() == ["star", "sn", "star", "agn"]
    assert np.isnan(s.columns["psfFluxErr"][1])  # a missing number is NaN
    # no astropy Column leaks in (it would carry the caller's table along)
    assert all(type(a) in (np.ndarray, np.ma.MaskedArray) for a in s.columns.values())
    assert s.flux.tolist() == [1.0, 2.0, 3.0, 4.0] and "psfFlux" in s.columns


def test_sourceset_attributes_are_the_columns():
    t = _pipeline_like_table()
    s = vs.SourceSet.from_table(t)
    assert s.score is s.columns["score"] and s.labels is s.columns["label"]
    assert s.original is s.columns["original_reliability"] and s.ids is s.columns["id"]
    s.set_scores([0, 2], [0.25, 0.75])
    s.set_label(1, "real")
    assert s.columns["score"][[0, 2]].tolist() == [0.25, 0.75]
    assert s.columns["label"][1] == "real"
    assert np.isnan(np.asarray(t["score"])).all()  # the caller's table is not written
    # unknown visit/detector: masked, not a made-up number
    assert np.ma.getmaskarray(s.visit).all() and np.ma.getmaskarray(s.detector).all()


def test_sourceset_columns_reach_the_filter():
    from diascan.filter_expressions import filter_rows

    s = vs.SourceSet.from_table(_pipeline_like_table(), visit=7, detector=4)
    s.set_label(2, "bogus")
    cols = s.filter_columns()

    def ids(text):
        return s.ids[filter_rows(text, cols)].tolist()

    assert ids("pixelFlags_sat") == [10, 13]
    assert ids("diaSourceId == none") == [11, 13]
    assert ids("diaSourceId == 170000000000000001") == [10]
    assert ids("reliability > 0.5 and flux < 3") == [10]  # the table view's names
    assert ids('label == "bogus" or kind == "agn"') == [12, 13]
    assert ids("visit == 7 and detector == 4 and psfFluxErr > 0.25") == [12, 13]
