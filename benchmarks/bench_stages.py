"""Stage scheduling benchmarks (issue 15, issue 13 point 8), each a same-run comparison:

* detection split into stages against the unsplit function of the baseline revision
  (``benchutil.BASELINE_REV``, read from git history), interleaved, with the extra peak memory;
* the pipeline in-process with its stages at the same time against one after the other
  (``workers=0``), interleaved, wall time and peak memory;
* the obvious library path, as a user would write it: ``reproject_and_coadd`` with
  ``reproject_interp`` of the template patches onto the science grid, then ``sep.extract``
  with a PSF-matched filter on the difference image (positive and negative sources), against
  diascan's template warp + detection in the same run (reported as a ratio).

Run: ``make bench`` or ``.venv/bin/python -m pytest benchmarks/bench_stages.py --benchmark-only -s``.
"""

from __future__ import annotations

import gc
import time
from pathlib import Path

import numpy as np
import pytest
from benchutil import BASELINE_REV, baseline_tree, image_bytes, module_from_file, status_kib

from diascan.memory import release_free_memory


def _timed_peak(fn):
    """``(seconds, extra peak bytes, result)`` of ``fn()``: VmHWM reset to VmRSS before it
    (Linux; the extra is None where /proc/self/clear_refs cannot be written)."""
    gc.collect()
    release_free_memory()
    try:
        Path("/proc/self/clear_refs").write_text("5")
        before = status_kib("VmRSS")
    except (OSError, KeyError):
        before = None
    t0 = time.perf_counter()
    out = fn()
    t = time.perf_counter() - t0
    extra = None if before is None else (status_kib("VmHWM") - before) * 1024
    return t, extra, out


def _interleaved(variants: dict, rounds: int) -> dict[str, list]:
    """Run each variant ``rounds`` times, alternating the order every round."""
    names = list(variants)
    res: dict[str, list] = {n: [] for n in names}
    for i in range(rounds):
        for name in names if i % 2 == 0 else names[::-1]:
            res[name].append(_timed_peak(variants[name]))
    return res


def _summary(runs: list) -> tuple[float, int | None, str]:
    best = min(t for t, _, _ in runs)
    peaks = [p for _, p, _ in runs if p is not None]
    return best, (max(peaks) if peaks else None), ", ".join(f"{t:.2f}" for t, _, _ in runs)


def test_detection_split_vs_unsplit(benchmark, record, stages):
    """The split detect_and_measure against the baseline's single function (same inputs)."""
    tree = baseline_tree()
    if tree is None:
        pytest.skip(f"the baseline {BASELINE_REV} needs a git clone")
    old = module_from_file(tree / "src" / "diascan" / "detection.py", "_baseline_detection")
    from diascan.detection import detect_and_measure

    ld = stages["loaded"]
    variants = {
        "split": lambda: detect_and_measure(ld.difference, ld.science),
        "unsplit": lambda: old.detect_and_measure(ld.difference, ld.science),
    }
    box: dict = {}
    benchmark.pedantic(lambda: box.update(_interleaved(variants, rounds=4)), rounds=1,
                       iterations=1)  # fmt: skip
    new_t, new_m, new_s = _summary(box["split"])
    old_t, old_m, old_s = _summary(box["unsplit"])
    same = box["split"][-1][2].as_array().tobytes() == box["unsplit"][-1][2].as_array().tobytes()
    nbytes = image_bytes(ld.difference)
    record("detection, split into stages", new_t, nbytes,
           note=f"best of 4 ({new_s} s), interleaved with the unsplit function of "
                f"{BASELINE_REV}: {new_t / old_t:.2f} x its time; tables identical: {same}")
    record(f"detection, unsplit function of {BASELINE_REV} (same run)", old_t, nbytes,
           note=f"best of 4 ({old_s} s)")
    if new_m is not None and old_m is not None:
        record("detection, split: extra peak memory", new_m, nbytes, unit="B",
               note=f"VmHWM reset before each run, worst of 4; unsplit: {old_m / 1e6:.0f} MB")
    assert same


