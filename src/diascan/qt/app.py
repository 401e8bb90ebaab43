"""QApplication creation, data loaders and ``run_viewer(args)`` for ``diascan view``."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from diascan.assets import resource_path
from diascan.errors import InputError

log = logging.getLogger(__name__)


def have_display() -> bool:
    """True when Qt can open a window: a platform plugin was chosen or a display exists."""
    if os.environ.get("QT_QPA_PLATFORM"):
        return True
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def get_app():
    """The QApplication (created once)."""
    from PyQt6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        _quiet_qt_messages()
        app = QApplication(sys.argv[:1])
        app.setApplicationName("diascan")
        app.setDesktopFileName("diascan")  # matches resources/diascan.desktop
        icon = resource_path("diascan.svg")
        if icon is not None:
            from PyQt6.QtGui import QIcon

            app.setWindowIcon(QIcon(str(icon)))
    return app


#: Qt messages that are noise, not errors (the offscreen plugin says this for every dock).
_QT_NOISE = ("propagateSizeHints",)


def _quiet_qt_messages() -> None:
    """Drop known-harmless Qt warnings so errors stay one line on stderr."""
    from PyQt6.QtCore import qInstallMessageHandler

    def handler(_mode, _context, message: str) -> None:
        if not any(n in message for n in _QT_NOISE):
            print(message, file=sys.stderr)

    qInstallMessageHandler(handler)


# ---------------------------------------------------------------------------------------------
# Loaders: callables run in a worker, returning a pipeline result.


def inputs_from_files(files: dict[str, Any]):
    """Build ``PipelineInputs`` from a dict of user file paths (results cache on)."""
    from diascan.pipeline import PipelineInputs

    kwargs: dict[str, Any] = {
        "science": Path(files["science"]),
        "difference": Path(files["difference"]),
        "catalog": Path(files["catalog"]) if files.get("catalog") else None,
    }
    if files.get("template"):
        kwargs["template"] = Path(files["template"])
    if files.get("template_patches"):
        kwargs["template_patches"] = [Path(p) for p in files["template_patches"]]
    if files.get("target") is not None:
        kwargs["target"] = files["target"]
    # The viewer reuses the cached warped template and detections (fast start on a re-open).
    return PipelineInputs(**kwargs, use_cache=True)


def files_loader(files: dict[str, Any]) -> Callable[..., Any]:
    """A loader running the pipeline (load, warp template, detect, match) on user files."""

    def load(progress=None, cancel=None, emit_batch=None):
        from diascan.pipeline import run_pipeline

        # Scoring is left to the viewer's rescoring worker (results stream into the table).
        # result.input_files is what a session records (and reloads) for this visit.
        return run_pipeline(inputs_from_files(files), score=False, progress=progress,
                            cancel=cancel)

    return load


def demo_files(small: bool = False, progress=None) -> dict[str, Any]:
    """The demo folder's files as a ``files`` dict (generated once, then cached)."""
    from diascan.demo import cached_demo
    from diascan.pipeline import read_target

    folder = Path(cached_demo(small=small, progress=progress))
    files = folder_files(folder)
    if (folder / "target.json").exists():
        files["target"] = read_target(folder / "target.json")
    return files


def demo_loader(small: bool = False) -> Callable[..., Any]:
    """A loader for the built-in demo data."""

    def load(progress=None, cancel=None, emit_batch=None):
        from diascan.pipeline import run_pipeline

        files = demo_files(small, progress)
        return run_pipeline(inputs_from_files(files), score=False, progress=progress,
                            cancel=cancel)

    return load


def folder_files(folder: Path) -> dict[str, Any]:
    """Guess the files of a data folder: science*, difference*, template*, *.parquet/csv/fits."""
    return guess_roles(sorted(Path(folder).iterdir())) or {}


def guess_roles(paths: list[Path]) -> dict[str, Any] | None:
    """Assign dropped/opened files to roles by name; None when science/difference are missing."""
    if len(paths) == 1 and paths[0].is_dir():
        paths = sorted(paths[0].iterdir())
    files: dict[str, Any] = {}
    patches: list[Path] = []
    cats = [p for p in paths if p.name.lower().endswith((".parquet", ".csv", ".ecsv"))
            or "source" in p.name.lower() or "catalog" in p.name.lower()]
    # Prefer a dia_source / catalog file over other tables (e.g. a demo's truth table).
    cats.sort(key=lambda p: ("source" not in p.name.lower() and "catalog" not in p.name.lower()))
    if cats:
        files["catalog"] = cats[0]
    for p in paths:
        n = p.name.lower()
        if p in cats or not n.endswith((".fits", ".fz", ".fits.gz", ".fit")):
            continue
        if "diff" in n:
            files.setdefault("difference", p)
        elif "coadd" in n or "patch" in n:
            patches.append(p)
        elif "template" in n:
            files.setdefault("template", p)
        elif "sci" in n or "calexp" in n or "visit" in n:
            files.setdefault("science", p)
    if patches and "template" not in files:
        files["template_patches"] = patches
    if "science" not in files or "difference" not in files:
        return None
    return files


def model_specs() -> tuple[dict[str, Any], str | None]:
    """Model packages ``diascan models`` finds: name -> path, and the default name.

    Only the folders are looked at (no torch import, no checkpoint read: this runs before the
    window shows); a package that turns out broken is reported when it is loaded for scoring,
    in the scoring worker, as an error dialog.
    """
    from diascan.models.locate import DEFAULT_MODEL_NAME, package_dirs

    specs: dict[str, Any] = {}
    for path, _source in package_dirs():
        specs.setdefault(path.name, path)
    default = DEFAULT_MODEL_NAME if DEFAULT_MODEL_NAME in specs else next(iter(specs), None)
    return specs, default


