"""Background jobs (load, fields, stamps, rescore, checksum, verify, train, prefetch) on superqt's
workers, with the scheduling policy in one place.

A :class:`Job` runs ``fn(job)`` in a ``superqt.utils.create_worker`` thread-pool worker; ``fn``
reports with ``job.report(stage, fraction, message)``, checks ``job.token``
(:class:`~diascan.progress.CancelToken`) and may stream partial results with
``job.emit(value)``. Its signals arrive in the GUI thread: ``progress``, ``partial``, then one
of ``succeeded(result)``, ``failed(exception)`` or ``cancelled``, and ``done`` last. A job that
was cancelled never delivers a result, even if its function finished. Every started job is
kept referenced in ONE set until its ``done`` was handled (a QObject collected while its
queued signals wait would crash Qt); superqt keeps its workers the same way.

A :class:`QtJobs` (one per window) applies the policy of :data:`POLICIES` to the jobs it is
asked for: which kinds a request cancels, which kinds it waits for, and that results computed
for data since replaced are dropped. Requests are lazy (``build()`` makes the job when it can
start), so a rescore asked for during a load runs on the loaded data. Adding a kind of job is
one line in :data:`POLICIES`.

:func:`error_text` makes the one-line text of every job error shown to the user.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PyQt6.QtCore import QObject, QThreadPool, QTimer, pyqtSignal

from diascan.errors import Cancelled, DiascanError, error_line
from diascan.progress import CancelToken

os.environ.setdefault("QT_API", "pyqt6")  # superqt (qtpy) must use the binding diascan uses
from superqt.utils import create_worker  # noqa: E402

log = logging.getLogger(__name__)


def error_text(exc: BaseException) -> str:
    """The one line shown to the user for a failed job, as the command line words it
    (:func:`diascan.errors.error_line`): diascan's own errors name the file and the problem, an
    ``OSError`` gets plain words, anything else is reported as a bug (its traceback goes to the
    log)."""
    return error_line(exc)


#: Every started job until its ``done`` was handled (see the module docstring).
_ALIVE: set[Job] = set()


class Job(QObject):
    """One piece of background work (see the module docstring)."""

    progress = pyqtSignal(str, float, str)
    partial = pyqtSignal(object)
    _partial = pyqtSignal(object)  # from the worker thread; filtered into ``partial``
    succeeded = pyqtSignal(object)
    failed = pyqtSignal(object)  #: the exception (text for the user: :func:`error_text`)
    cancelled = pyqtSignal()
    done = pyqtSignal()  #: always last, whatever the outcome

    def __init__(self, kind: str, fn: Callable[[Job], Any], title: str | None = None) -> None:
        super().__init__()
        self.kind = kind
        self.title = title or kind  #: shown in the progress bar ("loading", "scoring")
        self.fn = fn
        self.token = CancelToken()
        self.running = False
        self.finished = False
        self.error: BaseException | None = None
        self._worker: Any = None
        #: Values of ``stale`` jobs are dropped once their data are replaced (:class:`QtJobs`).
        self.data_generation = 0

    def __repr__(self) -> str:
        return f"Job({self.kind!r}, running={self.running})"

    # --- used by the work function, in the worker thread ------------------------------------
    def report(self, stage: str, fraction: float, message: str = "") -> None:
        """Progress of the work (a ``ProgressCallback``)."""
        self.progress.emit(stage, float(fraction), message)

    def emit(self, value: Any) -> None:
        """A partial result (e.g. a batch of scores), delivered unless the job is cancelled."""
        self._partial.emit(value)

    # --- GUI thread -------------------------------------------------------------------------
    def start(self) -> Job:
        """Run the work in superqt's thread pool."""
        _ALIVE.add(self)
        self.running = True
        self._partial.connect(self._on_partial)
        worker = create_worker(self._work, _start_thread=False, _ignore_errors=True)
        worker.returned.connect(self._on_returned)
        worker.errored.connect(self._on_errored)
        worker.finished.connect(self._on_finished)
        self._worker = worker
        worker.start()
        return self

    def cancel(self) -> None:
        """Ask the work to stop at its next check; its result (if any) is not delivered."""
        self.token.cancel()

    @property
    def is_cancelled(self) -> bool:
        return self.token.cancelled

    def _work(self) -> Any:
        return self.fn(self)

    def _on_partial(self, value: Any) -> None:
        if not self.is_cancelled:
            self.partial.emit(value)

    def _on_returned(self, result: Any) -> None:
        self.running = False  # what its result starts (a rescore after a load) starts now
        if self.is_cancelled:
            self.cancelled.emit()
        else:
            self.succeeded.emit(result)

    def _on_errored(self, exc: BaseException) -> None:
        self.running = False
        if isinstance(exc, Cancelled) or self.is_cancelled:
            self.cancelled.emit()
            return
        self.error = exc
        if not isinstance(exc, DiascanError | OSError | MemoryError):  # a bug: keep the traceback
            log.error("%s job failed", self.kind, exc_info=exc)
        self.failed.emit(exc)

    def _on_finished(self) -> None:
        self.running = False
        self.finished = True
        self.done.emit()
        # released after this signal returns (never delete a sender inside its emission)
        QTimer.singleShot(0, lambda: _ALIVE.discard(self))


