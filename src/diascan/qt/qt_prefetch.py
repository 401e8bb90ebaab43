"""Prefetch of the next visits of a multi-visit session in the viewer (issue 15.4).

:class:`QtPrefetcher` (one per :class:`~diascan.qt.qt_session_link.QtSessionLink`) runs the
whole pipeline (read, warp, detect, match; unscored like a load) on the next
:attr:`~diascan.prefetch.PrefetchSettings.depth` visits after the one shown, one ``prefetch``
job at a time (:data:`diascan.qt.qt_jobs.POLICIES`: in the background, waiting while a load,
a rescore or training runs, and cancelled when one starts; it is asked for again when that
work is done). Results are kept while their size fits the memory budget; the link shows a
kept result at once when the user moves to that visit (:meth:`QtPrefetcher.use`).
"""

from __future__ import annotations

import logging
from typing import Any

from PyQt6 import sip
from PyQt6.QtCore import QObject, pyqtSignal
from PyQt6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QSpinBox, QWidget

from diascan import prefetch as pf
from diascan import viewstate as vs
from diascan.qt.qt_jobs import Job

log = logging.getLogger(__name__)

#: Jobs that are the user's own work: prefetch gives way to them.
USER_KINDS = frozenset({"load", "rescore", "train"})


def _files_key(files: dict) -> str:
    """What a prefetched result was computed from (a changed visit is fetched again)."""
    return repr(sorted((k, str(v)) for k, v in files.items()))


class QtPrefetcher(QObject):
    """Prefetches the next visits of ``link``'s session (see the module docstring)."""

    #: a visit's result is kept (its index)
    prefetched = pyqtSignal(int)
    #: a kept result was shown (its index)
    used = pyqtSignal(int)

    def __init__(self, window: Any, link: Any, settings: pf.PrefetchSettings | None = None):
        super().__init__(window)
        self.window, self.link = window, link
        self.settings = settings or pf.load_settings()
        #: visit index -> (files key, (result, display))
        self.kept: dict[int, tuple[str, tuple]] = {}
        self.job: Job | None = None
        self.job_index: int | None = None
        window.jobs.finished.connect(self._job_finished)
        window.data_loaded.connect(self.schedule)

    # --- settings -------------------------------------------------------------------------
    def set_settings(self, settings: pf.PrefetchSettings, save: bool = True) -> None:
        """New depth/budget (saved for the next sessions); 0 stops and forgets prefetching."""
        self.settings = settings
        if save:
            pf.save_settings(settings)
        if settings.depth == 0 and self.job is not None:
            self.job.cancel()
        self._trim()
        self.schedule()

    # --- what to fetch --------------------------------------------------------------------
    def _session(self):
        ctl = getattr(self.link, "ctl", None)
        return None if ctl is None else ctl.session

    def _files(self, index: int) -> dict | None:
        from diascan.session.visits import visit_files

        session = self._session()
        if session is None or not 0 <= index < len(session.visits):
            return None
        files = visit_files(session.visits[index])
        return files if "science" in files and "difference" in files else None

    def wanted(self) -> list[int]:
        """The visits to have ready, nearest first."""
        session = self._session()
        if session is None:
            return []
        return pf.ahead(session.current_visit, len(session.visits), self.settings.depth)

    def _ready(self, index: int) -> bool:
        files = self._files(index)
        return files is not None and index in self.kept and self.kept[index][0] == _files_key(
            files)

    def schedule(self) -> None:
        """Ask for a prefetch job for the nearest wanted visit not kept yet (if any)."""
        self._trim()
        if self.job is not None and not self.job.finished:
            return
        todo = [i for i in self.wanted() if not self._ready(i) and self._files(i) is not None]
        if todo:
            self.window.jobs.request("prefetch", lambda: self._make_job(todo[0]))

    def _make_job(self, index: int) -> Job | None:
        files = self._files(index)
        if files is None or index not in self.wanted() or self._ready(index):
            return None
        from diascan.inputs import files_starter

        start, frames = files_starter(files), self.window.state.frames

        def work(job: Job) -> tuple:
            run = start(progress=job.report, cancel=job.token)
            try:
                result = run.result()
            except BaseException:
                run.cancel()
                raise
            job.token.check()
            images = {n: getattr(result, n, None) for n in vs.FRAMES}
            return result, vs.prepare_display(images, frames)

        job = Job("prefetch", work, "prefetching")
        key = _files_key(files)
        job.succeeded.connect(lambda value: self._keep(index, key, value))
        job.failed.connect(lambda exc: log.info("prefetch of visit %d failed: %s", index, exc))
        self.job, self.job_index = job, index
        return job

    def _keep(self, index: int, key: str, value: tuple) -> None:
        if sip.isdeleted(self):  # the window closed while the prefetch ran
            return
        self.kept[index] = (key, value)
        self._trim()
        if index in self.kept:
            self.prefetched.emit(index)

    def _trim(self) -> None:
        """Drop kept results no longer wanted, then the farthest ones beyond the budget."""
        wanted = self.wanted()
        for i in list(self.kept):
            if i not in wanted:
                del self.kept[i]
        budget = self.settings.budget_mb * 2**20
        while self.kept and sum(pf.nbytes(v) for _, v in self.kept.values()) > budget:
            del self.kept[max(self.kept)]

    def _job_finished(self, job: Job) -> None:
        if job is self.job:
            self.job, self.job_index = None, None
            self.schedule()
        elif job.kind in USER_KINDS:  # the user's work is done: prefetching goes on
            self.schedule()

    # --- using a prefetched visit ---------------------------------------------------------
    def use(self, index: int) -> bool:
        """Show visit ``index``'s kept result in the window at once; False if none is kept."""
        if not self._ready(index):
            return False
        _key, (result, display) = self.kept.pop(index)
        win = self.window
        win.jobs.request("load", lambda: None)  # a load of another visit stops (and prefetch)
        win.loading = None
        self.link.loading_visit = index
        win.set_result(result, display, keep_rows=self.link.kept_rows(index))
        self.used.emit(index)
        return True


class QtPrefetchDialog(QDialog):
    """Preferences > Prefetch: visits ahead (0-3, 0 = off) and the memory budget."""

    def __init__(self, prefetcher: QtPrefetcher, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Prefetch")
        self.prefetcher = prefetcher
        form = QFormLayout(self)
        self.depth = QSpinBox()
        self.depth.setRange(0, pf.MAX_DEPTH)
        self.depth.setValue(prefetcher.settings.depth)
        self.depth.setToolTip("Visits read, warped and detected ahead while you work (0: off)")
        self.budget = QSpinBox()
        self.budget.setRange(0, 64 * 1024)
        self.budget.setSingleStep(256)
        self.budget.setSuffix(" MB")
        self.budget.setValue(prefetcher.settings.budget_mb)
        form.addRow("Visits ahead", self.depth)
        form.addRow("Memory budget", self.budget)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.accepted.connect(self.apply)

    def apply(self) -> None:
        self.prefetcher.set_settings(pf.PrefetchSettings(self.depth.value(), self.budget.value()))


__all__ = ["USER_KINDS", "QtPrefetchDialog", "QtPrefetcher"]
