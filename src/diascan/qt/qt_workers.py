"""Background workers (napari/superqt style).

A :class:`QtWorker` is a ``QRunnable`` run on the global thread pool; its signals live on a
:class:`QtWorkerSignals` ``QObject`` created in the GUI thread, so every signal is delivered to
the GUI thread as a queued call. The work function gets ``progress``, ``cancel`` and ``emit_batch``
keyword arguments; cancellation uses :class:`diascan.progress.CancelToken`.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
from PyQt6.QtCore import QObject, QRunnable, QThreadPool, pyqtSignal

from diascan.errors import Cancelled, DiascanError
from diascan.progress import CancelToken

log = logging.getLogger(__name__)


class QtWorkerSignals(QObject):
    """Signals of one worker; created in the GUI thread."""

    started = pyqtSignal()
    progress = pyqtSignal(str, float, str)
    batch_done = pyqtSignal(object, object)  # (indices, scores) numpy arrays
    finished = pyqtSignal(object)  # the function's result
    errored = pyqtSignal(str)
    cancelled = pyqtSignal()
    done = pyqtSignal()  # always last, whatever the outcome


class QtWorker(QRunnable):
    """Run ``fn(*args, progress=..., cancel=..., emit_batch=..., **kwargs)`` off the GUI thread."""

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.setAutoDelete(False)  # the GUI keeps a reference until ``done``
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.signals = QtWorkerSignals()
        self.cancel_token = CancelToken()
        self.running = False

    def cancel(self) -> None:
        """Ask the work to stop at its next safe point."""
        self.cancel_token.cancel()

    def start(self, pool: QThreadPool | None = None) -> QtWorker:
        self.running = True
        (pool or QThreadPool.globalInstance()).start(self)
        return self

    def _progress(self, stage: str, fraction: float, message: str) -> None:
        self.signals.progress.emit(stage, float(fraction), message)

    def _batch(self, indices: Any, scores: Any) -> None:
        self.signals.batch_done.emit(np.array(indices), np.array(scores))

    def run(self) -> None:  # runs in a pool thread
        sig = self.signals
        sig.started.emit()
        try:
            result = self.fn(
                *self.args,
                progress=self._progress,
                cancel=self.cancel_token,
                emit_batch=self._batch,
                **self.kwargs,
            )
        except Cancelled:
            sig.cancelled.emit()
        except DiascanError as exc:
            sig.errored.emit(str(exc))
        except Exception as exc:  # any failure becomes a dialog, never a crash
            log.error("worker failed:\n%s", traceback.format_exc())
            sig.errored.emit(f"{type(exc).__name__}: {exc}")
        else:
            sig.finished.emit(result)
        finally:
            self.running = False
            sig.done.emit()
