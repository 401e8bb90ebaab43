"""Writing :class:`~diascan.io.image_data.ImageData` in the three Rubin layouts the reader knows.

* ``afw`` (DP1; the default): PRIMARY with the metadata, then ``IMAGE``, ``MASK``, ``VARIANCE``
  found by EXTNAME (and EXTTYPE, ``INHERIT = T``, as afw writes them); mask planes as ``MP_*``
  cards; the origin as the "A" WCS and ``LTV1/2``.
* ``afw-exttype``: the same without EXTNAME, as afw wrote Exposures before 2021.
* ``dp2`` (``lsst.images``): PRIMARY with ``FMTVER``, ``DATAMODL``, ``JSONADDR/JSONSIZE``,
  ``INDXADDR/INDXSIZE`` and the Butler data-id cards; ``IMAGE``, one ``MASK`` HDU per 31 planes
  (``EXTVER`` 1, 2, ...; ``MSKN/MSKM/MSKD`` cards), ``VARIANCE``, each with ``BUNIT``, the WCS and
  the "A" WCS (no LTV); then the ``JSON`` tree and the ``INDEX`` table of HDU byte offsets
  (rubin-formats.md section 2). Tile-compressed (lossless GZIP_2) by default, as lsst.images.

Every layout gets FITS ``CHECKSUM``/``DATASUM`` cards; the reader verifies those of tile-compressed
HDUs (a corrupt RICE tile has no check of its own). Writing goes
through a temporary file, so a failed write leaves no file.
"""

from __future__ import annotations

import datetime
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits

import diascan.io.dp2_tree as dp2_tree
from diascan.io.header_values import card_key, metadata_cards, origin_cards, wcs_cards
from diascan.io.image_data import ImageData
from diascan.io.mask_planes import PLANES_PER_INT32, description, mask_dtype

#: Layouts :func:`write_exposure` writes.
WRITE_LAYOUTS = ("afw", "afw-exttype", "dp2")
#: lsst.images' FITS container version (``FMTVER``).
DP2_FORMAT_VERSION = 1


def _read_only(arr: np.ndarray) -> np.ndarray:
    """A read-only view of ``arr``. astropy writes a writeable little-endian array by swapping
    its bytes in place and back; another thread reading the same pixels meanwhile (the pipeline
    scores a template while the results cache writes it) would see garbage. From a read-only
    array astropy writes a swapped copy, one plane at a time, and the caller's array never
    changes."""
    view = arr.view()
    view.flags.writeable = False
    return view


def _plane_hdu(arr: np.ndarray, hdr: fits.Header, compress: bool, integer: bool):
    arr = _read_only(arr)
    if not compress:
        return fits.ImageHDU(arr, header=hdr)
    return fits.CompImageHDU(
        arr,
        header=hdr,
        # RICE for integers, GZIP_2 with quantize_level=0 (no quantisation) for floats: every
        # value (NaN and inf too) round-trips exactly.
        compression_type="RICE_1" if integer and arr.dtype.itemsize <= 4 else "GZIP_2",
        quantize_level=0.0,
    )


def _variance_unit(bunit: str | None, dp2: bool) -> str | None:
    if not bunit:
        return None
    if dp2:
        import astropy.units as u

        try:
            return (u.Unit(bunit) ** 2).to_string(format="fits")
        except ValueError:
            return f"({bunit})^2"
    return f"({bunit})^2"


def _dp2_mask_hdus(data: ImageData) -> list[tuple[np.ndarray, list[tuple[str, int]]]]:
    """``(int32 array, [(plane, n)])`` per DP2 MASK HDU: the planes as they are when they fit
    one HDU, else packed 31 per HDU in bit order (as lsst.images splits a wide mask)."""
    order = sorted(data.mask_planes.items(), key=lambda kv: kv[1])
    mask = np.asarray(data.mask)
    if not order or order[-1][1] < PLANES_PER_INT32:
        return [(mask.astype(np.int32), [(name, bit) for name, bit in order])]
    out = []
    for start in range(0, len(order), PLANES_PER_INT32):
        group = order[start : start + PLANES_PER_INT32]
        arr = np.zeros(mask.shape, dtype=np.int32)
        for n, (_, bit) in enumerate(group):
            arr |= (((mask >> bit) & 1) << n).astype(np.int32)
        out.append((arr, [(name, n) for n, (name, _) in enumerate(group)]))
    return out


