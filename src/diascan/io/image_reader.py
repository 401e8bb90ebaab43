"""Reading image files into :class:`~diascan.io.image_data.ImageData`: one reader for every layout.

The layout is found from the file (:mod:`diascan.io.fits_layout`): afw Exposures of every
generation (by EXTNAME, EXTTYPE or position), DP2 ``lsst.images`` files (several MASK HDUs
merged, metadata from the JSON tree) and plain FITS (GOTO, ZTF, ...). Rules (rubin-formats.md):

* pixel origin from the "A" WCS (``CRPIX1A = CRPIX2A = 1``), else ``LTV1/2``;
* afw: the PRIMARY header's cards (metadata, WCS) count for an HDU only when it has
  ``INHERIT = T``; DP2: the JSON tree, then the PRIMARY header (the Butler's data-id cards);
  plain FITS: the PRIMARY header too unless the image HDU says ``INHERIT = F``;
* mask planes from ``MP_*`` (afw), ``MSKN/MSKM/MSKD`` (DP2) or ZTF ``BITnn`` cards; the mask is
  int32 for up to 31 planes, int64 beyond;
* a plain image has an empty mask (``NO_DATA`` where the image is not finite) unless a separate
  mask file is given, and a variance estimated robustly from the background.

A 3-D cube whose extra axes all have length 1 is squeezed to 2-D (with a note); a real cube is
refused. A file without a usable celestial WCS still opens: ``wcs`` is None and ``notes`` says
"no sky coordinates". Bad input raises :class:`~diascan.errors.ImageReadError` naming the file:
missing, not FITS, truncated or corrupt (a gzip CRC error, a tile-compressed HDU whose DATASUM
does not match), no image, planes of different shapes, mask-plane cards or an origin that cannot
be right. Metadata of the wrong type is ignored with a note.
"""

from __future__ import annotations

import bz2
import gzip
import io
import re
import threading
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.stats import sigma_clipped_stats
from astropy.utils.exceptions import AstropyUserWarning
from numpy.typing import DTypeLike

import diascan.io.dp2_tree as dp2_tree
from diascan.errors import ImageReadError
from diascan.io.fits_layout import Layout, detect_layout
from diascan.io.header_values import (
    HeaderValueError,
    celestial_wcs,
    metadata_from_headers,
    pixel_origin,
)
from diascan.io.image_data import DEFAULT_MASK_PLANES, HduUse, ImageData
from diascan.io.mask_planes import (
    MAX_BIT,
    PLANES_PER_INT32,
    PlaneCardError,
    afw_planes,
    dp2_planes,
    free_bit,
    mask_dtype,
    ztf_planes,
)

#: Held while a file is read (see :func:`read_image`).
_READ_LOCK = threading.Lock()

#: Errors astropy/zlib raise for files that are truncated or corrupt.
_READ_ERRORS = (OSError, ValueError, EOFError, TypeError, IndexError, KeyError, zlib.error,
                fits.verify.VerifyError, ArithmeticError)  # fmt: skip

#: Above this many finite pixels the noise is estimated on a regular subsample (for speed).
_NOISE_SAMPLE = 1_000_000
#: A whole-file compressed (.gz, .bz2) FITS larger than this once decompressed is refused
#: (a few-kB "zip bomb" must not fill the memory). A full LSSTCam detector is ~200 MB.
MAX_DECOMPRESSED = 4 * 1024**3


def read_image(path: str | Path, mask_path: str | Path | None = None) -> ImageData:
    """Open a science, template or difference image (any layout; see the module docstring).

    Arrays come back C-contiguous as float32 (image, variance) and int32 or int64 (mask).
    ``mask_path`` adds a separate integer mask file (e.g. a ZTF ``*_mskimg.fits``).
    """
    path = Path(path)
    # One read at a time: the checks below catch astropy's warnings with
    # warnings.catch_warnings, which is process-wide before Python 3.14, so two reads in two
    # threads took each other's "truncated" warnings (the pipeline reads in threads).
    with _READ_LOCK:
        with _open_fits(path) as hdul:
            try:
                data = _read(path, hdul)
            except ImageReadError:
                raise
            except (PlaneCardError, HeaderValueError) as exc:
                raise ImageReadError(path, str(exc)) from exc
            except _READ_ERRORS as exc:
                raise ImageReadError(
                    path, f"truncated or corrupt FITS data ({_first_line(exc)})"
                ) from exc
        if mask_path is not None:
            _apply_mask_file(data, Path(mask_path))
    return data


