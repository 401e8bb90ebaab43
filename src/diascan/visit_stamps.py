"""The stamp source of a visit (Qt-free): display triplets cut from its three images.

:class:`VisitStamps` implements :class:`diascan.stamps.StampSource` (and the optional
``triplets`` of :class:`~diascan.stamps.StampStackSource`) for the science, template and
difference :class:`~diascan.io.ImageData` of one visit/detector, at the sources' parent-pixel
positions. Any display size works (the gallery offers 31-101 px), independent of the model's
51 px input; pixels off an image or flagged NO_DATA are NaN (shown blank), see
:func:`diascan.cutouts.cut_display_stamps`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from diascan.cutouts import BLANK_PLANES, cut_display_stamps
from diascan.io.images import ImageData
from diascan.stamps import FRAME_ORDER, StampTriplet


class VisitStamps:
    """Display stamps of a visit's sources, row ``i`` centred on ``(x[i], y[i])``."""

    def __init__(
        self,
        images: Mapping[str, ImageData],
        x: Sequence[float] | np.ndarray,
        y: Sequence[float] | np.ndarray,
        blank_planes: Sequence[str] = BLANK_PLANES,
    ) -> None:
        missing = [name for name in FRAME_ORDER if images.get(name) is None]
        if missing:
            raise ValueError(f"a visit's stamps need the {', '.join(missing)} image")
        self.images = tuple(images[name] for name in FRAME_ORDER)
        self.x = np.asarray(x, dtype=np.float64)
        self.y = np.asarray(y, dtype=np.float64)
        if self.x.shape != self.y.shape or self.x.ndim != 1:
            raise ValueError(f"x and y must be 1-d and alike, got {self.x.shape}, {self.y.shape}")
        self.blank_planes = tuple(blank_planes)

    def __len__(self) -> int:
        return int(self.x.size)

    def triplets(self, indices: Sequence[int] | np.ndarray, size: int) -> np.ndarray:
        """Float32 ``(N, 3, size, size)`` display stamps of rows ``indices``, in FRAME_ORDER."""
        idx = np.asarray(indices, dtype=np.intp).reshape(-1)
        return cut_display_stamps(self.x[idx], self.y[idx], self.images, int(size),
                                  self.blank_planes)

    def triplet(self, index: int, size: int) -> StampTriplet:
        """The display stamps of row ``index``, ``size`` x ``size``."""
        science, template, difference = self.triplets([int(index)], size)[0]
        return StampTriplet(science=science, template=template, difference=difference)


__all__ = ["VisitStamps"]
