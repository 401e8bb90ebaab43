"""Reliability models: meas_transiNet model packages, loaded safely and run on stamps (Qt-free)."""

from diascan.models.package import (
    DEFAULT_MODEL_NAME,
    ModelPackage,
    PackageInfo,
    bundled_models_dir,
    configure_threads,
    find_model_packages,
    load_model,
)

__all__ = [
    "DEFAULT_MODEL_NAME",
    "ModelPackage",
    "PackageInfo",
    "bundled_models_dir",
    "configure_threads",
    "find_model_packages",
    "load_model",
]
