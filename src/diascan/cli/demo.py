"""``diascan demo --out DIR [--small] [--seed N] [--layout L] [--overwrite]``: write the demo."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from diascan.cli.options import INT64_MAX, number
from diascan.errors import OutputError, describe_os_error


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "demo",
        help="write a simulated LSSTComCam visit (science, templates, difference, catalogs)",
        description="Write a deterministic simulated demo data set into DIR.",
    )
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    p.add_argument("--small", action="store_true", help="1024 x 1024 detector (fast, for tests)")
    p.add_argument("--seed", type=number(int, 0, INT64_MAX), default=1,
                   help="random seed (default 1)")
    p.add_argument(
        "--layout",
        choices=("afw", "dp2", "afw-exttype"),
        default="afw",
        help="file layout: afw (DP1 Exposure, default), dp2 (lsst.images: MSKN mask cards, JSON "
        "metadata, tile-compressed) or afw-exttype (afw before 2021, no EXTNAME; for tests)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="write into a non-empty DIR, replacing the demo files there",
    )
    return p


class _Line:
    """A one-line terminal progress display (rewritten in place on a TTY)."""

    def __init__(self, stream=None) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.tty = self.stream.isatty()
        self.t0 = time.perf_counter()

    def __call__(self, stage: str, fraction: float, message: str) -> None:
        text = (
            f"{stage}: {fraction * 100:5.1f}%  {message}  ({time.perf_counter() - self.t0:.1f} s)"
        )
        if self.tty:
            self.stream.write("\r\x1b[K" + text)
            if fraction >= 1.0:
                self.stream.write("\n")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def run(args: argparse.Namespace) -> int:
    from diascan.demo import DEMO_FILES, generate_demo

    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise OutputError(out, "exists and is not a folder")
    # With --overwrite only the demo's own files are replaced; nothing else in DIR is deleted.
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        raise OutputError(out, "folder is not empty; use --overwrite to replace its contents")
    try:
        out.mkdir(parents=True, exist_ok=True)
        # Written into a fresh folder beside DIR and moved in file by file (os.replace): a demo
        # file name in DIR that is a symbolic or hard link to another file is replaced itself,
        # and the file it points to (perhaps the user's real data) is never written through.
        with tempfile.TemporaryDirectory(prefix=".diascan-demo-", dir=out) as tmp:
            generate_demo(Path(tmp), small=args.small, seed=args.seed, layout=args.layout,
                          progress=_Line())
            for name in DEMO_FILES:
                os.replace(Path(tmp) / name, out / name)
    except OSError as exc:
        raise OutputError(out, f"cannot write the demo: {describe_os_error(exc)}") from None
    print(out)
    return 0
