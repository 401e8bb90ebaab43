"""Progress reporting and cancellation for long work, shared by the CLI and the Qt workers.

Core functions that take a while accept ``progress`` (a callable ``(stage, fraction, message)``)
and ``cancel`` (a :class:`CancelToken`). They call ``progress`` between steps and
``cancel.check()`` at safe points, which raises :class:`~diascan.errors.Cancelled`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from diascan.errors import Cancelled

#: ``progress(stage, fraction, message)``; fraction in [0, 1] within the stage.
ProgressCallback = Callable[[str, float, str], None]


class CancelToken:
    """A thread-safe flag that long work polls; set it from any thread to stop the work.

    A token made with a ``parent`` is also cancelled when the parent is (not the other way
    round): a pipeline run stops its own stages after a failure without cancelling the job of
    the caller that gave it the parent.
    """

    def __init__(self, parent: CancelToken | None = None) -> None:
        self._event = threading.Event()
        self._parent = parent

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set() or (self._parent is not None and self._parent.cancelled)

    def check(self) -> None:
        """Raise :class:`Cancelled` when cancellation was requested."""
        if self.cancelled:
            raise Cancelled("cancelled by the user")


def report(progress: ProgressCallback | None, stage: str, fraction: float, message: str = "") -> None:
    """Call ``progress`` if given (helper so callers need no ``if``)."""
    if progress is not None:
        progress(stage, fraction, message)


def check(cancel: CancelToken | None) -> None:
    """``cancel.check()`` if a token was given."""
    if cancel is not None:
        cancel.check()
