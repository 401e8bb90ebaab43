"""ZTF's braai real/bogus CNN (the ``drb`` score) in torch, built from its Keras HDF5 files.

braai ``d6_m7`` (dmitryduev/braai, MIT) is a Keras ``Sequential`` "VGG6": conv3x3(16) conv3x3(16)
maxpool2 dropout, conv3x3(32) conv3x3(32) maxpool4 dropout, flatten, dense 256 relu, dropout,
dense 1 sigmoid, on 63 x 63 x 3 stamps (rubin-facts.md section 7). Rather than hard-coding that
one network, :class:`KerasSequential` translates the layers of any Keras ``Sequential`` made of
``Conv2D``, ``MaxPooling2D``, ``Dropout``, ``Flatten``, ``Dense`` and ``Activation`` layers
(channels-last, the braai family) into torch, and loads the weights read with h5py
(:mod:`diascan.models.keras_h5`): no TensorFlow or Keras needed. Unsupported layers or options
are refused naming them.

A Keras model package is taken to be a braai model: its input spec is ZTF's braai preprocessing
(:data:`diascan.models.inputs.BRAAI_SPEC`: science, template, difference; each stamp NaN -> 0
and rows L2-normalised; stamps clipped at a chip edge padded at the end with 1e-9).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from diascan.errors import ModelPackageError
from diascan.models.inputs import BRAAI_SPEC, InputSpec
from diascan.models.keras_h5 import (
    KerasFiles,
    find_keras_files,
    read_keras_config,
    read_keras_weights,
)

ARCHITECTURE_NAME = "braai (Keras Sequential)"

_ACTIVATIONS = {
    "linear": None,
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
}


class _FlattenChannelsLast(nn.Module):
    """Keras' ``Flatten`` on channels-last data: (N, C, H, W) flattened in (H, W, C) order."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(x.permute(0, 2, 3, 1), 1) if x.ndim == 4 else torch.flatten(x, 1)


def _pair(value, what: str, layer: str) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    if isinstance(value, list | tuple) and len(value) == 2:
        return int(value[0]), int(value[1])
    raise ModelPackageError(None, f"layer {layer}: unsupported {what} {value!r}")


def _input_shape(layers: list[dict]) -> tuple[int, int, int]:
    """(H, W, C) from the first layer's ``batch_input_shape`` (or an InputLayer's)."""
    for layer in layers[:2]:
        cfg = layer.get("config", {})
        shape = cfg.get("batch_input_shape") or cfg.get("batch_shape")
        if shape and len(shape) == 4 and all(isinstance(v, int) for v in shape[1:]):
            return int(shape[1]), int(shape[2]), int(shape[3])
    raise ModelPackageError(None, "the Keras model declares no (height, width, channels) input")


