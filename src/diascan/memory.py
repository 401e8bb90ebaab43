"""Give freed heap memory back to the operating system between pipeline stages, and tune
glibc malloc for a headless run."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import cache


@cache
def _libc():
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


@cache
def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return _libc().malloc_trim  # glibc only; musl has no malloc_trim
    except (OSError, AttributeError):
        return None


def release_free_memory() -> bool:
    """Return the free memory of every malloc arena to the OS (glibc); False where unsupported.

    Why by hand: the template is warped in worker threads, and glibc keeps the blocks they freed
    (~100 MB on a full detector) in those threads' arenas, where the next stage cannot reuse
    them; detection then raised the peak of ``diascan score`` by that much. ``malloc_trim(0)``
    releases them in a few milliseconds; no Python library exposes it.
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


#: mallopt parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8


def tune_allocator() -> bool:
    """Tune glibc malloc for a one-shot headless run (``diascan score``); False where unsupported.

    One arena for all threads, every array from the heap instead of a fresh ``mmap`` each (full
    frames are 65 MB, above glibc's 32 MB ceiling of its own threshold), and up to 64 MB of
    free heap kept at its top: a freed full-frame temporary is then reused by the next stage
    instead of going back to the kernel, which must zero fresh pages again (``clear_page`` was
    ~12% of the CPU time of ``diascan score`` on this 2-core VM). Measured (3 interleaved runs
    under load, with a 128 MB top): system time 1.9-2.2 s against 2.4-2.7 s, wall 13% less,
    peak RSS 1.41-1.43 GB against 1.44-1.48 GB. :func:`release_free_memory` still returns the
    free memory where the pipeline asks for it. Call it before the threads start. Why by hand:
    no Python library exposes ``mallopt``.
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    mallopt = _libc().mallopt
    ok = mallopt(_M_ARENA_MAX, 1) and mallopt(_M_MMAP_THRESHOLD, 1 << 30)
    return bool(ok and mallopt(_M_TRIM_THRESHOLD, 64 << 20))
