"""Fine-tuning on session labels (issue 17): ``diascan train --from-sessions`` on 500 labels.

Fifteen small demo visits (cached, seeds 301-315, ~35 detections each) in one session file, the
first 500 detections labelled from the demo truth (:mod:`diascan.learn.demo`), the DP1 model
(``$DIASCAN_SHARED/models``, else the bundled one) as base; the command runs in a fresh process
on 2 torch threads. Target: at most 3 minutes from start to the written package, gathering the
stamps (reading every visit, warping its template, cutting) included.

Run: ``.venv/bin/python -m pytest benchmarks/bench_train.py --benchmark-only -s``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from benchutil import bench

#: Target (seconds) for 500 labels, issue 17 point 5.
T_TRAIN_500 = 180.0
N_LABELS = 500
SEEDS = range(301, 316)


@pytest.fixture(scope="module")
def labelled_session(tmp_path_factory) -> Path:
    from diascan.demo import cached_demo
    from diascan.learn.demo import demo_detections, write_labelled_session

    visits = [demo_detections(Path(cached_demo(small=True, seed=s))) for s in SEEDS]
    assert sum(len(v.real) for v in visits) >= N_LABELS
    return write_labelled_session(visits, tmp_path_factory.mktemp("train") / "s.json", N_LABELS)


def _base_model() -> str:
    shared = Path(os.environ.get("DIASCAN_SHARED", Path(__file__).resolve().parents[1].parent
                                 / "shared"))  # fmt: skip
    dp1 = shared / "models" / "tac_cnn_comcam_2025-02-18"
    return str(dp1) if dp1.is_dir() else "diascan_taccnn_sim_v1"


def test_train_from_sessions_500_labels(benchmark, record, labelled_session, tmp_path):
    exe = Path(sys.executable).with_name("diascan")
    runs = []

    def once():
        out = tmp_path / f"run{len(runs)}"
        t0 = time.perf_counter()
        proc = subprocess.run(
            [str(exe), "train", "--from-sessions", str(labelled_session), "--base",
             _base_model(), "--out", str(out), "--threads", "2"],
            capture_output=True, text=True,
        )  # fmt: skip
        wall = time.perf_counter() - t0
        assert proc.returncode == 0, proc.stderr
        runs.append((wall, json.loads((out / "metrics.json").read_text())))

    t, _ = bench(benchmark, once, rounds=1)
    m = runs[-1][1]
    s, labels = m["seconds"], m["labels"]
    after = m["heldout_metrics"]["after"]["roc_auc"]
    before = m["heldout_metrics"]["before"]["roc_auc"]
    record(
        "train from sessions, 500 labels (wall, fresh process)", t,
        N_LABELS * 3 * 51 * 51 * 4, target=T_TRAIN_500,
        note=f"{labels['used']['real']} real + {labels['used']['bogus']} bogus from "
             f"{labels['visits']} visits; gather {s['gather']:.1f} s, train {s['train']:.1f} s "
             f"({len(m['history'])} epochs, best {m['best_epoch']}); held-out AUC "
             f"{before:.3f} -> {after:.3f}",
    )  # fmt: skip
