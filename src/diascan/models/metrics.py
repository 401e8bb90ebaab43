"""Metrics of real/bogus scores against labels: ROC AUC and curve, purity and completeness.

Numpy and scipy only (no torch), so reports can be computed and shown without loading a model.
Label 1 is real, 0 bogus; a source is called real when its score is ``>= threshold``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import rankdata


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC via the Mann-Whitney U statistic (ties count one half); NaN without both classes."""
    labels = np.asarray(labels).astype(bool)
    n1, n0 = labels.sum(), (~labels).sum()
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ROC curve points ``(fpr, tpr)`` from (0, 0) to (1, 1), one point per distinct score.

    Written with numpy (a cumulative count over the scores sorted high to low) rather than
    pulling in scikit-learn for one function.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    # The last index of each run of equal scores: all tied sources cross the threshold together.
    last = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1] if s.size else np.zeros(0, int)
    tp = np.cumsum(y)[last]
    fp = np.cumsum(~y)[last]
    n1, n0 = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    return np.r_[0.0, fp / n0], np.r_[0.0, tp / n1]


def _ratio(a: int, b: int) -> float:
    return a / b if b else float("nan")


@dataclass(frozen=True)
class ThresholdCounts:
    """Confusion matrix at one threshold (real = positive class)."""

    threshold: float
    tp: int  #: real, called real
    fp: int  #: bogus, called real
    tn: int  #: bogus, called bogus
    fn: int  #: real, called bogus

    @property
    def purity(self) -> float:
        """Fraction of the sources called real that are real (NaN when none is called real)."""
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def completeness(self) -> float:
        """Fraction of the real sources called real (NaN without real sources)."""
        return _ratio(self.tp, self.tp + self.fn)

    def to_json(self) -> dict:
        return {
            "threshold": self.threshold, "tp": self.tp, "fp": self.fp, "tn": self.tn,
            "fn": self.fn, "purity": _finite(self.purity),
            "completeness": _finite(self.completeness),
        }  # fmt: skip


def _finite(v: float) -> float | None:
    return None if math.isnan(v) else float(v)


def counts_at(scores: np.ndarray, labels: np.ndarray, threshold: float) -> ThresholdCounts:
    """The confusion matrix of ``scores >= threshold`` against ``labels``."""
    called = np.asarray(scores, dtype=np.float64) >= threshold
    y = np.asarray(labels).astype(bool)
    return ThresholdCounts(
        float(threshold), int((called & y).sum()), int((called & ~y).sum()),
        int((~called & ~y).sum()), int((~called & y).sum()),
    )  # fmt: skip


@dataclass(frozen=True)
class BinaryMetrics:
    """Metrics of one model on one labelled set: AUC, ROC points, counts at each threshold."""

    n_real: int
    n_bogus: int
    roc_auc: float
    thresholds: tuple[ThresholdCounts, ...]
    fpr: np.ndarray = field(repr=False)
    tpr: np.ndarray = field(repr=False)

    def at(self, threshold: float) -> ThresholdCounts:
        """The counts at ``threshold`` (one of those computed)."""
        for t in self.thresholds:
            if t.threshold == threshold:
                return t
        raise KeyError(f"threshold {threshold} not computed")

    def to_json(self) -> dict:
        return {
            "n_real": self.n_real,
            "n_bogus": self.n_bogus,
            "roc_auc": _finite(self.roc_auc),
            "thresholds": [t.to_json() for t in self.thresholds],
            "roc": {"fpr": self.fpr.round(6).tolist(), "tpr": self.tpr.round(6).tolist()},
        }


def binary_metrics(scores, labels, thresholds=(0.5,)) -> BinaryMetrics:
    """AUC, ROC curve and the confusion matrix at each of ``thresholds`` (duplicates once)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    fpr, tpr = roc_curve(s, y)
    return BinaryMetrics(
        n_real=int(y.sum()),
        n_bogus=int((~y).sum()),
        roc_auc=roc_auc(s, y),
        thresholds=tuple(counts_at(s, y, t) for t in dict.fromkeys(float(t) for t in thresholds)),
        fpr=fpr,
        tpr=tpr,
    )


__all__ = [
    "BinaryMetrics",
    "ThresholdCounts",
    "binary_metrics",
    "counts_at",
    "roc_auc",
    "roc_curve",
]
