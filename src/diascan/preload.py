"""Import torch in the background, before the first stage that needs it."""

from __future__ import annotations

import contextlib
import sys
import threading


def preload_torch() -> threading.Thread | None:
    """Import torch in a background thread; None when it is imported (or importing) already.

    torch takes ~1 s to import on 2 cores and is first needed by the template warp (after the
    input files are read) and by scoring: importing it meanwhile takes that second off the
    critical path of ``diascan score`` and of the viewer's start. The modules that use torch
    import it where they need it, and so wait for this import to finish.
    """
    if "torch" in sys.modules:
        return None

    def work() -> None:
        with contextlib.suppress(Exception):  # a broken torch fails later, where it is used
            import torch  # noqa: F401

    thread = threading.Thread(target=work, name="diascan-import-torch", daemon=True)
    thread.start()
    return thread