class KerasSequential(nn.Module):
    """A Keras ``Sequential`` CNN rebuilt in torch; ``forward`` takes (N, C, H, W) -> (N, 1)."""

    def __init__(self, config: dict) -> None:
        super().__init__()
        if config.get("class_name") != "Sequential":
            raise ModelPackageError(
                None, f"not a Keras Sequential model ({config.get('class_name')!r})"
            )
        layers = config.get("config", {})
        layers = layers.get("layers", []) if isinstance(layers, dict) else layers
        self.input_shape = _input_shape(layers)
        h, w, c = self.input_shape
        modules: list[nn.Module] = []
        self._weighted: list[tuple[str, str, nn.Module]] = []
        shape: tuple[int, ...] = (c, h, w)
        for layer in layers:
            kind = layer.get("class_name")
            cfg = layer.get("config", {})
            name = str(cfg.get("name", kind))
            if cfg.get("data_format", "channels_last") != "channels_last":
                raise ModelPackageError(None, f"layer {name}: only channels_last is supported")
            if kind == "InputLayer":
                continue
            if kind == "Conv2D":
                if len(shape) != 3:
                    raise ModelPackageError(None, f"layer {name}: Conv2D after Flatten")
                k = _pair(cfg.get("kernel_size"), "kernel_size", name)
                s = _pair(cfg.get("strides", 1), "strides", name)
                if _pair(cfg.get("dilation_rate", 1), "dilation_rate", name) != (1, 1):
                    raise ModelPackageError(None, f"layer {name}: dilated convolutions unsupported")
                padding = cfg.get("padding", "valid")
                if padding == "same" and s == (1, 1) and k[0] % 2 and k[1] % 2:
                    pad = (k[0] // 2, k[1] // 2)
                elif padding == "valid":
                    pad = (0, 0)
                else:
                    raise ModelPackageError(
                        None, f"layer {name}: padding {padding!r} with strides {s} unsupported"
                    )
                conv = nn.Conv2d(shape[0], int(cfg["filters"]), k, stride=s, padding=pad,
                                 bias=bool(cfg.get("use_bias", True)))
                modules.append(conv)
                self._weighted.append((name, "conv", conv))
                oh = (shape[1] + 2 * pad[0] - k[0]) // s[0] + 1
                ow = (shape[2] + 2 * pad[1] - k[1]) // s[1] + 1
                shape = (int(cfg["filters"]), oh, ow)
            elif kind == "MaxPooling2D":
                p = _pair(cfg.get("pool_size", 2), "pool_size", name)
                s = _pair(cfg.get("strides") or p, "strides", name)
                if cfg.get("padding", "valid") != "valid":
                    raise ModelPackageError(None, f"layer {name}: only valid pooling is supported")
                modules.append(nn.MaxPool2d(p, stride=s))
                shape = (shape[0], (shape[1] - p[0]) // s[0] + 1, (shape[2] - p[1]) // s[1] + 1)
            elif kind == "Dropout":
                modules.append(nn.Dropout(float(cfg.get("rate", 0.0))))
                continue
            elif kind == "Flatten":
                modules.append(_FlattenChannelsLast())
                shape = (int(np.prod(shape)),)
                continue
            elif kind == "Dense":
                if len(shape) != 1:
                    raise ModelPackageError(None, f"layer {name}: Dense on unflattened input")
                dense = nn.Linear(shape[0], int(cfg["units"]), bias=bool(cfg.get("use_bias", True)))
                modules.append(dense)
                self._weighted.append((name, "dense", dense))
                shape = (int(cfg["units"]),)
            elif kind == "Activation":
                pass
            else:
                raise ModelPackageError(None, f"layer {name}: unsupported Keras layer {kind!r}")
            if shape and min(shape) <= 0:
                raise ModelPackageError(None, f"layer {name}: input {self.input_shape} too small")
            act = cfg.get("activation", "linear")
            if act not in _ACTIVATIONS:
                raise ModelPackageError(None, f"layer {name}: unsupported activation {act!r}")
            if _ACTIVATIONS[act] is not None:
                modules.append(_ACTIVATIONS[act]())
        if shape != (1,):
            raise ModelPackageError(
                None, f"the network ends in {shape} outputs; a real/bogus score needs one"
            )
        self.net = nn.Sequential(*modules)

    def load_keras_weights(self, weights: dict[str, list[np.ndarray]]) -> None:
        """Copy Keras weights (layer name -> [kernel, bias]) into the torch layers, checking shapes.

        Keras kernels are (kh, kw, in, out) for Conv2D and (in, out) for Dense; torch wants
        (out, in, kh, kw) and (out, in).
        """
        with torch.no_grad():
            for name, kind, module in self._weighted:
                arrays = weights.get(name)
                n_expected = 2 if module.bias is not None else 1
                if arrays is None or len(arrays) != n_expected:
                    got = "none" if arrays is None else len(arrays)
                    raise ModelPackageError(
                        None, f"layer {name}: expected {n_expected} weight arrays, found {got}"
                    )
                kernel = arrays[0]
                kernel = kernel.transpose(3, 2, 0, 1) if kind == "conv" else kernel.T
                if tuple(kernel.shape) != tuple(module.weight.shape):
                    raise ModelPackageError(
                        None,
                        f"layer {name}: weights of shape {arrays[0].shape} do not fit the "
                        f"architecture ({tuple(module.weight.shape)} in torch order)",
                    )
                module.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel, np.float32)))
                if module.bias is not None:
                    bias = np.asarray(arrays[1], np.float32)
                    if bias.shape != tuple(module.bias.shape):
                        raise ModelPackageError(
                            None, f"layer {name}: bias of shape {bias.shape}, expected "
                            f"{tuple(module.bias.shape)}"
                        )
                    module.bias.copy_(torch.from_numpy(bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _spec(input_shape: tuple[int, int, int]) -> InputSpec:
    h, w, c = input_shape
    if h != w or c != 3:
        raise ModelPackageError(None, f"braai input {list(input_shape)} is not square x 3")
    return replace(BRAAI_SPEC, size=h)


def _files(path: Path) -> KerasFiles:
    files = find_keras_files(path)
    if files is None:
        raise ModelPackageError(path, "no Keras model (.h5) here")
    return files


def _keras_version(files: KerasFiles) -> str:
    import h5py

    try:
        with h5py.File(files.weights, "r") as h5:
            v = h5.attrs.get("keras_version", "")
            return v.decode() if isinstance(v, bytes) else str(v)
    except OSError:
        return ""


def _describe(files: KerasFiles) -> str:
    keras = _keras_version(files)
    return (
        f"braai real/bogus CNN {files.name} (ZTF's drb model), Keras {keras or '?'} weights "
        f"read from {files.weights.name} with h5py"
    )


def _build(path: Path, files: KerasFiles) -> KerasSequential:
    try:
        return KerasSequential(read_keras_config(files))
    except ModelPackageError as exc:
        if exc.path is None:
            raise ModelPackageError(path, exc.problem) from exc
        raise


@dataclass(frozen=True)
class BraaiInfo:
    """What a braai package is (the fields of a ``ModelPackage`` / ``PackageInfo``)."""

    name: str
    version: str
    description: str
    architecture: str
    input_shape: tuple[int, int, int]
    input_spec: InputSpec


def read_braai(path: str | Path, load_weights: bool = True) -> tuple[KerasSequential, BraaiInfo]:
    """The torch network of a braai package (a folder with its Keras HDF5 files, or the ``.h5``
    file) with its weights loaded (unless ``load_weights`` is False), and what it is. Raises
    :class:`ModelPackageError` naming the file and the problem."""
    path = Path(path)
    files = _files(path)
    module = _build(path, files)
    if load_weights:
        try:
            module.load_keras_weights(read_keras_weights(files))
        except ModelPackageError as exc:
            raise ModelPackageError(exc.path or files.weights, exc.problem) from exc
    try:
        spec = _spec(module.input_shape)
    except ModelPackageError as exc:
        raise ModelPackageError(path, exc.problem) from exc
    info = BraaiInfo(
        name=files.name if path.is_file() else path.name,
        version=files.name,
        description=_describe(files),
        architecture=ARCHITECTURE_NAME,
        input_shape=module.input_shape,
        input_spec=spec,
    )
    return module.eval(), info


__all__ = ["ARCHITECTURE_NAME", "BraaiInfo", "KerasSequential", "read_braai"]
