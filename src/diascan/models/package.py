"""Model packages in the meas_transiNet layout: find, load and run them.

A package is a directory with exactly one ``*.pt`` checkpoint, exactly one ``meta*.yaml`` and at
most one ``arch*.py``, or the ``.zip`` a Butler gives for a ``pretrainedModelPackage`` dataset
(members ``checkpoint``, ``architecture`` and ``metadata``, each read up to a size limit), under
the same rules. meta.yaml's ``input_scale_factor`` is read but never applied, as in the Rubin
pipeline. The checkpoint is loaded with ``weights_only=True`` on the CPU. Known
architectures (TACCNN) are recognised from the state-dict keys and shapes and built from our own
code, so nothing from the package runs; other architectures need ``trust_model_code=True``, which
imports the package's ``arch*.py`` as the Rubin pipeline does. That includes a network that uses
TACCNN's layer names with other shapes (e.g. padded convolutions): untrusted it is refused naming
the mismatch, trusted its ``arch*.py`` builds it.

A folder holding a Keras HDF5 model (or the ``.h5`` file) is a package too: ZTF's braai, built
in torch by :mod:`diascan.models.braai`. Every package has an input spec (stamp size, channel
order, preprocessing: :mod:`diascan.models.inputs`) from which scoring cuts its stamps.
"""

from __future__ import annotations

import importlib.util
import inspect
import io
import os
import sys
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from diascan.errors import ModelPackageError, describe_os_error
from diascan.models.inputs import InputSpec, rubin_spec
from diascan.models.keras_h5 import find_keras_files
from diascan.models.locate import (  # noqa: F401 - bundled_models_dir: re-exported
    bundled_models_dir,
    package_dirs,
    package_name,
    resolve_package_path,
)
from diascan.models.taccnn import (
    ARCHITECTURE_NAME,
    TACCNN,
    ArchitectureMismatch,
    recognise_taccnn,
)
from diascan.progress import CancelToken, ProgressCallback, check, report
from diascan.safe_yaml import MAX_YAML_BYTES, UnsafeYAMLError, load_yaml

#: Largest stamp side and channel count a meta.yaml may ask for (Rubin's are 51 x 51 x 3).
MAX_STAMP_SIZE = 512
MAX_CHANNELS = 16

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
    #: Stamp size, channel order and preprocessing (see :mod:`diascan.models.inputs`).
    input_spec: InputSpec | None = None
    #: meta.yaml ``input_scale_factor``: read, reported, never applied (as the Rubin pipeline)
    scale_factors: tuple[float, ...] | None = None


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


#: Largest member of a Butler package zip read (bytes): the checkpoint, its arch.py source and
#: its meta.yaml text (a DP1 checkpoint is under 1 MB; a zip bomb stops at the limit).
ZIP_LIMITS = {"checkpoint": 512 * 1024**2, "architecture": 1024**2, "metadata": MAX_YAML_BYTES}


@dataclass
class _Contents:
    """The three parts of a package, from a folder or a Butler zip."""

    checkpoint: Path | bytes
    checkpoint_name: str
    meta_text: str
    meta_name: str
    arch_source: str | None
    arch_name: str | None


def _text(pkg: Path, name: str, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelPackageError(pkg, f"{name} is not UTF-8 text ({exc})") from exc


def _zip_contents(path: Path) -> _Contents:
    """Members ``checkpoint``, ``metadata`` and (optional) ``architecture`` of a Butler
    ``pretrainedModelPackage`` zip, each read up to its :data:`ZIP_LIMITS` size."""
    members: dict[str, bytes] = {}
    try:
        with zipfile.ZipFile(path) as zf:
            infos = {i.filename: i for i in zf.infolist()}
            if len(infos) > 100:
                raise ModelPackageError(path, f"zip holds {len(infos)} members, not a package")
            for name, limit in ZIP_LIMITS.items():
                info = infos.get(name)
                if info is None:
                    continue
                if info.file_size > limit:
                    raise ModelPackageError(
                        path, f"zip member {name} is {info.file_size} bytes (limit {limit})"
                    )
                with zf.open(info) as fh:
                    raw = fh.read(limit + 1)
                if len(raw) > limit:
                    raise ModelPackageError(path, f"zip member {name} is larger than {limit} bytes")
                members[name] = raw
    except ModelPackageError:
        raise
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError,
            NotImplementedError, RuntimeError, zlib.error) as exc:  # fmt: skip
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelPackageError(path, f"not a readable model package zip: {first}") from exc
    for name in ("checkpoint", "metadata"):
        if name not in members:
            raise ModelPackageError(
                path, f"zip has no member {name!r} (a Butler model package holds checkpoint, "
                "architecture and metadata)",
            )  # fmt: skip
    arch = members.get("architecture")
    return _Contents(
        checkpoint=members["checkpoint"],
        checkpoint_name="checkpoint",
        meta_text=_text(path, "metadata", members["metadata"]),
        meta_name="metadata",
        arch_source=None if arch is None else _text(path, "architecture", arch),
        arch_name=None if arch is None else "architecture",
    )