def _afw_hdus(data: ImageData, layout: str, compress: bool) -> list:
    primary = fits.PrimaryHDU()
    for key, value in metadata_cards(data.metadata):
        primary.header[key] = value
    common = fits.Header()
    common.extend(wcs_cards(data.wcs), unique=True)
    common.extend(origin_cards(data.x0, data.y0), unique=True)
    common["INHERIT"] = True
    mask = np.asarray(data.mask)
    planes = (
        ("IMAGE", np.asarray(data.image, dtype=np.float32), data.bunit),
        ("MASK", mask.astype(mask_dtype(data.mask_planes), copy=False), None),
        ("VARIANCE", np.asarray(data.variance, dtype=np.float32), _variance_unit(data.bunit, False)),
    )
    hdus = [primary]
    for name, arr, unit in planes:
        hdr = common.copy()
        if layout == "afw":
            hdr["EXTNAME"] = name
        hdr["EXTTYPE"] = name
        if unit:
            hdr["BUNIT"] = unit
        if name == "MASK":
            for plane, bit in data.mask_planes.items():
                hdr[card_key(f"MP_{plane}")] = int(bit)
        hdus.append(_plane_hdu(arr, hdr, compress, name == "MASK"))
    return hdus


def _dp2_hdus(data: ImageData, compress: bool, data_model: str) -> list:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    primary = fits.PrimaryHDU()
    h = primary.header
    h["FMTVER"] = (DP2_FORMAT_VERSION, "FITS container layout version.")
    for key in ("INDXADDR", "INDXSIZE", "JSONADDR", "JSONSIZE"):
        h[key] = 0  # filled in once the offsets are known
    h["DATAMODL"] = f"{dp2_tree.SCHEMA_BASE}{data_model}-1.0.0"
    h["DATE"] = now
    md = data.metadata
    for key, name in (("VISIT", "visit"), ("DETECTOR", "detector"), ("BAND", "band"),
                      ("INSTRUMENT", "instrument")):  # fmt: skip
        value = md.get(name)
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            h[f"HIERARCH LSST BUTLER DATAID {key}"] = value
    common = fits.Header()
    common.extend(wcs_cards(data.wcs), unique=True)
    common.extend(origin_cards(data.x0, data.y0, ltv=False), unique=True)
    common["DATE"] = now
    var_unit = _variance_unit(data.bunit, True)
    hdus = [primary]

    def add(name: str, arr: np.ndarray, unit: str | None, ver: int = 1, cards=()) -> None:
        hdr = common.copy()
        hdr["EXTNAME"] = name
        if ver > 1:
            hdr["EXTVER"] = ver
        if unit:
            hdr["BUNIT"] = unit
        for key, value in cards:
            hdr[key] = value
        hdus.append(_plane_hdu(arr, hdr, compress, name == "MASK"))

    add("IMAGE", np.asarray(data.image, dtype=np.float32), data.bunit)
    masks = _dp2_mask_hdus(data)
    listed: list[tuple[str, str]] = []
    for k, (arr, planes) in enumerate(masks):
        cards = []
        for name, n in planes:
            desc = data.mask_descriptions.get(name) or description(name)
            cards += [(f"MSKN{n:04d}", name), (f"MSKM{n:04d}", 1 << n), (f"MSKD{n:04d}", desc)]
            listed.append((name, desc))
        add("MASK", arr, None, k + 1, cards)
    add("VARIANCE", np.asarray(data.variance, dtype=np.float32), var_unit)
    tree = dp2_tree.build_tree(
        data_model=data_model, shape=data.shape, x0=data.x0, y0=data.y0, bunit=data.bunit,
        variance_unit=var_unit, planes=listed, n_mask_hdus=len(masks), metadata=md,
    )  # fmt: skip
    json_hdu = dp2_tree.tree_hdu(tree)
    json_hdu.header["DATE"] = now
    hdus.append(json_hdu)
    return hdus


