"""``diascan score --visits MANIFEST --out-dir DIR``: many visits as tasks on Dask.

The options are added to ``diascan score`` by :func:`add_batch_options`; :func:`run_visits`
reads the manifest, starts (or connects to) the cluster, shows the live progress on stderr and
prints the failures. Exit code 0 when every visit is done or skipped, 1 when some failed (the
summary says why), 2 for bad input (the manifest, the options), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import sys
import time

from diascan.cli.options import number
from diascan.errors import InputError

#: Most worker processes of a local cluster (each one is a Python process with torch).
MAX_WORKERS = 1024

#: ``diascan score`` options that describe one visit; with --visits the manifest gives them.
_ONE_VISIT_OPTIONS = (
    "demo", "small_demo", "science", "difference", "template", "template_patches", "catalog",
    "target", "visit", "detector", "out", "cache",
)  # fmt: skip


def add_batch_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--visits``, ``--out-dir``, ``--workers``/``--scheduler``, ``--memory-limit`` and
    ``--dashboard`` to ``diascan score``."""
    g = parser.add_argument_group(
        "many visits (on Dask)",
        "score every visit of a manifest into --out-dir, resumably: a visit already scored "
        "from the same files, model and settings is skipped",
    )
    g.add_argument(
        "--visits", metavar="MANIFEST",
        help="CSV/Parquet table with one row per visit (science, difference, template or "
        "template_patches, catalog; optional target, visit, detector), or a folder of visit "
        "folders / a text file listing them (as diascan view --visits)",
    )  # fmt: skip
    g.add_argument("--out-dir", metavar="DIR", help="output folder (with --visits)")
    where = g.add_mutually_exclusive_group()
    where.add_argument(
        "--workers", type=number(int, 1, MAX_WORKERS), metavar="N",
        help="worker processes of the local Dask cluster, one thread each "
        f"(1 to {MAX_WORKERS}; default: one per CPU core)",
    )  # fmt: skip
    where.add_argument(
        "--scheduler", metavar="ADDRESS",
        help="run on an existing Dask cluster (e.g. tcp://host:8786); its workers must see the "
        "input files and --out-dir at the same paths",
    )  # fmt: skip
    g.add_argument(
        "--memory-limit", default="auto", metavar="SIZE",
        help="memory limit per local worker, e.g. 4GB (default: auto = the machine's memory "
        "shared between the workers); a worker above it is restarted and its visit retried",
    )  # fmt: skip
    g.add_argument("--dashboard", action="store_true", help="print the Dask dashboard address")


def check_one_visit_args(args: argparse.Namespace) -> None:
    """Without --visits: refuse the options that only make sense with it."""
    for name in ("out_dir", "workers", "scheduler"):
        if getattr(args, name, None) is not None:
            raise InputError(None, f"--{name.replace('_', '-')} needs --visits MANIFEST")
    if getattr(args, "dashboard", False):
        raise InputError(None, "--dashboard needs --visits MANIFEST")


def run_visits(args: argparse.Namespace) -> int:
    """``diascan score --visits``: score the manifest's visits; see the module docstring."""
    from diascan.batch import (
        BatchSettings,
        check_out_dir,
        dashboard_link,
        dask_client,
        read_manifest,
        run_batch,
    )

    for name in _ONE_VISIT_OPTIONS:
        value = getattr(args, name, None)
        if value not in (None, False, []):
            flag = "--" + name.replace("_", "-")
            raise InputError(None, f"{flag} is for one visit; with --visits the manifest gives "
                                   "each visit's files (and --out-dir the output)")
    if not args.out_dir:
        raise InputError(None, "--visits needs --out-dir DIR")
    jobs = read_manifest(args.visits)
    settings = BatchSettings(
        model=args.model, trust_model_code=args.trust_model_code, score=not args.no_score,
        threshold=args.threshold, match_radius_arcsec=args.radius,
        with_missing=args.with_missing, rescore=args.overwrite,
    ).resolved()  # fmt: skip
    check_out_dir(args.out_dir, jobs, settings, manifest=args.visits)  # before the cluster starts
    progress = None if args.quiet else BatchProgressLine()
    with dask_client(args.workers, args.scheduler, args.memory_limit, args.dashboard) as client:
        if args.dashboard:
            link = dashboard_link(client, local=args.scheduler is None)
            print(f"Dask dashboard: {link}" if link else
                  "Dask dashboard: not served (it needs bokeh: pip install 'bokeh>=3.1')",
                  file=sys.stderr, flush=True)
        try:
            rows = run_batch(jobs, args.out_dir, settings, client, progress=progress)
        finally:
            if progress is not None:
                progress.close()
    failed = [r for r in rows if r["status"] == "failed"]
    if not args.quiet:
        n = {s: sum(r["status"] == s for r in rows) for s in ("done", "skipped", "failed")}
        print(f"{len(rows)} visits -> {args.out_dir}: {n['done']} scored, {n['skipped']} already "
              f"done, {n['failed']} failed (summary.parquet)", file=sys.stderr)
    for r in failed[:20]:
        print(f"diascan score: {_label(r)} failed: {r['error']}", file=sys.stderr)
    if len(failed) > 20:
        print(f"diascan score: ... and {len(failed) - 20} more (see summary.parquet)",
              file=sys.stderr)
    return 1 if failed else 0


class BatchProgressLine:
    """The live progress on stderr: one self-overwriting line on a terminal
    (``[#####.....] 12/40  done 10  failed 1  running 2  skipped 0  14.2 visits/min``), else
    one line per finished visit (logs)."""

    def __init__(self, stream=None, width: int = 24) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self.last = 0.0
        self.drawn = False

    def __call__(self, p) -> None:
        now = time.monotonic()
        if self.tty:
            if p.last is None and now - self.last < 0.25:
                return
            self.last = now
            self.stream.write("\r" + self.line(p)[:119].ljust(119))
            self.drawn = True
        elif p.last is not None:
            r = p.last
            what = r["status"] if r["status"] != "failed" else f"failed: {r['error']}"
            self.stream.write(f"{self.line(p)}  | {_label(r)} {what}\n")
        self.stream.flush()

    def line(self, p) -> str:
        frac = p.finished / p.total if p.total else 1.0
        n = int(round(frac * self.width))
        eta = ""
        left = p.total - p.finished
        if p.rate > 0 and left:
            eta = f"  ETA {_duration(60.0 * left / p.rate)}"
        return (f"[{'#' * n}{'.' * (self.width - n)}] {p.finished}/{p.total}  done {p.done}  "
                f"failed {p.failed}  running {p.running}  skipped {p.skipped}  "
                f"{p.rate:.1f} visits/min{eta}")

    def close(self) -> None:
        if self.tty and self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def _label(row: dict) -> str:
    """``visit 2024120700123 detector 4`` of a summary row (``row 3`` without a visit number)."""
    if row.get("visit") is None:
        return f"row {row['row']}"
    det = f" detector {row['detector']}" if row.get("detector") is not None else ""
    return f"visit {row['visit']}{det}"


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"
