"""Where model packages are: the bundled folder, the user's (fine-tuned) models,
``$MEAS_TRANSINET_DIR``, paths (no torch).

Kept apart from :mod:`diascan.models.package` so that listing packages (the viewer's model
switcher at start-up) does not import torch, which takes ~1 s.
"""

from __future__ import annotations

import os
from pathlib import Path

from diascan.assets import INSTALLED_RESOURCES, repo_dir
from diascan.errors import ModelPackageError

#: Name of the bundled default model package (in the repository's ``models/`` folder).
DEFAULT_MODEL_NAME = "diascan_taccnn_sim_v1"


def bundled_models_dir() -> Path | None:
    """The folder of bundled model packages.

    ``$DIASCAN_MODELS_DIR`` if set; else package data ``diascan/resources/models`` (a wheel);
    else ``<repo>/models`` found by walking up from this file (editable install or clone).
    """
    env = os.environ.get("DIASCAN_MODELS_DIR")
    if env:
        return Path(env)
    installed = INSTALLED_RESOURCES / "models"
    return installed if installed.is_dir() else repo_dir("models")


def transinet_packages_dir() -> Path | None:
    """``$MEAS_TRANSINET_DIR/model_packages`` if the variable is set."""
    env = os.environ.get("MEAS_TRANSINET_DIR")
    return Path(env) / "model_packages" if env else None


def user_models_dir() -> Path:
    """``$XDG_DATA_HOME/diascan/models`` (default ``~/.local/share/diascan/models``): where
    ``diascan train --from-sessions`` puts the packages it makes unless told otherwise; listed
    as source "user" and searched by name (not created here)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "diascan" / "models"


def looks_like_package(path: Path) -> bool:
    """A folder with a ``*.pt`` checkpoint and a ``meta*.yaml`` (not checked further)."""
    return path.is_dir() and any(path.glob("*.pt")) and any(path.glob("meta*.yaml"))


def resolve_package_path(spec: str | Path | None) -> Path:
    """Directory of a package given a path, a name, or None (the bundled default).

    A spec with a path separator (``/abs/pkg``, ``./pkg``, ``~/pkg``) is a path only; a bare name
    that is not an existing directory is looked up in the bundled folder, the user models folder
    (:func:`user_models_dir`), then ``$MEAS_TRANSINET_DIR/model_packages``.
    """
    if spec is None:
        spec = DEFAULT_MODEL_NAME
    path = Path(spec).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ModelPackageError(path, "is not a directory (a model package is a folder)")
    name = str(spec)
    if any(sep and sep in name for sep in (os.sep, os.altsep, "/")) or name.startswith("~"):
        raise ModelPackageError(path, "no such model package directory")
    candidates = []
    bundled = bundled_models_dir()
    if bundled is not None:
        candidates.append(bundled / name)
    candidates.append(user_models_dir() / name)
    transinet = transinet_packages_dir()
    if transinet is not None:
        candidates.append(transinet / name)
    for cand in candidates:
        if cand.is_dir():
            return cand
    where = ", ".join(str(c.parent) for c in candidates) or "nowhere (no bundled models folder)"
    raise ModelPackageError(
        path, f"no such model package (no directory of that name here, nor in {where})"
    )


def package_dirs(extra_paths=()) -> list[tuple[Path, str]]:
    """``(package folder, source)`` of the packages in the bundled folder, the user models
    folder, ``$MEAS_TRANSINET_DIR/model_packages`` and ``extra_paths`` (each a package directory or a
    folder of packages), each once, in that order. Raises ModelPackageError for an extra path
    that is not a directory."""
    out: list[tuple[Path, str]] = []
    seen: set[Path] = set()

    def add(pkg: Path, source: str) -> None:
        key = pkg.resolve()
        if key not in seen:
            seen.add(key)
            out.append((pkg, source))

    def scan(folder: Path | None, source: str) -> None:
        if folder is None or not folder.is_dir():
            return
        if looks_like_package(folder):
            add(folder, source)
            return
        for sub in sorted(folder.iterdir()):
            if looks_like_package(sub):
                add(sub, source)

    scan(bundled_models_dir(), "bundled")
    scan(user_models_dir(), "user")
    scan(transinet_packages_dir(), "MEAS_TRANSINET_DIR")
    for p in extra_paths:
        p = Path(p)
        if not p.is_dir():
            raise ModelPackageError(p, "not a directory")
        if looks_like_package(p) or any(p.glob("meta*.yaml")) or any(p.glob("*.pt")):
            add(p, "path")
        else:
            scan(p, "path")
    return out
