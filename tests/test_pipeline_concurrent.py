"""Stages at the same time (issue 15, points 1 and 2): a concurrent run gives the products of a
sequential one bit for bit; the futures a progressive viewer attaches to; the stage graph's
scheduling, failures and cancellation; the background importer; what the first stage imports.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from diascan import preload
from diascan.errors import Cancelled, InputError
from diascan.io import read_image, write_exposure
from diascan.pipeline import PRODUCTS, PipelineInputs, read_target, run_pipeline, start_pipeline
from diascan.progress import CancelToken
from diascan.stage_graph import StageGraph
from tests._identical import assert_images_identical, assert_tables_identical

REPO = Path(__file__).resolve().parents[1]


def _inputs(demo: Path, **kw) -> PipelineInputs:
    files = dict(
        science=demo / "science.fits",
        difference=demo / "difference.fits",
        template_patches=sorted(demo.glob("template_coadd_*.fits")),
        catalog=demo / "dia_source.parquet",
        target=read_target(demo / "target.json"),
    )
    return PipelineInputs(**{**files, **kw})


# ------------------------------------------------------------------------------ the pipeline


def test_concurrent_run_gives_the_sequential_products(small_demo):
    seq = run_pipeline(_inputs(small_demo), workers=0)
    con = run_pipeline(_inputs(small_demo))
    for name in ("science", "difference", "template"):
        assert_images_identical(getattr(con, name), getattr(seq, name))
    assert_tables_identical(con.detections, seq.detections)
    assert_tables_identical(con.missing, seq.missing)
    assert len(con.detections) > 20 and np.isfinite(con.detections["score"]).all()
    assert (con.model_name, con.model_version, con.notes) == (
        seq.model_name, seq.model_version, seq.notes,
    )  # fmt: skip
    assert set(con.timings) == {"load", "template", "detect", "score", "match"}
    # Sequentially every stage starts after the one before it ended; concurrently after its
    # own needs only (the warp after the detection's full-frame stages: the memory budget).
    seq_order = sorted(seq.stage_times, key=lambda k: seq.stage_times[k][0])
    for a, b in zip(seq_order, seq_order[1:], strict=False):
        assert seq.stage_times[a][1] <= seq.stage_times[b][0]
    t = con.stage_times
    assert t["images"][0] >= max(t["science"][1], t["difference"][1])
    assert t["template"][0] >= max(t["templates"][1], t["candidates"][1])
    assert t["scored"][0] >= max(t["template"][1], t["detections"][1], t["model"][1])


def test_products_arrive_as_futures_in_stage_order(small_demo):
    """What a progressive viewer sees: every product's callback, off the calling thread, the
    images before the template and the detections, the result last."""
    seen: list[tuple[str, str, object]] = []
    lock = threading.Lock()
    progress_threads: set[str] = set()

    def progress(stage, fraction, message):
        progress_threads.add(threading.current_thread().name)

    run = start_pipeline(_inputs(small_demo), score=False, progress=progress)
    for name in PRODUCTS:

        def done(fut, name=name):
            with lock:
                seen.append((name, threading.current_thread().name, fut.result()))

        run.on(name, done)
    result = run.result(timeout=300)
    deadline = time.monotonic() + 10  # the last callbacks may still be running
    while len(seen) < len(PRODUCTS) and time.monotonic() < deadline:
        time.sleep(0.01)
    order = [name for name, _, _ in seen]
    assert sorted(order) == sorted(PRODUCTS)
    assert order.index("science") < order.index("template")
    assert max(order.index("science"), order.index("difference")) < order.index("detections")
    assert order.index("scored") < order.index("result")
    assert all(thread != threading.current_thread().name for _, thread, _ in seen)
    values = {name: value for name, _, value in seen}
    assert values["science"] is result.science and values["template"] is result.template
    assert values["catalog"] is result.catalog and len(values["detections"]) == len(
        result.detections
    )
    assert values["result"] is result and run.done()
    assert threading.current_thread().name not in progress_threads
    with pytest.raises(KeyError, match="products"):
        run.future("templates")  # internal stages are not products


def test_a_failing_stage_fails_the_run_and_stops_the_rest(small_demo, tmp_path):
    diff = read_image(small_demo / "difference.fits")
    diff.x0 += 7  # another bounding box: not the science image's grid
    bad = tmp_path / "moved_difference.fits"
    write_exposure(bad, diff)
    inputs = _inputs(small_demo, difference=bad)
    caller = CancelToken()
    run = start_pipeline(inputs, cancel=caller)
    with pytest.raises(InputError, match="moved_difference.fits.*bbox") as info:
        run.result(timeout=300)
    for product in ("detections", "template", "scored", "result"):
        assert run.future(product).exception(timeout=60) is info.value
    assert run.stages.cancel_token.cancelled and not caller.cancelled
    # The same error, one after the other.
    with pytest.raises(InputError, match="moved_difference.fits.*bbox"):
        run_pipeline(inputs, workers=0)


def test_cancel_during_a_run(small_demo):
    run = start_pipeline(_inputs(small_demo))
    run.on("science", lambda fut: run.cancel())
    with pytest.raises(Cancelled):
        run.result(timeout=300)


# ------------------------------------------------------------------------------ the graph


def test_graph_passes_products_and_runs_independent_stages_at_once():
    both_running = threading.Barrier(2, timeout=30)  # only passable by two stages at once

    def side(x):
        both_running.wait()
        return x * 10

    graph = StageGraph()
    graph.add("a", lambda: 2)
    graph.add("b", lambda a: side(a), ("a",))
    graph.add("c", lambda a: side(a + 1), ("a",))
    graph.add("d", lambda b, c: (b, c, threading.current_thread().name), ("b", "c"))
    run = graph.start(workers=3)
    b, c, thread = run.result("d", timeout=60)
    assert (b, c) == (20, 30) and thread.startswith("diascan-stage")
    for name in "abc":
        assert run.times[name][1] <= run.times["d"][0]
    with pytest.raises(ValueError):
        graph.add("e", lambda z: z, ("z",))  # an unknown need


def test_graph_sequential_runs_here_in_order():
    calls = []
    graph = StageGraph()
    for name, needs in (("a", ()), ("b", ()), ("c", ("a",))):
        graph.add(name, lambda n=name, **_: calls.append((n, threading.current_thread().name)),
                  needs)  # fmt: skip
    graph.start(workers=0)
    assert calls == [(n, threading.current_thread().name) for n in "abc"]


def test_graph_failure_propagates_and_cancels_the_running_stages():
    """A failure stops the stages still running; they report that failure, not a Cancelled
    (a viewer looking at the stopped stage's future first showed "cancelled" and waited)."""

    class Boom(Exception):
        pass

    started = threading.Event()
    caller = CancelToken()
    graph = StageGraph(cancel=caller)
    token = graph.cancel_token

    def slow():
        started.set()
        while True:  # a long stage polling the run's token
            token.check()
            time.sleep(0.005)

    def fail():
        started.wait(30)
        raise Boom("bad input")

    graph.add("slow", slow)
    graph.add("fail", fail)
    graph.add("user", lambda fail: fail, ("fail",))
    graph.add("last", lambda user, slow: None, ("user", "slow"))
    run = graph.start(workers=2)
    with pytest.raises(Boom):
        run.result("last", timeout=60)
    assert run["user"].exception() is run["fail"].exception()
    assert run["slow"].exception(timeout=60) is run["fail"].exception()  # stopped, not cancelled
    assert not caller.cancelled  # the caller's token is left alone


def test_caller_cancel_reaches_the_stages():
    caller = CancelToken()
    graph = StageGraph(cancel=caller)
    graph.add("a", lambda: caller.cancel())
    graph.add("b", lambda a: "never", ("a",))
    run = graph.start(workers=2)
    assert isinstance(run["b"].exception(timeout=60), Cancelled)


# ------------------------------------------------------------------------------ imports


def test_importer_thread_imports_in_order_and_require_waits(tmp_path, monkeypatch):
    (tmp_path / "speed_slow_mod.py").write_text(
        "import threading, time\ntime.sleep(0.3)\nTHREAD = threading.current_thread().name\n"
    )
    (tmp_path / "speed_broken_mod.py").write_text("raise RuntimeError('broken on purpose')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("speed_slow_mod", "speed_broken_mod"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    thread = preload.preload("speed_slow_mod", "speed_broken_mod")
    assert thread is not None and thread.name == "diascan-import"
    assert preload.preload("speed_slow_mod") is None  # queued already
    mod = preload.require("speed_slow_mod")
    assert mod.THREAD == "diascan-import"
    with pytest.raises(RuntimeError, match="broken on purpose"):
        preload.require("speed_broken_mod")


def test_first_stage_imports_only_what_reading_needs():
    """``import diascan.pipeline`` and the score command's modules load neither scipy, torch,
    astropy.table, astropy.wcs nor pyarrow (imported in the background during a run)."""
    code = textwrap.dedent(
        """
        import sys
        import diascan.pipeline, diascan.cli.main, diascan.cli.score
        from diascan.io.image_reader import read_image
        from diascan.io.table_formats import table_format
        heavy = ["scipy", "torch", "astropy.table", "astropy.wcs", "pyarrow", "sep"]
        print(" ".join(m for m in heavy if m in sys.modules) or "none")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["none"]
