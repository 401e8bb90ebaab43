"""Benchmark fixtures: the demo data, a memory-copy floor, timing helpers and a results recorder.

Run all benchmarks with ``make bench`` (``pytest benchmarks --benchmark-only``); they are not
part of ``make test`` (pytest's ``testpaths`` is ``tests``). ``DIASCAN_BENCH_SMALL=1`` switches
to the small 1024 x 1024 demo for a quick smoke run.

Every time is reported twice: in seconds, and as a ratio to the time numpy takes to copy the
same number of bytes in memory on this machine in the same run (the "floor"), so numbers compare
across machines. Memory figures are reported in bytes and as a ratio to the bytes of the data
they hold. Results go to ``benchmarks/results.json`` (``results-small.json`` for smoke runs);
``python benchmarks/report.py`` renders them into the table of ``benchmarks/README.md``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

# a 1920 x 1080 desktop, as the tests use (the window opens at 90 % of the screen)
_SCREEN = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "screens" / "1920x1080.json"
if os.environ.setdefault("QT_QPA_PLATFORM", "offscreen") == "offscreen":
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={_SCREEN}"

import pytest  # noqa: E402
from benchutil import (  # noqa: E402
    FRAME_BYTES,
    HERE,
    SMALL,
    copy_floor,
    demo_inputs,
    loadavg,
    machine_info,
)

RESULTS = HERE / ("results-small.json" if SMALL else "results.json")

_results: list[dict] = []
_load_start = ""


def pytest_collect_file(file_path: Path, parent):
    """Collect ``bench_*.py`` (the pyproject's ``python_files`` only names ``test_*.py``)."""
    if (file_path.suffix == ".py" and file_path.name.startswith("bench_")
            and not parent.session.isinitpath(file_path)):  # named on the command line: pytest
        return pytest.Module.from_parent(parent, path=file_path)
    return None


def pytest_sessionstart(session):
    global _load_start
    _load_start = loadavg()


@pytest.fixture(scope="session")
def full_demo() -> Path:
    """The cached demo folder: full size, or small with ``DIASCAN_BENCH_SMALL=1``."""
    from diascan.demo import cached_demo

    return Path(cached_demo(small=SMALL))


@pytest.fixture(scope="session")
def stages(full_demo):
    """Inputs, template and detections of the demo, computed once for the stage benchmarks."""
    from diascan.pipeline import detect, load_inputs, make_template

    inputs = demo_inputs(full_demo)
    loaded = load_inputs(inputs)
    template = make_template(loaded.science, loaded.templates)
    detections = detect(loaded.difference, loaded.science)
    return {"inputs": inputs, "loaded": loaded, "template": template, "detections": detections}


@pytest.fixture(scope="session")
def pipeline_result(full_demo):
    """A full, scored :class:`~diascan.pipeline.PipelineResult` of the demo (for the viewer)."""
    from diascan.pipeline import run_pipeline

    return run_pipeline(demo_inputs(full_demo), score=True)


@pytest.fixture(scope="session")
def record():
    """``record(name, value, nbytes, target=None, note='', unit='s')`` stores one figure.

    ``unit='s'``: ``value`` seconds, compared with the time to copy ``nbytes`` in memory.
    ``unit='B'``: ``value`` bytes (peak memory), compared with ``nbytes`` (the data it holds).
    """

    def _record(name: str, value: float, nbytes: int, target: float | None = None,
                note: str = "", unit: str = "s") -> dict:
        floor = copy_floor(nbytes) if unit == "s" else float(nbytes)
        row = {
            "name": name,
            "unit": unit,
            "value": float(value),
            "bytes": int(nbytes),
            "floor": floor,
            "ratio_to_floor": value / floor if floor > 0 else None,
            "target": target,
            "meets_target": None if target is None else bool(value <= target),
            "note": note,
            "demo": "small" if SMALL else "full",
        }
        _results.append(row)
        if unit == "s":
            msg = f"{value * 1e3:.1f} ms (floor {floor * 1e6:.1f} us, x{row['ratio_to_floor']:.0f})"
            msg += f", target {target * 1e3:.0f} ms" if target else ""
        else:
            msg = f"{value / 1e6:.0f} MB (x{row['ratio_to_floor']:.1f} of the data)"
            msg += f", target {target / 1e6:.0f} MB" if target else ""
        print(f"\n[bench] {name}: {msg}")
        return row

    return _record


def pytest_sessionfinish(session, exitstatus):
    if not _results:
        return
    payload = {
        "machine": machine_info(),
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "load_average_start": _load_start,
        "load_average_end": loadavg(),
        "frame_copy_floor_s": copy_floor(FRAME_BYTES),
        "demo": "small" if SMALL else "full",
        "argv": sys.argv[1:],
        "results": _results,
    }
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\n[bench] wrote {RESULTS.name}; render it with `python benchmarks/report.py`")
