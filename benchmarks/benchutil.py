"""Helpers shared by the benchmarks: memory-copy floor, timing, demo inputs, machine info."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).parent
#: ``DIASCAN_BENCH_SMALL=1``: the small 1024 x 1024 demo (smoke runs) instead of the full one.
SMALL = os.environ.get("DIASCAN_BENCH_SMALL", "") not in ("", "0")
#: Copies larger than this are timed on this many bytes and scaled linearly (keeps the floor
#: from allocating gigabytes; above a few MB a copy is bandwidth-bound, so scaling is exact).
FLOOR_CHUNK = 128 * 2**20
#: One full detector frame (4072 x 4000 float32), the README's reference copy.
FRAME_BYTES = 4072 * 4000 * 4


def copy_floor(nbytes: int, repeats: int = 7) -> float:
    """Best-of time (s) to copy ``nbytes`` bytes from one numpy buffer to another."""
    nbytes = max(int(nbytes), 8)
    chunk = min(nbytes, FLOOR_CHUNK)
    src = np.ones(chunk // 8, dtype=np.float64)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t0)
    return best * (nbytes / chunk)


def best_of(fn: Callable[[], Any], repeats: int = 3) -> float:
    """Best wall time of ``repeats`` calls of ``fn()``."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench(benchmark, fn: Callable[[], Any], rounds: int = 3) -> tuple[float, Any]:
    """Run ``fn`` ``rounds`` times under pytest-benchmark; return (best seconds, last result).

    Works with ``--benchmark-disable`` too (then timed here, one round).
    """
    box: dict[str, Any] = {}

    def call():
        t0 = time.perf_counter()
        box["result"] = fn()
        box.setdefault("times", []).append(time.perf_counter() - t0)

    benchmark.pedantic(call, rounds=rounds, iterations=1)
    return min(box["times"]), box.get("result")


def image_bytes(*images) -> int:
    """Bytes of the image, mask and variance planes of ``images`` (the data a stage touches)."""
    return int(sum(a.nbytes for im in images for a in (im.image, im.mask, im.variance)))


def status_kib(key: str) -> int:
    """``VmRSS`` / ``VmHWM`` of this process from /proc/self/status, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise KeyError(key)


def demo_inputs(folder: Path):
    """``PipelineInputs`` for a demo folder (science, difference, template patches, catalog)."""
    from diascan.pipeline import PipelineInputs, read_target

    return PipelineInputs(
        science=folder / "science.fits",
        difference=folder / "difference.fits",
        template_patches=sorted(folder.glob("template_coadd_*.fits")),
        catalog=folder / "dia_source.parquet",
        target=read_target(folder / "target.json"),
    )


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mem_total() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return "n/a"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "n/a"


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, text=True,
                             capture_output=True, timeout=10)
        return out.stdout.strip() or "n/a"
    except (OSError, subprocess.SubprocessError):
        return "n/a"


def machine_info() -> dict:
    """CPU, cores, memory, load and library versions of this run."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    info = {
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cores_available": cores,
        "memory": _mem_total(),
        "python": platform.python_version(),
    }
    for dist in ("numpy", "scipy", "astropy", "reproject", "torch", "PyQt6", "pyqtgraph",
                 "pytest-benchmark", "diascan"):
        info[dist] = _version(dist)
    info["git_commit"] = _git_commit()
    return info


#: The revision before issue 15 (stages one after the other, eager imports, the unsplit
#: detection): the same-run "before" of the stage benchmarks, read from git history.
BASELINE_REV = "d6dd046"
_baseline: dict[str, Path | None] = {}


def baseline_tree(rev: str = BASELINE_REV) -> Path | None:
    """``src/`` and ``models/`` of ``rev`` in a temporary folder (made once), or None when this
    is not a git clone holding ``rev``: the benchmarks comparing with it are skipped then."""
    if rev in _baseline:
        return _baseline[rev]
    import io
    import tarfile
    import tempfile

    out: Path | None = None
    try:
        tar = subprocess.run(["git", "archive", rev, "src", "models"], cwd=HERE.parent,
                             capture_output=True, timeout=120, check=True).stdout
        folder = Path(tempfile.mkdtemp(prefix=f"diascan-{rev}-"))
        with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
            tf.extractall(folder, filter="data")
        out = folder
    except (OSError, subprocess.SubprocessError, tarfile.TarError):
        out = None
    _baseline[rev] = out
    return out


def baseline_env(rev: str = BASELINE_REV) -> dict[str, str] | None:
    """Environment that runs ``diascan`` (console script or ``python -c``) from ``rev``."""
    tree = baseline_tree(rev)
    if tree is None:
        return None
    return dict(os.environ, PYTHONPATH=str(tree / "src"), DIASCAN_MODELS_DIR=str(tree / "models"))


def module_from_file(path: Path, name: str):
    """Import the file ``path`` as a module called ``name`` (its own imports resolve as usual)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
