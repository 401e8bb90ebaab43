"""Fine-tune a model package on labelled stamps (from sessions, alerts or any other source).

:func:`finetune` takes a loaded base package and :class:`LabelledStamps` (stamps cut exactly as
the scorer cuts them, labels 1 real / 0 bogus, a group per stamp such as its visit) and returns
the trained network with the split it used. The recipe: a held-out part stratified by label and
group, class-balanced loss weights, random flips and 90-degree rotations, Adam at a constant
learning rate, early stopping on the held-out loss (the best epoch's weights are kept).
Deterministic for a given seed and thread count: the same seed gives the same checkpoint bytes.

Which architectures can be fine-tuned is a registry (:func:`register_trainer`): TACCNN is here;
another package type (e.g. braai for ZTF alerts) registers a factory that wraps its network as a
:class:`Trainable` (a module with ``logits(x)`` and a way to write its package).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from diascan.errors import InputError, ModelPackageError
from diascan.models.fit import Batch, EpochStats, FitConfig, FitResult, fit
from diascan.models.labelled import LabelledStamps, balanced_weights, stratified_split
from diascan.models.package import ModelPackage
from diascan.models.taccnn import ARCHITECTURE_NAME, TACCNN
from diascan.models.training import INPUT_SCALE, fold_input_scale, write_package
from diascan.progress import CancelToken, ProgressCallback


def dihedral_batch(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Each stamp turned by a random multiple of 90 degrees and flipped at random (the eight
    symmetries of a square: the sky has no preferred orientation on a detector)."""
    n = x.shape[0]
    turns = torch.randint(0, 4, (n,), generator=gen)
    flip = torch.rand(n, generator=gen) < 0.5
    out = x.clone()
    for k in range(1, 4):
        sel = turns == k
        if sel.any():
            out[sel] = torch.rot90(x[sel], k, dims=(2, 3))
    out[flip] = torch.flip(out[flip], dims=[3])
    return out


class LabelledBatches:
    """The training stamps once per epoch, shuffled, augmented, with their loss weights."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, batch_size: int) -> None:
        self.x, self.y, self.w, self.batch_size = x, y, w, batch_size
        self.steps_per_epoch = -(-len(y) // batch_size)

    def batches(self, epoch: int, gen: torch.Generator) -> Iterator[Batch]:
        order = torch.randperm(len(self.y), generator=gen)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            yield dihedral_batch(self.x[idx], gen), self.y[idx], self.w[idx]


# --------------------------------------------------------------------------------------------
# Trainable networks (one factory per architecture)
# --------------------------------------------------------------------------------------------


@dataclass
class Trainable:
    """A network in its training form and how to turn it back into a package.

    ``module`` has ``logits(x)`` on stamps divided by ``input_scale``; ``export()`` returns the
    network that scores raw stamps as the base package did; ``write(module, out, ...)`` writes
    it as a package of the base's type.
    """

    module: nn.Module
    input_scale: float
    export: Callable[[], nn.Module]
    write: Callable[..., Path]


_TRAINERS: dict[str, Callable[[ModelPackage], Trainable]] = {}


def register_trainer(architecture: str):
    """Decorator registering ``factory(package) -> Trainable`` for packages of ``architecture``
    (``ModelPackage.architecture``)."""

    def deco(factory: Callable[[ModelPackage], Trainable]) -> Callable[[ModelPackage], Trainable]:
        _TRAINERS[architecture] = factory
        return factory

    return deco


def trainable(package: ModelPackage) -> Trainable:
    """The :class:`Trainable` form of a loaded package; :class:`ModelPackageError` if its
    architecture cannot be fine-tuned."""
    factory = _TRAINERS.get(package.architecture)
    if factory is None:
        known = ", ".join(sorted(_TRAINERS))
        raise ModelPackageError(
            package.path,
            f"fine-tuning {package.architecture} models is not supported (supported: {known})",
        )
    return factory(package)


@register_trainer(ARCHITECTURE_NAME)
def _taccnn_trainable(package: ModelPackage) -> Trainable:
    """A TACCNN trained on ``stamps / INPUT_SCALE`` (as the bundled model was): the base's input
    scale factors and ``INPUT_SCALE`` are multiplied into ``conv1`` (linear in its input) and
    ``INPUT_SCALE`` divided out again on export, so the package takes raw nJy stamps with scale
    factors 1, exactly as the Rubin pipeline feeds them."""
    module: TACCNN = copy.deepcopy(package.module)
    factors = torch.tensor(package.scale_factors, dtype=torch.float32)
    with torch.no_grad():
        module.conv1.weight *= (factors * INPUT_SCALE)[None, :, None, None]

    def export() -> nn.Module:
        out = copy.deepcopy(module).eval()
        fold_input_scale(out, INPUT_SCALE)
        return out

    return Trainable(module, INPUT_SCALE, export, write_package)


# --------------------------------------------------------------------------------------------
# Fine-tuning
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FinetuneConfig:
    """Settings of :func:`finetune` (defaults: the ones the demo test and the CLI use)."""

    seed: int = 1
    epochs: int = 60  #: at most; early stopping usually ends sooner
    patience: int = 8
    lr: float = 3e-4
    weight_decay: float = 1e-4
    batch_size: int = 32
    heldout_fraction: float = 0.25
    threads: int = 2


@dataclass
class FinetuneResult:
    """The fine-tuned network (raw stamps in, like the base) and how it was trained."""

    model: nn.Module
    trainable: Trainable
    train_index: np.ndarray
    heldout_index: np.ndarray
    fit: FitResult
    config: FinetuneConfig

    @property
    def history(self) -> list[EpochStats]:
        return self.fit.history


def _tensors(data: LabelledStamps, scale: float) -> Batch:
    x = torch.from_numpy(np.ascontiguousarray(data.stamps, dtype=np.float32)) / scale
    return x, torch.from_numpy(data.labels), torch.from_numpy(balanced_weights(data.labels))


def finetune(
    base: ModelPackage,
    data: LabelledStamps,
    config: FinetuneConfig | None = None,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    on_epoch: Callable[[EpochStats], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> FinetuneResult:
    """Fine-tune ``base`` on ``data`` (see the module docstring for the recipe)."""
    cfg = config or FinetuneConfig()
    base.check_stamps(data.stamps)
    net = trainable(base)
    train_idx, held_idx = stratified_split(data.labels, data.groups, cfg.heldout_fraction,
                                           cfg.seed)  # fmt: skip
    if held_idx.size == 0 or train_idx.size == 0:
        raise InputError(None, "too few labels to hold any out for the held-out check")
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, cfg.threads))
    try:
        torch.manual_seed(cfg.seed)  # dropout
        gen = torch.Generator().manual_seed(cfg.seed)  # shuffling and augmentation
        x, y, w = _tensors(data.subset(train_idx), net.input_scale)
        source = LabelledBatches(x, y, w, cfg.batch_size)
        fitted = fit(
            net.module, source,
            FitConfig(cfg.epochs, cfg.lr, cfg.weight_decay, one_cycle=False,
                      patience=cfg.patience),
            gen=gen, heldout=_tensors(data.subset(held_idx), net.input_scale),
            progress=progress, cancel=cancel, on_epoch=on_epoch, log=log,
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    return FinetuneResult(net.export(), net, train_idx, held_idx, fitted, cfg)


__all__ = [
    "FinetuneConfig",
    "FinetuneResult",
    "LabelledBatches",
    "Trainable",
    "dihedral_batch",
    "finetune",
    "register_trainer",
    "trainable",
]
