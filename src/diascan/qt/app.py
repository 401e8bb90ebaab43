"""QApplication creation and :func:`run_viewer` for ``diascan view``."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diascan.assets import resource_path
from diascan.errors import InputError
from diascan.inputs import demo_starter, files_starter
from diascan.models.locate import model_choices

log = logging.getLogger(__name__)


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


@dataclass
class ViewRequest:
    """What ``diascan view`` was asked to open (checked by ``diascan.cli.view`` first)."""

    files: dict[str, Any] | None = None  #: one visit's files; None: the demo
    session: Any = None  #: a saved session to open
    session_file: Path | None = None  #: where the session is (or will be) saved
    visits: list | None = None  #: ``--visits``: each visit's files
    alerts: list | None = None  #: ``--alerts``: alert files and folders
    small_demo: bool = False
    model: str | None = None  #: ``--model``: a package path or name
    trust_model_code: bool = False
    screenshot: str | None = None  #: save the window there once loaded and scored, then quit
    gallery: bool = False  #: ``--gallery``: open on the gallery of triplets
    palette: str = "classic"  #: ``--palette``: colours of statuses and labels


def run_viewer(req: ViewRequest) -> int:
    """Open the main window on the demo or the user's files; see ``diascan view --help``."""
    files, session, session_file, visits = req.files, req.session, req.session_file, req.visits
    screenshot = req.screenshot
    app = get_app()
    from diascan.qt.qt_main_window import QtMainWindow
    from diascan.qt.qt_session_link import QtSessionLink

    win = QtMainWindow()
    win.show_errors_as_dialogs = not screenshot
    win.trust_model_code = req.trust_model_code
    win.set_palette(req.palette)
    if req.gallery:
        win.show_gallery(True)
    specs, default = model_choices(req.model)
    win.set_models(specs, default)
    link = QtSessionLink(win, session_path=session_file, interactive=not screenshot)
    win.session_link = link
    status = {"rc": 0}

    # progressive: frames and catalog markers are shown as soon as they are read (qt_loading);
    # alerts have no frames: one load of the collection
    loader = starter = None
    if req.alerts is not None:
        from diascan.alerts.viewer import alerts_loader

        loader = alerts_loader(req.alerts)
    else:
        starter = files_starter(files) if files is not None else demo_starter(small=req.small_demo)

    def after_load() -> None:
        # Rescore with the chosen model once the data are in (scores stream into the table),
        # unless a resumed session already gave every source a score from that model.
        if win.sources is not None and len(win.sources) and specs and not _scores_saved(link, win):
            if win.rescore_all() is None and screenshot:
                finish()
        elif screenshot:
            finish()

    def finish(_res=None) -> None:
        if screenshot and status["rc"] == 0:  # not after a failure (no PNG then)
            app.processEvents()
            pix = win.grab()
            if not pix.save(str(screenshot), "PNG"):
                print(f"diascan view: error: cannot write {screenshot}", file=sys.stderr)
                status["rc"] = 2
            win.close()
            app.quit()

    def failed(msg: str) -> None:
        # one line, however many signals report the failure (error_shown, load_failed)
        if screenshot and status["rc"] == 0:
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
    plain_start = (files is None and visits is None and req.alerts is None
                   and session_file is None and not req.small_demo)
    if plain_start and not screenshot:  # `diascan view` / `--demo`: offer the last session
        session, session_file = _offer_resume(win)
    if session is not None:
        link.open_session(session, session_file)
    elif visits is not None:
        link.start_visits(visits)
    elif loader is not None:
        link.start_new(loader)
    else:
        link.start_new(starter, progressive=True)
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
