"""Batch throughput: visits per minute with ``diascan.batch`` on a LocalCluster of 1 and 2
worker processes (one thread each), and one process scoring the same visits in a loop.

The visits are demo visits with different seeds and visit numbers (cached:
``cached_demo(small, seed, visit)``); full size by default, small with
``DIASCAN_BENCH_SMALL=1``. Both clusters are started and warmed up first (one visit per worker
into a scratch folder, as the loop's process scores one), so the figures are steady-state
throughput; the start-up is recorded on its own. The three configurations then run in
interleaved rounds (loop, 1 worker, 2 workers, loop, ...) and the best round of each counts, so
a load from other processes that comes and goes hits them alike; every timed run writes into a
fresh output folder, so every visit is scored (checksums, pipeline, writes), none skipped.

Run: ``.venv/bin/python -m pytest benchmarks/bench_batch.py --benchmark-only -s``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import tempfile
import time
from pathlib import Path

import pytest
from benchutil import SMALL

#: Visits per timed run (a full visit takes ~3-4 s on this 2-core machine).
N_VISITS = 8 if SMALL else 4
ROUNDS = 2


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
            if role != "target":
                total += sum(os.stat(f).st_size for f in (p if isinstance(p, list) else [p]))
    return total


def test_batch_throughput(benchmark, record, visits, tmp_path):
    """One process in a loop (``score_visit`` one visit after the other, torch on the cores as
    ``diascan score``; what a shell loop does without the process start-ups) against
    ``run_batch`` on LocalClusters of 1 and 2 worker processes."""
    from diascan.batch import BatchSettings, dask_client, run_batch, score_visit
    from diascan.models.package import configure_threads

    loop_settings = BatchSettings(torch_threads=configure_threads()).resolved()
    settings = BatchSettings().resolved()
    runs = itertools.count()

    def loop():
        out = tmp_path / f"run{next(runs)}"
        return [score_visit(job, out, loop_settings) for job in visits]

    def on(client):
        return lambda: run_batch(visits, tmp_path / f"run{next(runs)}", settings, client)

    starts = {}
    with contextlib.ExitStack() as stack:
        configs = {"loop": loop}
        clients = {}
        for n in (1, 2):
            t0 = time.perf_counter()
            clients[n] = stack.enter_context(dask_client(workers=n))
            clients[n].wait_for_workers(n)
            starts[n] = time.perf_counter() - t0
            configs[n] = on(clients[n])
        # warm-up: imports and first calls in every process (one visit per worker)
        score_visit(visits[0], tmp_path / "warm", loop_settings)
        for n, client in clients.items():
            rows = run_batch(visits[:n], tmp_path / f"warm{n}", settings, client)
            assert [r["status"] for r in rows] == ["done"] * n

        times: dict = {name: [] for name in configs}

        def rounds():
            for _ in range(ROUNDS):
                for name, fn in configs.items():
                    t0 = time.perf_counter()
                    rows = fn()
                    times[name].append(time.perf_counter() - t0)
                    assert [r["status"] for r in rows] == ["done"] * len(visits)

        benchmark.pedantic(rounds, rounds=1, iterations=1)

    nbytes = _input_bytes(visits)
    best = {name: min(ts) for name, ts in times.items()}

    def note(name) -> str:
        rate = 60 * len(visits) / best[name]
        rounds_s = ", ".join(f"{t:.1f}" for t in times[name])
        ratio = "" if name == "loop" else f"; {best['loop'] / best[name]:.2f}x the loop's rate"
        return f"{rate:.1f} visits/min{ratio} (best of {ROUNDS} interleaved rounds: {rounds_s} s)"

    record(f"batch: {len(visits)} visits, one process in a loop", best["loop"], nbytes,
           note=note("loop") + f", {loop_settings.torch_threads} torch threads")
    for n in (1, 2):
        record(f"batch: {len(visits)} visits, Dask LocalCluster {n} worker(s)", best[n], nbytes,
               note=note(n) + ", 1 thread per worker")
        record(f"batch: LocalCluster start, {n} worker(s)", starts[n], 0,
               note="processes up and registered (before any import of torch)")

