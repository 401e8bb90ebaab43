"""Batch throughput: visits per minute with ``diascan.batch`` on a LocalCluster of 1 and 2
worker processes (one thread each), and one process scoring the same visits in a loop.

The visits are demo visits with different seeds and visit numbers (cached:
``cached_demo(small, seed, visit)``); full size by default, small with
``DIASCAN_BENCH_SMALL=1``. Every configuration first runs one visit per worker (or one in the
loop) into a scratch folder, so the figures are steady-state throughput, not start-up: the
cluster start-up is recorded on its own. Each timed run writes into a fresh output folder, so
every visit is scored (checksums, pipeline, writes), none skipped.

Run: ``.venv/bin/python -m pytest benchmarks/bench_batch.py --benchmark-only -s``.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pytest
from benchutil import SMALL

#: Visits per timed run (full visits take ~3-4 s each on one core pair).
N_VISITS = 8 if SMALL else 4


@pytest.fixture(scope="module")
def visits() -> list:
    from diascan.batch import read_manifest
    from diascan.demo import cached_demo
    from diascan.demo.generate import VISIT

    root = Path(tempfile.mkdtemp(prefix="diascan-bench-batch-"))
    for i in range(N_VISITS):
        folder = cached_demo(small=SMALL, seed=1 + i, visit=None if i == 0 else VISIT + i)
        (root / f"v{i}").symlink_to(folder, target_is_directory=True)
    jobs = read_manifest(root)
    assert [j.error for j in jobs] == [None] * N_VISITS
    assert len({j.visit for j in jobs}) == N_VISITS
    return jobs


def _input_bytes(jobs) -> int:
    total = 0
    for j in jobs:
        for role, p in j.files.items():
            if role == "target":
                continue
            for f in p if isinstance(p, list) else [p]:
                total += os.stat(f).st_size
    return total


_loop: dict = {}


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def test_batch_loop(benchmark, record, visits, tmp_path):
    """One process scoring the visits one after the other (what a shell loop over ``diascan
    score`` would do, without the process start-ups): torch on the cores, as ``diascan score``."""
    from diascan.batch import BatchSettings, score_visit
    from diascan.models.package import configure_threads

    settings = BatchSettings(torch_threads=configure_threads()).resolved()
    score_visit(visits[0], tmp_path / "warm", settings)  # imports and first calls

    def loop():
        out = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
        rows = [score_visit(job, out, settings) for job in visits]
        assert [r["status"] for r in rows] == ["done"] * len(visits)

    t = _timed(lambda: benchmark.pedantic(loop, rounds=1, iterations=1))
    _loop["seconds"] = t
    record(f"batch: {len(visits)} visits, one process in a loop", t, _input_bytes(visits),
           note=f"{60 * len(visits) / t:.1f} visits/min (score_visit in a loop, "
                f"{settings.torch_threads} torch threads)")


@pytest.mark.parametrize("workers", [1, 2])
def test_batch_dask(benchmark, record, visits, tmp_path, workers):
    """``run_batch`` on a LocalCluster of ``workers`` processes, 1 thread each."""
    from diascan.batch import BatchSettings, dask_client, run_batch

    settings = BatchSettings().resolved()
    t0 = time.perf_counter()
    with dask_client(workers=workers) as client:
        client.wait_for_workers(workers)
        start = time.perf_counter() - t0
        rows = run_batch(visits[:workers], tmp_path / "warm", settings, client)  # warm workers
        assert [r["status"] for r in rows] == ["done"] * workers

        def run():
            rows = run_batch(visits, tmp_path / "out", settings, client)
            assert [r["status"] for r in rows] == ["done"] * len(visits)

        t = _timed(lambda: benchmark.pedantic(run, rounds=1, iterations=1))
    rate = 60 * len(visits) / t
    loop = _loop.get("seconds")
    ratio = f"; {loop / t:.2f}x the loop's throughput" if loop else ""
    record(f"batch: {len(visits)} visits, Dask LocalCluster {workers} worker(s)", t,
           _input_bytes(visits), note=f"{rate:.1f} visits/min{ratio}")
    record(f"batch: LocalCluster start, {workers} worker(s)", start, 0,
           note="processes up and registered (before any import of torch)")