def read_image_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata (visit, detector, band, mjd, ...) of an image without decoding its pixels: the
    same values :func:`read_image` puts in ``ImageData.metadata``, from the same headers (and
    DP2 JSON tree); a tile-compressed file's DATASUM is still checked. Raises
    :class:`~diascan.errors.ImageReadError` as :func:`read_image` does for a file that is
    missing, not FITS, truncated or has no image."""
    path = Path(path)
    with _open_fits(path) as hdul:
        try:
            layout = _layout(path, hdul)
            notes: list[str] = []
            tree = _tree(hdul, layout, notes)
            return _metadata(hdul, layout, tree, _inherited(hdul, layout), notes)
        except ImageReadError:
            raise
        except (PlaneCardError, HeaderValueError) as exc:
            raise ImageReadError(path, str(exc)) from exc
        except _READ_ERRORS as exc:
            raise ImageReadError(path, f"truncated or corrupt FITS header ({_first_line(exc)})") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


# --------------------------------------------------------------------------------------------
# Opening and checking the file


def _decompressed(path: Path, opener) -> io.BytesIO:
    """The whole decompressed file (checks the gzip CRC and length; bounded size)."""
    buf = io.BytesIO()
    try:
        with opener(path, "rb") as fh:
            while chunk := fh.read(16 * 1024 * 1024):
                buf.write(chunk)
                if buf.tell() > MAX_DECOMPRESSED:
                    raise ImageReadError(
                        path, f"decompresses to more than {MAX_DECOMPRESSED // 1024**3} GiB"
                    )
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        raise ImageReadError(path, f"truncated or corrupt compressed file ({_first_line(exc)})") from exc
    buf.seek(0)
    return buf


def _open_fits(path: Path) -> fits.HDUList:
    """The open HDU list (corrupt tiles checked); raises ImageReadError naming ``path``."""
    if not path.exists():
        raise ImageReadError(path, "file not found")
    if path.is_dir():
        raise ImageReadError(path, "is a folder, not a FITS file")
    try:
        with open(path, "rb") as fh:
            magic = fh.read(9)
    except OSError as exc:
        raise ImageReadError(path, f"cannot be read ({_first_line(exc)})") from exc
    if not magic:
        raise ImageReadError(path, "empty file")
    source: Path | io.BytesIO = path
    if magic[:2] == b"\x1f\x8b":
        source = _decompressed(path, gzip.open)
    elif magic[:3] == b"BZh":
        source = _decompressed(path, bz2.open)
    head = source.getvalue()[:9] if isinstance(source, io.BytesIO) else magic
    if not head.startswith(b"SIMPLE  ="):
        raise ImageReadError(path, "not a FITS file (it does not start with SIMPLE =)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AstropyUserWarning)
        warnings.simplefilter("always", fits.verify.VerifyWarning)
        try:
            hdul = fits.open(source, memmap=False, lazy_load_hdus=False)
        except _READ_ERRORS as exc:
            raise ImageReadError(path, f"truncated or corrupt FITS file ({_first_line(exc)})") from exc
    for w in caught:
        text = str(w.message)
        if "truncated" in text.lower():
            hdul.close()
            raise ImageReadError(path, "truncated FITS file (shorter than its headers say)")
    if _data_past_end(source, hdul):  # the same test, in case another thread took the warning
        hdul.close()
        raise ImageReadError(path, "truncated FITS file (shorter than its headers say)")
        if text.startswith("Error validating header for HDU"):
            hdul.close()
            detail = " ".join(text.split())[len("Error validating header for ") :]
            raise ImageReadError(path, f"truncated or corrupt FITS file ({detail[:160]})")
    try:
        _verify_tiles(path, source, hdul)
    except ImageReadError:
        hdul.close()
        raise
    return hdul


def _data_past_end(source: Path | io.BytesIO, hdul: fits.HDUList) -> bool:
    """True when an HDU's data (with padding) run past the end of the file: astropy's
    "may have been truncated" condition, checked without relying on catching its warning."""
    size = source.getbuffer().nbytes if isinstance(source, io.BytesIO) else source.stat().st_size
    for i in range(len(hdul)):
        info = hdul.fileinfo(i)
        if info and info["datLoc"] + info["datSpan"] > size:
            return True
    return False


def _verify_tiles(path: Path, source: Path | io.BytesIO, hdul: fits.HDUList) -> None:
    """Check the DATASUM of every tile-compressed HDU that has one (diascan writes them).

    A corrupt RICE tile has no check of its own and would decode to other pixels; the FITS
    DATASUM of the compressed bytes catches it. Only compressed HDUs are checked (their bytes
    are a fraction of the image; checking the uncompressed planes too doubled the read time).
    """
    packed = [i for i, h in enumerate(hdul) if isinstance(h, fits.CompImageHDU)]
    if not packed:
        return
    if isinstance(source, io.BytesIO):
        source.seek(0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AstropyUserWarning)
        warnings.simplefilter("ignore", fits.verify.VerifyWarning)
        try:
            with fits.open(source, disable_image_compression=True, checksum=True,
                           memmap=False) as raw:  # fmt: skip
                names = [(h.name, h.ver) for h in raw]
        except _READ_ERRORS as exc:
            raise ImageReadError(path, f"corrupt FITS file ({_first_line(exc)})") from exc
    for w in caught:
        m = re.search(r"Datasum verification failed for HDU \('([^']*)', (\d+)\)", str(w.message))
        if m and (m.group(1), int(m.group(2))) in names:
            i = names.index((m.group(1), int(m.group(2))))
            if i in packed:
                raise ImageReadError(
                    path, f"corrupt tile-compressed data in HDU {i} {m.group(1)} "
                    "(its DATASUM does not match)"
                )  # fmt: skip


def _as_2d(path: Path, hdu, notes: list[str]) -> np.ndarray:
    """The HDU's data as a 2-D array; leading length-1 axes are squeezed with a note."""
    arr = hdu.data
    label = hdu.name or "PRIMARY"
    if arr is None:
        raise ImageReadError(path, f"HDU {label} holds no data")
    if arr.ndim == 1:
        raise ImageReadError(path, f"HDU {label} holds 1-D data of length {arr.size}, not an image")
    if arr.ndim > 2:
        if all(n == 1 for n in arr.shape[:-2]):
            notes.append(f"HDU {label}: {arr.ndim}-D data of shape {arr.shape} squeezed to 2-D")
            arr = arr.reshape(arr.shape[-2:])
        else:
            raise ImageReadError(
                path, f"HDU {label} holds a {arr.ndim}-D cube of shape {arr.shape}, not an image"
            )
    return arr


