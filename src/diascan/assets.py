"""Where the files shipped beside the code are: icons, the desktop entry, bundled models."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent
#: Where a wheel installs the top-level resources/ (and models/, as resources/models).
INSTALLED_RESOURCES = _HERE / "resources"


def repo_dir(name: str) -> Path | None:
    """``<repo>/<name>`` for a clone or an editable install (found by walking up)."""
    for parent in _HERE.parents:
        if (parent / "pyproject.toml").is_file() and (parent / name).is_dir():
            return parent / name
    return None


def resources_dir() -> Path | None:
    """The ``resources`` folder: package data of a wheel, else the repository's."""
    if (INSTALLED_RESOURCES / "diascan.svg").is_file():
        return INSTALLED_RESOURCES
    return repo_dir("resources")


def resource_path(name: str) -> Path | None:
    """Path of one shipped resource file, or None when it is not there."""
    folder = resources_dir()
    if folder is None or not (folder / name).is_file():
        return None
    return folder / name
