"""Model packages in the meas_transiNet layout: find, load and run them.

A package is a directory with exactly one ``*.pt`` checkpoint, exactly one ``meta*.yaml`` and at
most one ``arch*.py``. The checkpoint is loaded with ``weights_only=True`` on the CPU. Known
architectures (TACCNN) are recognised from the state-dict keys and shapes and built from our own
code, so nothing from the package runs; other architectures need ``trust_model_code=True``, which
imports the package's ``arch*.py`` as the Rubin pipeline does. That includes a network that uses
TACCNN's layer names with other shapes (e.g. padded convolutions): untrusted it is refused naming
the mismatch, trusted its ``arch*.py`` builds it.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn

from diascan.errors import ModelPackageError
from diascan.models.locate import (  # noqa: F401 - bundled_models_dir: re-exported
    bundled_models_dir,
    package_dirs,
    resolve_package_path,
)
from diascan.models.taccnn import (
    ARCHITECTURE_NAME,
    TACCNN,
    ArchitectureMismatch,
    recognise_taccnn,
)
from diascan.progress import CancelToken, ProgressCallback, check, report

#: Below this many stamps, scoring runs on one thread (lower latency for a click).
SMALL_BATCH = 8

_THREADS_SET = False


def configure_threads(n: int | None = None) -> int:
    """Set torch's intra-op threads once: CPUs available to us (capped at 4), or $DIASCAN_THREADS.

    On the 2-core target machine this gives 2 threads; more threads than cores only thrash.
    ``n`` sets that many threads now, whatever was set before (a batch worker process: 1).
    """
    global _THREADS_SET
    if n is not None:
        torch.set_num_threads(max(1, int(n)))
        _THREADS_SET = True
    elif not _THREADS_SET:
        env = os.environ.get("DIASCAN_THREADS")
        try:
            n = int(env) if env else min(4, len(os.sched_getaffinity(0)))
        except (ValueError, AttributeError):
            n = min(4, os.cpu_count() or 1)
        torch.set_num_threads(max(1, n))
        _THREADS_SET = True
    return torch.get_num_threads()


# --------------------------------------------------------------------------------------------
# Reading a package
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PackageInfo:
    """What ``diascan models`` lists: metadata read without loading the weights."""

    name: str
    path: Path
    source: str
    version: str
    description: str
    architecture: str
    input_shape: tuple[int, int, int] | None = None
    error: str | None = None


def _one_file(path: Path, pattern: str, what: str, required: bool = True) -> Path | None:
    found = sorted(p for p in path.glob(pattern) if p.is_file())
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise ModelPackageError(path, f"more than one {what} ({names}); expected exactly one")
    if not found:
        if required:
            raise ModelPackageError(path, f"missing {what} ({pattern})")
        return None
    return found[0]


def _package_files(path: Path) -> tuple[Path | None, Path, Path]:
    if not path.is_dir():
        raise ModelPackageError(path, "model package directory not found")
    arch = _one_file(path, "arch*.py", "architecture file", required=False)
    ckpt = _one_file(path, "*.pt", "checkpoint")
    meta = _one_file(path, "meta*.yaml", "meta.yaml")
    return arch, ckpt, meta  # type: ignore[return-value]


def read_meta(path: Path) -> dict:
    """Parse and validate a package's meta.yaml: version, description, shape and scale factors."""
    pkg = path.parent
    try:
        meta = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ModelPackageError(pkg, f"{path.name} is not valid YAML: {exc}") from exc
    if not isinstance(meta, dict):
        raise ModelPackageError(pkg, f"{path.name} is not a mapping")
    shape = meta.get("input_shape")
    if (
        not isinstance(shape, list | tuple)
        or len(shape) != 3
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)
    ):
        raise ModelPackageError(
            pkg, f"{path.name}: input_shape must be [height, width, channels], got {shape!r}"
        )
    scale = meta.get("input_scale_factor", [1.0] * shape[2])
    try:
        scale = [float(v) for v in scale]
    except (TypeError, ValueError) as exc:
        raise ModelPackageError(pkg, f"{path.name}: bad input_scale_factor {scale!r}") from exc
    if len(scale) != shape[2]:
        raise ModelPackageError(
            pkg,
            f"{path.name}: input_scale_factor has {len(scale)} values for {shape[2]} channels",
        )
    return {
        "version": str(meta.get("version", "")),
        "description": str(meta.get("description", "")).strip(),
        "input_shape": tuple(int(v) for v in shape),
        "input_scale_factor": tuple(scale),
    }


