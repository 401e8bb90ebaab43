"""LSST Exposure FITS images: the :class:`ImageData` container, its reader and writer.

The LSST layout (rubin-facts.md section 2): an empty PRIMARY HDU with global metadata, then
``IMAGE`` (float32), ``MASK`` (int32) and ``VARIANCE`` (float32) found by EXTNAME, followed by
archive tables that we ignore. Mask planes are the ``MP_<NAME> = bit`` cards of the MASK header.
The pixel origin is ``LTV1 = -x0``, ``LTV2 = -y0`` (also alternate WCS "A").
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from diascan.errors import ImageReadError

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

#: Header keys copied into ``ImageData.metadata`` when present (FITS key -> metadata key).
#: The first key listed for a metadata name is the one :func:`write_exposure` writes. Keys are
#: tried in this order in the PRIMARY header, then in the IMAGE header; the first non-empty
#: value wins. Long LSST butler keys are HIERARCH cards.
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
    "TELESCOP": "telescope",
    "PSFSIGMA": "psf_sigma",
    "PSF_SIGMA": "psf_sigma",
}

#: Metadata not in :data:`METADATA_KEYS` is written as ``HIERARCH DIASCAN <NAME>`` cards and read
#: back (lower-cased) by the reader.
EXTRA_METADATA_PREFIX = "DIASCAN "

#: Types of the metadata values (values that do not convert are kept as read).
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


@dataclass
class ImageData:
    """One image with its mask, variance, mask planes, WCS and pixel origin.

    Arrays are indexed ``[y, x]`` in FITS order; LSST "parent" pixel coordinates are
    ``x = column + x0`` and ``y = row + y0`` (pixel centres are integers). ``wcs`` is the FITS
    WCS of the file and so works in ARRAY coordinates: ``wcs.pixel_to_world(column, row)``
    (0-based); subtract ``x0``/``y0`` from parent pixels before using it. ``variance_estimated``
    is True when the file had no variance plane and it was estimated (see ``notes``).
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
        """Bit mask value of one mask plane, 0 when the plane is not defined."""
        b = self.mask_planes.get(plane)
        return 0 if b is None else (1 << b)

    def bits(self, *planes: str) -> int:
        """OR of the bit mask values of several planes (unknown planes are ignored)."""
        out = 0
        for p in planes:
            out |= self.bit(p)
        return out

    def plane(self, name: str) -> np.ndarray:
        """Boolean array where mask plane ``name`` is set (all False if undefined)."""
        b = self.bit(name)
        if b == 0:
            return np.zeros(self.shape, dtype=bool)
        return (self.mask & b) != 0


def read_image(path: str | Path, mask_path: str | Path | None = None) -> ImageData:
    """Open a science, template or difference image (LSST Exposure FITS or plain FITS)."""
    from diascan.io.image_reader import read_image_file

    return read_image_file(path, mask_path=mask_path)


def read_image_metadata(path: str | Path) -> dict[str, Any]:
    """Header metadata of an image (visit, detector, band, ...) without reading its pixels."""
    from diascan.io.image_reader import read_image_metadata as read

    return read(path)


def _wcs_header(wcs: WCS | None) -> fits.Header:
    if wcs is None:
        return fits.Header()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return wcs.to_header(relax=True)


def _card_key(key: str) -> str:
    """FITS keyword for a header key: plain when it fits 8 characters, HIERARCH otherwise."""
    key = key.upper()
    if len(key) <= 8 and all(c.isalnum() or c in "-_" for c in key):
        return key
    return f"HIERARCH {key}"


def _metadata_cards(metadata: dict[str, Any]) -> list[tuple[str, Any]]:
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
            cards.append((_card_key(canonical[name]), value))
        else:  # any other metadata round-trips through a DIASCAN-prefixed HIERARCH card
            cards.append((f"HIERARCH {EXTRA_METADATA_PREFIX}{name.upper()}", value))
    return cards


def write_exposure(
    path: str | Path,
    data: ImageData,
    *,
    compress: bool = False,
    overwrite: bool = False,
) -> Path:
    """Write ``data`` in the LSST Exposure layout (PRIMARY, IMAGE, MASK, VARIANCE).

    Metadata goes to the PRIMARY header (keys of :data:`METADATA_KEYS`), the WCS (TAN-SIP too)
    and the pixel origin (``LTV1/2`` and WCS "A") to each plane's header, mask planes as
    ``MP_<NAME>`` cards (HIERARCH for long names) to the MASK header. With ``compress=True`` the
    planes are tile-compressed losslessly: RICE_1 for the int mask and GZIP_2 with
    ``quantize_level=0`` (no quantisation) for the floats, so every value (NaN and inf too)
    round-trips exactly. Writes through a temporary file, so a failed write leaves no file.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: exists; refusing to overwrite")
    primary = fits.PrimaryHDU()
    for key, value in _metadata_cards(data.metadata):
        primary.header[key] = value

    common = fits.Header()
    common.extend(_wcs_header(data.wcs), unique=True)
    common["LTV1"] = -int(data.x0)
    common["LTV2"] = -int(data.y0)
    common["CTYPE1A"] = "LINEAR"
    common["CTYPE2A"] = "LINEAR"
    common["CRPIX1A"] = 1.0
    common["CRPIX2A"] = 1.0
    common["CRVAL1A"] = float(data.x0)
    common["CRVAL2A"] = float(data.y0)
    common["CUNIT1A"] = "PIXEL"
    common["CUNIT2A"] = "PIXEL"

    planes = (
        ("IMAGE", np.asarray(data.image, dtype=np.float32), data.bunit),
        ("MASK", np.asarray(data.mask, dtype=np.int32), None),
        (
            "VARIANCE",
            np.asarray(data.variance, dtype=np.float32),
            f"({data.bunit})^2" if data.bunit else None,
        ),
    )
    hdus: list[fits.hdu.base.ExtensionHDU] = []
    for name, arr, unit in planes:
        hdr = common.copy()
        hdr["EXTNAME"] = name
        if unit:
            hdr["BUNIT"] = unit
        if name == "MASK":
            for plane, bit in data.mask_planes.items():
                hdr[_card_key(f"MP_{plane}")] = int(bit)
        if compress:
            hdu = fits.CompImageHDU(
                arr,
                header=hdr,
                compression_type="RICE_1" if name == "MASK" else "GZIP_2",
                quantize_level=0.0,  # 0 disables quantisation: lossless floats
            )
        else:
            hdu = fits.ImageHDU(arr, header=hdr)
        hdus.append(hdu)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)
            fits.HDUList([primary, *hdus]).writeto(tmp, overwrite=True)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


__all__ = [
    "DEFAULT_MASK_PLANES",
    "METADATA_KEYS",
    "ImageData",
    "ImageReadError",
    "read_image",
    "read_image_metadata",
    "write_exposure",
]
