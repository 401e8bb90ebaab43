"""Labelled stamps from any source (sessions, alerts, a simulator) and how they are split.

Numpy only (no torch), so gathering labels and refusing too few needs no model loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from diascan.errors import InputError

#: Labels of each class needed before training is attempted.
MIN_PER_CLASS = 30


@dataclass
class LabelledStamps:
    """Stamps with human (or truth) labels, from any source.

    ``stamps`` (N, C, H, W) float32 raw values as the scorer cuts them; ``labels`` (N,) 1 real,
    0 bogus; ``groups`` (N,) int, the visit (or alert stream, ...) of each stamp, used to
    stratify the held-out split; ``keys``: what each stamp is (for reports), optional.
    """

    stamps: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    keys: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.float32)
        self.groups = np.asarray(self.groups, dtype=np.int64)
        n = len(self.labels)
        if self.stamps.ndim != 4 or len(self.stamps) != n or len(self.groups) != n:
            raise ValueError(
                f"stamps {self.stamps.shape}, labels {self.labels.shape} and groups "
                f"{self.groups.shape} do not fit together"
            )

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def n_real(self) -> int:
        return int((self.labels == 1).sum())

    @property
    def n_bogus(self) -> int:
        return int((self.labels == 0).sum())

    def subset(self, index: np.ndarray) -> LabelledStamps:
        keys = [self.keys[i] for i in index] if self.keys else []
        return LabelledStamps(self.stamps[index], self.labels[index], self.groups[index], keys)


def check_label_counts(n_real: int, n_bogus: int, minimum: int = MIN_PER_CLASS,
                       where: str | Path | None = None) -> None:  # fmt: skip
    """Raise :class:`InputError` (counts in the message) unless both classes have ``minimum``."""
    if n_real < minimum or n_bogus < minimum:
        raise InputError(
            where,
            f"too few labels to train: {n_real} real and {n_bogus} bogus (at least {minimum} "
            "of each class needed); label more sources",
        )


def stratified_split(
    labels: np.ndarray, groups: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(train, heldout)`` indices: ``fraction`` of every (group, label) cell held out.

    Each cell is shuffled with ``seed`` and ``round(fraction * n)`` of it held out (at least one
    when the cell has two or more members), so every visit and class is in both parts.
    """
    rng = np.random.default_rng([seed, 0x5EED])
    labels = np.asarray(labels)
    groups = np.asarray(groups)
    held = []
    for g in np.unique(groups):
        for lab in np.unique(labels):
            cell = np.flatnonzero((groups == g) & (labels == lab))
            if cell.size == 0:
                continue
            k = int(round(fraction * cell.size))
            if cell.size >= 2:
                k = min(max(k, 1), cell.size - 1)
            held.append(rng.permutation(cell)[:k])
    heldout = np.sort(np.concatenate(held)) if held else np.zeros(0, np.int64)
    train = np.setdiff1d(np.arange(len(labels)), heldout)
    return train, heldout


def balanced_weights(labels: np.ndarray) -> np.ndarray:
    """Per-stamp loss weights giving each class the same total weight (mean weight 1)."""
    y = np.asarray(labels) == 1
    n, n1 = y.size, int(y.sum())
    n0 = n - n1
    w = np.where(y, n / (2 * max(n1, 1)), n / (2 * max(n0, 1)))
    return w.astype(np.float32)


__all__ = [
    "MIN_PER_CLASS",
    "LabelledStamps",
    "balanced_weights",
    "check_label_counts",
    "stratified_split",
]