# ---------------------------------------------------------------------------------------------


def parse_target(text: str | None) -> tuple[float, float] | None:
    if not text:
        return None
    try:
        ra, dec = (float(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        raise InputError(None, f"--target must be RA,DEC in degrees, got {text!r}") from None
    return ra, dec


def args_files(args) -> dict[str, Any] | None:
    """User files from ``diascan view`` arguments (None when none were given)."""
    if not args.science and not args.difference:
        return None
    for flag in ("science", "difference"):
        if not getattr(args, flag):
            raise InputError(None, f"--{flag} is required with --science/--difference")
    if not args.template and not args.template_patches:
        raise InputError(None, "give --template or --template-patches")
    files: dict[str, Any] = {
        "science": args.science,
        "difference": args.difference,
        "template": args.template,
        "template_patches": args.template_patches,
        "catalog": args.catalog,
        "target": parse_target(args.target),
    }
    for key in ("science", "difference", "template", "catalog"):
        if files[key] and not Path(files[key]).exists():
            raise InputError(files[key], "no such file")
    for p in files["template_patches"] or []:
        if not Path(p).exists():
            raise InputError(p, "no such file")
    return files


def run_viewer(args) -> int:
    """Open the main window on the demo or the user's files; see ``diascan view --help``."""
    if not have_display():
        print(
            "diascan view: error: no display available; run under `xvfb-run diascan view ...` "
            "or set QT_QPA_PLATFORM=offscreen (with --screenshot)",
            file=sys.stderr,
        )
        return 2
    files = args_files(args)  # InputError -> exit 2 before any window opens
    session, session_file, visits = _session_args(args)
    screenshot = getattr(args, "screenshot", None)
    app = get_app()
    from diascan.qt.qt_main_window import QtMainWindow
    from diascan.qt.qt_session_link import QtSessionLink

    win = QtMainWindow()
    win.show_errors_as_dialogs = not screenshot
    win.trust_model_code = bool(getattr(args, "trust_model_code", False))
    specs, default = model_specs()
    if getattr(args, "model", None):
        p = Path(args.model)
        specs = {p.name if p.exists() else str(args.model): p if p.exists() else args.model,
                 **specs}
        default = next(iter(specs))
    win.set_models(specs, default)
    link = QtSessionLink(win, session_path=session_file, interactive=not screenshot)
    win.session_link = link
    status = {"rc": 0}

    if files is not None:
        loader = files_loader(files)
    else:
        loader = demo_loader(small=bool(getattr(args, "small_demo", False)))

    def after_load() -> None:
        # Rescore with the chosen model once the data are in (scores stream into the table),
        # unless a resumed session already gave every source a score from that model.
        if win.sources is not None and len(win.sources) and specs and not _scores_saved(link, win):
            if win.rescore_all() is None and screenshot:
                finish()
        elif screenshot:
            finish()

    def finish(_res=None) -> None:
        if screenshot:
            app.processEvents()
            pix = win.grab()
            if not pix.save(str(screenshot), "PNG"):
                print(f"diascan view: error: cannot write {screenshot}", file=sys.stderr)
                status["rc"] = 2
            win.close()
            app.quit()

    def failed(msg: str) -> None:
        if screenshot:
            print(f"diascan view: error: {msg}", file=sys.stderr)
            status["rc"] = 2
            win.close()
            app.quit()

    win.data_loaded.connect(after_load)
    win.load_failed.connect(failed)
    link.failed.connect(failed if screenshot else lambda msg: win.show_error("Session", msg))
    if screenshot:
        win.rescore_done.connect(finish)
        win.error_shown.connect(failed)
    win.show()
    plain_start = (files is None and visits is None and session_file is None
                   and not getattr(args, "small_demo", False))
    if plain_start and not screenshot:  # `diascan view` / `--demo`: offer the last session
        session, session_file = _offer_resume(win)
    if session is not None:
        link.open_session(session, session_file)
    elif visits is not None:
        link.start_visits(visits)
    else:
        link.start_new(loader)
    app.exec()
    win.wait_idle()
    return status["rc"]


def _scores_saved(link, win) -> bool:
    """True when the session's current visit holds a score for every source on screen, from
    the model now selected (a resumed session: its scores are shown, not recomputed)."""
    import numpy as np

    ctl = getattr(link, "ctl", None)
    if ctl is None or win.sources is None:
        return False
    visit = ctl.session.current
    model = getattr(win.state, "model_name", None)
    return bool(
        visit.model_name is not None
        and visit.model_name == model
        and np.all(np.isfinite(np.asarray(win.sources.score, dtype=float)))
    )


def _session_args(args) -> tuple[Any, Path | None, list | None]:
    """(saved session or None, session file or None, --visits file dicts or None).

    ``--session FILE`` that exists is loaded (a broken one is an InputError: exit 2); one that
    does not exist is where the new session is saved.
    """
    from diascan.qt.qt_session_link import visits_from_arg
    from diascan.session.store import load_session

    path = getattr(args, "session", None)
    path = Path(path).expanduser() if path else None
    visits = visits_from_arg(args.visits) if getattr(args, "visits", None) else None
    session = load_session(path) if path is not None and path.exists() else None
    if session is not None and (visits is not None or args_files(args) is not None):
        raise InputError(path, "session exists: open it without --visits or image files")
    return session, path, visits


def _offer_resume(win) -> tuple[Any, Path | None]:
    """Ask whether to resume the last session; (session, path) or (None, None)."""
    from diascan.qt.qt_session import offer_resume
    from diascan.session.store import load_session

    path = offer_resume(win)
    if path is None:
        return None, None
    try:
        return load_session(path), Path(path)
    except InputError as exc:
        win.show_error("Cannot resume the session", str(exc))
        return None, None
