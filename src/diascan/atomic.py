"""Atomic file writes: never a partial file, the previous file kept when a write fails.

Every file diascan writes (session files, tables, exports, region files, preferences) goes
through :func:`atomic_write`: the content is written to a new temporary file in the target's
folder, flushed and ``fsync``-ed, then moved over the target with :func:`os.replace` and the
folder is ``fsync``-ed. A crash, a kill, a full disk (``ENOSPC``), a file-size limit
(``EFBIG``) or a folder that turned read-only at any moment leaves either the previous or the
new file, never a broken one; the temporary file is removed and the ``OSError`` re-raised for
the caller to word.

Permissions: a file that already exists keeps its permission bits (and, where allowed, its
group), so a shared ``0664`` session stays ``0664``; a new file gets ``0666`` less the umask,
like any file the user creates. A symbolic link is followed: the file it points to is replaced
and the link stays a link.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import uuid
from collections.abc import Callable
from pathlib import Path


def _target(path: Path) -> Path:
    """The file to replace: ``path``, or what it points to when it is a symbolic link."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def atomic_write(path: str | Path, write: Callable[[Path], None], *, fsync: bool = True) -> Path:
    """Replace ``path`` with what ``write(tmp)`` writes into the temporary file ``tmp``.

    ``write`` receives the path of an empty, already created file in the same folder (library
    writers such as ``pyarrow.parquet.write_table`` or astropy's ``Table.write(...,
    overwrite=True)`` take a path). Returns the path written (the link target for a symbolic
    link). Raises the ``OSError`` of a failed write after removing the temporary file.
    """
    target = _target(Path(path))
    folder = target.parent if str(target.parent) else Path(".")
    try:
        old = os.stat(target)
    except FileNotFoundError:
        old = None
    if old is not None and stat.S_ISDIR(old.st_mode):
        raise IsADirectoryError(errno.EISDIR, "Is a directory", str(target))
    if old is not None and not stat.S_ISREG(old.st_mode):  # never replace a device or a pipe
        raise OSError(errno.EINVAL, "not a regular file (a device, pipe or socket)", str(target))
    tmp = folder / f".{target.name}.{uuid.uuid4().hex[:12]}.tmp"
    # O_EXCL: never follow or reuse an existing name; 0o666 lets the kernel apply the umask.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        mode = stat.S_IMODE(old.st_mode) if old is not None else stat.S_IMODE(os.fstat(fd).st_mode)
        if old is not None and os.name == "posix":
            with contextlib.suppress(OSError):  # keep the group of a shared file if we may
                os.fchown(fd, -1, old.st_gid)
        os.close(fd)
        fd = -1
        write(tmp)
        # The writer may have recreated the file (astropy's overwrite): set the mode again.
        os.chmod(tmp, mode)
        if fsync:
            _fsync_file(tmp)
        os.replace(tmp, target)
    except BaseException:
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if fsync:  # the new file is in place; a folder that cannot be synced does not undo that
        with contextlib.suppress(OSError):
            _fsync_dir(folder)
    return target


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Replace ``path`` with the UTF-8 ``text`` atomically (see :func:`atomic_write`)."""

    def write(tmp: Path) -> None:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_TRUNC), "w", encoding="utf-8",
                       newline="\n") as fh:  # fmt: skip
            fh.write(text)
            fh.flush()

    return atomic_write(path, write)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    if os.name != "posix":  # directories cannot be opened for fsync on Windows
        return
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


__all__ = ["atomic_write", "atomic_write_text"]
