"""``diascan export SESSION --out FILE [--labels real,unsure] [--visit N] [--overwrite]``."""

from __future__ import annotations

import argparse
import sys

from diascan.cli.options import number
from diascan.errors import InputError


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "export",
        help="export labelled sources of a session (CSV, ECSV, FITS, Parquet, DS9 .reg)",
        description="Export the labelled sources of a session file. The format follows the "
        "extension of --out: .csv, .ecsv, .fits, .parquet, or .reg (DS9 regions in sky "
        "coordinates, colour by label).",
    )
    p.add_argument("session", help="session file (.json)")
    p.add_argument("--out", "-o", required=True, help="output file")
    p.add_argument(
        "--labels",
        default=None,
        help="comma-separated labels to export: real,bogus,unsure,none (default: all labelled)",
    )
    p.add_argument("--visit", type=number(int, 1, 2**31), action="append", default=None,
                   metavar="N",
                   help="export only visit N (1-based, repeatable; default: all visits)")
    p.add_argument("--frame", choices=("icrs", "fk5"), default="icrs",
                   help="sky frame of region files (default icrs)")
    p.add_argument("--palette", choices=("classic", "okabe-ito"), default="classic",
                   help="label colours of region files: classic, or okabe-ito "
                        "(colour-blind-safe; labels differ by shape and text as well)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    return p


def run(args: argparse.Namespace) -> int:
    from diascan.session.export import export_sources, parse_label_filter
    from diascan.session.store import load_session

    try:
        labels = parse_label_filter(args.labels)
    except ValueError as exc:
        raise InputError(None, f"--labels: {exc}") from None
    session = load_session(args.session)
    visits = None
    if args.visit:
        for v in args.visit:
            if not 1 <= v <= len(session.visits):
                raise InputError(
                    args.session, f"--visit {v}: session has {len(session.visits)} visit(s)"
                )
        visits = [v - 1 for v in args.visit]
    n = export_sources(
        session, args.out, labels=labels, visits=visits, overwrite=args.overwrite,
        frame=args.frame, palette=args.palette, session_path=args.session,
    )
    print(f"wrote {n} source(s) to {args.out}", file=sys.stderr)
    return 0
