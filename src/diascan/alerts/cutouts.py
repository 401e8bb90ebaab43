"""Alert cutouts: the bytes of a cutout field decoded into pixels (no Qt, no torch).

- **Rubin** (``cutoutScience`` etc. of lsst.v6+ packets, as ap_association's packageAlerts writes
  them with astropy's CCDData): a FITS file whose PRIMARY HDU is the image in nJy, with an
  ``UNCERT`` HDU (``UTYPE = 'VarianceUncertainty'``: the variance), often a ``PSFIMAGE`` HDU, and
  a local linear WCS whose CTYPE cards are missing: RA---TAN / DEC--TAN are assumed from
  CRPIX / PC / CRVAL (CRVAL is the source position). ``CUTMINX`` / ``CUTMINY`` are kept: they are
  the parent-pixel bbox minimum minus one, so that FITS pixel 1 is the bbox minimum, i.e. array
  pixel 0 is at parent pixel ``CUTMINX + 1`` (checked on every stamp in ../shared: the
  diaSource ``x`` is at array column ``CRPIX1 - 1``).
- **ZTF**: a gzipped FITS file, 63 x 63 pixels or clipped at a chip edge, NaN pixels possible, no
  WCS (the position comes from the candidate's ra/dec).
- 2016-era ZTF packets carry JPEG pictures: no pixel values, refused with a clear
  :class:`CutoutError`, as is anything else that is not FITS.
"""

from __future__ import annotations

import functools
import gzip
import io
import warnings
import zlib

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning
from astropy.wcs import WCS, FITSFixedWarning

from diascan.io.images import ImageData

#: ZTF cutouts are 63 x 63 unless clipped at a chip edge; the source is at index 31.
ZTF_STAMP = 63


class CutoutError(ValueError):
    """A cutout whose bytes give no pixels (missing, JPEG, not FITS, corrupt)."""


class Cutout:
    """One decoded cutout: ``image`` float32 ``[y, x]`` (NaN = no pixel); ``origin`` = the parent
    pixel ``(x0, y0)`` of array pixel ``[0, 0]`` (Rubin: ``CUTMINX + 1``), None if unknown.

    The ``variance`` (``UNCERT``) and ``psf`` (``PSFIMAGE``) images and the sky ``wcs`` (array
    pixel coordinates, 0-based) are decoded from the kept FITS bytes on first use: a gallery page
    needs only the images, and astropy takes ~3 ms per extra HDU and ~10 ms per WCS (measured).
    """

    def __init__(self, image: np.ndarray, header: fits.Header, fits_bytes: bytes) -> None:
        self.image = image
        self.header = header
        self._fits = fits_bytes
        self.origin = _origin(header)
        bunit = header.get("BUNIT")
        self.bunit = str(bunit).strip() if bunit else None

    @property
    def shape(self) -> tuple[int, int]:
        return self.image.shape  # type: ignore[return-value]

    def _extension(self, name: str) -> np.ndarray | None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(io.BytesIO(self._fits), memmap=False,
                           ignore_missing_simple=True) as hdul:
                hdu = _hdu(hdul, name)
                if hdu is None or (name == "UNCERT" and not str(
                        hdu.header.get("UTYPE", "Variance")).startswith("Variance")):
                    return None
                return _f32(hdu.data)

    @functools.cached_property
    def variance(self) -> np.ndarray | None:
        """The variance (the ``UNCERT`` HDU of a Rubin cutout), None when there is none."""
        var = self._extension("UNCERT")
        return var if var is not None and var.shape == self.shape else None

    @functools.cached_property
    def psf(self) -> np.ndarray | None:
        """The PSF image (``PSFIMAGE`` HDU of a Rubin cutout), None when there is none."""
        return self._extension("PSFIMAGE")

    @functools.cached_property
    def wcs(self) -> WCS | None:
        """The local TAN WCS (Rubin), None without one (ZTF)."""
        return _tan_wcs(self.header)

    def to_image_data(self) -> ImageData:
        """The cutout as an :class:`~diascan.io.images.ImageData` (mask empty; variance NaN
        when the cutout has none), for code written for visit images."""
        variance = self.variance
        if variance is None:
            variance = np.full(self.shape, np.nan, dtype=np.float32)
        x0, y0 = self.origin or (0, 0)
        return ImageData(
            image=self.image,
            mask=np.zeros(self.shape, dtype=np.int32),
            variance=variance,
            wcs=self.wcs,
            x0=x0,
            y0=y0,
            bunit=self.bunit,
            notes=[] if self.variance is not None else ["alert cutout without variance"],
        )


def _f32(data) -> np.ndarray:
    a = np.asarray(data)
    if a.ndim != 2:
        raise CutoutError(f"cutout image has {a.ndim} dimensions, expected 2")
    return a.astype(np.float32, copy=False) if a.dtype.isnative else a.astype(np.float32)


