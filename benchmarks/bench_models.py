"""Benchmarks of cutting and scoring (models engineer, issue item 7).

Run: ``.venv/bin/python -m pytest benchmarks/bench_models.py --benchmark-only -s`` (records
into results.json through the ``record`` fixture) or ``.venv/bin/python
benchmarks/bench_models.py`` (prints).
Scoring uses the bundled default model on 2 torch threads.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from diascan.cutouts import cut_stamps
from diascan.io.images import ImageData
from diascan.models import load_model

N_CUT = 5_000
N_SCORE = 2_048


def _images(n: int = 4000, seed: int = 0):
    rng = np.random.default_rng(seed)

    def img(shape, x0=0):
        a = rng.normal(0, 300, shape).astype(np.float32)
        return ImageData(image=a, mask=np.zeros(shape, np.int32),
                         variance=np.ones(shape, np.float32), x0=x0, y0=x0)

    return img((n, n)), img((n, n)), img((n + 40, n + 40), -20)


def _best(fn, repeats=3):
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def measure() -> dict[str, float]:
    """Stamps/s for cutting and scoring (batch 1, 64, 256) and single-source latency (s)."""
    torch.set_num_threads(2)
    diff, sci, tmpl = _images()
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 4000, N_CUT)
    y = rng.uniform(0, 4000, N_CUT)
    out = {}
    t = _best(lambda: cut_stamps(x, y, diff, sci, tmpl))
    out["cut_stamps_per_s"] = N_CUT / t
    model = load_model()
    stamps = cut_stamps(x[:N_SCORE], y[:N_SCORE], diff, sci, tmpl)
    model.score_stamps(stamps[:64])  # warm-up
    for bs in (1, 64, 256):
        n = 64 if bs == 1 else N_SCORE
        t = _best(lambda bs=bs, n=n: model.score_stamps(stamps[:n], batch_size=bs), repeats=2)
        out[f"score_stamps_per_s_batch{bs}"] = n / t

    def click():
        model.score_stamps(cut_stamps([2000.3], [1500.7], diff, sci, tmpl))

    out["click_latency_s"] = _best(click, repeats=20)
    return out


def test_bench_models(benchmark, record):
    res: dict[str, float] = {}
    benchmark.pedantic(lambda: res.update(measure()), rounds=1, iterations=1)
    for name, value in res.items():
        if "_per_s" in name:
            n = N_CUT if name.startswith("cut") else (64 if name.endswith("batch1") else N_SCORE)
            record(f"models (synthetic): {name.replace('_per_s', '')}", n / value,
                   n * 3 * 51 * 51 * 4, note=f"{n} stamps, {value:.0f} stamps/s")
        else:
            record(f"models (synthetic): {name}", value, 3 * 51 * 51 * 4,
                   note="cut + score one source")


if __name__ == "__main__":
    for k, v in measure().items():
        print(f"{k}: {v:.4g}")
