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

from diascan.atomic import atomic_write
from diascan.errors import CatalogReadError, OutputError, describe_os_error
from diascan.io.table_formats import EXTENSIONS, table_format
from diascan.safe_yaml import UnsafeYAMLError, check_yaml

#: Formats :func:`write_table` can write.
WRITABLE = ("parquet", "ecsv", "fits", "csv")

_ASTROPY_FORMAT = {"ecsv": "ascii.ecsv", "fits": "fits", "csv": "ascii.csv", "votable": "votable"}
_META_KEY = b"diascan.table_meta"
_BOM = b"\xef\xbb\xbf"  #: UTF-8 byte-order mark (Excel writes one before a CSV header)

#: Formats parsed as text into memory (several times their size): capped by file size.
TEXT_FORMATS = ("csv", "ecsv", "votable")
#: Largest text table read (CSV, ECSV, VOTable).
MAX_TEXT_TABLE_BYTES = 2**30
#: Largest ECSV header (its YAML part) read: astropy parses it with PyYAML's pure-Python
#: loader (about 1 s per 100 kB on the 2-core target).
MAX_ECSV_HEADER_BYTES = 256 * 1024
#: A Parquet file whose values would take more than this much memory once decoded, and more
#: than :data:`MAX_PARQUET_EXPANSION` times its size, is refused (a decompression bomb: 10**9
#: equal values fit in a few kB).
MAX_PARQUET_DECODED_BYTES = 64 * 2**20
MAX_PARQUET_EXPANSION = 100
#: A text column is kept as Python strings (object dtype) rather than a fixed-width numpy
#: array when that array would exceed this: one 100 kB string in a million rows would ask for
#: 400 GB as fixed width.
MAX_FIXED_WIDTH_TEXT_BYTES = 256 * 2**20


class TableWriteError(OutputError):
    """A table that cannot be written (unknown extension, existing file, unwritable place)."""