def _tan_wcs(hdr: fits.Header) -> WCS | None:
    """The local TAN WCS of a Rubin cutout header (CTYPE cards assumed when missing)."""
    if "CRVAL1" not in hdr or "CRPIX1" not in hdr:
        return None
    hdr = hdr.copy()
    hdr.setdefault("CTYPE1", "RA---TAN")
    hdr.setdefault("CTYPE2", "DEC--TAN")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        warnings.simplefilter("ignore", AstropyUserWarning)
        try:
            wcs = WCS(hdr, naxis=2)
        except Exception:  # astropy.wcs raises many unrelated types for bad headers
            return None
    return wcs if wcs.has_celestial else None


def _origin(hdr: fits.Header) -> tuple[int, int] | None:
    if "CUTMINX" not in hdr or "CUTMINY" not in hdr:
        return None
    try:
        return int(hdr["CUTMINX"]) + 1, int(hdr["CUTMINY"]) + 1
    except (TypeError, ValueError):
        return None


def _hdu(hdul: fits.HDUList, name: str):
    for hdu in hdul[1:]:
        if hdu.name.upper() == name and hdu.data is not None:
            return hdu
    return None


def _fits_bytes(data: bytes) -> bytes:
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise CutoutError(f"corrupt gzip cutout: {exc}") from exc
    return data


def stamp_bytes(value) -> bytes | None:
    """The bytes of a cutout field: the bytes themselves (Rubin) or the ``stampData`` of a ZTF
    ``{fileName, stampData}`` record."""
    if isinstance(value, dict):
        value = value.get("stampData")
    return None if value is None else bytes(value)


def decode_cutout(data: bytes | None) -> Cutout:
    """Decode the bytes of one cutout field (FITS, gzipped FITS); raises :class:`CutoutError`."""
    if data is None or len(data) == 0:
        raise CutoutError("no cutout in the alert")
    data = bytes(data)
    if data[:3] == b"\xff\xd8\xff":
        raise CutoutError("JPEG cutout (a 2016-era packet): a picture, no pixel values")
    raw = _fits_bytes(data)
    if not raw.startswith(b"SIMPLE"):
        raise CutoutError(f"cutout is not FITS (starts with {raw[:8]!r})")
    with warnings.catch_warnings():
        # ZTF cutouts: "Found a SIMPLE card but its format doesn't respect the FITS Standard"
        warnings.simplefilter("ignore")
        try:
            with fits.open(io.BytesIO(raw), memmap=False, ignore_missing_simple=True) as hdul:
                primary = hdul[0]
                if primary.data is None:
                    raise CutoutError("FITS cutout without an image in its first HDU")
                return Cutout(_f32(primary.data), primary.header, raw)
        except CutoutError:
            raise
        except Exception as exc:  # astropy.io.fits raises OSError, ValueError, ...
            raise CutoutError(f"corrupt FITS cutout: {exc}") from exc


def ztf_centre(shape: tuple[int, int], x: float | None, y: float | None) -> tuple[float, float]:
    """Source position ``(x, y)`` in the array pixels of a ZTF cutout.

    ZTF cuts the 63 x 63 box whose middle pixel (index 31) is the candidate and clips it at the
    chip edge: a stamp short on an axis lost its low side when the candidate is within 31 pixels
    of the chip's first pixel (then the source is at its own 0-based position ``x``), else its
    high side (the source stays at index 31). ``x``, ``y`` are the 0-based detector position
    (``xpos - 1``), None when unknown.
    """
    ny, nx = shape
    half = ZTF_STAMP // 2

    def axis(n: int, p: float | None) -> float:
        if n < ZTF_STAMP and p is not None and np.isfinite(p) and p < half:
            return float(p)
        return float(min(half, n - 1))

    return axis(nx, x), axis(ny, y)


def display_stamp(
    image: np.ndarray | None, centre: tuple[float, float] | None, size: int
) -> np.ndarray:
    """``size`` x ``size`` float32 stamp of ``image`` centred on ``centre`` (array ``(x, y)``;
    None: the middle), NaN where the image has no pixels; all NaN without an image."""
    out = np.full((size, size), np.nan, dtype=np.float32)
    if image is None:
        return out
    ny, nx = image.shape
    cx, cy = ((nx - 1) / 2.0, (ny - 1) / 2.0) if centre is None else centre
    if not (np.isfinite(cx) and np.isfinite(cy)):
        cx, cy = (nx - 1) / 2.0, (ny - 1) / 2.0
    x0 = int(np.floor(cx + 0.5)) - size // 2
    y0 = int(np.floor(cy + 0.5)) - size // 2
    sx0, sy0 = max(x0, 0), max(y0, 0)
    sx1, sy1 = min(x0 + size, nx), min(y0 + size, ny)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = image[sy0:sy1, sx0:sx1]
    return out


__all__ = [
    "Cutout", "CutoutError", "decode_cutout", "display_stamp", "stamp_bytes", "ztf_centre",
]
