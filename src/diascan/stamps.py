"""Stamp sources (Qt-free): the science, template and difference stamps of one source.

One protocol serves every view that shows stamps (the frames view's stamp dock, the gallery of
triplets) and every kind of data (a visit's three images, an alert's cutouts). Stamps are for
DISPLAY: they are centred on the source, ``size`` x ``size`` pixels, and NaN wherever there are
no pixels (off the image, a chip edge, a clipped alert cutout), so partly off-image stamps show
the missing part blank. Scoring never uses these: it cuts its own stamps with the model's rule
(:mod:`diascan.cutouts`).

The display order is science, template, difference everywhere on screen (:data:`FRAME_ORDER`),
whatever channel order a model wants.
"""

from __future__ import annotations

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


__all__ = ["FRAME_ORDER", "StampSource", "StampTriplet"]
