"""The training loop as a function of its inputs: a network, a source of batches, settings.

:func:`fit` trains any module with ``logits(x)`` with BCE and Adam on the batches of a
:class:`BatchSource`: simulated stamps (:class:`diascan.models.training.SimulatedStamps`, the
bundled model's recipe) or labelled stamps from sessions or alerts
(:class:`diascan.models.finetune.LabelledBatches`). It reports every batch (``progress``), every
epoch (``on_epoch`` with the held-out loss), checks ``cancel`` before every batch, and stops
early on the held-out loss when asked.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the usual torch alias
from torch import nn

from diascan.progress import CancelToken, ProgressCallback, check, report

#: One optimiser step's inputs: stamps (training scale), labels (1 real) and per-stamp loss
#: weights (None: all 1).
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]


class BatchSource(Protocol):
    """Where :func:`fit` gets its batches: simulated stamps, labelled stamps from sessions..."""

    #: Upper bound of the batches one epoch yields (sizes the one-cycle learning-rate schedule).
    steps_per_epoch: int

    def batches(self, epoch: int, gen: torch.Generator) -> Iterator[Batch]:
        """The batches of epoch ``epoch`` (0-based), augmented with ``gen``."""
        ...


@dataclass(frozen=True)
class FitConfig:
    """Optimiser settings of :func:`fit`."""

    epochs: int
    lr: float
    weight_decay: float = 1e-4
    #: One-cycle learning-rate schedule over all epochs (training from scratch); else constant.
    one_cycle: bool = True
    #: Stop after this many epochs without a lower held-out loss and keep the best epoch's
    #: weights (needs held-out data); None: run every epoch.
    patience: int | None = None


@dataclass(frozen=True)
class EpochStats:
    """What one epoch did (passed to ``on_epoch`` and kept in the history)."""

    epoch: int  #: 1-based
    epochs: int  #: the maximum number of epochs
    loss: float  #: mean training loss over the epoch's batches
    heldout_loss: float | None  #: loss on the held-out stamps after the epoch (None: none)
    seconds: float  #: since the start of training

    def to_json(self) -> dict:
        d = {"epoch": self.epoch, "loss": self.loss, "seconds": round(self.seconds, 1)}
        if self.heldout_loss is not None:
            d["heldout_loss"] = self.heldout_loss
        return d


@dataclass
class FitResult:
    history: list[EpochStats]
    best_epoch: int  #: epoch whose weights the model holds (the last one without early stopping)
    stopped_early: bool
    seconds: float


def flip_batch(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random horizontal and vertical flips per stamp (augmentation)."""
    n = x.shape[0]
    h = torch.rand(n, generator=gen) < 0.5
    v = torch.rand(n, generator=gen) < 0.5
    x = x.clone()
    x[h] = torch.flip(x[h], dims=[3])
    x[v] = torch.flip(x[v], dims=[2])
    return x


def heldout_loss(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None, batch_size: int
) -> float:
    """Mean (weighted) BCE of ``model.logits`` on held-out stamps, in eval mode, no gradients."""
    was_training = model.training
    model.eval()
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(y), batch_size):
            sl = slice(start, start + batch_size)
            loss = F.binary_cross_entropy_with_logits(
                model.logits(x[sl]).squeeze(1), y[sl], weight=None if w is None else w[sl],
                reduction="sum",
            )  # fmt: skip
            total += float(loss)
    model.train(was_training)
    return total / max(1, len(y))


def fit(
    model: nn.Module,
    source: BatchSource,
    config: FitConfig,
    *,
    gen: torch.Generator,
    heldout: Batch | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    on_epoch: Callable[[EpochStats], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> FitResult:
    """Train ``model`` (a module with ``logits(x)``) on ``source`` with BCE and Adam.

    The caller seeds torch and builds the model (its initial weights: fresh or a base package's)
    and ``gen`` (augmentation); with the same seeds and thread count the result is
    bit-identical. ``heldout`` stamps are scored after every epoch (``EpochStats.heldout_loss``);
    with ``config.patience`` the best epoch's weights are restored at the end. ``progress`` is
    called after every batch, ``cancel`` checked before every batch.
    """
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    total_steps = config.epochs * source.steps_per_epoch
    sched = (
        torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=total_steps + 1)
        if config.one_cycle
        else None
    )
    t0 = time.perf_counter()
    history: list[EpochStats] = []
    best_loss, best_epoch, best_state = math.inf, 0, None
    stopped_early = False
    step = 0
    for epoch in range(config.epochs):
        model.train()
        losses = []
        for xb, yb, wb in source.batches(epoch, gen):
            check(cancel)
            opt.zero_grad()
            loss = F.binary_cross_entropy_with_logits(model.logits(xb).squeeze(1), yb, weight=wb)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            losses.append(loss.item())
            step += 1
            report(progress, "train", min(1.0, step / total_steps),
                   f"epoch {epoch + 1}/{config.epochs}")  # fmt: skip
        held = None if heldout is None else heldout_loss(model, *heldout, batch_size=256)
        stats = EpochStats(epoch + 1, config.epochs, float(np.mean(losses)), held,
                           time.perf_counter() - t0)  # fmt: skip
        history.append(stats)
        if log is not None:
            extra = "" if held is None else f" held-out {held:.4f}"
            log(f"epoch {stats.epoch}/{config.epochs} loss {stats.loss:.4f}{extra} "
                f"t={round(stats.seconds, 1)}s")  # fmt: skip
        if on_epoch is not None:
            on_epoch(stats)
        if config.patience is not None and held is not None:
            if held < best_loss:
                best_loss, best_epoch = held, stats.epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            elif stats.epoch - best_epoch >= config.patience:
                stopped_early = True
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    else:
        best_epoch = len(history)
    model.eval()
    return FitResult(history, best_epoch, stopped_early, time.perf_counter() - t0)


__all__ = [
    "Batch",
    "BatchSource",
    "EpochStats",
    "FitConfig",
    "FitResult",
    "fit",
    "flip_batch",
    "heldout_loss",
]