def _native(arr: np.ndarray, dtype: DTypeLike) -> np.ndarray:
    """``arr`` as a C-contiguous native-endian ``dtype`` array.

    FITS data are big-endian; when the plane already has the right type we swap its bytes in
    place (measured: half the read time of a detector is spent in the copying conversion). The
    HDU's data must not be used again afterwards, which holds for every caller here.
    """
    want = np.dtype(dtype)
    if arr.dtype == want and arr.flags.c_contiguous:
        return arr
    if (
        arr.dtype.newbyteorder("=") == want
        and arr.dtype.byteorder not in ("=", "|")
        and arr.flags.c_contiguous
        and arr.flags.writeable
    ):
        return arr.byteswap(inplace=True).view(arr.dtype.newbyteorder("="))
    return np.ascontiguousarray(arr, dtype=want)


def _float_plane(path: Path, arr: np.ndarray) -> np.ndarray:
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ImageReadError(path, f"image data of type {arr.dtype} are not numbers")
    with np.errstate(over="ignore"):  # float64 beyond float32 becomes inf, as afw reads it
        return _native(arr, np.float32)


def _int_mask(path: Path, arr: np.ndarray, dtype: np.dtype, notes: list[str]) -> np.ndarray:
    if np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool:
        return _native(arr, dtype)
    if (
        np.issubdtype(arr.dtype, np.floating)
        and np.all(np.isfinite(arr))
        and np.all(arr == np.round(arr))
        and np.all(np.abs(arr) < 2.0**62)
    ):
        notes.append(f"{path.name}: float mask converted to integers")
        return np.ascontiguousarray(arr, dtype=dtype)
    raise ImageReadError(path, f"mask has non-integer values (dtype {arr.dtype})")