def test_pipeline_concurrent_vs_sequential(benchmark, record, stages):
    """run_pipeline with the stages at the same time and one after the other (workers=0), in
    this warm process (imports done), interleaved: wall time and extra peak memory."""
    from diascan.pipeline import run_pipeline

    inputs = stages["inputs"]
    variants = {
        "concurrent": lambda: run_pipeline(inputs),
        "sequential": lambda: run_pipeline(inputs, workers=0),
    }
    box: dict = {}
    benchmark.pedantic(lambda: box.update(_interleaved(variants, rounds=3)), rounds=1,
                       iterations=1)  # fmt: skip
    con_t, con_m, con_s = _summary(box["concurrent"])
    seq_t, seq_m, seq_s = _summary(box["sequential"])
    last = box["concurrent"][-1][2]
    when = ", ".join(f"{k} {a:.2f}-{b:.2f}" for k, (a, b) in
                     sorted(last.stage_times.items(), key=lambda kv: kv[1][0]))  # fmt: skip
    ld = stages["loaded"]
    nbytes = image_bytes(ld.science, ld.difference, *ld.templates, last.template)
    record("pipeline in-process, stages at the same time", con_t, nbytes,
           note=f"best of 3 ({con_s} s): {con_t / seq_t:.2f} x the sequential time; "
                f"last run's stages (s): {when}")
    record("pipeline in-process, stages one after the other (same run)", seq_t, nbytes,
           note=f"workers=0, best of 3 ({seq_s} s)")
    if con_m is not None and seq_m is not None:
        record("pipeline in-process, stages at the same time: extra peak memory", con_m, nbytes,
               unit="B", note=f"worst of 3 (VmHWM over the warm process' RSS); one after "
                              f"the other: {seq_m / 1e6:.0f} MB")


def _gaussian_kernel(sigma: float) -> np.ndarray:
    r = int(np.ceil(3.5 * sigma))
    x = np.arange(-r, r + 1)
    g = np.exp(-0.5 * (x / sigma) ** 2)
    k = np.outer(g, g)
    return (k / k.sum()).astype(np.float32)


def test_library_path(benchmark, record, stages):
    """The obvious library path against diascan's template warp + detection (same run)."""
    import sep
    from reproject import reproject_interp
    from reproject.mosaicking import reproject_and_coadd

    from diascan.pipeline import detect, make_template

    ld = stages["loaded"]
    sci, diff, patches = ld.science, ld.difference, ld.templates
    sigma = float(stages["detections"].meta["psf_sigma"])

    def library():
        t0 = time.perf_counter()
        template, footprint = reproject_and_coadd(
            [(p.image, p.wcs) for p in patches], sci.wcs, shape_out=sci.shape,
            reproject_function=reproject_interp,
        )  # fmt: skip
        t_warp = time.perf_counter() - t0
        t0 = time.perf_counter()
        bad = (diff.mask & diff.bits("BAD", "NO_DATA", "EDGE")) != 0
        data = np.where(bad, 0, diff.image).astype(np.float32)
        err = np.sqrt(np.where(bad, 1, diff.variance)).astype(np.float32)
        sep.set_extract_pixstack(10_000_000)
        kernel = _gaussian_kernel(sigma)
        found = [
            sep.extract(sign * data, 5.0, err=err, mask=bad, filter_kernel=kernel,
                        filter_type="matched")  # fmt: skip
            for sign in (1, -1)
        ]
        return t_warp, time.perf_counter() - t0, sum(len(f) for f in found), template

    def ours():
        t0 = time.perf_counter()
        template = make_template(sci, patches)
        t_warp = time.perf_counter() - t0
        t0 = time.perf_counter()
        det = detect(diff, sci)
        return t_warp, time.perf_counter() - t0, len(det), template

    box: dict = {}

    def run():
        box["ours"] = [ours()]
        box["library"] = library()  # once: ~15-20 s on an idle machine
        box["ours"].append(ours())

    benchmark.pedantic(run, rounds=1, iterations=1)
    lw, ld_, ln, ltmpl = box["library"]
    ow, od, on, _ = min(box["ours"], key=lambda r: r[0] + r[1])
    lib_t, our_t = lw + ld_, ow + od
    nbytes = image_bytes(sci, diff, *patches)
    record("library path: reproject_interp + sep.extract (PSF filter)", lib_t, nbytes,
           note=f"reproject_and_coadd of {len(patches)} patches (image plane only) {lw:.2f} s, "
                f"sep.extract +/- with a matched Gaussian (sigma {sigma:.2f} px) {ld_:.2f} s, "
                f"{ln} objects; {lib_t / our_t:.1f} x diascan's time in this run")
    record("diascan template warp + detection (same run as the library path)", our_t, nbytes,
           note=f"warp {ow:.2f} s (image, variance, mask) + detection {od:.2f} s, {on} sources; "
                f"best of 2, before and after the library path")
    record("library path / diascan, same run", lib_t / our_t, 8, unit="x",
           note="time ratio (higher: diascan faster)")
