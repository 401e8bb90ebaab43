"""Error types shared by the whole core.

Every error a user can cause with bad input derives from :class:`InputError`; it names the file
and the problem in one line so the GUI can show it in a dialog and the CLI can print it and exit
with code 2.
"""

from __future__ import annotations

from pathlib import Path


class DiascanError(Exception):
    """Base class of all diascan errors."""


class InputError(DiascanError):
    """Bad input from the user: a file that is missing, unreadable or not what was expected."""

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = None if path is None else Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path is not None else problem)


class ImageReadError(InputError):
    """An image file that cannot be read as a science, template or difference image."""


class CatalogReadError(InputError):
    """A source catalog that cannot be read or lacks required columns."""


class ModelPackageError(InputError):
    """A model package that is incomplete, corrupt or does not fit its architecture."""


class SessionError(InputError):
    """A session file that cannot be read or written."""


class Cancelled(DiascanError):
    """Raised inside long work when the user cancelled it."""