def _check_finite(path: Path, image: np.ndarray) -> None:
    if image.size == 0:
        raise ImageReadError(path, "image is empty")
    if not np.isfinite(image).any():
        raise ImageReadError(path, "image has no finite pixel (all NaN or inf)")


def _check_shape(path: Path, what: str, got: tuple, want: tuple) -> None:
    if tuple(got) != tuple(want):
        raise ImageReadError(path, f"{what} shape {tuple(got)} differs from IMAGE shape {want}")


# --------------------------------------------------------------------------------------------
# The layouts


def _inherits(hdr: fits.Header) -> bool:
    return hdr.get("INHERIT") is True


def _layout(path: Path, hdul: fits.HDUList) -> Layout:
    layout = detect_layout(hdul)
    if layout is None:
        kinds = ", ".join(f"{h.name or '?'} ({type(h).__name__})" for h in hdul)
        raise ImageReadError(path, f"no image HDU in the file (HDUs: {kinds})")
    return layout


def _tree(hdul: fits.HDUList, layout: Layout, notes: list[str]) -> dict | None:
    """The DP2 JSON tree, None for other layouts."""
    if layout.json is not None:
        return dp2_tree.read_tree(hdul[layout.json.index], notes)
    if layout.name == "dp2":
        notes.append("no JSON HDU: metadata from the headers only")
    return None


def _inherited(hdul: fits.HDUList, layout: Layout) -> fits.Header | None:
    """The header whose cards count for the image HDU besides its own (module docstring)."""
    if layout.image.index == 0:
        return None
    hdr, primary = hdul[layout.image.index].header, hdul[0].header
    if layout.name in ("afw", "afw-exttype", "afw-position"):
        return primary if _inherits(hdr) else None
    if layout.name == "dp2":
        return primary
    return None if hdr.get("INHERIT") is False else primary


def _metadata(
    hdul: fits.HDUList,
    layout: Layout,
    tree: dict | None,
    inherited: fits.Header | None,
    notes: list[str],
) -> dict[str, Any]:
    """Metadata from the JSON tree (DP2) first, then the image HDU's and inherited headers."""
    hdr = hdul[layout.image.index].header
    metadata: dict[str, Any] = {} if tree is None else dp2_tree.tree_metadata(tree, notes)
    headers = [hdr] if inherited is None else [hdr, inherited]
    for name, value in metadata_from_headers(headers, notes, afw=layout.name.startswith("afw")).items():
        metadata.setdefault(name, value)
    return metadata


