"""Which HDUs of a FITS file hold the image, mask(s), variance and DP2 JSON tree.

Detected from the file itself, as the Rubin software does (rubin-formats.md sections 1, 2):

* ``dp2``: the PRIMARY header has ``FMTVER``, ``DATAMODL`` or ``JSONADDR`` (written by
  ``lsst.images``); arrays by EXTNAME, the MASK HDUs in ``EXTVER`` order, the JSON tree by
  ``JSONADDR`` (else its EXTNAME);
* ``afw``: HDUs by ``EXTNAME`` ``IMAGE``/``MASK``/``VARIANCE`` (afw since 2021);
* ``afw-exttype``: by ``EXTTYPE`` (older afw files; the image may be the PRIMARY HDU);
* ``afw-position``: neither card: the first image HDU, then the next two when they have the
  image's shape and are an integer and a float array, as afw's reader takes them;
* ``plain``: any other file: its first image HDU.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from astropy.io import fits

from diascan.io.image_data import HduUse


@dataclass
class Layout:
    """The HDUs to read (indices into the HDU list) and how each was found."""

    name: str
    image: HduUse
    masks: list[HduUse] = field(default_factory=list)
    variance: HduUse | None = None
    json: HduUse | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def hdus(self) -> list[HduUse]:
        out = [self.image, *self.masks]
        out += [h for h in (self.variance, self.json) if h is not None]
        return out


def _card(hdu, key: str) -> str:
    value = hdu.header.get(key)
    return value.strip().upper() if isinstance(value, str) else ""


def _has_pixels(hdu) -> bool:
    naxis = hdu.header.get("NAXIS", 0)  # a CompImageHDU's header is the image's
    return bool(hdu.is_image) and isinstance(naxis, int) and naxis > 0


def _shape(hdu) -> tuple:
    return tuple(hdu.shape) if hdu.is_image else ()


def _bitpix(hdu) -> int:
    b = hdu.header.get("BITPIX", 0)
    return b if isinstance(b, int) else 0


def _extver(hdu) -> int:
    v = hdu.header.get("EXTVER", 1)
    return v if isinstance(v, int) and not isinstance(v, bool) else 1


def describe_hdu(hdu) -> str:
    """Short description of an image HDU: ``float32 4072x4000, tile-compressed GZIP_2``."""
    bitpix = hdu.header.get("BITPIX")
    kinds = {8: "uint8", 16: "int16", 32: "int32", 64: "int64", -32: "float32", -64: "float64"}
    shape = "x".join(str(n) for n in reversed(_shape(hdu)))
    text = f"{kinds.get(bitpix, f'BITPIX {bitpix}')} {shape}".strip()
    if isinstance(hdu, fits.CompImageHDU):
        text += f", tile-compressed {hdu.compression_type}"
    return text


def _use(hdul: fits.HDUList, i: int, role: str, found_by: str) -> HduUse:
    hdu = hdul[i]
    name = _card(hdu, "EXTNAME") if i > 0 else "PRIMARY"
    kind = describe_hdu(hdu) if hdu.is_image else type(hdu).__name__
    return HduUse(i, name, role, found_by, kind)


def _is_dp2(primary: fits.Header) -> bool:
    return any(k in primary for k in ("FMTVER", "DATAMODL", "JSONADDR"))


def _by_card(hdul: fits.HDUList, key: str, value: str) -> list[int]:
    return [i for i, h in enumerate(hdul) if _has_pixels(h) and _card(h, key) == value]


def _json_hdu(hdul: fits.HDUList, notes: list[str]) -> HduUse | None:
    primary = hdul[0].header
    addr = primary.get("JSONADDR")
    tables = [i for i, h in enumerate(hdul) if isinstance(h, fits.BinTableHDU)]
    if isinstance(addr, int) and not isinstance(addr, bool) and addr > 0:
        for i in tables:
            if hdul.fileinfo(i)["hdrLoc"] == addr:
                return _use(hdul, i, "json", "JSONADDR")
        notes.append(f"JSONADDR = {addr} points at no table HDU")
    for i in tables:
        if _card(hdul[i], "EXTNAME") == "JSON":
            return _use(hdul, i, "json", "EXTNAME")
    return None


def detect_layout(hdul: fits.HDUList) -> Layout | None:
    """The :class:`Layout` of ``hdul``; None when it holds no image HDU."""
    primary = hdul[0].header
    notes: list[str] = []
    images = _by_card(hdul, "EXTNAME", "IMAGE")
    if images:
        image = images[0]
        name = "dp2" if _is_dp2(primary) else "afw"
        masks = sorted(_by_card(hdul, "EXTNAME", "MASK"), key=lambda i: _extver(hdul[i]))
        if name != "dp2" and len(masks) > 1:
            masks = masks[:1]
        var = [i for i in _by_card(hdul, "EXTNAME", "VARIANCE") if _extver(hdul[i]) == 1]
        return Layout(
            name,
            _use(hdul, image, "image", "EXTNAME"),
            [_use(hdul, i, "mask", "EXTNAME") for i in masks],
            _use(hdul, var[0], "variance", "EXTNAME") if var else None,
            _json_hdu(hdul, notes) if name == "dp2" else None,
            notes,
        )
    images = _by_card(hdul, "EXTTYPE", "IMAGE")
    if images:
        image = images[0]
        masks = _by_card(hdul, "EXTTYPE", "MASK")
        var = _by_card(hdul, "EXTTYPE", "VARIANCE")
        return Layout(
            "afw-exttype",
            _use(hdul, image, "image", "EXTTYPE"),
            [_use(hdul, masks[0], "mask", "EXTTYPE")] if masks else [],
            _use(hdul, var[0], "variance", "EXTTYPE") if var else None,
            notes=notes,
        )
    candidates = [i for i, h in enumerate(hdul) if _has_pixels(h)]
    if not candidates:
        return None
    image = candidates[0]
    nxt = [i for i in (image + 1, image + 2) if i < len(hdul) and _has_pixels(hdul[i])]
    if len(nxt) == 2:
        shape = _shape(hdul[image])
        m, v = hdul[nxt[0]], hdul[nxt[1]]
        int_mask = _bitpix(m) > 0
        float_var = _bitpix(v) < 0
        if _shape(m) == shape and _shape(v) == shape and int_mask and float_var:
            return Layout(
                "afw-position",
                _use(hdul, image, "image", "position"),
                [_use(hdul, nxt[0], "mask", "position")],
                _use(hdul, nxt[1], "variance", "position"),
                notes=notes,
            )
    return Layout("plain", _use(hdul, image, "image", "first image HDU"), notes=notes)


__all__ = ["Layout", "describe_hdu", "detect_layout"]
