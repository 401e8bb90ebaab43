"""``diascan info FILE... [--json]``: what diascan reads from image files, one block per file."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from diascan.errors import InputError


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "info",
        help="describe image files as diascan reads them (layout, HDUs, mask planes, WCS, ...)",
        description="For each image file: the layout found (afw Exposure of any generation, DP2 "
        "lsst.images, plain FITS), the HDUs used, shape, pixel origin, units, mask planes (bit, "
        "name, description, pixels set), WCS type and centre, metadata and notes.",
    )
    p.add_argument("files", nargs="+", type=Path, metavar="FILE", help="FITS image files")
    p.add_argument("--json", action="store_true", help="machine-readable output (a JSON list)")
    return p


def run(args: argparse.Namespace) -> int:
    from diascan.io.info import describe

    infos, failed = [], 0
    for path in args.files:
        try:
            infos.append(describe(path))
        except InputError as exc:  # one line per unreadable file; the others are still shown
            print(f"diascan info: error: {exc}", file=sys.stderr)
            failed += 1
    if args.json:
        print(json.dumps([i.to_dict() for i in infos], indent=2))
    else:
        print("\n\n".join(i.text() for i in infos))
    return 2 if failed else 0