def _read(path: Path, hdul: fits.HDUList) -> ImageData:
    layout = _layout(path, hdul)
    notes = list(layout.notes)
    image_hdu = hdul[layout.image.index]
    hdr = image_hdu.header
    image = _float_plane(path, _as_2d(path, image_hdu, notes))
    _check_finite(path, image)
    shape = image.shape
    tree = _tree(hdul, layout, notes)

    descriptions: dict[str, str] = {}
    if layout.masks:
        mask, planes, descriptions = _read_masks(path, hdul, layout, shape, notes)
    elif layout.name == "plain":
        planes = dict(DEFAULT_MASK_PLANES)
        notes.append("no mask in the file: diascan's default planes, empty")
        mask = np.zeros(shape, dtype=np.int32)
        bad = ~np.isfinite(image)
        if bad.any():
            mask[bad] = 1 << planes["NO_DATA"]
            notes.append(f"{int(bad.sum())} non-finite pixels marked NO_DATA")
    else:
        mask = np.zeros(shape, dtype=np.int32)
        planes = dict(DEFAULT_MASK_PLANES)
        notes.append("no MASK HDU: empty mask")
    if tree is not None:
        for name, desc in dp2_tree.tree_planes(tree).items():
            descriptions.setdefault(name, desc)

    variance_estimated = layout.variance is None
    if layout.variance is not None:
        variance = _float_plane(path, _as_2d(path, hdul[layout.variance.index], notes))
        _check_shape(path, "VARIANCE", variance.shape, shape)
    else:
        if layout.name != "plain":
            notes.append("no VARIANCE HDU")
        variance = _estimated_variance(image, notes)

    inherited = _inherited(hdul, layout)
    metadata = _metadata(hdul, layout, tree, inherited, notes)
    bunit = hdr.get("BUNIT") or (inherited.get("BUNIT") if inherited is not None else None)
    if not bunit and tree is not None:
        bunit = dp2_tree.tree_unit(tree)
    x0, y0 = pixel_origin(hdr, notes)
    wcs_inherited = None if layout.name == "dp2" else inherited
    return ImageData(
        image=image,
        mask=mask,
        variance=variance,
        mask_planes=planes,
        wcs=celestial_wcs(hdr, wcs_inherited, shape, notes),
        x0=x0,
        y0=y0,
        bunit=str(bunit).strip() if isinstance(bunit, str | int | float) and bunit else None,
        metadata=metadata,
        path=path,
        variance_estimated=variance_estimated,
        notes=[" ".join(n.split())[:300] for n in notes],  # one line each (messages of astropy)
        mask_descriptions=descriptions,
        layout=layout.name,
        hdus=layout.hdus,
    )


def _hdu_planes(hdr: fits.Header, wide: bool) -> tuple[dict[str, int], dict[str, str], str]:
    """Planes, descriptions and card style of one MASK header (MSKN, MP_ or ZTF BITnn)."""
    planes, descriptions = dp2_planes(hdr)
    if planes:
        return planes, descriptions, "MSKN"
    planes = afw_planes(hdr, MAX_BIT if wide else PLANES_PER_INT32 - 1)
    if planes:
        return planes, {}, "MP_"
    return ztf_planes(hdr), {}, "BITnn"


def _read_masks(
    path: Path, hdul: fits.HDUList, layout: Layout, shape: tuple, notes: list[str]
) -> tuple[np.ndarray, dict[str, int], dict[str, str]]:
    """The mask (several DP2 MASK HDUs merged, plane n of the k-th at bit 31 k + n)."""
    parts = []
    planes: dict[str, int] = {}
    descriptions: dict[str, str] = {}
    for k, use in enumerate(layout.masks):
        hdu = hdul[use.index]
        arr = _as_2d(path, hdu, notes)
        _check_shape(path, "MASK", arr.shape, shape)
        wide = arr.dtype.itemsize > 4
        hdu_planes, hdu_desc, style = _hdu_planes(hdu.header, wide and len(layout.masks) == 1)
        if len(layout.masks) > 1 and style != "MSKN":
            raise ImageReadError(
                path, f"MASK HDU {use.index} (EXTVER {k + 1}) has no MSKN plane cards"
            )
        offset = PLANES_PER_INT32 * k
        for name, bit in hdu_planes.items():
            if name in planes:
                raise ImageReadError(path, f"mask plane {name} is defined in two MASK HDUs")
            if bit + offset > MAX_BIT:
                raise ImageReadError(path, f"more than {MAX_BIT + 1} mask planes")
            planes[name] = bit + offset
        descriptions.update(hdu_desc)
        parts.append(arr)
    if not planes:
        notes.append("MASK header defines no mask planes: plane names unknown")
    dtype = mask_dtype(planes)
    if len(parts) == 1:
        return _int_mask(path, parts[0], dtype, notes), planes, descriptions
    mask = np.zeros(shape, dtype=dtype)
    low31 = np.int64(2**PLANES_PER_INT32 - 1)
    for k, arr in enumerate(parts):
        part = _int_mask(path, arr, np.dtype(np.int64), notes) & low31
        mask |= (part << np.int64(PLANES_PER_INT32 * k)).astype(dtype, copy=False)
    return mask, planes, descriptions


