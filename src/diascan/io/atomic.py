"""Writing a file atomically: into a hidden temporary sibling, then renamed over the target.

One definition for every writer (tables, images, batch outputs). The temporary name starts with
a dot and is unique per write, so two processes writing the same file never share a temporary
file, and a write killed half-way leaves only a hidden ``.NAME.<random>.part`` that dataset
readers (pyarrow, Dask) skip and :func:`remove_partial_files` cleans up.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

#: Suffix of the temporary files (after the dot-prefixed target name and a random part).
PART_SUFFIX = ".part"


def _partial_path(path: Path) -> Path:
    """A fresh hidden temporary path beside ``path``."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}{PART_SUFFIX}")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` in one rename.

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _partial_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def remove_partial_files(folder: str | Path) -> int:
    """Delete the temporary files that killed writes left under ``folder`` (none when it does
    not exist); returns how many."""
    n = 0
    for p in Path(folder).rglob(f".*{PART_SUFFIX}"):
        if p.is_file():
            with contextlib.suppress(OSError):
                p.unlink()
                n += 1
    return n


__all__ = ["PART_SUFFIX", "atomic_path", "remove_partial_files"]
