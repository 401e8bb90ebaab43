"""Our implementation of the TACCNN real/bogus network (rubin-facts.md section 6).

conv(5x5, no padding) -> ReLU -> maxpool 2 -> dropout, three times (3 -> 16 -> 32 -> 64
channels), flatten, linear -> ReLU -> linear -> sigmoid. State-dict names ``conv1``, ``conv2``,
``conv3``, ``fc1``, ``fc2`` as in the Rubin packages, so their checkpoints load strictly here and
our checkpoints load in the Rubin pipeline.

:func:`recognise_taccnn` inspects a state dict (keys and shapes only) and returns the
hyper-parameters that rebuild it, so a package's checkpoint is used without running its code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

ARCHITECTURE_NAME = "TACCNN"

_KEYS = (
    "conv1.weight",
    "conv1.bias",
    "conv2.weight",
    "conv2.bias",
    "conv3.weight",
    "conv3.bias",
    "fc1.weight",
    "fc1.bias",
    "fc2.weight",
    "fc2.bias",
)


def _out_size(n: int, kernel: int, layers: int = 3) -> int:
    for _ in range(layers):
        n = (n - kernel + 1) // 2
    return n


@dataclass(frozen=True)
class TACCNNConfig:
    """Hyper-parameters of a TACCNN (defaults: the Rubin DP1 model)."""

    in_channels: int = 3
    channels: tuple[int, int, int] = (16, 32, 64)
    kernel: int = 5
    hidden: int = 32
    input_hw: tuple[int, int] = (51, 51)
    dropout: float = 0.4

    @property
    def flat_hw(self) -> tuple[int, int]:
        """Height and width of the last feature map (flattened into ``fc1``)."""
        return _out_size(self.input_hw[0], self.kernel), _out_size(self.input_hw[1], self.kernel)

    @property
    def flat_features(self) -> int:
        h, w = self.flat_hw
        return self.channels[2] * h * w


class TACCNN(nn.Module):
    """The TACCNN real/bogus classifier; ``forward`` returns scores in [0, 1], shape (N, 1)."""

    def __init__(self, config: TACCNNConfig | None = None) -> None:
        super().__init__()
        cfg = config or TACCNNConfig()
        self.config = cfg
        c1, c2, c3 = cfg.channels
        k = cfg.kernel
        if cfg.flat_features <= 0:
            raise ValueError(f"input {cfg.input_hw} is too small for TACCNN")
        self.conv1 = nn.Conv2d(cfg.in_channels, c1, k)
        self.conv2 = nn.Conv2d(c1, c2, k)
        self.conv3 = nn.Conv2d(c2, c3, k)
        self.pool = nn.MaxPool2d(2)
        self.drop = nn.Dropout(cfg.dropout)
        self.fc1 = nn.Linear(cfg.flat_features, cfg.hidden)
        self.fc2 = nn.Linear(cfg.hidden, 1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid output (used by training with a numerically stable BCE loss)."""
        x = self.drop(self.pool(torch.relu(self.conv1(x))))
        x = self.drop(self.pool(torch.relu(self.conv2(x))))
        x = self.drop(self.pool(torch.relu(self.conv3(x))))
        x = torch.flatten(x, 1)
        return self.fc2(torch.relu(self.fc1(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))


class ArchitectureMismatch(ValueError):
    """The state dict has the TACCNN layer names but shapes that do not fit together."""


def recognise_taccnn(
    state_dict: Mapping[str, torch.Tensor], input_shape: tuple[int, int, int]
) -> TACCNNConfig | None:
    """Return the :class:`TACCNNConfig` of a TACCNN state dict, or None if it is not one.

    ``input_shape`` is (H, W, C) from meta.yaml. Raises :class:`ArchitectureMismatch` when the
    layer names are TACCNN's but the shapes do not fit each other or the input shape.
    """
    if set(state_dict) != set(_KEYS):
        return None
    s = {k: tuple(v.shape) for k, v in state_dict.items()}
    w1, w2, w3 = s["conv1.weight"], s["conv2.weight"], s["conv3.weight"]
    f1, f2 = s["fc1.weight"], s["fc2.weight"]
    if not (len(w1) == len(w2) == len(w3) == 4 and len(f1) == len(f2) == 2):
        raise ArchitectureMismatch("TACCNN layers with unexpected tensor ranks")
    k = w1[2]
    if any(w[2] != k or w[3] != k for w in (w1, w2, w3)):
        raise ArchitectureMismatch(
            f"convolutions with unequal kernels: conv1.weight {w1}, conv2.weight {w2}, "
            f"conv3.weight {w3}"
        )
    if w2[1] != w1[0] or w3[1] != w2[0]:
        raise ArchitectureMismatch(
            f"convolution channels do not chain: conv1.weight {w1}, conv2.weight {w2}, "
            f"conv3.weight {w3}"
        )
    for name, w in (("conv1", w1), ("conv2", w2), ("conv3", w3), ("fc1", f1), ("fc2", f2)):
        if s[f"{name}.bias"] != (w[0],):
            raise ArchitectureMismatch(f"{name}.bias has shape {s[f'{name}.bias']}, expected {(w[0],)}")
    if f2 != (1, f1[0]):
        raise ArchitectureMismatch(f"fc2.weight has shape {f2}, expected (1, {f1[0]})")
    h, w, c = input_shape
    if w1[1] != c:
        raise ArchitectureMismatch(
            f"conv1 takes {w1[1]} channels but meta.yaml input_shape has {c}"
        )
    cfg = TACCNNConfig(
        in_channels=c, channels=(w1[0], w2[0], w3[0]), kernel=k, hidden=f1[0], input_hw=(h, w)
    )
    if cfg.flat_features != f1[1]:
        raise ArchitectureMismatch(
            f"fc1 takes {f1[1]} features but input_shape {list(input_shape)} gives "
            f"{max(cfg.flat_features, 0)}"
        )
    return cfg


__all__ = ["ARCHITECTURE_NAME", "ArchitectureMismatch", "TACCNN", "TACCNNConfig", "recognise_taccnn"]
