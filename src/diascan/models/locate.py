"""Where model packages are: the bundled folder, the user's (fine-tuned) models,
``$MEAS_TRANSINET_DIR``, ``$DIASCAN_MODEL_PATH``, paths (no torch).

``$DIASCAN_MODEL_PATH`` is a search path (folders separated by ``os.pathsep``, each a package or a
folder of packages) for models that cannot be bundled, such as ZTF's braai Keras files: a folder
holding ``d6_m7.h5`` is a package as much as a meas_transiNet one (:mod:`diascan.models.keras_h5`).

Kept apart from :mod:`diascan.models.package` so that listing packages (the viewer's model
switcher at start-up) does not import torch, which takes ~1 s.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from diascan.assets import INSTALLED_RESOURCES, repo_dir
from diascan.errors import ModelPackageError
from diascan.models.keras_h5 import find_keras_files

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


def search_path_dirs() -> list[Path]:
    """The folders of ``$DIASCAN_MODEL_PATH`` (``os.pathsep``-separated), in order."""
    env = os.environ.get("DIASCAN_MODEL_PATH", "")
    return [Path(p).expanduser() for p in env.split(os.pathsep) if p]


def _is_keras(path: Path) -> bool:
    try:
        return find_keras_files(path) is not None
    except ModelPackageError:  # several models in one folder: a (broken) package all the same
        return True


#: Members of a Butler ``pretrainedModelPackage`` zip (rubin-formats.md section 3).
ZIP_MEMBERS = ("checkpoint", "architecture", "metadata")


def is_package_zip(path: Path) -> bool:
    """A ``.zip`` file holding (at least) the ``checkpoint`` and ``metadata`` members of a Butler
    model package (only the zip directory is read)."""
    if path.suffix.lower() != ".zip" or not path.is_file():
        return False
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
    except (OSError, zipfile.BadZipFile, ValueError):
        return False
    return {"checkpoint", "metadata"} <= names


def user_models_dir() -> Path:
    """``$XDG_DATA_HOME/diascan/models`` (default ``~/.local/share/diascan/models``): where
    ``diascan train --from-sessions`` puts the packages it makes unless told otherwise; listed
    as source "user" and searched by name (not created here)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "diascan" / "models"


def looks_like_package(path: Path) -> bool:
    """A folder with a ``*.pt`` checkpoint and a ``meta*.yaml``, a Butler package zip, or a Keras
    model (a ``.h5`` file or a folder holding one); not checked further."""
    if path.is_dir() and any(path.glob("*.pt")) and any(path.glob("meta*.yaml")):
        return True
    return is_package_zip(path) or _is_keras(path)


def package_name(path: Path) -> str:
    """A package's name: its folder's name, or the zip file's name without ``.zip``."""
    return path.stem if path.suffix.lower() == ".zip" and path.is_file() else path.name


def resolve_package_path(spec: str | Path | None) -> Path:
    """Directory (or Butler ``.zip``) of a package given a path, a name, or None (the bundled
    default).

    A spec with a path separator (``/abs/pkg``, ``./pkg``, ``~/pkg``) is a path only (a folder, a
    Butler zip or a Keras ``.h5`` file); a bare name that is not an existing directory or zip is
    looked up (as ``NAME/`` or ``NAME.zip``) in the bundled folder, the user models folder
    (:func:`user_models_dir`), ``$MEAS_TRANSINET_DIR/model_packages``, then the folders of
    ``$DIASCAN_MODEL_PATH``.
    """
    if spec is None:
        spec = DEFAULT_MODEL_NAME
    path = Path(spec).expanduser()
    if path.is_dir() or (path.is_file() and _is_keras(path)):
        return path
    if path.exists():
        if path.suffix.lower() == ".zip":
            return path  # a Butler package zip: its members are checked when it is read
        raise ModelPackageError(
            path, "is not a directory or a .zip (a model package is a folder or a Butler zip)"
        )
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
    candidates.extend(folder / name for folder in search_path_dirs())
    for cand in candidates:
        if cand.is_dir():
            return cand
        if is_package_zip(cand.with_name(cand.name + ".zip")):
            return cand.with_name(cand.name + ".zip")
    where = ", ".join(str(c.parent) for c in candidates) or "nowhere (no bundled models folder)"
    raise ModelPackageError(
        path, f"no such model package (no directory of that name here, nor in {where})"
    )


def package_files(path: str | Path) -> list[Path]:
    """The files a resolved package is made of: a folder's files (sorted by name), or the
    Butler ``.zip`` / Keras ``.h5`` file itself. What a run reads (never an output) and what
    identifies the model by content (a batch's resume key)."""
    path = Path(path)
    if path.is_dir():
        return sorted(f for f in path.iterdir() if f.is_file())
    return [path]


def package_dirs(extra_paths=()) -> list[tuple[Path, str]]:
    """``(package folder or file, source)`` of the packages in the bundled folder, the user
    models folder, ``$MEAS_TRANSINET_DIR/model_packages``, ``$DIASCAN_MODEL_PATH`` and
    ``extra_paths`` (each a package directory, a Butler package ``.zip``, a Keras ``.h5`` file or
    a folder of them), each once, in that order. Raises ModelPackageError for an extra path that
    is none of these."""
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
    for folder in search_path_dirs():
        scan(folder, "DIASCAN_MODEL_PATH")
    for p in extra_paths:
        p = Path(p)
        if p.is_file() and (p.suffix.lower() == ".zip" or _is_keras(p)):
            add(p, "path")  # a package zip, even a broken one: listing it shows the problem
            continue
        if not p.is_dir():
            raise ModelPackageError(p, "not a directory or a .zip model package")
        if looks_like_package(p) or any(p.glob("meta*.yaml")) or any(p.glob("*.pt")):
            add(p, "path")
        else:
            scan(p, "path")
    return out


def model_choices(model: str | Path | None = None) -> tuple[dict[str, Path | str], str | None]:
    """The viewer's model switcher: name -> package path (or name), and the name to select.

    The packages ``diascan models`` finds, ``model`` (``--model``: a path or a name) first when
    given. Only folders are looked at (no torch import, no checkpoint read: this runs before
    the window shows); a broken package is reported when it is loaded for scoring.
    """
    specs: dict[str, Path | str] = {}
    for path, _source in package_dirs():
        specs.setdefault(package_name(path), path)
    default = DEFAULT_MODEL_NAME if DEFAULT_MODEL_NAME in specs else next(iter(specs), None)
    if model:
        p = Path(model)
        key = package_name(p) if p.exists() else str(model)
        specs = {key: p if p.exists() else str(model), **specs}
        default = next(iter(specs))
    return specs, default
