""""Uncertain first": the order in which labelling helps a model most.

With one model, the sources whose score is closest to 0.5 come first (the model cannot tell);
with two models (say the base and a fine-tuned one), the sources they disagree on most. Sources
without a score (NaN or None) go last. Ties keep the given order (a stable sort), so the order
is the same every time for the same scores.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _scores(values: Sequence[float | None] | np.ndarray) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def uncertainty(
    scores: Sequence[float | None] | np.ndarray,
    other: Sequence[float | None] | np.ndarray | None = None,
) -> np.ndarray:
    """Per source, how uncertain it is (higher: label it sooner; NaN: no score).

    One model: ``0.5 - |score - 0.5|`` (0.5 at a score of 0.5, 0 at 0 or 1). Two models: the
    absolute difference of their scores.
    """
    a = _scores(scores)
    if other is None:
        return 0.5 - np.abs(a - 0.5)
    b = _scores(other)
    if b.shape != a.shape:
        raise ValueError(f"{a.size} scores against {b.size} scores of the other model")
    return np.abs(a - b)


def uncertain_first(
    scores: Sequence[float | None] | np.ndarray,
    other: Sequence[float | None] | np.ndarray | None = None,
) -> np.ndarray:
    """Indices of the sources, most uncertain first (see :func:`uncertainty`); unscored last."""
    u = uncertainty(scores, other)
    key = np.where(np.isnan(u), np.inf, -u)
    return np.argsort(key, kind="stable")


__all__ = ["uncertain_first", "uncertainty"]