def _package_contents(path: Path) -> _Contents:
    if path.is_file() and path.suffix.lower() == ".zip":
        return _zip_contents(path)
    if not path.is_dir():
        raise ModelPackageError(path, "model package directory not found")
    arch = _one_file(path, "arch*.py", "architecture file", required=False)
    ckpt = _one_file(path, "*.pt", "checkpoint")
    meta = _one_file(path, "meta*.yaml", "meta.yaml")
    assert ckpt is not None and meta is not None  # required=True
    try:
        meta_text = _meta_text(path, meta)
        arch_source = arch.read_text() if arch is not None else None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelPackageError(path, f"cannot read the package files: {exc}") from exc
    return _Contents(
        checkpoint=ckpt,
        checkpoint_name=ckpt.name,
        meta_text=meta_text,
        meta_name=meta.name,
        arch_source=arch_source,
        arch_name=arch.name if arch is not None else None,
    )


def read_meta(path: Path) -> dict:
    """Parse and validate a package's meta.yaml: version, description, shape and scale factors."""
    try:
        text = _meta_text(path.parent, path)
    except OSError as exc:
        raise ModelPackageError(path.parent, f"{path.name}: {describe_os_error(exc)}") from None
    return parse_meta(path.parent, path.name, text)


def _meta_text(pkg: Path, path: Path) -> str:
    """A meta.yaml file's text, refused before reading when larger than YAML may be here."""
    size = path.stat().st_size
    if size > MAX_YAML_BYTES:
        raise ModelPackageError(
            pkg, f"{path.name} is {size} bytes, more than the {MAX_YAML_BYTES // 1024} kB a "
            "meta.yaml may have",
        )  # fmt: skip
    return _text(pkg, path.name, path.read_bytes())


def parse_meta(pkg: Path, name: str, text: str) -> dict:
    """Validate the meta.yaml ``text`` of package ``pkg`` (``name`` = its file or member name).

    ``input_scale_factor`` is read and checked but, as in the Rubin pipeline (meas_transiNet
    reads it and never applies it), never applied to the stamps.
    """
    try:  # untrusted text: size-capped, no alias expansion ("billion laughs")
        meta = load_yaml(text)
    except UnsafeYAMLError as exc:
        raise ModelPackageError(pkg, f"{name} is not valid YAML: {exc}") from None
    if not isinstance(meta, dict):
        raise ModelPackageError(pkg, f"{name} is not a mapping")
    shape = meta.get("input_shape")
    if (
        not isinstance(shape, list | tuple)
        or len(shape) != 3
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)
        or max(shape[:2]) > MAX_STAMP_SIZE or shape[2] > MAX_CHANNELS
    ):
        raise ModelPackageError(
            pkg, f"{name}: input_shape must be [height, width, channels] (at most "
            f"{MAX_STAMP_SIZE} x {MAX_STAMP_SIZE} x {MAX_CHANNELS}), got {shape!r}",
        )  # fmt: skip
    scale = meta.get("input_scale_factor", [1.0] * shape[2])
    try:
        scale = [float(v) for v in scale]
        if not all(np.isfinite(scale)):
            raise ValueError("not finite")
    except (TypeError, ValueError, OverflowError) as exc:
        raise ModelPackageError(pkg, f"{name}: bad input_scale_factor {scale!r}") from exc
    if len(scale) != shape[2]:
        raise ModelPackageError(
            pkg,
            f"{name}: input_scale_factor has {len(scale)} values for {shape[2]} channels",
        )
    return {
        "version": str(meta.get("version", "")),
        "description": str(meta.get("description", "")).strip(),
        "input_shape": tuple(int(v) for v in shape),
        "input_scale_factor": tuple(scale),
    }


