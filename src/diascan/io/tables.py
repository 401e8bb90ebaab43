"""Reading and writing tables (Parquet, ECSV, FITS, CSV, VOTable) as astropy Tables.

The format is chosen from the file extension (``.parquet``/``.pq``, ``.ecsv``, ``.fits``/
``.fit``/``.fits.gz``, ``.csv``, ``.vot``/``.votable``/``.xml``); on reading, a file with another
extension is sniffed from its first bytes. Parquet goes through pyarrow directly (astropy's
Parquet reader needs pandas, which we do not depend on); column units and descriptions are kept
in the Parquet field metadata so a written table reads back with them.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from astropy.table import Column, MaskedColumn, Table
from astropy.utils.exceptions import AstropyWarning

from diascan.errors import CatalogReadError, InputError

#: Extension -> format name (names as accepted by :func:`write_table` / :func:`read_table`).
EXTENSIONS: dict[str, str] = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".ecsv": "ecsv",
    ".fits": "fits",
    ".fit": "fits",
    ".fits.gz": "fits",
    ".csv": "csv",
    ".vot": "votable",
    ".votable": "votable",
    ".xml": "votable",
}

#: Formats :func:`write_table` can write.
WRITABLE = ("parquet", "ecsv", "fits", "csv")

_ASTROPY_FORMAT = {"ecsv": "ascii.ecsv", "fits": "fits", "csv": "ascii.csv", "votable": "votable"}
_META_KEY = b"diascan.table_meta"


class TableWriteError(InputError):
    """A table that cannot be written (unknown extension, existing file, unwritable place)."""


def table_format(path: str | Path) -> str | None:
    """Format name from the file extension (case-insensitive), None when unknown."""
    name = Path(path).name.lower()
    for ext in sorted(EXTENSIONS, key=len, reverse=True):
        if name.endswith(ext):
            return EXTENSIONS[ext]
    return None


def sniff_format(path: str | Path) -> str | None:
    """Format guessed from the first bytes of the file, None when unrecognised."""
    with open(path, "rb") as fh:
        head = fh.read(512)
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"SIMPLE  =") or head[:2] == b"\x1f\x8b":
        return "fits"
    text = head.lstrip().lower()
    if text.startswith(b"# %ecsv"):
        return "ecsv"
    if text.startswith(b"<?xml") or text.startswith(b"<votable"):
        return "votable"
    if b"," in head.split(b"\n", 1)[0]:
        return "csv"
    return None


# ---------------------------------------------------------------------------- writing


def write_table(table: Table, path: str | Path, overwrite: bool = False) -> Path:
    """Write ``table`` as Parquet, ECSV, FITS or CSV chosen by the extension of ``path``.

    Refuses to replace an existing file unless ``overwrite``; writes through a temporary file
    so a failed write leaves nothing behind. Raises :class:`TableWriteError`.
    """
    path = Path(path)
    fmt = table_format(path)
    if fmt not in WRITABLE:
        raise TableWriteError(
            path,
            f"unknown table format {''.join(path.suffixes) or '(no extension)'}: use one of "
            ".parquet, .ecsv, .fits, .csv",
        )
    if path.exists() and not overwrite:
        raise TableWriteError(path, "exists; refusing to overwrite it")
    tmp = path.with_name(path.name + ".part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "parquet":
            pq.write_table(_table_to_arrow(table), tmp)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", AstropyWarning)
                table.write(tmp, format=_ASTROPY_FORMAT[fmt], overwrite=True)
        tmp.replace(path)
    except OSError as exc:
        raise TableWriteError(path, f"cannot be written ({exc})") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _json_safe(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return None


def _table_to_arrow(table: Table) -> pa.Table:
    arrays, fields = [], []
    for name in table.colnames:
        col = table[name]
        data = np.asarray(col)
        mask = np.asarray(col.mask) if getattr(col, "mask", None) is not None else None
        if data.ndim > 1:
            arr = pa.array([list(row) for row in data.tolist()])
        elif data.dtype.kind in "US":
            arr = pa.array(data.tolist(), mask=mask)
        else:
            arr = pa.array(data, mask=mask if mask is not None and mask.any() else None)
        meta = {}
        if col.unit is not None:
            meta["unit"] = col.unit.to_string()
        if col.description:
            meta["description"] = str(col.description)
        arrays.append(arr)
        fields.append(pa.field(name, arr.type, metadata=meta or None))
    meta = {k: v for k, v in table.meta.items() if _json_safe(v) is not None}
    schema = pa.schema(fields, metadata={_META_KEY: json.dumps(meta).encode()})
    return pa.Table.from_arrays(arrays, schema=schema)


# ---------------------------------------------------------------------------- reading


def read_table(path: str | Path, where: dict[str, Any] | None = None) -> Table:
    """Read a Parquet, ECSV, FITS (first table HDU), CSV or VOTable file as an astropy Table.

    ``where`` keeps only the rows whose columns equal the given values (columns that do not
    exist are ignored; for Parquet the selection is pushed down to pyarrow). Raises
    :class:`~diascan.errors.CatalogReadError` for a missing, empty or unreadable file.
    """
    path = Path(path)
    if not path.exists():
        raise CatalogReadError(path, "file not found")
    if path.is_dir():
        raise CatalogReadError(path, "is a folder, not a table file")
    if path.stat().st_size == 0:
        raise CatalogReadError(path, "empty file")
    fmt = table_format(path) or sniff_format(path)
    if fmt is None:
        raise CatalogReadError(
            path, "unknown table format: use Parquet, ECSV, FITS, CSV or VOTable"
        )
    try:
        if fmt == "parquet":
            table = _read_parquet(path, where)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", AstropyWarning)
                table = Table.read(path, format=_ASTROPY_FORMAT[fmt])
    except CatalogReadError:
        raise
    except Exception as exc:  # noqa: BLE001 - readers raise many types for corrupt files
        problem = f"cannot be read as {fmt} ({type(exc).__name__}: {exc})"
        raise CatalogReadError(path, problem) from exc
    _normalise(table, fmt)
    if where and fmt != "parquet":
        table = _select(table, where)
    return table


def _normalise(table: Table, fmt: str) -> None:
    """Native byte order (FITS is big-endian); CSV ``True``/``False`` text back to bool."""
    for name in table.colnames:
        col = table[name]
        if col.dtype.byteorder not in "=|":
            table.replace_column(name, col.astype(col.dtype.newbyteorder("=")))
        elif fmt == "csv" and col.dtype.kind == "U" and len(col):
            values = set(np.unique(np.asarray(col)))
            if values <= {"True", "False"}:
                table.replace_column(name, col == "True")


def _select(table: Table, where: dict[str, Any]) -> Table:
    keep = np.ones(len(table), dtype=bool)
    for name, value in where.items():
        if name in table.colnames:
            keep &= np.asarray(table[name] == value, dtype=bool)
    return table[keep]


def _read_parquet(path: Path, where: dict[str, Any] | None) -> Table:
    filters = None
    if where:
        names = set(pq.read_schema(path).names)
        filters = [(k, "=", v) for k, v in where.items() if k in names] or None
    arrow = pq.read_table(path, filters=filters)
    return arrow_to_table(arrow)


def arrow_to_table(arrow: pa.Table) -> Table:
    """Convert a pyarrow Table to an astropy Table (nulls become masked entries)."""
    table = Table()
    for field in arrow.schema:
        chunked = arrow.column(field.name)
        arr = chunked.combine_chunks() if chunked.num_chunks != 1 else chunked.chunk(0)
        if pa.types.is_dictionary(arr.type):
            arr = arr.dictionary_decode()
        null = arr.is_null().to_numpy(zero_copy_only=False) if arr.null_count else None
        if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
            data = np.array(pc.fill_null(arr, "").to_pylist(), dtype=str)
        elif pa.types.is_integer(arr.type) or pa.types.is_boolean(arr.type):
            filler = False if pa.types.is_boolean(arr.type) else 0
            data = pc.fill_null(arr, filler).to_numpy(zero_copy_only=False)
        else:
            data = arr.to_numpy(zero_copy_only=False)
        meta = {k.decode(): v.decode() for k, v in (field.metadata or {}).items()}
        kwargs = {
            "name": field.name,
            "unit": meta.get("unit"),
            "description": meta.get("description"),
        }
        col = (
            MaskedColumn(data, mask=null, **kwargs) if null is not None else Column(data, **kwargs)
        )
        table.add_column(col)
    raw = (arrow.schema.metadata or {}).get(_META_KEY)
    if raw:
        with contextlib.suppress(ValueError):
            table.meta.update(json.loads(raw))
    return table


def read_parquet_meta(path: str | Path) -> dict[str, Any]:
    """The table ``meta`` of a Parquet file written by :func:`write_table`, read from its footer
    alone (no column data); ``{}`` when it has none. Raises
    :class:`~diascan.errors.CatalogReadError` for a missing file or one that is not Parquet."""
    path = Path(path)
    try:
        raw = (pq.read_schema(path).metadata or {}).get(_META_KEY)
    except (OSError, pa.ArrowException) as exc:
        raise CatalogReadError(path, f"cannot be read as parquet ({exc})") from exc
    try:
        meta = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return meta if isinstance(meta, dict) else {}


__all__ = [
    "EXTENSIONS",
    "TableWriteError",
    "arrow_to_table",
    "read_parquet_meta",
    "read_table",
    "sniff_format",
    "table_format",
    "write_table",
]