@dataclass(frozen=True)
class Policy:
    """How one kind of job is scheduled against the others of the same :class:`QtJobs`."""

    #: Kinds cancelled (running) or dropped (waiting) when this one is asked for.
    cancels: frozenset[str] = frozenset()
    #: Kinds that must not be running when this one starts (else it waits for them).
    after: frozenset[str] = frozenset()
    #: Its results belong to the data shown when it started: new data cancel it.
    stale: bool = False
    #: Runs quietly: not in the progress bar, not stopped by Cancel or by closing the window
    #: (the file checks of a session, which save themselves when done).
    background: bool = False


#: The scheduling policy: a load replaces a load and cancels rescoring (its data go); a
#: rescore waits for a load (and runs on the loaded data) and replaces a rescore; file checks
#: and training run beside everything, in the background; prefetching yields to all of them.
POLICIES: dict[str, Policy] = {
    "load": Policy(cancels=frozenset({"load", "rescore", "prefetch", "fields", "stamps"})),
    # the alerts' cutouts of the gallery's next page, decoded ahead (qt_alerts.decode_ahead)
    "stamps": Policy(cancels=frozenset({"stamps"}), after=frozenset({"load"}), stale=True,
                     background=True),
    # the alerts' fields decoded after the first page shows (the table fills in)
    "fields": Policy(cancels=frozenset({"fields"}), stale=True),
    "rescore": Policy(cancels=frozenset({"rescore", "prefetch"}),
                      after=frozenset({"load", "rescore"}), stale=True),
    "checksum": Policy(background=True),
    "verify": Policy(background=True),
    "info": Policy(cancels=frozenset({"info"}), stale=True),
    # fine-tuning (qt_train) has its own dialog with progress and Cancel; rescoring goes on
    "train": Policy(cancels=frozenset({"prefetch"}), background=True),
    # the next visits of a session (qt_prefetch): gives way to the user's own work (stopped
    # when it starts, waits while it runs; asked for again when it is done)
    "prefetch": Policy(after=frozenset({"load", "rescore", "train"}), background=True),
}


class QtJobs(QObject):
    """The jobs of one window, scheduled by :data:`POLICIES`."""

    #: A job started (the window shows the progress of those not in the background).
    started = pyqtSignal(object)
    #: A job is done (whatever its outcome).
    finished = pyqtSignal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.running: list[Job] = []
        #: kind -> the newest request of that kind that could not start yet
        self.waiting: dict[str, Callable[[], Job | None]] = {}
        self.data_generation = 0

    def request(self, kind: str, build: Callable[[], Job | None]) -> Job | None:
        """Ask for a job of ``kind``; ``build()`` makes it when it can start (None: nothing to
        do then). Returns the job if it started now, ``None`` if it waits (or was not made)."""
        policy = POLICIES[kind]
        for job in list(self.running):
            if job.kind in policy.cancels:
                job.cancel()
        for k in policy.cancels:
            self.waiting.pop(k, None)
        self.waiting[kind] = build
        return self._start_ready(kind)

    def run(self, job: Job) -> Job:
        """Start ``job`` now, outside the policy's queue (its kind's ``cancels`` still apply)."""
        self.request(job.kind, lambda: job)
        return job

    def busy(self, kind: str) -> bool:
        """True while a job of ``kind`` runs or waits."""
        return kind in self.waiting or any(j.running and j.kind == kind for j in self.running)

    def current(self, kind: str) -> Job | None:
        """The running job of ``kind`` that is not cancelled (the newest), or ``None``."""
        jobs = [j for j in self.running if j.kind == kind and j.running and not j.is_cancelled]
        return jobs[-1] if jobs else None

    def data_changed(self) -> None:
        """New data are shown: running ``stale`` jobs (computed for the old data) are cancelled."""
        self.data_generation += 1
        for job in list(self.running):
            if POLICIES[job.kind].stale and job.data_generation != self.data_generation:
                job.cancel()

    def cancel_all(self, also: frozenset[str] = frozenset()) -> None:
        """Cancel the running jobs and forget the waiting requests; background jobs go on,
        but those of the kinds in ``also`` (closing the window: prefetch and training are of
        no use after it, while checksums still reach the session file)."""
        self.waiting = {k: b for k, b in self.waiting.items()
                        if POLICIES[k].background and k not in also}
        for job in list(self.running):
            if job.kind in also or not POLICIES[job.kind].background:
                job.cancel()

    @staticmethod
    def wait_idle(msecs: int = 30000) -> bool:
        """Block until the thread pool is idle (shutdown and tests); False on timeout."""
        return QThreadPool.globalInstance().waitForDone(msecs)

    def _start_ready(self, wanted: str | None = None) -> Job | None:
        started = None
        for kind in list(self.waiting):
            if any(j.running and j.kind in POLICIES[kind].after for j in self.running):
                continue
            job = self.waiting.pop(kind)()
            if job is None:
                continue
            job.data_generation = self.data_generation
            self.running.append(job)
            # a bound slot, not a lambda: Qt drops it once this QtJobs is deleted (a background
            # job may end after its window was closed)
            job.done.connect(self._job_done)
            job.start()
            self.started.emit(job)
            if kind == wanted:
                started = job
        return started

    def _job_done(self) -> None:
        # a bound slot (not a lambda): Qt disconnects it when this object is deleted, so a
        # worker that ends after its window went calls nothing
        job = self.sender()
        if job in self.running:
            self.running.remove(job)
        self.finished.emit(job)
        self._start_ready()


def in_background(job: Job) -> bool:
    """True for the jobs that run quietly (:attr:`Policy.background`)."""
    return POLICIES[job.kind].background


__all__ = ["POLICIES", "Job", "Policy", "QtJobs", "error_text", "in_background"]
