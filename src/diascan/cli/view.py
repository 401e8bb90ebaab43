"""``diascan view``: the interactive viewer. Qt is imported only inside :func:`run`, after the
arguments were checked (bad input: exit 2 before any window opens)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

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
    src.add_argument(
        "--alerts",
        metavar="PATH",
        nargs="+",
        help="Rubin or ZTF alerts in the gallery: Avro alert files, folders of them, broker "
        "Parquet tables (with the cutouts); their own scores and fields in the table",
    )
    add_model_options(p)
    p.add_argument(
        "--session",
        metavar="FILE",
        help="open an inspection session (labels, view, visits) or create it if the file does "
        "not exist; labels are saved to it on every change",
    )
    p.add_argument(
        "--gallery",
        action="store_true",
        help="open on the gallery of triplets (science, template, difference stamps of every "
        "source) instead of the frames; G switches between them",
    )
    p.add_argument(
        "--palette",
        choices=("classic", "okabe-ito"),
        default="classic",
        help="colours of statuses and labels: classic, or okabe-ito (colour-blind-safe)",
    )
    p.add_argument(
        "--screenshot",
        metavar="PNG",
        help="save the window as PNG once loading and scoring finished, then quit",
    )
    return p


def have_display() -> bool:
    """True when Qt can open a window: a platform plugin was chosen or a display exists."""
    if os.environ.get("QT_QPA_PLATFORM"):
        return True
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def session_args(args: argparse.Namespace, files: Any) -> tuple[Any, Path | None, list | None]:
    """(saved session or None, session file or None, ``--visits`` file dicts or None).

    ``--session FILE`` that exists is loaded (a broken one is an InputError: exit 2); one that
    does not exist is where the new session is saved.
    """
    from diascan.errors import InputError
    from diascan.inputs import visits_from_arg
    from diascan.session.store import load_session

    path = Path(args.session).expanduser() if getattr(args, "session", None) else None
    visits = visits_from_arg(args.visits) if getattr(args, "visits", None) else None
    session = load_session(path) if path is not None and path.exists() else None
    if session is not None and (visits is not None or files is not None
                                or getattr(args, "alerts", None)):
        raise InputError(path, "session exists: open it without --visits, --alerts or image "
                         "files")
    return session, path, visits


def alert_args(args: argparse.Namespace, files: Any) -> list[Path] | None:
    """``--alerts`` paths (None without), each checked to exist (InputError: exit 2)."""
    from diascan.errors import InputError

    paths = getattr(args, "alerts", None)
    if not paths:
        return None
    if files is not None or getattr(args, "visits", None):
        raise InputError(None, "--alerts opens alerts alone: drop --science/--visits")
    out = [Path(p).expanduser() for p in paths]
    for p in out:
        if not p.exists():
            raise InputError(p, "no such file or folder")
    return out


def run(args: argparse.Namespace) -> int:
    if not have_display():
        print(
            "diascan view: error: no display available; run under `xvfb-run diascan view ...` "
            "or set QT_QPA_PLATFORM=offscreen (with --screenshot)",
            file=sys.stderr,
        )
        return 2
    from diascan.inputs import files_from_args

    files = files_from_args(args)  # InputError -> exit 2 before any window opens
    alerts = alert_args(args, files)
    session, session_file, visits = session_args(args, files)
    from diascan.qt.app import ViewRequest, run_viewer

    return run_viewer(ViewRequest(
        files=files, session=session, session_file=session_file, visits=visits,
        alerts=alerts,
        small_demo=bool(getattr(args, "small_demo", False)), model=getattr(args, "model", None),
        trust_model_code=bool(getattr(args, "trust_model_code", False)),
        screenshot=getattr(args, "screenshot", None),
        gallery=bool(getattr(args, "gallery", False)),
        palette=getattr(args, "palette", "classic"),
    ))  # fmt: skip
