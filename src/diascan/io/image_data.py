"""The in-memory image: :class:`ImageData` (pixels, mask, variance, planes, WCS, origin) and the
record of what the reader found in the file (:class:`HduUse`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.wcs import WCS

from diascan.io.mask_planes import description, find_plane, plane_bits

#: Mask planes and bits written by default (the usual LSST assignment).
DEFAULT_MASK_PLANES: dict[str, int] = {
    "BAD": 0,
    "SAT": 1,
    "INTRP": 2,
    "CR": 3,
    "EDGE": 4,
    "DETECTED": 5,
    "DETECTED_NEGATIVE": 6,
    "SUSPECT": 7,
    "NO_DATA": 8,
    "VIGNETTED": 9,
    "STREAK": 10,
}

#: Layouts the reader tells apart (``ImageData.layout``) and what ``diascan info`` calls them.
LAYOUTS: dict[str, str] = {
    "afw": "afw Exposure (HDUs by EXTNAME)",
    "afw-exttype": "afw Exposure written before 2021 (HDUs by EXTTYPE, no EXTNAME)",
    "afw-position": "afw Exposure without EXTNAME/EXTTYPE (HDUs by position)",
    "dp2": "DP2 lsst.images file (FMTVER/DATAMODL/JSONADDR)",
    "plain": "plain FITS image",
    "memory": "in memory (not read from a file)",
}


@dataclass(frozen=True)
class HduUse:
    """One HDU the reader used: its index in the file, EXTNAME, role and how it was found."""

    index: int
    name: str  #: EXTNAME ("" when the HDU has none)
    role: str  #: image, mask, variance, json
    found_by: str  #: EXTNAME, EXTTYPE, position, JSONADDR, first image HDU ...
    kind: str = ""  #: e.g. "float32 4000x4072, tile-compressed GZIP_2"

    def text(self) -> str:
        label = f"{self.index} {self.name}" if self.name else f"{self.index}"
        extra = f", {self.kind}" if self.kind else ""
        return f"HDU {label}: {self.role} (by {self.found_by}{extra})"


@dataclass
class ImageData:
    """One image with its mask, variance, mask planes, WCS and pixel origin.

    Arrays are indexed ``[y, x]`` in FITS order; LSST "parent" pixel coordinates are
    ``x = column + x0`` and ``y = row + y0`` (pixel centres are integers). ``wcs`` is the FITS
    WCS of the file and so works in ARRAY coordinates: ``wcs.pixel_to_world(column, row)``
    (0-based); subtract ``x0``/``y0`` from parent pixels before using it. ``variance_estimated``
    is True when the file had no variance plane and it was estimated (see ``notes``).

    The mask is int32 when its planes fit 31 bits, int64 otherwise (a DP2 mask of more than 31
    planes). Plane names are the file's; :meth:`bit`, :meth:`bits` and :meth:`plane` accept the
    legacy and the DP2 spelling of a renamed plane (``SAT``/``SATURATED``, ...).
    ``mask_descriptions`` holds the planes' descriptions where known; ``layout`` and ``hdus`` say
    what the reader found (``diascan info`` shows them).
    """

    image: np.ndarray
    mask: np.ndarray
    variance: np.ndarray
    mask_planes: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_MASK_PLANES))
    wcs: WCS | None = None
    x0: int = 0
    y0: int = 0
    bunit: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    variance_estimated: bool = False
    notes: list[str] = field(default_factory=list)
    mask_descriptions: dict[str, str] = field(default_factory=dict)
    layout: str = "memory"
    hdus: list[HduUse] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int]:
        return self.image.shape  # type: ignore[return-value]

    @property
    def has_sky(self) -> bool:
        """True when the image has a celestial WCS (sky coordinates are available)."""
        return self.wcs is not None and self.wcs.has_celestial

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        """Parent-pixel bounding box ``(x_min, y_min, x_max, y_max)``, inclusive."""
        ny, nx = self.shape
        return self.x0, self.y0, self.x0 + nx - 1, self.y0 + ny - 1

    def bit(self, plane: str) -> int:
        """Bit mask value of one mask plane (either spelling), 0 when the plane is not defined."""
        return plane_bits(self.mask_planes, plane)

    def bits(self, *planes: str) -> int:
        """OR of the bit mask values of several planes (unknown planes are ignored)."""
        out = 0
        for p in planes:
            out |= self.bit(p)
        return out

    def plane(self, name: str) -> np.ndarray:
        """Boolean array where mask plane ``name`` (either spelling) is set (all False if
        undefined)."""
        b = self.bit(name)
        if b == 0:
            return np.zeros(self.shape, dtype=bool)
        return (self.mask & b) != 0

    def plane_name(self, name: str) -> str | None:
        """The name this image uses for plane ``name`` (either spelling), or None."""
        return find_plane(self.mask_planes, name)

    def description(self, plane: str) -> str:
        """Description of a plane (from the file, else the standard one), ``""`` if unknown."""
        return self.mask_descriptions.get(plane) or description(plane)


__all__ = ["DEFAULT_MASK_PLANES", "LAYOUTS", "HduUse", "ImageData"]
