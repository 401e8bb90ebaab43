"""Qt-free viewer state and display preparation."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from astropy.table import Table

from diascan import viewstate as vs


def test_viewstate_does_not_import_qt():
    code = "import sys, diascan.viewstate; print('PyQt6' in sys.modules, 'pyqtgraph' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_observable_notifies_only_on_change():
    st = vs.ViewerState()
    seen = []
    st.connect(lambda name, value: seen.append((name, value)))
    st.selected_id = 5
    st.selected_id = 5
    st.threshold = 0.3
    assert seen == [("selected_id", 5), ("threshold", 0.3)]


def test_blink_cycles_forwards_and_backwards():
    st = vs.ViewerState()
    assert [st.blink(1) for _ in range(4)] == [1, 2, 0, 1]
    assert [st.blink(-1) for _ in range(3)] == [0, 2, 1]
    assert st.blink_frame == "template"


def test_blink_shows_the_single_frame_view():
    st = vs.ViewerState()
    seen = []
    st.connect(lambda name, value: seen.append((name, value)))
    assert not st.single
    assert st.blink(-1) == 2
    assert st.single and ("single", True) in seen
    st.single = False  # back to three frames: the next blink shows the single view again
    st.blink(1)
    assert st.single and st.blink_frame == "science"


def test_hide_scores_is_observed_but_not_saved_with_the_view():
    st = vs.ViewerState()
    seen = []
    st.connect(lambda name, value: seen.append((name, value)))
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
    seen = []
    st.connect(lambda name, value: seen.append(name))
    st.view_range = ((10.0, 90.0), (-5.0, 75.0))
    d = json.loads(json.dumps(st.to_dict()))
    back = vs.ViewerState.from_dict(d)
    assert back.view_range == ((10.0, 90.0), (-5.0, 75.0)) and seen == ["view_range"]
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
