"""Reliability models: meas_transiNet model packages, loaded safely and run on stamps (Qt-free).

Locating packages (:mod:`diascan.models.locate`) needs no torch; everything else is imported on
first use (PEP 562 ``__getattr__``), so ``import diascan.models`` does not cost torch's ~1 s
import where only package names are needed.
"""

from __future__ import annotations

import importlib
from typing import Any

from diascan.models.locate import (
    DEFAULT_MODEL_NAME,
    bundled_models_dir,
    package_dirs,
    resolve_package_path,
)

#: Public names imported from :mod:`diascan.models.package` on first use.
_FROM_PACKAGE = ("ModelPackage", "PackageInfo", "configure_threads", "find_model_packages",
                 "load_model")

__all__ = [
    "DEFAULT_MODEL_NAME",
    "ModelPackage",
    "PackageInfo",
    "bundled_models_dir",
    "configure_threads",
    "find_model_packages",
    "load_model",
    "package_dirs",
    "resolve_package_path",
]


def __getattr__(name: str) -> Any:
    if name in _FROM_PACKAGE:
        return getattr(importlib.import_module("diascan.models.package"), name)
    raise AttributeError(f"module 'diascan.models' has no attribute {name!r}")