def _load_state_dict(pkg: Path, ckpt: Path) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(ckpt, weights_only=True, map_location="cpu")
    except Exception as exc:  # torch raises many types for corrupt / non-torch files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelPackageError(pkg, f"corrupt or unreadable checkpoint {ckpt.name}: {first}") from exc
    if isinstance(obj, dict):
        for key in ("model_state_dict", "state_dict"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(
        isinstance(v, torch.Tensor) for v in obj.values()
    ):
        raise ModelPackageError(
            pkg, f"checkpoint {ckpt.name} holds no model_state_dict / state_dict of tensors"
        )
    # Checkpoints saved from nn.DataParallel prefix every key with "module.".
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return obj


def _import_arch(pkg: Path, arch: Path) -> nn.Module:
    """Import the package's arch*.py and instantiate its one nn.Module class (runs its code!)."""
    modname = f"_diascan_arch_{abs(hash(str(arch.resolve())))}"
    spec = importlib.util.spec_from_file_location(modname, arch)
    if spec is None or spec.loader is None:
        raise ModelPackageError(pkg, f"cannot import {arch.name}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(modname, None)
        raise ModelPackageError(pkg, f"importing {arch.name} failed: {exc}") from exc
    # As meas_transiNet: the one name in __all__; without __all__, the one class defined there.
    names = getattr(module, "__all__", None)
    if names is not None:
        classes = [getattr(module, n, None) for n in names]
        classes = [c for c in classes if inspect.isclass(c) and issubclass(c, nn.Module)]
        if len(names) != 1:
            classes = classes + [None]  # force the "exactly one" error below
    else:
        classes = [
            obj
            for obj in vars(module).values()
            if inspect.isclass(obj) and issubclass(obj, nn.Module) and obj.__module__ == modname
        ]
    if len(classes) != 1:
        raise ModelPackageError(
            pkg, f"{arch.name} defines {len(classes)} nn.Module classes; expected exactly one"
        )
    try:
        return classes[0]()
    except Exception as exc:
        raise ModelPackageError(pkg, f"instantiating {classes[0].__name__} failed: {exc}") from exc


def _identify(
    state: dict[str, torch.Tensor],
    shape: tuple[int, int, int],
    pkg: Path,
    arch: Path | None = None,
    trust_model_code: bool = False,
):
    """The TACCNN config of ``state``, or None when it is not a TACCNN.

    A state dict with TACCNN's layer names but shapes that do not fit TACCNN (say padded
    convolutions) is another architecture that happens to use the same names: with
    ``trust_model_code`` and an ``arch*.py`` it is left to the package's code (None); otherwise it
    is refused, naming the mismatch.
    """
    try:
        return recognise_taccnn(state, shape)
    except ArchitectureMismatch as exc:
        if trust_model_code and arch is not None:
            return None
        hint = (
            f"; if it is another architecture with TACCNN's layer names, its {arch.name} is only "
            "run with --trust-model-code"
            if arch is not None
            else ""
        )
        raise ModelPackageError(
            pkg, f"state dict does not fit the TACCNN architecture: {exc}{hint}"
        ) from exc


# --------------------------------------------------------------------------------------------
# The loaded package
# --------------------------------------------------------------------------------------------


class ModelPackage:
    """A loaded model package, ready to score ``(N, C, H, W)`` stamps."""

    def __init__(
        self,
        *,
        path: Path,
        module: nn.Module,
        version: str,
        description: str,
        architecture: str,
        input_shape: tuple[int, int, int],
        scale_factors: tuple[float, ...],
    ) -> None:
        self.path = path
        self.name = path.name
        self.module = module.eval()
        self.version = version
        self.description = description
        self.architecture = architecture
        self.input_shape = input_shape
        self.scale_factors = scale_factors

    def __repr__(self) -> str:
        return f"ModelPackage({self.name!r}, version={self.version!r}, arch={self.architecture!r})"

    @property
    def stamp_size(self) -> int:
        """Square stamp size to cut for this model (its input height)."""
        return self.input_shape[0]

    def check_stamps(self, stamps: np.ndarray) -> None:
        """Raise :class:`ModelPackageError` unless ``stamps`` is (N, C, H, W) for this model."""
        h, w, c = self.input_shape
        shape = getattr(stamps, "shape", None)
        if shape is None or len(shape) != 4 or tuple(shape[1:]) != (c, h, w):
            raise ModelPackageError(
                self.path,
                f"stamps of shape {shape} do not fit the model input (N, {c}, {h}, {w})",
            )

    def score_stamps(
        self,
        stamps: np.ndarray,
        batch_size: int = 64,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> np.ndarray:
        """Scores (N,) float32 of stamps (N, C, H, W); inference in batches, no gradients."""
        self.check_stamps(stamps)
        configure_threads()
        n = stamps.shape[0]
        out = np.empty(n, dtype=np.float32)
        if n == 0:
            return out
        batch_size = max(1, int(batch_size))
        scale = np.asarray(self.scale_factors, dtype=np.float32)
        rescale = not np.all(scale == 1.0)
        # A few stamps (a clicked source) run faster on one thread: measured 3-6 ms worst case
        # against 90-150 ms with two threads while the other core was busy.
        threads = torch.get_num_threads()
        if n < SMALL_BATCH:
            torch.set_num_threads(1)
        try:
            with torch.inference_mode():
                for start in range(0, n, batch_size):
                    check(cancel)
                    batch = np.ascontiguousarray(
                        stamps[start : start + batch_size], dtype=np.float32
                    )
                    if rescale:
                        batch = batch * scale[None, :, None, None]
                    res = self.module(torch.from_numpy(batch))
                    out[start : start + len(batch)] = res.reshape(len(batch)).float().numpy()
                    done = start + len(batch)
                    report(progress, "score", min(1.0, done / n), f"{done}/{n}")
        finally:
            if n < SMALL_BATCH:
                torch.set_num_threads(threads)
        return out


def load_model(spec: str | Path | None = None, *, trust_model_code: bool = False) -> ModelPackage:
    """Load a model package from a directory, a package name, or None (the bundled default).

    A name (no path separator) is looked up among the bundled packages, then
    ``$MEAS_TRANSINET_DIR/model_packages``. A recognised TACCNN is built from our own code; any
    other architecture, including one whose layer names are TACCNN's but whose shapes are not
    (e.g. padded convolutions), is built by importing the package's ``arch*.py`` only when
    ``trust_model_code`` is True. Raises :class:`ModelPackageError` naming the package and the
    problem.
    """
    path = resolve_package_path(spec)
    arch, ckpt, meta_path = _package_files(path)
    meta = read_meta(meta_path)
    shape = meta["input_shape"]
    state = _load_state_dict(path, ckpt)
    cfg = _identify(state, shape, path, arch, trust_model_code)
    if cfg is not None:
        module: nn.Module = TACCNN(cfg)
        architecture = ARCHITECTURE_NAME
    elif not trust_model_code:
        hint = f"; its {arch.name} is not run unless you pass --trust-model-code" if arch else ""
        raise ModelPackageError(path, f"unknown model architecture (not TACCNN){hint}")
    elif arch is None:
        raise ModelPackageError(path, "unknown model architecture and no arch*.py to build it")
    else:
        module = _import_arch(path, arch)
        architecture = f"{type(module).__name__} (from {arch.name})"
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(line.strip() for line in first[:3])
        raise ModelPackageError(path, f"state dict does not fit the architecture: {detail}") from exc
    return ModelPackage(
        path=path,
        module=module,
        version=meta["version"],
        description=meta["description"],
        architecture=architecture,
        input_shape=shape,
        scale_factors=meta["input_scale_factor"],
    )


def package_info(path: Path, source: str = "path") -> PackageInfo:
    """Read a package's metadata and recognise its architecture without building the model."""
    path = Path(path)
    try:
        arch, ckpt, meta_path = _package_files(path)
        meta = read_meta(meta_path)
        state = _load_state_dict(path, ckpt)
        # With an arch*.py, TACCNN names on other shapes may be another architecture: listed as
        # unknown (loading it untrusted still names the mismatch).
        cfg = _identify(state, meta["input_shape"], path, arch, trust_model_code=True)
        if cfg is not None:
            architecture = ARCHITECTURE_NAME
        else:
            architecture = f"unknown ({arch.name}, needs --trust-model-code)" if arch else "unknown"
        return PackageInfo(
            name=path.name,
            path=path,
            source=source,
            version=meta["version"],
            description=meta["description"],
            architecture=architecture,
            input_shape=meta["input_shape"],
        )
    except ModelPackageError as exc:
        return PackageInfo(
            name=path.name, path=path, source=source, version="", description="",
            architecture="", error=exc.problem,
        )


def find_model_packages(extra_paths=()) -> list[PackageInfo]:
    """Packages found in the bundled folder, ``$MEAS_TRANSINET_DIR/model_packages`` and
    ``extra_paths`` (each a package directory or a folder of packages), each inspected: metadata
    read and the checkpoint's architecture recognised (see :func:`package_info`)."""
    return [package_info(pkg, source) for pkg, source in package_dirs(extra_paths)]