def _load_state_dict(pkg: Path, ckpt: Path | bytes, ckpt_name: str) -> dict[str, torch.Tensor]:
    source = io.BytesIO(ckpt) if isinstance(ckpt, bytes) else ckpt
    try:
        obj = torch.load(source, weights_only=True, map_location="cpu")
    except Exception as exc:  # torch raises many types for corrupt / non-torch files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelPackageError(pkg, f"corrupt or unreadable checkpoint {ckpt_name}: {first}") from exc
    if isinstance(obj, dict):
        for key in ("model_state_dict", "state_dict"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(
        isinstance(v, torch.Tensor) for v in obj.values()
    ):
        raise ModelPackageError(
            pkg, f"checkpoint {ckpt_name} holds no model_state_dict / state_dict of tensors"
        )
    # Checkpoints saved from nn.DataParallel prefix every key with "module.".
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return obj


def _import_arch(pkg: Path, arch_name: str, source: str) -> nn.Module:
    """Run the package's arch*.py ``source`` as a module and instantiate its one nn.Module class
    (runs its code!)."""
    modname = f"_diascan_arch_{abs(hash(str(pkg.resolve()) + arch_name))}"
    spec = importlib.util.spec_from_loader(modname, loader=None, origin=str(pkg / arch_name))
    if spec is None:
        raise ModelPackageError(pkg, f"cannot import {arch_name}")
    module = importlib.util.module_from_spec(spec)
    module.__file__ = str(pkg / arch_name)
    sys.modules[modname] = module
    try:
        exec(compile(source, str(pkg / arch_name), "exec"), module.__dict__)  # noqa: S102
    except Exception as exc:
        sys.modules.pop(modname, None)
        raise ModelPackageError(pkg, f"importing {arch_name} failed: {exc}") from exc
    # As meas_transiNet: the one name in __all__; without __all__, the one class defined there.
    names = getattr(module, "__all__", None)
    if names is not None:
        named = [getattr(module, n, None) for n in names]
        classes = [c for c in named if inspect.isclass(c) and issubclass(c, nn.Module)]
        if len(names) != 1:
            raise ModelPackageError(
                pkg, f"{arch_name} lists {len(names)} names in __all__; expected exactly one")
    else:
        classes = [
            obj
            for obj in vars(module).values()
            if inspect.isclass(obj) and issubclass(obj, nn.Module) and obj.__module__ == modname
        ]
    if len(classes) != 1:
        raise ModelPackageError(
            pkg, f"{arch_name} defines {len(classes)} nn.Module classes; expected exactly one"
        )
    try:
        return classes[0]()
    except Exception as exc:
        raise ModelPackageError(pkg, f"instantiating {classes[0].__name__} failed: {exc}") from exc


def _identify(
    state: dict[str, torch.Tensor],
    shape: tuple[int, int, int],
    pkg: Path,
    arch_name: str | None = None,
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
        if trust_model_code and arch_name is not None:
            return None
        hint = (
            f"; if it is another architecture with TACCNN's layer names, its {arch_name} is only "
            "run with --trust-model-code"
            if arch_name is not None
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
        input_spec: InputSpec | None = None,
        name: str | None = None,
    ) -> None:
        self.path = path
        self.name = name or package_name(path)
        self.module = module.eval()
        self.version = version
        self.description = description
        self.architecture = architecture
        self.input_shape = input_shape
        self.scale_factors = scale_factors
        #: How stamps are cut and prepared for this model (meas_transiNet packages: the Rubin rule).
        self.input_spec = input_spec or rubin_spec(input_shape)

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

    def _forward(self, batch: np.ndarray):
        """The module on one batch; a forward that raises becomes a :class:`ModelPackageError`."""
        try:
            return self.module(torch.from_numpy(batch))
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 - trusted package code can raise anything
            raise ModelPackageError(
                self.path, f"the model failed on {len(batch)} stamps "
                f"({type(exc).__name__}: {exc})",
            ) from exc  # fmt: skip

    def score_stamps(
        self,
        stamps: np.ndarray,
        batch_size: int = 64,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        on_batch: Callable[[int, np.ndarray], None] | None = None,
    ) -> np.ndarray:
        """Scores (N,) float32 of stamps (N, C, H, W); inference in batches, no gradients.

        ``on_batch(start, scores)`` is called after each batch with the scores of stamps
        ``start:start + len(scores)`` (the viewer streams them into its table).
        """
        self.check_stamps(stamps)
        configure_threads()
        n = stamps.shape[0]
        out = np.empty(n, dtype=np.float32)
        if n == 0:
            return out
        batch_size = max(1, int(batch_size))
        # meta.yaml's input_scale_factor is NOT applied: the Rubin pipeline reads it and scores
        # unscaled stamps (rubin-formats.md section 3), and our scores must equal its.
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
                    res = self._forward(batch)
                    out[start : start + len(batch)] = checked_scores(self.path, res, len(batch))
                    if on_batch is not None:
                        on_batch(start, out[start : start + len(batch)].copy())
                    done = start + len(batch)
                    report(progress, "score", min(1.0, done / n), f"{done}/{n}")
        finally:
            if n < SMALL_BATCH:
                torch.set_num_threads(threads)
        return out


def checked_scores(package: Path, output, n: int) -> np.ndarray:
    """``output`` of a model's forward as ``n`` float32 scores, or :class:`ModelPackageError`
    naming the package when it is not ``n`` finite numbers in [0, 1] (a NaN, a wrong shape, a
    logit): such scores are never written."""
    if not isinstance(output, torch.Tensor):
        raise ModelPackageError(
            package, f"model output is a {type(output).__name__}, not a tensor of {n} scores")
    if output.numel() != n:
        raise ModelPackageError(
            package, f"model output has shape {tuple(output.shape)} for {n} stamps; expected "
            f"{n} scores (shape ({n},) or ({n}, 1))",
        )  # fmt: skip
    values = output.detach().reshape(n).to(torch.float32).cpu().numpy()
    bad = ~np.isfinite(values)
    if bad.any():
        raise ModelPackageError(
            package, f"model output is not finite for {int(bad.sum())} of {n} stamps (NaN or "
            "infinite scores)",
        )  # fmt: skip
    if values.size and (values.min() < 0.0 or values.max() > 1.0):
        raise ModelPackageError(
            package, f"model output ranges from {values.min():g} to {values.max():g}; scores "
            "must be in [0, 1] (is a final sigmoid missing?)",
        )  # fmt: skip
    return values


def load_model(spec: str | Path | None = None, *, trust_model_code: bool = False) -> ModelPackage:
    """Load a model package from a directory, a package name, or None (the bundled default).

    A name (no path separator) is looked up among the bundled packages, then
    ``$MEAS_TRANSINET_DIR/model_packages``, then ``$DIASCAN_MODEL_PATH``. A Keras HDF5 model
    (ZTF's braai) is built by :mod:`diascan.models.braai`. A recognised TACCNN is built from our
    own code; any other architecture, including one whose layer names are TACCNN's but whose
    shapes are not (e.g. padded convolutions), is built by importing the package's ``arch*.py``
    only when ``trust_model_code`` is True. Raises :class:`ModelPackageError` naming the package and the
    problem.
    """
    path = resolve_package_path(spec)
    if find_keras_files(path) is not None:  # a Keras HDF5 model: ZTF's braai
        from diascan.models.braai import read_braai

        braai, info = read_braai(path)
        return ModelPackage(path=path, module=braai, **vars(info),
                            scale_factors=(1.0,) * info.input_shape[2])
    parts = _package_contents(path)
    meta = parse_meta(path, parts.meta_name, parts.meta_text)
    shape = meta["input_shape"]
    state = _load_state_dict(path, parts.checkpoint, parts.checkpoint_name)
    arch_name = parts.arch_name
    cfg = _identify(state, shape, path, arch_name, trust_model_code)
    if cfg is not None:
        module: nn.Module = TACCNN(cfg)
        architecture = ARCHITECTURE_NAME
    elif not trust_model_code:
        hint = f"; its {arch_name} is not run unless you pass --trust-model-code" if arch_name else ""
        raise ModelPackageError(path, f"unknown model architecture (not TACCNN){hint}")
    elif arch_name is None or parts.arch_source is None:
        raise ModelPackageError(path, "unknown model architecture and no arch*.py to build it")
    else:
        module = _import_arch(path, arch_name, parts.arch_source)
        architecture = f"{type(module).__name__} (from {arch_name})"
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
    name = package_name(path)
    try:
        if find_keras_files(path) is not None:  # a Keras HDF5 model: ZTF's braai
            from diascan.models.braai import read_braai

            return PackageInfo(path=path, source=source,
                               **vars(read_braai(path, load_weights=False)[1]))
        parts = _package_contents(path)
        meta = parse_meta(path, parts.meta_name, parts.meta_text)
        state = _load_state_dict(path, parts.checkpoint, parts.checkpoint_name)
        # With an arch*.py, TACCNN names on other shapes may be another architecture: listed as
        # unknown (loading it untrusted still names the mismatch).
        arch_name = parts.arch_name
        cfg = _identify(state, meta["input_shape"], path, arch_name, trust_model_code=True)
        if cfg is not None:
            architecture = ARCHITECTURE_NAME
        else:
            architecture = (
                f"unknown ({arch_name}, needs --trust-model-code)" if arch_name else "unknown"
            )
        return PackageInfo(
            name=name,
            path=path,
            source=source,
            version=meta["version"],
            description=meta["description"],
            architecture=architecture,
            input_shape=meta["input_shape"],
            input_spec=rubin_spec(meta["input_shape"]),
            scale_factors=meta["input_scale_factor"],
        )
    except ModelPackageError as exc:
        return PackageInfo(
            name=name, path=path, source=source, version="", description="",
            architecture="", error=exc.problem,
        )


def find_model_packages(extra_paths=()) -> list[PackageInfo]:
    """Packages found in the bundled folder, ``$MEAS_TRANSINET_DIR/model_packages`` and
    ``extra_paths`` (each a package directory or a folder of packages), each inspected: metadata
    read and the checkpoint's architecture recognised (see :func:`package_info`)."""
    return [package_info(pkg, source) for pkg, source in package_dirs(extra_paths)]
