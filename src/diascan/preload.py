"""Import heavy modules in the background, before the stages that need them.

One importer thread imports the queued modules in order; a stage that needs one calls
:func:`require`, which waits until the importer is done with it (or imports it right there
when it was never queued). Why a single thread, and why stages wait instead of importing
themselves: two threads importing overlapping parts of scipy or astropy at once can meet in
their circular imports, where Python breaks the deadlock by handing one thread a partially
initialised module (an AttributeError much later). Imports hold the GIL most of the time, so a
second importer thread would not be faster anyway.

torch alone takes ~1 s to import on 2 cores and scipy.interpolate, astropy.table and pyarrow
together about as much; queued at the start of a pipeline run they load while the input files
are read and while detection runs, off ``diascan score``'s critical path.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections import deque
from types import ModuleType

_lock = threading.Lock()
_queue: deque[str] = deque()
_done: dict[str, threading.Event] = {}
_thread: threading.Thread | None = None


def preload(*modules: str) -> threading.Thread | None:
    """Queue ``modules`` for the importer thread (in this order, after those queued before).

    Returns the importer thread, or None when every module is imported or queued already.
    Failures are not raised here: :func:`require` (or the plain import) raises them where the
    module is used.
    """
    global _thread
    with _lock:
        new = [m for m in dict.fromkeys(modules) if m not in sys.modules and m not in _done]
        if not new:
            return None
        for m in new:
            _done[m] = threading.Event()
            _queue.append(m)
        if _thread is None:  # the importer clears it (under the lock) when it runs out of work
            _thread = threading.Thread(target=_work, name="diascan-import", daemon=True)
            _thread.start()
        return _thread


def preload_torch() -> threading.Thread | None:
    """Import torch in the background (see :func:`preload`); torch is first needed by the
    template warp (after the input files are read) and by scoring."""
    return preload("torch")


def require(module: str) -> ModuleType:
    """The module, once imported: waits for the importer thread if it has it queued."""
    with _lock:
        event = _done.get(module)
    if event is not None and threading.current_thread() is not _thread:
        event.wait()
    return importlib.import_module(module)  # at once when loaded; raises its ImportError


def wait_all() -> None:
    """Wait until every module queued so far is imported (or failed): memory and time
    measured afterwards no longer include a background import still under way."""
    with _lock:
        events = list(_done.values())
    if threading.current_thread() is not _thread:
        for event in events:
            event.wait()


def _work() -> None:
    global _thread
    while True:
        with _lock:
            if not _queue:
                _thread = None
                return
            module = _queue.popleft()
        try:
            importlib.import_module(module)
        except Exception:  # noqa: BLE001, S110 - require() imports it again and raises there
            pass
        finally:
            _done[module].set()
