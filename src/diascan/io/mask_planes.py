"""Mask planes: the two spellings of a plane, its descriptions, and reading plane cards.

Rubin renamed five planes for DP2 (``lsst.images``; rubin-formats.md section 2): ``SAT`` ->
``SATURATED``, ``INTRP`` -> ``INTERPOLATED``, ``CR`` -> ``COSMIC_RAY``, ``EDGE`` ->
``DETECTION_EDGE``, ``UNMASKEDNAN`` -> ``UNMASKED_NAN``. Files keep the names they were written
with; :func:`plane_bits` resolves either spelling against a file's planes, so every user of a
plane (detection, pixel flags, the overlay) works on both generations. ``ImageData.bit`` and
friends go through it.

Plane cards, validated here so a bad header is an error naming the file, not a traceback later:

* afw (``MP_<NAME> = bit``, long names as HIERARCH), one int32 MASK HDU;
* DP2 (``MSKNnnnn = name``, ``MSKMnnnn = 1 << n``, ``MSKDnnnn = description``), one int32 MASK
  HDU per 31 planes (``EXTVER`` 1, 2, ...); plane ``n`` of HDU ``k`` (1-based) is bit
  ``31 (k - 1) + n`` of the merged in-memory mask;
* ZTF ``BITnn`` cards (the comment names the plane), for separate mask files.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
from astropy.io import fits

#: Legacy (afw) name -> DP2 name of the planes Rubin renamed.
LEGACY_TO_DP2: dict[str, str] = {
    "SAT": "SATURATED",
    "INTRP": "INTERPOLATED",
    "CR": "COSMIC_RAY",
    "EDGE": "DETECTION_EDGE",
    "UNMASKEDNAN": "UNMASKED_NAN",
}
DP2_TO_LEGACY: dict[str, str] = {v: k for k, v in LEGACY_TO_DP2.items()}

#: Planes an int32 mask HDU holds (bit 31 is the sign bit); DP2 splits masks at this size.
PLANES_PER_INT32 = 31
#: Highest bit of the in-memory int64 mask.
MAX_BIT = 62

#: Short descriptions of the usual planes (written as ``MSKD`` cards; shown as tooltips). Files
#: with their own descriptions (DP2) keep those.
DESCRIPTIONS: dict[str, str] = {
    "BAD": "Bad pixel in the instrument.",
    "SATURATED": "Saturated, or affected by saturation in a neighbouring pixel.",
    "INTERPOLATED": "Pixel value was interpolated.",
    "COSMIC_RAY": "Affected by a cosmic ray.",
    "DETECTION_EDGE": "Too close to the image edge for detection (kernel size).",
    "DETECTED": "Part of a detected source.",
    "DETECTED_NEGATIVE": "Part of a detected source with negative flux.",
    "SUSPECT": "Close to the saturation level.",
    "NO_DATA": "No data for this pixel.",
    "VIGNETTED": "Vignetted by the optics.",
    "STREAK": "An extended streak (probably a satellite).",
    "UNMASKED_NAN": "NaN found unexpectedly.",
    "CROSSTALK": "Corrected for crosstalk.",
    "SAT_TEMPLATE": "Template pixel was saturated.",
    "HIGH_VARIANCE": "Template pixel had fewer input epochs than usual (high noise).",
}


def spellings(name: str) -> tuple[str, ...]:
    """``name`` and its other spelling, if Rubin renamed the plane (``SAT`` <-> ``SATURATED``)."""
    other = LEGACY_TO_DP2.get(name) or DP2_TO_LEGACY.get(name)
    return (name, other) if other else (name,)


def plane_bits(planes: Mapping[str, int], name: str) -> int:
    """Bit mask of plane ``name`` in ``planes`` under either spelling (0 when undefined)."""
    out = 0
    for n in spellings(name):
        bit = planes.get(n)
        if bit is not None:
            out |= 1 << int(bit)
    return out


def find_plane(planes: Mapping[str, int], name: str) -> str | None:
    """The name under which ``planes`` holds plane ``name`` (either spelling), or None."""
    return next((n for n in spellings(name) if n in planes), None)


def description(name: str) -> str:
    """The standard description of a plane (either spelling), or ``""``."""
    return DESCRIPTIONS.get(LEGACY_TO_DP2.get(name, name), "")


def mask_dtype(planes: Mapping[str, int]) -> np.dtype:
    """int32 when every bit fits an int32 mask (31 planes), else int64."""
    top = max(planes.values(), default=0)
    return np.dtype(np.int32 if top < PLANES_PER_INT32 else np.int64)


def free_bit(planes: Mapping[str, int], prefer: int | None = None) -> int | None:
    """An unused bit (``prefer`` if free, else the lowest), None when all 63 are used."""
    used = {int(b) for b in planes.values()}
    if prefer is not None and prefer not in used:
        return prefer
    return next((b for b in range(MAX_BIT + 1) if b not in used), None)


class PlaneCardError(ValueError):
    """A mask-plane card that cannot be right (the reader names the file)."""


def _int_value(key: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise PlaneCardError(f"mask plane card {key} = {value!r} is not an integer")
    if not np.isfinite(value) or float(value) != int(value):
        raise PlaneCardError(f"mask plane card {key} = {value!r} is not an integer")
    v = int(value)
    if not lo <= v <= hi:
        raise PlaneCardError(f"mask plane card {key} = {v} is outside {lo}..{hi}")
    return v


def _check_unique(planes: dict[str, int], name: str, bit: int, key: str) -> None:
    if name in planes and planes[name] != bit:
        raise PlaneCardError(f"mask plane {name} is defined twice ({key})")
    clash = next((n for n, b in planes.items() if b == bit and n != name), None)
    if clash is not None:
        raise PlaneCardError(f"mask planes {clash} and {name} both use bit {bit} ({key})")


def afw_planes(hdr: fits.Header, max_bit: int = PLANES_PER_INT32 - 1) -> dict[str, int]:
    """Planes of ``MP_<NAME> = bit`` cards; raises :class:`PlaneCardError` for a bit that is not
    an integer in ``0..max_bit``, or two planes on one bit."""
    planes: dict[str, int] = {}
    for card in hdr.cards:
        key = card.keyword.upper()
        if key.startswith("MP_") and len(key) > 3:
            bit = _int_value(key, card.value, 0, max_bit)
            _check_unique(planes, key[3:], bit, key)
            planes[key[3:]] = bit
    return planes


def dp2_planes(hdr: fits.Header) -> tuple[dict[str, int], dict[str, str]]:
    """``(name -> n, name -> description)`` of one DP2 MASK HDU's ``MSKN``/``MSKM``/``MSKD`` cards.

    ``n`` is the plane's bit in that HDU; ``MSKMnnnn`` must be ``1 << n`` when present.
    """
    planes: dict[str, int] = {}
    descriptions: dict[str, str] = {}
    for card in hdr.cards:
        m = re.fullmatch(r"MSKN(\d{4})", card.keyword.upper())
        if not m:
            continue
        n = int(m.group(1))
        if n >= PLANES_PER_INT32:
            raise PlaneCardError(f"mask plane card {card.keyword} is outside MSKN0000..MSKN0030")
        name = card.value
        if not isinstance(name, str) or not name.strip():
            raise PlaneCardError(f"mask plane card {card.keyword} = {name!r} is not a plane name")
        name = name.strip().upper()
        mkey = f"MSKM{n:04d}"
        if mkey in hdr:
            mval = _int_value(mkey, hdr[mkey], 1, 2**31 - 1)
            if mval != 1 << n:
                raise PlaneCardError(f"mask plane card {mkey} = {mval} is not 1 << {n}")
        _check_unique(planes, name, n, card.keyword)
        planes[name] = n
        desc = hdr.get(f"MSKD{n:04d}")
        if isinstance(desc, str) and desc.strip():
            descriptions[name] = desc.strip()
    return planes, descriptions


#: ZTF mask bit descriptions (``BITnn`` card comments) mapped onto the LSST plane names.
_ZTF_PLANE_ALIASES = {
    "AIRCRAFT/SATELLITE TRACK": "STREAK",
    "SATURATED": "SAT",
    "DEAD (UNRESPONSIVE)": "BAD",
    "NAN (NOT A NUMBER)": "NO_DATA",
    "PIXEL SPIKE (POSSIBLE RAD HIT)": "CR",
}


def ztf_planes(hdr: fits.Header) -> dict[str, int]:
    """Planes of ZTF ``BITnn = bit / NAME`` cards (reserved bits skipped)."""
    planes: dict[str, int] = {}
    for card in hdr.cards:
        m = re.fullmatch(r"BIT(\d\d)", card.keyword.upper())
        if not m or not card.comment:
            continue
        desc = card.comment.strip().upper()
        if desc.startswith("RESERVED"):
            continue
        name = _ZTF_PLANE_ALIASES.get(desc) or re.sub(r"[^A-Z0-9]+", "_", desc).strip("_")
        try:
            bit = _int_value(card.keyword, card.value, 0, PLANES_PER_INT32 - 1)
        except PlaneCardError:
            bit = int(m.group(1))
        if bit < PLANES_PER_INT32 and name:
            planes.setdefault(name, bit)
    return planes


__all__ = [
    "DESCRIPTIONS",
    "DP2_TO_LEGACY",
    "LEGACY_TO_DP2",
    "MAX_BIT",
    "PLANES_PER_INT32",
    "PlaneCardError",
    "afw_planes",
    "description",
    "dp2_planes",
    "find_plane",
    "free_bit",
    "mask_dtype",
    "plane_bits",
    "spellings",
    "ztf_planes",
]
