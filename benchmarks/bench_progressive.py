"""Progressive load and prefetch in the real window (issue 15.3/15.4), offscreen, on the demo.

A session of two visits of the demo detector (the same files twice) on an empty results cache
(``DIASCAN_RESULTS_CACHE`` = a fresh folder per round: every load warps and detects). Timed
from choosing the first visit (``QtSessionLink.start_visits``):

* science + difference painted: the load's ``frames_shown`` then a completed ``grab()``;
* detections shown: the load's ``detections_shown`` (matched, unscored, in the table and on
  the frames) then ``grab()``;
* all loaded: ``data_loaded`` (template warped, the run's result shown) then ``grab()``;

and, once the second visit is prefetched (one visit ahead), from ``next_visit()`` to that visit
usable (its detections shown and the window painted).

Run: ``QT_QPA_PLATFORM=offscreen .venv/bin/python -m pytest benchmarks/bench_progressive.py
--benchmark-only -s``.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
from benchutil import SMALL  # noqa: E402

from diascan import viewstate as vs  # noqa: E402

T_FRAMES = 1.2
T_DETECTIONS = 3.0
T_PREFETCHED = 0.3
ROUNDS = 2


@pytest.fixture(scope="module")
def app():
    from diascan.qt.app import get_app

    return get_app()


def _spin(app, done, timeout: float = 120.0) -> None:
    """Run the event loop until ``done()`` (real jobs finish in their threads)."""
    end = time.perf_counter() + timeout
    while not done():
        if time.perf_counter() > end:
            raise TimeoutError("the window did not get there in time")
        app.processEvents()
        time.sleep(0.001)


def _one_round(app, files: dict, tmp) -> dict[str, float]:
    from diascan.prefetch import PrefetchSettings
    from diascan.qt.qt_main_window import QtMainWindow
    from diascan.qt.qt_session_link import QtSessionLink

    win = QtMainWindow()
    win.show_errors_as_dialogs = False
    win.show()
    app.processEvents()
    link = QtSessionLink(win, session_path=tmp / "s.json", interactive=False)
    link.prefetcher.set_settings(PrefetchSettings(depth=1), save=False)
    seen: dict[str, float] = {}
    win.data_loaded.connect(lambda: seen.setdefault("loaded", time.perf_counter()))
    link.prefetcher.prefetched.connect(lambda i: seen.setdefault("prefetched", i))
    t0 = time.perf_counter()
    assert link.start_visits([dict(files), dict(files)])
    load = win.loading
    load.frames_shown.connect(lambda: seen.setdefault("frames", time.perf_counter()))
    load.detections_shown.connect(lambda: seen.setdefault("detections", time.perf_counter()))
    _spin(app, lambda: "frames" in seen)
    win.grab()
    out = {"frames": time.perf_counter() - t0, "frames_signal": seen["frames"] - t0}
    _spin(app, lambda: "detections" in seen)
    win.grab()
    out["detections"] = time.perf_counter() - t0
    out["detections_signal"] = seen["detections"] - t0
    _spin(app, lambda: "loaded" in seen)
    win.grab()
    out["loaded"] = time.perf_counter() - t0
    out["n_sources"] = len(win.sources)
    out["frame_bytes"] = sum(win.images[n].image.nbytes for n in vs.FRAMES)
    _spin(app, lambda: "prefetched" in seen)
    out["prefetched_after"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    assert link.ctl.next_visit()
    assert link.ctl.session.current_visit == 1 and win.loading is None  # no load: prefetched
    win.grab()
    out["next_usable"] = time.perf_counter() - t1
    win.cancel_work()
    win.wait_idle()
    win.close()
    win.deleteLater()
    app.processEvents()
    return out


def test_progressive_load_and_prefetch(benchmark, record, app, full_demo, tmp_path,
                                       monkeypatch):
    from diascan.inputs import folder_files

    files = folder_files(full_demo)
    runs = []

    def run():
        for k in range(ROUNDS):
            cache = tmp_path / f"results{k}"  # empty: a results-cache miss
            monkeypatch.setenv("DIASCAN_RESULTS_CACHE", str(cache))
            runs.append(_one_round(app, files, tmp_path / f"round{k}"))

    benchmark.pedantic(run, rounds=1, iterations=1)
    best = {k: min(r[k] for r in runs) for k in ("frames", "detections", "loaded",
                                                   "next_usable")}
    nbytes = int(runs[0]["frame_bytes"])
    size = "small" if SMALL else "full"
    each = "; ".join(
        f"round {i + 1}: frames {r['frames']:.2f} (shown {r['frames_signal']:.2f}), "
        f"detections {r['detections']:.2f} (shown {r['detections_signal']:.2f}), all loaded "
        f"{r['loaded']:.2f}, next prefetched {r['prefetched_after']:.1f} s after the choice"
        for i, r in enumerate(runs))
    record("viewer, cache miss: visit chosen -> science + difference painted", best["frames"],
           nbytes, target=T_FRAMES,
           note=f"{size} demo, best of {ROUNDS} fresh windows/results caches; {each}")
    record("viewer, cache miss: visit chosen -> detections shown", best["detections"], nbytes,
           target=T_DETECTIONS,
           note=f"{runs[0]['n_sources']} detections, matched, unscored: table and markers")
    record("viewer, cache miss: visit chosen -> all loaded (template, result)", best["loaded"],
           nbytes, note="data_loaded + grab(); rescoring starts then")
    record("viewer: next visit (prefetched) -> usable", best["next_usable"], nbytes,
           target=T_PREFETCHED, note="next_visit() to set_result + grab(); no load job runs")