def sniff_format(path: str | Path) -> str | None:
    """Format guessed from the first bytes of the file, None when unrecognised."""
    with open(path, "rb") as fh:
        head = fh.read(512)
    head = head.removeprefix(_BOM)
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

    Refuses to replace an existing file unless ``overwrite``; writes atomically
    (:func:`diascan.atomic.atomic_write`), so a failed write leaves the previous file, if any,
    and nothing else behind. Raises :class:`TableWriteError`.
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

    def write(tmp: Path) -> None:
        if fmt == "parquet":
            pq.write_table(_table_to_arrow(table), tmp)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", AstropyWarning)
                table.write(tmp, format=_ASTROPY_FORMAT[fmt], overwrite=True)

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, write)
    except OSError as exc:
        raise TableWriteError(path, f"cannot be written: {describe_os_error(exc)}") from None
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
    exist are ignored; for Parquet the selection is pushed down to pyarrow). A UTF-8 BOM before
    a CSV/ECSV header is dropped. Untrusted files stay small: text formats are capped at
    :data:`MAX_TEXT_TABLE_BYTES`, ECSV headers may not use YAML aliases, and a Parquet file
    that would decode to far more than its size is refused. Raises
    :class:`~diascan.errors.CatalogReadError` (one line) for a missing, empty, too large or
    unreadable file.
    """
    path = Path(path)
    try:
        if not path.exists():
            raise CatalogReadError(path, "file not found")
        if path.is_dir():
            raise CatalogReadError(path, "is a folder, not a table file")
        size = path.stat().st_size
        if size == 0:
            raise CatalogReadError(path, "empty file")
        fmt = table_format(path) or sniff_format(path)
    except OSError as exc:
        raise CatalogReadError(path, f"cannot be read: {describe_os_error(exc)}") from None
    if fmt is None:
        raise CatalogReadError(
            path, "unknown table format: use Parquet, ECSV, FITS, CSV or VOTable"
        )
    if fmt in TEXT_FORMATS and size > MAX_TEXT_TABLE_BYTES:
        raise CatalogReadError(
            path, f"{fmt} file of {size / 2**20:.0f} MB: larger than the "
            f"{MAX_TEXT_TABLE_BYTES // 2**20} MB diascan reads as text; use Parquet",
        )  # fmt: skip
    try:
        if fmt == "parquet":
            table = _read_parquet(path, where, size)
        else:
            if fmt == "ecsv":
                _check_ecsv_header(path)
            # utf-8-sig: a BOM before the header would otherwise stick to the first column name
            kwargs = {"encoding": "utf-8-sig"} if fmt in ("csv", "ecsv") else {}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                table = Table.read(path, format=_ASTROPY_FORMAT[fmt], **kwargs)
    except CatalogReadError:
        raise
    except MemoryError:
        raise CatalogReadError(path, f"too large to read as {fmt} (out of memory)") from None
    except Exception as exc:  # noqa: BLE001 - readers raise many types for corrupt files
        problem = f"cannot be read as {fmt} ({type(exc).__name__}: {exc})"
        raise CatalogReadError(path, problem) from exc
    if not isinstance(table, Table):  # astropy may hand back something else for odd files
        raise CatalogReadError(path, f"cannot be read as {fmt} (no table found)")
    _normalise(table, fmt)
    if where:
        table = _select(table, where)
    return table


def _check_ecsv_header(path: Path) -> None:
    """Refuse an ECSV header that is too large, nests too deeply or uses YAML aliases (astropy's
    YAML loader expands them: a "billion laughs" header of 1 kB would take minutes and
    gigabytes; see :mod:`diascan.safe_yaml`)."""
    lines, total = [], 0
    with open(path, "rb") as fh:
        for raw in fh:
            if not raw.lstrip(_BOM).startswith(b"#"):
                break
            total += len(raw)
            if total > MAX_ECSV_HEADER_BYTES:
                raise CatalogReadError(
                    path, f"ECSV header larger than {MAX_ECSV_HEADER_BYTES // 1024} kB")
            line = raw.lstrip(_BOM)[1:]
            lines.append(line.removeprefix(b" ").decode("utf-8", "replace"))  # "# " + YAML
    try:
        check_yaml("".join(lines[1:]), MAX_ECSV_HEADER_BYTES)  # lines[0]: "# %ECSV 1.0"
    except UnsafeYAMLError as exc:
        raise CatalogReadError(path, f"ECSV header: {exc}") from None


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
    """Rows whose columns equal ``where``'s values (a column of another kind matches none:
    a text 'visit' column holds no integer visit)."""
    keep = np.ones(len(table), dtype=bool)
    for name, value in where.items():
        if name in table.colnames:
            col = table[name]
            if col.ndim != 1 or col.dtype.kind not in _KINDS.get(_kind(value) or "", "biufUS"):
                keep[:] = False
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                keep &= np.ma.filled(np.ma.asarray(col) == value, False)
    return table[keep] if not keep.all() else table


#: numpy dtype kinds a value of each kind is compared with.
_KINDS = {"number": "iuf", "text": "US"}


def _kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "text"
    if isinstance(value, int | float | np.number) and not isinstance(value, bool | np.bool_):
        return "number"
    return None


def _pushable(field: pa.Field, value: Any) -> bool:
    """Whether pyarrow can compare ``field`` with ``value`` (same kind of type)."""
    kind = _kind(value)
    if kind == "number":
        return pa.types.is_integer(field.type) or pa.types.is_floating(field.type)
    if kind == "text":
        return pa.types.is_string(field.type) or pa.types.is_large_string(field.type)
    return False


def _value_bytes(dtype: pa.DataType) -> int:
    """Bytes one value of ``dtype`` takes once decoded into numpy (variable width: 16).

    The Parquet footer's "uncompressed" sizes count dictionary- and run-length-encoded bytes,
    so they say nothing about the memory a column of 10**8 equal values needs; this does.
    """
    try:
        return max(1, dtype.bit_width // 8)
    except ValueError:  # strings, binary, lists: no fixed width
        return 16


def _read_parquet(path: Path, where: dict[str, Any] | None, size: int) -> Table:
    meta = pq.read_metadata(path)
    schema = meta.schema.to_arrow_schema()
    decoded = meta.num_rows * sum(_value_bytes(f.type) for f in schema)
    if decoded > MAX_PARQUET_DECODED_BYTES and decoded > MAX_PARQUET_EXPANSION * size:
        raise CatalogReadError(
            path, f"Parquet file of {size} bytes would take {decoded / 2**20:.0f} MB once "
            f"decoded ({meta.num_rows} rows x {meta.num_columns} columns): refused as a "
            "decompression bomb",
        )  # fmt: skip
    filters = None
    if where:
        # Pushed down only where the types agree (pyarrow cannot compare a text 'visit' column
        # with an integer); _select handles the rest afterwards.
        fields = {f.name: f for f in schema}
        filters = [(k, "=", v) for k, v in where.items()
                   if k in fields and _pushable(fields[k], v)] or None  # fmt: skip
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
            filled = pc.fill_null(arr, "")
            longest = (pc.max(pc.utf8_length(filled)).as_py() or 0) if len(filled) else 0
            fixed = 4 * longest * len(filled) <= MAX_FIXED_WIDTH_TEXT_BYTES
            data = np.array(filled.to_pylist(), dtype=str if fixed else object)
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
