"""QApplication creation, data loaders and ``run_viewer(args)`` for ``diascan view``."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

from diascan.assets import resource_path
from diascan.errors import InputError
from diascan.inputs import (
    check_files_exist,
    demo_loader,
    files_loader,
    parse_target,
    visits_from_arg,
)

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


def model_specs() -> tuple[dict[str, Any], str | None]:
    """Model packages ``diascan models`` finds: name -> path, and the default name.

    Only the folders are looked at (no torch import, no checkpoint read: this runs before the
    window shows); a package that turns out broken is reported when it is loaded for scoring,
    in the scoring worker, as an error dialog.
    """
    from diascan.models.locate import DEFAULT_MODEL_NAME, package_dirs, package_name

    specs: dict[str, Any] = {}
    for path, _source in package_dirs():
        specs.setdefault(package_name(path), path)
    default = DEFAULT_MODEL_NAME if DEFAULT_MODEL_NAME in specs else next(iter(specs), None)
    return specs, default


# ---------------------------------------------------------------------------------------------


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
    check_files_exist(files)
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
