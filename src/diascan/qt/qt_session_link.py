"""Ties the main window to an inspection session: which visit it shows, new or resumed sessions.

:class:`QtSessionLink` owns the window's :class:`~diascan.qt.qt_labels.QtLabelController`:

* a new session is made from whatever the window loads first (``start_new``);
* a saved session (``--session FILE``, resume, File > Open session) has its inputs checked in a
  job (sizes, sha256), moved or changed ones are located in :class:`QtLocateFilesDialog`,
  then its current visit's files are loaded (``open_session``);
* many visits (``--visits``, File > Open visits…, a dropped folder of visit folders) become one
  session whose visits are filled with their sources the first time they are opened
  (``start_visits``);
* ``visit_requested(i)`` (next visit, the visit list) loads visit ``i``; images opened by the
  user while a session runs become a new visit of it;
* File > Open visits… and a dropped folder of visit folders (or visit list) start a new
  session over those visits (:func:`open_visits`);
* sha256 of the (large) input files is computed in jobs, never on the GUI thread.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PyQt6.QtCore import QEvent, QObject, pyqtSignal

from diascan import viewstate as vs
from diascan.errors import InputError
from diascan.inputs import dropped_visits, files_starter, visits_from_arg
from diascan.qt import qt_session
from diascan.qt.qt_labels import QtLabelController
from diascan.session.model import Session, VisitEntry
from diascan.session.recent import new_session_path
from diascan.session.visits import (
    session_from_visits,
    source_records,
    visit_files,
    visit_from_view,
)

log = logging.getLogger(__name__)


def open_visits(controller: Any, path: str | Path | None = None) -> bool:
    """File > Open visits…: a folder of visit folders or a visit list file (``--visits``).

    Asks for it when ``path`` is ``None``. The visits become a new session (its own autosave
    file; the current session is saved and left as it is) and the first visit is shown; a
    controller made without a link gets one. Errors are shown by the window; returns ``False``
    then or when cancelled.
    """
    window = controller.window
    if path is None:
        path = qt_session.ask_visits_path(window)
        if path is None:
            return False
    try:
        visits = visits_from_arg(path)
    except InputError as exc:
        window.show_error("Cannot open visits", str(exc))
        return False
    link = window.session_link
    if link is None or link.ctl is not controller:
        link = QtSessionLink.for_controller(controller)
    return link.start_visits(visits)


class QtSessionLink(QObject):
    """Connects a :class:`QtMainWindow` to a session and its label controller.

    ``interactive=False`` (``--screenshot``): no dialogs; moved/changed inputs emit ``failed``.
    """

    #: The label controller is attached (``self.ctl``).
    ready = pyqtSignal()
    #: The session cannot be shown (inputs missing and not located); one-line reason.
    failed = pyqtSignal(str)

    def __init__(self, window: Any, session_path: str | Path | None = None,
                 interactive: bool = True) -> None:
        super().__init__(window)
        self.window = window
        self.session_path = Path(session_path) if session_path else None
        self.interactive = interactive
        self.ctl: Any = None
        self.loading_visit: int | None = None
        window.session_link = self  # File > Open visits… finds it
        #: ``(visits, save)`` whose files are hashed once no load runs (:meth:`_checksum`)
        self._to_hash: list[tuple[list[VisitEntry], Any]] = []
        window.jobs.finished.connect(self._hash_waiting)
        from diascan.qt.qt_prefetch import QtPrefetcher

        #: The next visits of the session, prefetched while the user works (qt_prefetch).
        self.prefetcher = QtPrefetcher(window, self)
        # a progressive load's detections are the visit's sources (before the template and
        # the result, qt_loading): before the controller's own sync
        window.sources_shown.connect(self._on_loaded)
        window.installEventFilter(self)  # a dropped folder of visit folders

    @classmethod
    def for_controller(cls, ctl: Any) -> QtSessionLink:
        """A link for a label controller made without one (it then loads the visits)."""
        link = cls(ctl.window, session_path=ctl.session_path)
        link.ctl = ctl
        ctl.visit_requested.connect(link.load_visit)
        return link

    def open_visits(self, path: str | Path | None = None) -> bool:
        """File > Open visits… for this link's controller (see :func:`open_visits`)."""
        return open_visits(self.ctl, path)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt API
        """A dropped folder of visit folders (or a visit list file) opens those visits."""
        # type first: also called while Qt tears the window down (attributes may be gone)
        if (event.type() == QEvent.Type.Drop and obj is getattr(self, "window", None)
                and self.ctl is not None):
            paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
            if dropped_visits(paths) is not None:
                event.acceptProposedAction()
                open_visits(self.ctl, paths[0])
                return True
        return super().eventFilter(obj, event)

    # --- starting -------------------------------------------------------------------------
    def start_new(self, loader, progressive: bool = False) -> None:
        """Load with ``loader`` (a starter of a progressive load with ``progressive``,
        :mod:`diascan.qt.qt_loading`); the session is made from what it loaded."""
        if progressive:
            self.window.load_progressive(loader)
        else:
            self.window.load(loader)

    def start_visits(self, visits: list[dict[str, Any]]) -> bool:
        """A new session over several visits; shows the first one.

        While a session runs (File > Open visits…) the new one gets a fresh autosave file and
        the running one is saved and left as it is; ``False`` when it cannot be saved and the
        user chose to stay (nothing changes then).
        """
        session = session_from_visits(visits)
        if self.ctl is not None:
            path = new_session_path()
            if not self.ctl.set_session(session, path):  # asks for the first visit
                return False
            self.session_path = path
        else:
            self._attach(session, self.session_path)
            self.load_visit(session.current_visit)
        self._checksum(session.visits)
        return True

    def open_session(self, session: Session, path: str | Path) -> None:
        """Check a saved session's inputs (a job), locate moved ones, then show it (unless the
        current session cannot be saved and the user chooses to stay)."""

        def checked(problems: list) -> None:
            if problems:
                if not self.interactive:
                    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
                    self.failed.emit(f"{path}: input {problems[0]}{more}; "
                                     "open the session without --screenshot to locate it")
                    return
                if not qt_session.locate_files(session, problems, self.window, self):
                    self.failed.emit(f"{path}: session inputs not located")
                    return
            if self.ctl is not None:  # switching sessions: the controller asks for the visit
                if self.ctl.set_session(session, path):
                    self.session_path = Path(path)
                return
            self.session_path = Path(path)
            self._attach(session, path)
            self.load_visit(session.current_visit)

        qt_session.verify_job(self.window.jobs, session, checked)

    # --- visits ---------------------------------------------------------------------------
    def load_visit(self, index: int) -> bool:
        """Load visit ``index``'s input files into the window (a load job)."""
        visit = self.ctl.session.visits[index]
        files = visit_files(visit)
        if files.get("alerts"):  # an alert entry: its alerts, in the gallery
            from diascan.alerts.viewer import alerts_loader

            self.loading_visit = index
            self.window.pending_selection = visit.current_source
            self.window.load(alerts_loader(files["alerts"]))
            return True
        if "science" not in files or "difference" not in files:
            self.window.show_error("Cannot show visit",
                                   f"{visit.name}: the session has no science/difference files")
            return False
        self.window.pending_selection = visit.current_source  # not the target over it
        if self.prefetcher.use(index):  # read, warped and detected in the background already
            return True
        self.loading_visit = index
        self.window.load_progressive(files_starter(files), kept_rows(visit))
        return True

    def kept_rows(self, index: int) -> set[int]:
        """Catalog rows visit ``index`` keeps as sources (see :func:`kept_rows`)."""
        return kept_rows(self.ctl.session.visits[index])

    def loading_visit_entry(self, input_files: dict[str, Any],
                            images: dict[str, Any]) -> VisitEntry:
        """The session visit a running progressive load fills (made now, with a new session
        when there is none, or as a new visit for images the user opened), so labels given
        before its detections are autosaved at once (``VisitEntry.hold_label``)."""
        if self.ctl is None or self.loading_visit is None:
            self.loading_visit = self._new_visit(visit_from_view(None, images, input_files))
        return self.ctl.session.visits[self.loading_visit]

    def _new_visit(self, visit: VisitEntry) -> int:
        """``visit`` (what the window shows, not in the session yet) as the first visit of a
        new session or the last of this one, its files hashed in the background; its index."""
        if self.ctl is None:
            self._attach(Session(visits=[visit]), self.session_path)
            index = 0
        else:
            self.ctl.window_visit = None  # the view on screen is the new visit's already
            index = self.ctl.add_visit(visit)
        self._checksum([visit])
        return index

    def _attach(self, session: Session, path: str | Path | None) -> None:
        self.ctl = QtLabelController(self.window, session=session, session_path=path)
        self.ctl.visit_requested.connect(self.load_visit)
        self.session_path = self.ctl.session_path
        self.ready.emit()

    def _on_loaded(self, final: bool = True) -> None:
        """The window shows a visit's sources (``final``: the load is done)."""
        win = self.window
        if self.ctl is None or self.loading_visit is None:
            # first data of a new session, or other images the user opened: a new visit; the
            # rest of a progressive load (template, result) is that visit's
            index = self._new_visit(qt_session.visit_from_window(win, checksum=False))
            self.loading_visit = None if final else index
            return
        session = self.ctl.session
        index = self.loading_visit
        if final:
            self.loading_visit = None
        if index != session.current_visit:
            return  # the user moved on while this one loaded; its own load follows
        visit = session.visits[index]
        self.ctl.window_visit = visit  # its view is the window's from now on
        if not visit.is_loaded:  # first time this visit is opened: its sources are known now
            flags = [] if win.sources is None else win.sources.flag_names
            visit.fill_sources(source_records(win.sources), flags)
            meta = getattr(win.images.get("science"), "metadata", {}) or {}
            for key in ("visit", "detector", "band"):
                if getattr(visit, key) is None and meta.get(key) is not None:
                    setattr(visit, key, meta[key])
        elif win.sources is not None:  # catalog rows labelled during this reload: kept too
            records = source_records(win.sources)
            visit.settle_held(records)
            new = [r for r in records if r.id not in visit.labels]
            visit.sources.extend(new)
            visit.labels.add_ids([r.id for r in new])
        self.ctl.sync_window(notice=final)
        self.ctl.autosave.save()

    def _checksum(self, visits: list[VisitEntry]) -> None:
        """sha256 of the visits' input files in a background job, once no load runs: hashing
        ~0.7 GB a visit beside a load took the cores the load's frames and detections need."""
        auto = self.ctl.autosave  # the session these visits belong to, even after a switch
        self._to_hash.append((visits, auto.save))
        self._hash_waiting()

    def _hash_waiting(self, *_args: Any) -> None:
        jobs = self.window.jobs
        if jobs.busy("load"):
            return  # asked again when a job ends (jobs.finished)
        waiting, self._to_hash = self._to_hash, []
        for visits, save in waiting:
            qt_session.checksum_job(jobs, visits, save)


def kept_rows(visit: VisitEntry) -> set[int]:
    """Catalog rows no detection matched that ``visit`` keeps as sources (labelled during a
    load, ``viewstate.keep_missing``): shown again whenever the visit is loaded."""
    from diascan.matching import MISSING  # astropy.coordinates: not on the start's path

    rows = (vs.missing_source_row(s.id) for s in visit.sources if s.status == MISSING)
    return {r for r in rows if r is not None}
