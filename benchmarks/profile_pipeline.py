"""Profile one full-demo pipeline run in this fresh process (the "Where the time goes" figures).

Usage: ``python benchmarks/profile_pipeline.py [--workers N] [--small] [--html FILE]``.

``--workers 0`` (the default) runs the stages one after the other in the main thread, where
pyinstrument (in the ``test`` extras) sees all of them, imports included; the text tree goes to
stdout. With ``--workers 4`` (what ``diascan score`` does) the stages run in worker threads that
pyinstrument does not sample: the script then prints when each stage ran instead. Both print
the stage timeline and the run's CPU time.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--small", action="store_true", help="the small demo")
    ap.add_argument("--html", type=Path, help="also write pyinstrument's HTML report here")
    args = ap.parse_args(argv)

    # The demo folder from another process: diascan.demo imports what the run imports itself.
    code = f"from diascan.demo import cached_demo; print(cached_demo(small={args.small}))"
    folder = Path(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True).stdout.strip().splitlines()[-1])  # fmt: skip

    from pyinstrument import Profiler

    t0, c0 = time.perf_counter(), time.process_time()
    profiler = Profiler(interval=0.002)
    profiler.start()
    from diascan.io.tables import write_table
    from diascan.pipeline import PipelineInputs, read_target, run_pipeline

    inputs = PipelineInputs(
        science=folder / "science.fits",
        difference=folder / "difference.fits",
        template_patches=sorted(folder.glob("template_coadd_*.fits")),
        catalog=folder / "dia_source.parquet",
        target=read_target(folder / "target.json"),
    )
    t_run = time.perf_counter()
    result = run_pipeline(inputs, workers=args.workers)
    with tempfile.TemporaryDirectory() as tmp:  # the table is written, as diascan score does
        write_table(result.detections, Path(tmp) / "scores.parquet")
    profiler.stop()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if args.workers == 0:
        print(profiler.output_text(unicode=False, color=False))
    if args.html:
        args.html.write_text(profiler.output_html())
    print(f"imports before the run {t_run - t0:.2f} s; whole script {wall:.2f} s wall, "
          f"{cpu:.2f} s CPU (all threads); {len(result.detections)} sources")
    for name, (a, b) in sorted(result.stage_times.items(), key=lambda kv: kv[1][0]):
        print(f"  {name:<11} {a:6.2f} - {b:6.2f} s  ({b - a:.2f} s)")
    with contextlib.suppress(OSError):
        print(f"  load average: {Path('/proc/loadavg').read_text().split()[:3]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
