"""Values from FITS headers: metadata, the pixel origin and the celestial WCS (read and write).

Header values are untrusted: a metadata value of the wrong type or out of range is ignored with a
note (the image still opens); an origin that cannot be right is an error (raised as
:class:`HeaderValueError`, which the reader turns into an error naming the file).
"""

from __future__ import annotations

import math
import re
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning

if TYPE_CHECKING:
    from astropy.wcs import WCS

#: Header keys copied into ``ImageData.metadata`` when present (FITS key -> metadata key).
#: The first key listed for a metadata name is the one the writer uses. For each name the keys
#: are tried in this order, each in the HDU's own header first, then in the inherited one; the
#: first usable value wins. Long LSST butler keys are HIERARCH cards.
METADATA_KEYS = {
    "VISIT": "visit",
    "LSST BUTLER DATAID VISIT": "visit",
    "EXPID": "visit",
    "DETECTOR": "detector",
    "LSST BUTLER DATAID DETECTOR": "detector",
    "CCDNUM": "detector",
    "CCD_ID": "detector",
    "BAND": "band",
    "LSST BUTLER DATAID BAND": "band",
    "FILTER": "filter",
    "MJD-OBS": "mjd",
    "MJD": "mjd",
    "MJD-AVG": "mjd",
    "OBSMJD": "mjd",
    "EXPTIME": "exptime",
    "INSTRUME": "instrument",
    "LSST BUTLER DATAID INSTRUMENT": "instrument",
    "TELESCOP": "telescope",
    "PSFSIGMA": "psf_sigma",
    "PSF_SIGMA": "psf_sigma",
}

#: Metadata not in :data:`METADATA_KEYS` is written as ``HIERARCH DIASCAN <NAME>`` cards and read
#: back (lower-cased) by the reader.
EXTRA_METADATA_PREFIX = "DIASCAN "

#: Types of the metadata values and the range a value must be in to be used.
METADATA_TYPES: dict[str, type] = {
    "visit": int,
    "detector": int,
    "band": str,
    "filter": str,
    "mjd": float,
    "exptime": float,
    "instrument": str,
    "telescope": str,
    "psf_sigma": float,
}
_RANGES: dict[str, tuple[float, float]] = {
    "visit": (0, 2**63 - 1),
    "detector": (0, 2**31 - 1),
    "mjd": (0.0, 1e6),
    "exptime": (0.0, 1e7),
    "psf_sigma": (1e-6, 1e4),  # detection refuses implausible widths with its own message
}

#: |x0|, |y0| above this cannot be a pixel origin (LSST parent coordinates stay far below).
MAX_ORIGIN = 1e9


class HeaderValueError(ValueError):
    """A header value that makes the file unusable (the reader names the file)."""


def convert_metadata(name: str, value: Any) -> Any:
    """``value`` as the type of metadata ``name``; raises ValueError (with the reason) when it is
    of the wrong type or out of range."""
    kind = METADATA_TYPES.get(name)
    if kind is None:
        return value
    if isinstance(value, str):
        value = value.strip()
        if not value:
            raise ValueError("empty")
    if kind is str:
        if isinstance(value, bool) or not isinstance(value, str | int | float | np.integer):
            raise ValueError(f"{value!r} is not text")
        return str(value)
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{value!r} is not a number") from None
    lo, hi = _RANGES.get(name, (-math.inf, math.inf))
    if not math.isfinite(number) or not lo <= number <= hi:
        raise ValueError(f"{value!r} is out of range")
    if kind is int:
        if not number.is_integer():
            raise ValueError(f"{value!r} is not an integer")
        # exact for integer cards (a float cannot hold every 19-digit visit id)
        if isinstance(value, int | np.integer):
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value):
            return int(value)
        return int(number)
    return number


def _lookup(hdr: fits.Header, key: str) -> Any:
    with warnings.catch_warnings():  # long keys: "a HIERARCH card will be created"
        warnings.simplefilter("ignore", fits.verify.VerifyWarning)
        try:
            return hdr.get(key)
        except (ValueError, KeyError, IndexError):  # a card astropy cannot parse
            return None


def _date_avg_mjd(headers: list[fits.Header], notes: list[str]) -> float | None:
    for hdr in headers:
        date = _lookup(hdr, "DATE-AVG")
        if not date:
            continue
        try:
            # Imported here: astropy.time (~50 ms) is on diascan score's critical path
            # otherwise, and only files without an MJD card need it.
            from astropy.time import Time

            scale = str(_lookup(hdr, "TIMESYS") or "UTC").strip().lower()
            return convert_metadata("mjd", Time(str(date), scale=scale).mjd)
        except Exception as exc:  # noqa: BLE001 - astropy.time raises its own types too
            notes.append(f"header DATE-AVG = {date!r} ignored: {exc}")
    return None