def _index_hdu(path: Path) -> fits.BinTableHDU:
    """The DP2 ``INDEX`` table: EXTNAME, EXTVER, XTENSION, ZIMAGE and the byte offsets of every
    HDU written so far (header address, data address, data size)."""
    rows = []
    with fits.open(path, disable_image_compression=True) as hdul:
        for i, hdu in enumerate(hdul):
            info = hdul.fileinfo(i)
            hdr = hdu.header
            rows.append((str(hdr.get("EXTNAME", "")), int(hdr.get("EXTVER", 1)),
                         str(hdr.get("XTENSION", "IMAGE")), bool(hdr.get("ZIMAGE", False)),
                         info["hdrLoc"], info["datLoc"], info["datSpan"]))  # fmt: skip
    width = max(1, *(len(r[0]) for r in rows))
    cols = [
        fits.Column("EXTNAME", f"A{width}", array=[r[0] for r in rows]),
        fits.Column("EXTVER", "J", array=[r[1] for r in rows]),
        fits.Column("XTENSION", "A8", array=[r[2] for r in rows]),
        fits.Column("ZIMAGE", "L", array=np.array([r[3] for r in rows], dtype=bool)),
        fits.Column("HDRADDR", "K", array=[r[4] for r in rows]),
        fits.Column("DATADDR", "K", array=[r[5] for r in rows]),
        fits.Column("DATSIZE", "K", array=[r[6] for r in rows]),
    ]
    return fits.BinTableHDU.from_columns(cols, name="INDEX")


def _finish_dp2(tmp: Path) -> None:
    """Append the INDEX HDU and fill the PRIMARY's JSON/INDEX addresses in place (the cards
    are fixed-width, so the header keeps its size and nothing else moves)."""
    index = _index_hdu(tmp)
    with fits.open(tmp, disable_image_compression=True) as hdul:
        json_i = next(i for i, h in enumerate(hdul) if h.header.get("EXTNAME") == "JSON")
        info = hdul.fileinfo(json_i)
        json_addr, json_size = info["hdrLoc"], info["datLoc"] + info["datSpan"] - info["hdrLoc"]
        header_size = hdul.fileinfo(0)["datLoc"]
        primary = fits.PrimaryHDU(header=hdul[0].header.copy())
    index_addr = tmp.stat().st_size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fits.verify.VerifyWarning)
        fits.append(tmp, index.data, index.header, checksum=True)
    index_size = tmp.stat().st_size - index_addr
    h = primary.header
    h["INDXADDR"], h["INDXSIZE"] = index_addr, index_size
    h["JSONADDR"], h["JSONSIZE"] = json_addr, json_size
    primary.add_checksum()
    raw = h.tostring().encode("ascii")
    if len(raw) != header_size:  # pragma: no cover - integer cards have a fixed width
        raise RuntimeError("DP2 writer: the PRIMARY header changed size")
    with open(tmp, "r+b") as fh:
        fh.write(raw)


def write_exposure(
    path: str | Path,
    data: ImageData,
    *,
    layout: str = "afw",
    compress: bool | None = None,
    overwrite: bool = False,
    data_model: str = "visit_image",
) -> Path:
    """Write ``data`` as a Rubin Exposure file in ``layout`` (see the module docstring).

    ``compress`` tile-compresses the planes losslessly (default: False for the afw layouts, True
    for ``dp2``). ``data_model`` names the DP2 schema (``visit_image``, ``difference_image``,
    ...). Refuses to replace an existing file unless ``overwrite``.
    """
    if layout not in WRITE_LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {', '.join(WRITE_LAYOUTS)}")
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: exists; refusing to overwrite")
    if compress is None:
        compress = layout == "dp2"
    if layout == "dp2":
        hdus = _dp2_hdus(data, compress, data_model)
    else:
        hdus = _afw_hdus(data, layout, compress)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)
            fits.HDUList(hdus).writeto(tmp, overwrite=True, checksum=True)
        if layout == "dp2":
            _finish_dp2(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


__all__ = ["WRITE_LAYOUTS", "write_exposure"]
