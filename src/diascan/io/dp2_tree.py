"""The JSON metadata tree of a DP2 (``lsst.images``) file: read what diascan uses, write a
minimal one.

The tree is row 0 of the ``JSON`` binary-table HDU (one variable-length byte column ``JSON``,
TFORM ``PB``; rubin-formats.md section 2). diascan reads (schemas ``visit_image-1.0.0`` and
``difference_image-1.0.0`` of lsst/images):

* ``obs_info``: ``visit_id`` (else ``exposure_id``), ``detector_num``, ``instrument``,
  ``telescope``, ``physical_filter``, ``exposure_time`` (s) and the midpoint of
  ``datetime_begin``/``datetime_end`` (each a TAI Julian date in two parts) as ``mjd`` (TAI);
* ``band``; ``summary_stats.psfSigma`` (pixels) as ``psf_sigma``;
* ``mask.planes`` (name and description of each plane); ``image.data.unit``;
* ``metadata``: free-form scalar entries.

A tree that does not parse, or a value of the wrong type, is a note, never a failure.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from astropy.io import fits

from diascan.io.header_values import METADATA_TYPES, convert_metadata

JSON_EXTNAME = "JSON"
JSON_COLUMN = "JSON"
#: A tree larger than this is not parsed (a note says so); real DP2 trees (PSF models included)
#: are a few MB.
MAX_TREE_BYTES = 256 * 1024 * 1024
SCHEMA_BASE = "https://images.lsst.io/schemas/"
#: Julian date of MJD 0.
MJD0 = 2400000.5


def read_tree(hdu: fits.BinTableHDU, notes: list[str]) -> dict | None:
    """The tree in row 0 of the JSON HDU, or None (with a note) when it cannot be read."""
    try:
        cell = hdu.data[JSON_COLUMN][0]
        raw = np.asarray(cell).tobytes()
    except Exception as exc:  # noqa: BLE001 - astropy raises many types for a corrupt heap
        notes.append(f"JSON HDU unreadable ({type(exc).__name__}): metadata from headers only")
        return None
    if len(raw) > MAX_TREE_BYTES:
        notes.append(f"JSON tree of {len(raw)} bytes not parsed: metadata from headers only")
        return None
    try:
        tree = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        notes.append(f"JSON tree does not parse ({str(exc)[:80]}): metadata from headers only")
        return None
    if not isinstance(tree, dict):
        notes.append("JSON tree is not an object: metadata from headers only")
        return None
    return tree


def _get(tree: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(tree, dict):
            return None
        tree = tree.get(key)
    return tree


def _mjd(pair: Any) -> float | None:
    if (
        isinstance(pair, list)
        and len(pair) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in pair)
    ):
        return (pair[0] - MJD0) + pair[1]
    return None


def tree_metadata(tree: dict, notes: list[str]) -> dict[str, Any]:
    """diascan metadata from the tree (values of the wrong type or range skipped with a note)."""
    obs = _get(tree, "obs_info")
    found: dict[str, Any] = {
        "visit": _get(obs, "visit_id") if _get(obs, "visit_id") is not None
        else _get(obs, "exposure_id"),
        "detector": _get(obs, "detector_num"),
        "instrument": _get(obs, "instrument"),
        "telescope": _get(obs, "telescope"),
        "filter": _get(obs, "physical_filter"),
        "exptime": _get(obs, "exposure_time"),
        "band": _get(tree, "band"),
        "psf_sigma": _get(tree, "summary_stats", "psfSigma"),
    }  # fmt: skip
    begin, end = _mjd(_get(obs, "datetime_begin")), _mjd(_get(obs, "datetime_end"))
    if begin is not None and end is not None:
        found["mjd"] = 0.5 * (begin + end)
    md: dict[str, Any] = {}
    for name, value in found.items():
        if value is None:
            continue
        try:
            md[name] = convert_metadata(name, value)
        except ValueError as exc:
            notes.append(f"JSON tree {name} = {value!r} ignored: {exc}")
    extra = _get(tree, "metadata")
    if isinstance(extra, dict):
        for key, value in extra.items():
            if isinstance(value, str | int | float | bool) and key not in METADATA_TYPES:
                md.setdefault(str(key), value)
    return md


def tree_planes(tree: dict) -> dict[str, str]:
    """Plane name -> description from ``mask.planes``."""
    out: dict[str, str] = {}
    planes = _get(tree, "mask", "planes")
    if isinstance(planes, list):
        for p in planes:
            name, desc = _get(p, "name"), _get(p, "description")
            if isinstance(name, str) and isinstance(desc, str) and desc.strip():
                out[name.strip().upper()] = desc.strip()
    return out


def tree_unit(tree: dict) -> str | None:
    unit = _get(tree, "image", "data", "unit")
    return unit.strip() if isinstance(unit, str) and unit.strip() else None


# --------------------------------------------------------------------------------------------
# Writing


def _array_ref(extname: str, ver: int, shape: tuple[int, int], dtype: str) -> dict:
    source = f"fits:{extname}" + (f",{ver}" if ver > 1 else "")
    return {"source": source, "shape": list(shape), "datatype": dtype}


def _versioned(schema: str, body: dict) -> dict:
    return {"schema_version": "1.0.0", "min_read_version": 1, **body,
            "schema_url": f"{SCHEMA_BASE}{schema}-1.0.0"}  # fmt: skip


def build_tree(
    *,
    data_model: str,
    shape: tuple[int, int],
    x0: int,
    y0: int,
    bunit: str | None,
    variance_unit: str | None,
    planes: list[tuple[str, str]],
    n_mask_hdus: int,
    metadata: dict[str, Any],
) -> dict:
    """A tree in the shape of lsst.images' ``visit_image``/``difference_image`` models, holding
    what diascan reads back (see the module docstring); ``planes`` are ``(name, description)``
    in bit order."""
    md = dict(metadata)
    obs: dict[str, Any] = {}
    for key, name in (("instrument", "instrument"), ("telescope", "telescope"),
                      ("visit_id", "visit"), ("detector_num", "detector"),
                      ("physical_filter", "filter"), ("exposure_time", "exptime")):  # fmt: skip
        if md.get(name) is not None:
            obs[key] = _plain(md.pop(name))
    if md.get("mjd") is not None:
        mjd = float(md.pop("mjd"))
        half = 0.5 * float(obs.get("exposure_time", 0.0)) / 86400.0
        obs["datetime_begin"] = [MJD0, mjd - half]
        obs["datetime_end"] = [MJD0, mjd + half]
    tree: dict[str, Any] = {
        "schema_version": "1.0.0",
        "min_read_version": 1,
        "metadata": {k: _plain(v) for k, v in md.items() if k not in ("band", "psf_sigma")},
        "image": _versioned("image", {
            "data": {"value": _array_ref("IMAGE", 1, shape, "float32"), "unit": bunit},
            "yx0": [y0, x0]}),
        "mask": _versioned("mask", {
            "data": [_array_ref("MASK", k + 1, shape, "int32") for k in range(n_mask_hdus)],
            "yx0": [y0, x0],
            "planes": [{"name": n, "description": d} for n, d in planes],
            "dtype": "uint8" if len(planes) <= 8 else "uint64" if len(planes) > 32 else "uint32"}),
        "variance": _versioned("image", {
            "data": {"value": _array_ref("VARIANCE", 1, shape, "float32"), "unit": variance_unit},
            "yx0": [y0, x0]}),
    }  # fmt: skip
    if obs:
        tree["obs_info"] = {"_translator": "VisitInfo", **obs}
    if metadata.get("psf_sigma") is not None:
        tree["summary_stats"] = _versioned(
            "observation_summary_stats", {"psfSigma": float(metadata["psf_sigma"])}
        )
    if metadata.get("band") is not None:
        tree["band"] = str(metadata["band"])
    tree["schema_url"] = f"{SCHEMA_BASE}{data_model}-1.0.0"
    return tree


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    return value if isinstance(value, str | int | float | bool) else str(value)


def tree_hdu(tree: dict) -> fits.BinTableHDU:
    """The ``JSON`` binary-table HDU holding ``tree`` in row 0."""
    raw = np.frombuffer(json.dumps(tree).encode("utf-8"), dtype=np.uint8)
    col = fits.Column(name=JSON_COLUMN, format="PB()", array=np.array([raw], dtype=object))
    return fits.BinTableHDU.from_columns([col], name=JSON_EXTNAME)


__all__ = [
    "JSON_EXTNAME",
    "build_tree",
    "read_tree",
    "tree_hdu",
    "tree_metadata",
    "tree_planes",
    "tree_unit",
]
