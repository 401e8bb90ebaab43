"""Stamp sources (Qt-free): the science, template and difference stamps of one source.

One protocol serves every view that shows stamps (the frames view's stamp dock, the gallery of
triplets) and every kind of data (a visit's three images, an alert's cutouts). Stamps are for
DISPLAY: they are centred on the source, ``size`` x ``size`` pixels, and NaN wherever there are
no pixels (off the image, a chip edge, a clipped alert cutout), so partly off-image stamps show
the missing part blank. Scoring never uses these: it cuts its own stamps with the model's rule
(:mod:`diascan.cutouts`).

The display order is science, template, difference everywhere on screen (:data:`FRAME_ORDER`),
whatever channel order a model wants.

A source that can cut many stamps at once (a visit's images: one vectorised cut per page of the
gallery) also offers ``triplets(indices, size)`` (:class:`StampStackSource`, optional);
:func:`stack_triplets` uses it when it is there and falls back to :meth:`StampSource.triplet`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

#: Order of the three stamps everywhere on screen (the frames' order too).
FRAME_ORDER = ("science", "template", "difference")


@dataclass(frozen=True)
class StampTriplet:
    """The three display stamps of one source: float32 ``(size, size)`` arrays, NaN = no pixel."""

    science: np.ndarray
    template: np.ndarray
    difference: np.ndarray

    def frames(self) -> dict[str, np.ndarray]:
        """The stamps by frame name, in :data:`FRAME_ORDER`."""
        return {name: getattr(self, name) for name in FRAME_ORDER}


@runtime_checkable
class StampSource(Protocol):
    """Anything that can give the display stamps of its sources, by row index."""

    def __len__(self) -> int:
        """Number of sources (rows)."""
        ...

    def triplet(self, index: int, size: int) -> StampTriplet:
        """Display stamps of row ``index``, ``size`` x ``size``, centred on the source."""
        ...


@runtime_checkable
class StampStackSource(StampSource, Protocol):
    """A :class:`StampSource` that also cuts many triplets at once (optional member)."""

    def triplets(self, indices: Sequence[int], size: int) -> np.ndarray:
        """Display stamps of rows ``indices``: float32 ``(N, 3, size, size)`` in FRAME_ORDER."""
        ...


def stack_triplets(source: StampSource, indices: Sequence[int], size: int) -> np.ndarray:
    """The triplets of rows ``indices`` as one float32 ``(N, 3, size, size)`` array."""
    if isinstance(source, StampStackSource):
        return np.asarray(source.triplets(indices, size), dtype=np.float32)
    out = np.empty((len(indices), len(FRAME_ORDER), size, size), dtype=np.float32)
    for k, index in enumerate(indices):
        t = source.triplet(int(index), size)
        for c, name in enumerate(FRAME_ORDER):
            out[k, c] = getattr(t, name)
    return out


__all__ = ["FRAME_ORDER", "StampSource", "StampStackSource", "StampTriplet", "stack_triplets"]
