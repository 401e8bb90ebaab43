"""``diascan score``: load -> template -> detect -> score -> match for one visit/detector, or for
every visit of a manifest with --visits (on Dask).

Writes one table (Parquet, ECSV, FITS or CSV by the extension of ``--out``) with the detection
columns plus ``score``, ``original_reliability``, ``status`` and the model name/version; catalog
rows no detection matched are appended with ``status = 'missing'`` only when ``--with-missing``.
Progress goes to stderr unless ``--quiet``. Bad input: one line on stderr and exit code 2.
``--visits`` hands over to :mod:`diascan.cli.batch`.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

from diascan.cli.batch import add_batch_options, check_one_visit_args, run_visits
from diascan.cli.models import add_model_options
from diascan.cli.options import INT64_MAX, add_data_options, number
from diascan.errors import InputError, ModelPackageError, OutputError
from diascan.inputs import parse_target
from diascan.pipeline import STAGES, PipelineInputs, read_target, start_pipeline
from diascan.preload import preload
from diascan.safety import check_output_path

#: Upper bounds of the numeric options (beyond them the result means nothing).
MAX_THRESHOLD = 1e6
MAX_RADIUS_ARCSEC = 3600.0


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "score",
        help="detect, score and match the sources of one visit/detector, or of many on Dask "
        "(--visits) (headless)",
        description=__doc__.split("\n\n")[0],
    )
    src = add_data_options(p, "data")
    ident = number(int, 0, INT64_MAX)
    src.add_argument("--visit", type=ident, help="catalog visit (default: science header)")
    src.add_argument("--detector", type=ident, help="catalog detector (default: science header)")
    add_model_options(p)
    p.add_argument("--no-score", action="store_true", help="skip scoring (detect and match only)")
    p.add_argument("--threshold", type=number(float, 0, MAX_THRESHOLD, low_open=True),
                   default=5.0, help="detection threshold (sigma, > 0)")
    p.add_argument("--radius", type=number(float, 0, MAX_RADIUS_ARCSEC, low_open=True),
                   default=1.0, help="match radius in arcsec (> 0, at most 1 degree)")
    p.add_argument("--out", metavar="FILE", help=".parquet, .ecsv, .fits or .csv")
    p.add_argument(
        "--overwrite", action="store_true",
        help="replace an existing --out file (with --visits: score every visit again)",
    )  # fmt: skip
    p.add_argument(
        "--with-missing",
        action="store_true",
        help="append unmatched catalog rows (status 'missing') to the table",
    )
    p.add_argument(
        "--cache",
        action="store_true",
        help="reuse (and store) the warped template and detections in the results cache",
    )
    p.add_argument("--quiet", action="store_true", help="no progress output")
    add_batch_options(p)
    return p


def inputs_from_args(args: argparse.Namespace) -> PipelineInputs:
    """Build :class:`PipelineInputs` from the command line (shared with ``diascan view``)."""
    target = parse_target(getattr(args, "target", None))
    if getattr(args, "demo", False) or getattr(args, "small_demo", False):
        from diascan.demo import cached_demo

        folder = Path(cached_demo(small=bool(args.small_demo)))
        return PipelineInputs(
            science=folder / "science.fits",
            difference=folder / "difference.fits",
            template_patches=sorted(folder.glob("template_coadd_*.fits")),
            catalog=folder / "dia_source.parquet",
            model=args.model,
            trust_model_code=args.trust_model_code,
            target=target if target is not None else read_target(folder / "target.json"),
            threshold=args.threshold,
            match_radius_arcsec=args.radius,
            use_cache=bool(getattr(args, "cache", False)),
        )
    missing = [f"--{n}" for n in ("science", "difference") if not getattr(args, n)]
    if missing:
        raise InputError(None, f"{' and '.join(missing)} required (or --demo / --small-demo)")
    if not args.template and not args.template_patches:
        raise InputError(None, "a template is required: --template T or --template-patches P ...")
    return PipelineInputs(
        science=Path(args.science),
        difference=Path(args.difference),
        template=Path(args.template) if args.template else None,
        template_patches=[Path(p) for p in args.template_patches],
        catalog=Path(args.catalog) if args.catalog else None,
        model=args.model,
        trust_model_code=args.trust_model_code,
        target=target,
        visit=args.visit,
        detector=args.detector,
        threshold=args.threshold,
        match_radius_arcsec=args.radius,
        use_cache=bool(getattr(args, "cache", False)),
    )


def protected_inputs(inputs: PipelineInputs) -> list[tuple[str, Path | None]]:
    """Every file a run reads, by role: what ``--out`` must never be (see :mod:`diascan.safety`).

    That includes each file of the model package (its checkpoint, meta.yaml, arch.py).
    """
    pairs: list[tuple[str, Path | None]] = [
        ("science image", inputs.science), ("difference image", inputs.difference),
        ("template image", inputs.template), ("catalog", inputs.catalog),
    ]  # fmt: skip
    pairs += [("template patch", Path(p)) for p in inputs.template_patches]
    from diascan.models.locate import package_files, resolve_package_path

    try:
        package = resolve_package_path(inputs.model)
    except ModelPackageError:
        package = None  # reported when the model is loaded
    if package is not None:
        pairs += [("model package file", f) for f in package_files(package)]
    return pairs


class _TerminalProgress:
    """Progress on stderr, from any thread, for stages that may run at the same time.

    On a terminal one self-overwriting line shows every running stage
    (``[2/5] template ####.... 40%  |  [3/5] detect ##...... 20%  message``); otherwise one
    line when a stage starts and one when it ends.
    """

    def __init__(self, stream=None, width: int = 16, stages: tuple[str, ...] = STAGES) -> None:
        # sys.stderr looked up now, not at import: it may have been replaced since (pytest's capsys)
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.stages = tuple(stages)
        self.running: dict[str, tuple[float, str]] = {}  # stage -> (fraction, message)
        self.ended: set[str] = set()
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self.last = 0.0
        self.lock = threading.Lock()

    def _label(self, stage: str, fraction: float) -> str:
        k = self.stages.index(stage) + 1 if stage in self.stages else 0
        n = int(round(max(0.0, min(1.0, fraction)) * self.width))
        bar = "#" * n + "." * (self.width - n)
        return f"[{k}/{len(self.stages)}] {stage:<8} {bar} {fraction:4.0%}"

    def __call__(self, stage: str, fraction: float, message: str) -> None:
        with self.lock:
            now = time.monotonic()
            new = stage not in self.running and stage not in self.ended
            end = fraction >= 1.0
            self.running[stage] = (fraction, message)
            self.ended.discard(stage)
            if self.tty:
                if not (new or end) and now - self.last < 0.1:
                    return  # rate-limit redraws
                self.last = now
                line = "  |  ".join(self._label(s, f) for s, (f, _) in self.running.items())
                self.stream.write("\r" + f"{line}  {message}"[:150].ljust(150))
                if end:  # a finished stage keeps its own line
                    self.stream.write("\r" + f"{self._label(stage, 1.0)}  {message}"[:150].ljust(150))
                    self.stream.write("\n")
            elif new or end:
                self.stream.write(f"{self._label(stage, fraction)}  {message}\n")
            if end:
                del self.running[stage]
                self.ended.add(stage)
            self.stream.flush()

    def close(self) -> None:
        with self.lock:
            if self.tty and self.running:
                self.stream.write("\n")
                self.stream.flush()


def run(args: argparse.Namespace) -> int:
    from diascan.io.table_formats import table_format

    if args.visits is not None:
        return run_visits(args)
    check_one_visit_args(args)
    if not args.out:
        raise InputError(None, "--out FILE is required (or --visits MANIFEST --out-dir DIR)")
    out = Path(args.out)
    if table_format(out) not in ("parquet", "ecsv", "fits", "csv"):
        raise OutputError(out, "unknown table format: use .parquet, .ecsv, .fits or .csv")
    if out.is_dir():
        raise OutputError(out, "is a folder; --out needs a file name")
    inputs = inputs_from_args(args)
    check_output_path(out, protected_inputs(inputs), "--out")  # with or without --overwrite
    if out.exists() and not args.overwrite:
        raise OutputError(out, "exists; refusing to overwrite it (use --overwrite)")
    progress = None if args.quiet else _TerminalProgress()
    started_at = time.time()  # in the table's meta: how long the start-up took (benchmarks)
    run = start_pipeline(inputs, score=not args.no_score, progress=progress)
    # The table writer (pyarrow, astropy.table) is imported in the background too, after
    # what the stages need (diascan.preload).
    preload("diascan.io.tables")
    try:
        result = run.result()
    except BaseException:
        run.cancel()
        raise
    finally:
        if progress is not None:
            progress.close()
    from astropy.table import vstack

    from diascan.io.tables import write_table
    table = result.detections
    if args.with_missing and len(result.missing):
        table = vstack([table, result.missing], join_type="outer", metadata_conflicts="silent")
    table.meta["timings"] = {k: round(v, 4) for k, v in result.timings.items()}
    table.meta["stage_times"] = {
        k: [round(a, 4), round(b, 4)] for k, (a, b) in result.stage_times.items()
    }
    table.meta["started_at"] = started_at
    table.meta["notes"] = list(result.notes)
    table.meta["warnings"] = list(result.warnings)
    write_table(table, out, overwrite=args.overwrite)
    for warning in result.warnings:  # shown with --quiet too: they say the result may be empty
        print(f"diascan score: warning: {warning}", file=sys.stderr)
    if not args.quiet:
        m = result.match
        assert m is not None  # run_pipeline always matches (to no catalog: nothing matched)
        print(
            f"{len(result.detections)} sources -> {out}; matched {m.n_matched}, "
            f"unmatched {m.n_unmatched}, missing {m.n_missing}"
            + (f"; model {result.model_name} {result.model_version}" if result.model_name else ""),
            file=sys.stderr,
        )
    return 0
