"""Error types shared by the whole core.

Every error a user can cause with bad input derives from :class:`InputError`; it names the file
and the problem in one line so the GUI can show it in a dialog and the CLI can print it and exit
with code 2.
"""

from __future__ import annotations

import errno
from pathlib import Path

#: Set (to anything but ``0``/empty) to get tracebacks and Python warnings instead of one line.
DEBUG_ENV = "DIASCAN_DEBUG"

#: Longest problem text kept in a message (a dialog or one terminal line, not a dump).
MAX_PROBLEM_CHARS = 600


def one_line(text: object, limit: int = MAX_PROBLEM_CHARS) -> str:
    """``text`` on one line: line breaks and runs of blanks become one space, cut at ``limit``.

    Library errors (YAML, Parquet, astropy) often span several lines; diascan promises one.
    """
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3].rstrip() + "..."


#: Plain words for the errno values a user can cause or fix (disk full, read-only, ...).
_ERRNO_WORDS = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large (file-size limit reached)",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOENT: "no such file or folder",
    errno.EISDIR: "is a folder",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.ENAMETOOLONG: "file name too long",
    errno.EIO: "input/output error",
}


def describe_os_error(exc: OSError) -> str:
    """A short reason for an ``OSError``: ``"disk full"``, ``"read-only file system"``, else
    the system's own words (``strerror``)."""
    words = _ERRNO_WORDS.get(exc.errno) if exc.errno is not None else None
    return words or exc.strerror or one_line(exc) or type(exc).__name__


class DiascanError(Exception):
    """Base class of all diascan errors."""


class InputError(DiascanError):
    """Bad input from the user: a file that is missing, unreadable or not what was expected."""

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = None if path is None else Path(path)
        self.problem = one_line(problem)
        text = f"{self.path}: {self.problem}" if self.path is not None else self.problem
        super().__init__(text)


class ImageReadError(InputError):
    """An image file that cannot be read as a science, template or difference image."""


class CatalogReadError(InputError):
    """A source catalog that cannot be read or lacks required columns."""


class ModelPackageError(InputError):
    """A model package that is incomplete, corrupt or does not fit its architecture."""


class SessionError(InputError):
    """A session file that cannot be read or written."""


class OutputError(InputError):
    """An output that must not or cannot be written: it would replace an input file, it exists
    (without ``--overwrite``), or its folder or disk refuses it."""


class Cancelled(DiascanError):
    """Raised inside long work when the user cancelled it."""


def error_line(exc: BaseException) -> str:
    """The one line ``FILE: problem`` for any exception: what the command line prints after
    ``diascan CMD: error:`` and what a viewer dialog shows. diascan's own errors name the file
    already; an ``OSError`` gets plain words (``disk full``); anything else is a bug and says
    so."""
    if isinstance(exc, InputError):
        return str(exc)
    if isinstance(exc, OSError):
        where = exc.filename if exc.filename is not None else None
        reason = describe_os_error(exc)
        return one_line(f"{where}: {reason}" if where is not None else reason)
    if isinstance(exc, MemoryError):
        return "out of memory (the inputs are too large for this machine)"
    if isinstance(exc, RecursionError):
        return "input nested too deeply to process"
    return one_line(
        f"unexpected {type(exc).__name__}: {exc} (this is a bug in diascan; rerun with "
        f"{DEBUG_ENV}=1 for the traceback and report it)"
    )
