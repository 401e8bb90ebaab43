"""``diascan view``: the interactive viewer. Qt is imported only inside :func:`run`."""

from __future__ import annotations

import argparse

from diascan.cli.models import add_model_options
from diascan.cli.options import add_data_options


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "view",
        help="open the viewer on the demo data or your files",
        description="Open the viewer: science, warped template and difference frames, the "
        "re-detected sources and their recomputed scores.",
    )
    src = add_data_options(p, "data (default: --demo)")
    src.add_argument(
        "--visits",
        metavar="LIST_OR_FOLDER",
        help="many visits in one session: a folder whose sub-folders each hold a visit's "
        "science/difference/template*/catalog files, or a text file listing such folders",
    )
    add_model_options(p)
    p.add_argument(
        "--session",
        metavar="FILE",
        help="open an inspection session (labels, view, visits) or create it if the file does "
        "not exist; labels are saved to it on every change",
    )
    p.add_argument(
        "--screenshot",
        metavar="PNG",
        help="save the window as PNG once loading and scoring finished, then quit",
    )
    return p


def run(args: argparse.Namespace) -> int:
    from diascan.qt.app import run_viewer

    return run_viewer(args)
