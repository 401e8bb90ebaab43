"""Inputs are sacred: the one check every writer makes before it writes anything.

An output path (``diascan score --out``, an export, a session file, the results cache, the
demo folder) must never be, or contain, a file the same run reads. "Is the same file" means any
of: the same path after ``..`` and symbolic links are resolved (:func:`os.path.realpath`), or
the same file on disk (equal ``st_dev``/``st_ino``: a hard link or a bind mount). The check is
made with or without ``--overwrite``: overwriting is for earlier *outputs*, never for inputs.

Inputs are given as plain paths or as ``(role, path)`` pairs (the role names the input in the
message: ``"science image"``); ``None`` entries are skipped, so callers can pass optional roles
as they are.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from diascan.errors import OutputError

PathLike = str | os.PathLike
Input = PathLike | tuple[str, PathLike | None] | None


def _pairs(inputs: Iterable[Input]) -> list[tuple[str, Path]]:
    out = []
    for item in inputs:
        if item is None:
            continue
        role, path = item if isinstance(item, tuple) else ("input file", item)
        if path is not None:
            out.append((role, Path(path)))
    return out


def _real(path: Path) -> str:
    return os.path.realpath(os.path.expanduser(os.fspath(path)))


def _stat(path: Path | str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except (OSError, ValueError):  # missing, unreadable, or a NUL in the name
        return None


def same_file(a: PathLike, b: PathLike) -> bool:
    """True when ``a`` and ``b`` name one file: equal real paths, or equal device and inode."""
    if _real(Path(a)) == _real(Path(b)):
        return True
    sa, sb = _stat(a), _stat(b)
    return sa is not None and sb is not None and os.path.samestat(sa, sb)


def check_output_path(out: PathLike, inputs: Iterable[Input], what: str = "output") -> None:
    """Raise :class:`~diascan.errors.OutputError` when ``out`` resolves to one of ``inputs``.

    ``what`` names the output in the message (``"--out"``, ``"session file"``...).
    """
    out = Path(out)
    for role, path in _pairs(inputs):
        if same_file(out, path):
            shown = "" if _real(out) == _real(path) else f" ({path})"
            raise OutputError(
                out,
                f"this {what} is the {role}{shown}; diascan never writes over an input file "
                "(choose another name)",
            )


def check_output_folder(folder: PathLike, inputs: Iterable[Input], what: str = "output folder"
                        ) -> None:  # fmt: skip
    """Raise :class:`~diascan.errors.OutputError` when an input lies in ``folder`` (at any
    depth, after resolving links) or is ``folder`` itself: a writer that replaces or deletes
    files in a folder must not own one of the inputs."""
    folder = Path(folder)
    root = _real(folder)
    root_stat = _stat(folder)
    for role, path in _pairs(inputs):
        real = _real(path)
        inside = real == root or real.startswith(root.rstrip(os.sep) + os.sep)
        if not inside and root_stat is not None:  # a bind mount or hard-linked folder
            parent_stat = _stat(os.path.dirname(real))
            inside = parent_stat is not None and os.path.samestat(parent_stat, root_stat)
        if inside:
            raise OutputError(
                folder,
                f"this {what} holds the {role} {path}; diascan never writes over or deletes an "
                "input file (choose another folder)",
            )


__all__ = ["check_output_folder", "check_output_path", "same_file"]
