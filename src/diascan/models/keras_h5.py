"""Keras HDF5 model files (ZTF's braai ships as these), found and read with h5py (no torch, no
TensorFlow).

A Keras model package is a folder (or the ``.h5`` file itself) holding either a whole-model file
``NAME.h5`` (architecture in its ``model_config`` attribute, weights under ``model_weights``) or a
weights file ``NAME.weights.h5`` with ``NAME.architecture.json`` beside it, in the Keras 2
("h5") layout: one group per layer, its arrays listed in order by the ``weight_names`` attribute.
When both are present the whole-model file is used. A folder with several models is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from diascan.errors import ModelPackageError

_WEIGHTS_SUFFIX = ".weights.h5"
_ARCH_SUFFIX = ".architecture.json"


@dataclass(frozen=True)
class KerasFiles:
    """The files of one Keras model: ``weights`` (an HDF5 file) and, for a weights-only file, its
    ``architecture`` JSON (None: the architecture is inside ``weights``)."""

    name: str
    weights: Path
    architecture: Path | None


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (_WEIGHTS_SUFFIX, _ARCH_SUFFIX, ".h5"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _from_file(path: Path) -> KerasFiles:
    stem = _stem(path)
    if path.name.endswith(_WEIGHTS_SUFFIX):
        arch = path.with_name(stem + _ARCH_SUFFIX)
        if not arch.is_file():
            raise ModelPackageError(path, f"weights-only Keras file without {arch.name} beside it")
        return KerasFiles(stem, path, arch)
    return KerasFiles(stem, path, None)


def find_keras_files(path: Path) -> KerasFiles | None:
    """The Keras model of ``path`` (a ``.h5`` file or a folder holding one), None when there is
    none. Raises :class:`ModelPackageError` for a folder with several models."""
    path = Path(path)
    if path.is_file():
        return _from_file(path) if path.name.endswith(".h5") else None
    if not path.is_dir():
        return None
    files = sorted(p for p in path.glob("*.h5") if p.is_file())
    if not files:
        return None
    stems = sorted({_stem(p) for p in files})
    if len(stems) > 1:
        raise ModelPackageError(
            path, f"more than one Keras model ({', '.join(stems)}); expected exactly one"
        )
    whole = [p for p in files if not p.name.endswith(_WEIGHTS_SUFFIX)]
    return _from_file(whole[0] if whole else files[0])


def _h5py():
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - h5py is a dependency
        raise ModelPackageError(None, "reading Keras models needs h5py (pip install h5py)") from exc
    return h5py


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def read_keras_config(files: KerasFiles) -> dict:
    """The model's architecture (the Keras ``model_config`` JSON) as a dict."""
    try:
        if files.architecture is not None:
            return json.loads(files.architecture.read_text())
        with _h5py().File(files.weights, "r") as h5:
            config = h5.attrs.get("model_config")
            if config is None:
                raise ModelPackageError(
                    files.weights, "HDF5 file has no model_config (a weights-only Keras file?)"
                )
            return json.loads(_text(config))
    except ModelPackageError:
        raise
    except (OSError, ValueError) as exc:  # unreadable HDF5, bad JSON
        where = files.architecture or files.weights
        raise ModelPackageError(where, f"cannot read the Keras model: {exc}") from exc


def read_keras_weights(files: KerasFiles) -> dict[str, list[np.ndarray]]:
    """Layer name -> its weight arrays in Keras order (e.g. ``[kernel, bias]``)."""
    h5py = _h5py()
    try:
        with h5py.File(files.weights, "r") as h5:
            root = h5.get("model_weights", h5)
            names = root.attrs.get("layer_names")
            if names is None:
                raise ModelPackageError(
                    files.weights,
                    "not a Keras 2 HDF5 weights layout (no layer_names attribute)",
                )
            out: dict[str, list[np.ndarray]] = {}
            for layer in (_text(n) for n in names):
                group = root[layer]
                arrays = [np.asarray(group[_text(w)]) for w in group.attrs.get("weight_names", [])]
                out[layer] = arrays
            return out
    except ModelPackageError:
        raise
    except (OSError, KeyError, ValueError) as exc:
        raise ModelPackageError(files.weights, f"cannot read the Keras weights: {exc}") from exc


__all__ = ["KerasFiles", "find_keras_files", "read_keras_config", "read_keras_weights"]