# --------------------------------------------------------------------------------------------
# Variance


def estimate_noise(image: np.ndarray) -> float:
    """Robust background noise (sigma) of an image: 3-sigma-clipped MAD standard deviation.

    Non-finite pixels are ignored; large images are estimated on a regular subsample of about
    one million pixels. Returns 0.0 for a constant image.
    """
    finite = image[np.isfinite(image)]
    step = max(1, finite.size // _NOISE_SAMPLE)
    sample = finite[::step].astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow of huge values -> inf std
        _, _, std = sigma_clipped_stats(sample, sigma=3.0, maxiters=5, stdfunc="mad_std")
        if not np.isfinite(std) or std <= 0:
            std = float(np.std(sample))
    return float(std) if np.isfinite(std) else 0.0


def _estimated_variance(image: np.ndarray, notes: list[str]) -> np.ndarray:
    sigma = estimate_noise(image)
    var = sigma * sigma
    if not (sigma > 0 and np.isfinite(var) and var < np.finfo(np.float32).max):
        notes.append("variance unknown (constant image): set to 1")
        var = 1.0
    else:
        notes.append(
            f"variance estimated from the image: constant {var:.6g} "
            f"(sigma-clipped MAD noise {sigma:.6g} of the background)"
        )
    return np.full(image.shape, var, dtype=np.float32)


# --------------------------------------------------------------------------------------------
# Separate mask file (e.g. ZTF *_mskimg.fits.gz)


def _apply_mask_file(data: ImageData, mask_path: Path) -> None:
    notes = data.notes
    with _open_fits(mask_path) as hdul:
        try:
            layout = detect_layout(hdul)
            if layout is None:
                raise ImageReadError(mask_path, "no image HDU in the mask file")
            index = layout.masks[0].index if layout.masks else layout.image.index
            hdu = hdul[index]
            mask = _int_mask(mask_path, _as_2d(mask_path, hdu, notes), np.dtype(np.int32), notes)
            planes, descriptions, _ = _hdu_planes(hdu.header, False)
        except ImageReadError:
            raise
        except PlaneCardError as exc:
            raise ImageReadError(mask_path, str(exc)) from exc
        except _READ_ERRORS as exc:
            raise ImageReadError(mask_path, f"truncated or corrupt FITS data ({exc})") from exc
    if mask.shape != data.shape:
        raise ImageReadError(
            mask_path,
            f"mask shape {mask.shape} differs from the image shape {data.shape}"
            + (f" of {data.path.name}" if data.path else ""),
        )
    if not planes:
        notes.append(f"{mask_path.name} defines no mask planes: plane names unknown")
    bad = ~np.isfinite(data.image)
    if bad.any() and "NO_DATA" not in planes:
        used = dict(planes)
        used.update({f"_bit{b}": b for b in range(31) if np.any(mask & np.int32(1 << b))})
        free = free_bit(used)
        if free is not None and free < PLANES_PER_INT32:
            planes["NO_DATA"] = free
            mask[bad] |= np.int32(1 << free)
    data.mask = mask
    data.mask_planes = planes
    data.mask_descriptions = descriptions
    data.hdus = [*data.hdus, HduUse(index, "", "mask", f"mask file {mask_path.name}")]
    notes.append(f"mask read from {mask_path.name}")


__all__ = ["MAX_DECOMPRESSED", "estimate_noise", "read_image"]