def metadata_from_headers(
    headers: list[fits.Header], notes: list[str], *, afw: bool = False
) -> dict[str, Any]:
    """Metadata from ``headers`` (the HDU's own header first, then the one it inherits).

    For each name the keys of :data:`METADATA_KEYS` are tried in order; a value of the wrong type
    or out of range is skipped with a note. ``mjd`` falls back to ``DATE-AVG`` (in ``TIMESYS``);
    for an afw Exposure (``afw=True``) ``DATE-AVG`` comes first, as afw's VisitInfo reads it (an
    afw ``MJD-OBS`` belongs to the WCS). ``band`` falls back to a ``FILTER`` like ``r``/``ZTF_r``.
    """
    md: dict[str, Any] = {}
    if afw and (mjd := _date_avg_mjd(headers, notes)) is not None:
        md["mjd"] = mjd
    for key, name in METADATA_KEYS.items():
        if name in md:
            continue
        for hdr in headers:
            value = _lookup(hdr, key)
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            try:
                md[name] = convert_metadata(name, value)
                break
            except ValueError as exc:
                notes.append(f"header {key} = {value!r} ignored: {exc}")
    for hdr in headers:
        for card in hdr.cards:
            key = card.keyword.upper()
            if key.startswith(EXTRA_METADATA_PREFIX) and len(key) > len(EXTRA_METADATA_PREFIX):
                md.setdefault(key[len(EXTRA_METADATA_PREFIX) :].lower(), card.value)
    if "mjd" not in md and not afw and (mjd := _date_avg_mjd(headers, notes)) is not None:
        md["mjd"] = mjd
    if "band" not in md and isinstance(md.get("filter"), str):
        m = re.fullmatch(r"(?:ZTF_|SDSS_?)?([ugrizy])(?:_\w+)?", md["filter"], re.IGNORECASE)
        if m:
            md["band"] = m.group(1).lower()
    return md


def _number(hdr: fits.Header, key: str) -> float:
    value = _lookup(hdr, key)
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise HeaderValueError(f"pixel origin card {key} = {value!r} is not a number")
    number = float(value)
    if not math.isfinite(number) or abs(number) > MAX_ORIGIN:
        raise HeaderValueError(f"pixel origin card {key} = {value!r} is out of range")
    return number


def pixel_origin(hdr: fits.Header, notes: list[str]) -> tuple[int, int]:
    """``(x0, y0)``: the "A" WCS first (``CRVAL1A/2A`` when ``CRPIX1A = CRPIX2A = 1``, as afw
    and lsst.images write it), else ``LTV1/2`` (``x0 = -LTV1``), else ``(0, 0)``.

    Raises :class:`HeaderValueError` for an origin card that is not a finite number below
    :data:`MAX_ORIGIN`; an origin that is not whole pixels is ignored with a note.
    """
    cand: tuple[float, float] | None = None
    source = ""
    has_a = all(k in hdr for k in ("CRPIX1A", "CRPIX2A", "CRVAL1A", "CRVAL2A"))
    if has_a and _number(hdr, "CRPIX1A") == 1.0 and _number(hdr, "CRPIX2A") == 1.0:
        cand = (_number(hdr, "CRVAL1A"), _number(hdr, "CRVAL2A"))
        source = "WCS A"
    if "LTV1" in hdr or "LTV2" in hdr:
        ltv = (
            -_number(hdr, "LTV1") if "LTV1" in hdr else 0.0,
            -_number(hdr, "LTV2") if "LTV2" in hdr else 0.0,
        )
        if cand is None:
            cand, source = ltv, "LTV1/LTV2"
        elif ltv != cand:
            notes.append(
                f"LTV1/LTV2 give origin ({ltv[0]:g}, {ltv[1]:g}), the A WCS ({cand[0]:g}, "
                f"{cand[1]:g}): the A WCS is used, as afw does"
            )
    if cand is None:
        return 0, 0
    x0, y0 = (round(v) for v in cand)
    if abs(cand[0] - x0) > 1e-6 or abs(cand[1] - y0) > 1e-6:
        notes.append(
            f"pixel origin from {source} ({cand[0]:.3f}, {cand[1]:.3f}) is not whole pixels: "
            "ignored, origin set to (0, 0)"
        )
        return 0, 0
    return int(x0), int(y0)


def _build_wcs(hdr: fits.Header) -> WCS | None:
    # astropy.wcs is imported here, not at the top: it pulls astropy.coordinates and
    # astropy.table (~30% of the reader's import time), which ``diascan score`` imports in the
    # background while the first image's pixels are read.
    from astropy.wcs import WCS, FITSFixedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        warnings.simplefilter("ignore", AstropyUserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            return WCS(hdr, naxis=2, relax=True)
        except Exception:  # noqa: BLE001 - astropy.wcs raises many unrelated types for bad headers
            return None


_STRUCTURAL = {"SIMPLE", "XTENSION", "BITPIX", "NAXIS", "EXTEND", "PCOUNT", "GCOUNT", "EXTNAME"}


def merged_header(primary: fits.Header, hdr: fits.Header) -> fits.Header:
    """``primary``'s cards overridden by ``hdr``'s (FITS INHERIT semantics), structure removed."""
    merged = fits.Header()
    for source in (primary, hdr):
        for card in source.cards:
            key = card.keyword.upper()
            if key in _STRUCTURAL or key.startswith("NAXIS") or key in ("COMMENT", "HISTORY", ""):
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", fits.verify.VerifyWarning)
                try:
                    merged[card.keyword] = card.value
                except (ValueError, KeyError, IndexError):
                    continue  # a card astropy cannot parse carries nothing usable
    merged["NAXIS"] = 2
    for axis in (1, 2):
        n = hdr.get(f"ZNAXIS{axis}", hdr.get(f"NAXIS{axis}", 0))
        merged[f"NAXIS{axis}"] = n if isinstance(n, int) else 0
    return merged


def celestial_wcs(
    hdr: fits.Header, inherited: fits.Header | None, shape: tuple[int, int], notes: list[str]
) -> WCS | None:
    """The celestial FITS WCS of ``hdr`` (merged with ``inherited`` when ``hdr`` has none).

    Checked by evaluating it at the image centre; None (with a note) when there is none.
    """
    wcs = _build_wcs(hdr)
    if (wcs is None or not wcs.has_celestial) and inherited is not None:
        wcs = _build_wcs(merged_header(inherited, hdr))
    if wcs is None or not wcs.has_celestial:
        notes.append("no sky coordinates: the file has no celestial WCS")
        return None
    ny, nx = shape
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lon, lat = wcs.pixel_to_world_values((nx - 1) / 2.0, (ny - 1) / 2.0)
        ok = bool(np.isfinite(lon) and np.isfinite(lat) and -90.0 <= lat <= 90.0)
    except Exception:  # noqa: BLE001 - any wcslib failure means the WCS is unusable
        ok = False
    if not ok:
        notes.append("no sky coordinates: the WCS cannot be evaluated at the image centre")
        return None
    return wcs


# --------------------------------------------------------------------------------------------
# Writing


def card_key(key: str) -> str:
    """FITS keyword for a header key: plain when it fits 8 characters, HIERARCH otherwise."""
    key = key.upper()
    if len(key) <= 8 and all(c.isalnum() or c in "-_" for c in key):
        return key
    return f"HIERARCH {key}"


def wcs_cards(wcs: WCS | None) -> fits.Header:
    """The FITS cards of ``wcs`` (TAN-SIP too); empty without a WCS."""
    if wcs is None:
        return fits.Header()
    from astropy.wcs import FITSFixedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return wcs.to_header(relax=True)


def origin_cards(x0: int, y0: int, *, ltv: bool = True) -> fits.Header:
    """The "A" WCS of the pixel origin (and ``LTV1/2`` for ds9, as afw writes them)."""
    hdr = fits.Header()
    if ltv:
        hdr["LTV1"] = -int(x0)
        hdr["LTV2"] = -int(y0)
    hdr["CTYPE1A"] = "LINEAR"
    hdr["CTYPE2A"] = "LINEAR"
    hdr["CRPIX1A"] = 1.0
    hdr["CRPIX2A"] = 1.0
    hdr["CRVAL1A"] = float(x0)
    hdr["CRVAL2A"] = float(y0)
    hdr["CUNIT1A"] = "PIXEL"
    hdr["CUNIT2A"] = "PIXEL"
    return hdr


def metadata_cards(metadata: dict[str, Any]) -> list[tuple[str, Any]]:
    """``(keyword, value)`` cards of ``metadata``: the first :data:`METADATA_KEYS` key of a known
    name, ``HIERARCH DIASCAN <NAME>`` for the rest."""
    canonical: dict[str, str] = {}
    for fits_key, name in METADATA_KEYS.items():
        canonical.setdefault(name, fits_key)
    cards = []
    for name, value in metadata.items():
        if value is None:
            continue
        if isinstance(value, np.generic):
            value = value.item()
        if not isinstance(value, str | int | float | bool):
            value = str(value)
        if name in canonical:
            cards.append((card_key(canonical[name]), value))
        else:  # any other metadata round-trips through a DIASCAN-prefixed HIERARCH card
            cards.append((f"HIERARCH {EXTRA_METADATA_PREFIX}{name.upper()}", value))
    return cards


__all__ = [
    "EXTRA_METADATA_PREFIX",
    "MAX_ORIGIN",
    "METADATA_KEYS",
    "METADATA_TYPES",
    "HeaderValueError",
    "card_key",
    "celestial_wcs",
    "convert_metadata",
    "merged_header",
    "metadata_cards",
    "metadata_from_headers",
    "origin_cards",
    "pixel_origin",
    "wcs_cards",
]
