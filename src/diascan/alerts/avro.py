"""Avro alert files, indexed without decoding every record in full.

Two layouts:

- **Object container files** (``Obj\\x01``: ZTF packets, Rubin sample packets, broker dumps): a
  header with the writer schema and the codec, then blocks of records, each followed by the
  file's 16-byte sync marker. Codecs ``null``, ``deflate``, ``snappy`` (through cramjam, as
  fastavro), ``bzip2``, ``xz`` and ``zstandard``.
- **Confluent wire-format messages**, as Kafka carries Rubin alerts: byte 0, a 4-byte big-endian
  schema id, then the record without any schema; one message or several one after another in a
  file. The schema comes from the id (lsst-alert-packet's registry,
  :func:`diascan.alerts.schemas.rubin_schema_for_id`).

Why not ``fastavro.reader``: it parses the ~20 kB writer schema of every file again (1-2 ms per
file measured, 10-20 s for a folder of 10,000 single-alert files) and cannot go back to one
record. Here the header is parsed by hand (its two fields we need) and each distinct schema by
fastavro once; indexing a file reads only its header and its blocks' headers and sync markers;
the leading fields of a block's records are decoded when the alert table needs them, and a
record in full (its cutouts) when it is shown or scored. fastavro decodes every record.

A truncated block or a bad sync marker gives a :class:`Problem` and indexing resumes at the next
sync marker, so the rest of the file still opens; a block that does not decompress or decode is
found when it is read, and its records say so.
"""

from __future__ import annotations

import bz2
import io
import lzma
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

import fastavro

from diascan.alerts.schemas import (
    MAIN_RECORD,
    AlertSchema,
    alert_schema,
    rubin_schema_for_id,
)

MAGIC = b"Obj\x01"
_SYNC_SIZE = 16
_RESYNC_CHUNK = 1 << 20


class AvroFileError(ValueError):
    """A file that is not a readable Avro alert file at all (its header, its first message)."""


@dataclass(frozen=True)
class Record:
    """One alert record found by a scan: where it is and its leading fields (up to the main
    record: ``diaSource`` or ``candidate``)."""

    offset: int
    index: int
    schema: AlertSchema
    fields: dict


@dataclass(frozen=True)
class Problem:
    """Records a scan could not read: where, and why."""

    offset: int
    problem: str


# ------------------------------------------------------------------------------ low level


def _read_long(fh: BinaryIO) -> int | None:
    """An Avro zig-zag varint from ``fh``; None at a clean end of file."""
    first = fh.read(1)
    if not first:
        return None
    b = first[0]
    n = b & 0x7F
    shift = 7
    while b & 0x80:
        nxt = fh.read(1)
        if not nxt:
            raise EOFError("file ends inside a block header")
        b = nxt[0]
        n |= (b & 0x7F) << shift
        shift += 7
        if shift > 70:
            raise ValueError("malformed block header (varint too long)")
    return (n >> 1) ^ -(n & 1)


def _snappy(data: bytes) -> bytes:
    import cramjam

    out = bytes(cramjam.snappy.decompress_raw(data[:-4]))
    if zlib.crc32(out) & 0xFFFFFFFF != int.from_bytes(data[-4:], "big"):
        raise ValueError("snappy block fails its CRC check")
    return out


def _zstandard(data: bytes) -> bytes:
    import cramjam

    return bytes(cramjam.zstd.decompress(data))


_CODECS = {
    "null": lambda data: data,
    "deflate": lambda data: zlib.decompress(data, -15),
    "snappy": _snappy,
    "bzip2": bz2.decompress,
    "xz": lzma.decompress,
    "zstandard": _zstandard,
}


def _decode(fh: IO[bytes], parsed: Any) -> dict:
    """One record read with a record schema (fastavro types its result as any Avro value)."""
    record = fastavro.schemaless_reader(fh, parsed)
    if not isinstance(record, dict):
        raise ValueError(f"the writer schema decodes to {type(record).__name__}, not a record")
    return record


def _pick(record: dict, schema: AlertSchema) -> dict:
    """The leading fields (up to the main record) of a fully decoded record."""
    upto = schema.fields.index(MAIN_RECORD[schema.survey]) + 1 if schema.survey else 0
    return {k: record.get(k) for k in schema.fields[:upto]}


def _first(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text and text[0] else type(exc).__name__


# ------------------------------------------------------------------------------ container


def _long_at(buf: bytes, pos: int) -> tuple[int, int]:
    """An Avro zig-zag varint at ``buf[pos]``: ``(value, next position)``; IndexError if cut."""
    b = buf[pos]
    n = b & 0x7F
    shift = 7
    pos += 1
    while b & 0x80:
        b = buf[pos]
        n |= (b & 0x7F) << shift
        shift += 7
        pos += 1
        if shift > 70:
            raise ValueError("malformed varint")
    return (n >> 1) ^ -(n & 1), pos


def _parse_header(buf: bytes) -> tuple[dict[str, bytes], bytes, int]:
    """``(metadata, sync marker, end)`` of a container header at the start of ``buf``
    (IndexError when ``buf`` is too short)."""
    meta: dict[str, bytes] = {}
    pos = 4
    while True:
        count, pos = _long_at(buf, pos)
        if count == 0:
            break
        if count < 0:  # a block of map entries with its byte size
            count = -count
            _, pos = _long_at(buf, pos)
        for _ in range(count):
            n, pos = _long_at(buf, pos)
            key = bytes(buf[pos : pos + n]).decode("utf-8", "replace")
            pos += n
            n, pos = _long_at(buf, pos)
            if pos + n > len(buf):
                raise IndexError("header longer than the buffer")
            meta[key] = bytes(buf[pos : pos + n])
            pos += n
    if pos + _SYNC_SIZE > len(buf):
        raise IndexError("header longer than the buffer")
    return meta, bytes(buf[pos : pos + _SYNC_SIZE]), pos + _SYNC_SIZE


#: First read of a file: enough for the header of Rubin and ZTF files (a 20-25 kB schema).
HEAD_READ = 1 << 15


@dataclass(frozen=True)
class ContainerHeader:
    schema: AlertSchema
    codec: str
    sync: bytes
    data_start: int


def _header_from(meta: dict[str, bytes], sync: bytes, end: int) -> ContainerHeader:
    codec = meta.get("avro.codec", b"null").decode(errors="replace") or "null"
    if codec not in _CODECS:
        raise AvroFileError(f"Avro codec '{codec}' is not supported")
    raw = meta.get("avro.schema")
    if raw is None:
        raise AvroFileError("Avro header has no writer schema")
    try:
        schema = alert_schema(raw)
    except ValueError as exc:
        raise AvroFileError(str(exc)) from exc
    return ContainerHeader(schema, codec, sync, end)


#: Headers read last: their bytes up to the sync marker -> the header. The files of a folder
#: mostly share their writer schema, and parsing its 20-25 kB again for each of 10,000 files
#: was ~40 % of indexing them (measured); the same bytes parse to the same header, so a file
#: that starts with a known header's bytes has that header (and its own sync marker).
_KNOWN: dict[bytes, ContainerHeader] = {}
_KNOWN_MAX = 8
_known_lock = threading.Lock()


def _known_header(buf: bytes) -> ContainerHeader | None:
    with _known_lock:
        for prefix, header in _KNOWN.items():
            if len(buf) >= header.data_start and buf.startswith(prefix):
                sync = bytes(buf[len(prefix) : header.data_start])
                return ContainerHeader(header.schema, header.codec, sync, header.data_start)
    return None


def _remember_header(buf: bytes, header: ContainerHeader) -> None:
    with _known_lock:
        if len(_KNOWN) >= _KNOWN_MAX:
            del _KNOWN[next(iter(_KNOWN))]
        _KNOWN[bytes(buf[: header.data_start - _SYNC_SIZE])] = header


def _read_header(fh: BinaryIO, head: bytes | None = None) -> tuple[ContainerHeader, bytes]:
    """The header of the container file ``fh`` and the first bytes read (``head``: the first
    bytes, already read; else ``fh`` is at byte 0)."""
    buf = fh.read(HEAD_READ) if head is None else head
    if not buf.startswith(MAGIC):
        raise AvroFileError("not an Avro object container file")
    known = _known_header(buf)
    if known is not None:
        return known, buf
    while True:
        try:
            header = _header_from(*_parse_header(buf))
            _remember_header(buf, header)
            return header, buf
        except IndexError:
            more = fh.read(max(len(buf), HEAD_READ))
            if not more:
                raise AvroFileError("file ends inside the Avro header") from None
            buf += more
        except ValueError as exc:
            raise AvroFileError(f"unreadable Avro header: {exc}") from exc


@dataclass(frozen=True)
class ContainerIndex:
    """Where the blocks of a container file are: ``(byte offset, record count)`` each."""

    header: ContainerHeader
    blocks: list[tuple[int, int]]
    problems: list[Problem]


def _resync(fh: BinaryIO, start: int, sync: bytes) -> int | None:
    """Offset just after the next sync marker at or after ``start``, None if there is none."""
    fh.seek(start)
    carry = b""
    pos = start
    while True:
        chunk = fh.read(_RESYNC_CHUNK)
        if not chunk:
            return None
        buf = carry + chunk
        at = buf.find(sync)
        if at >= 0:
            return pos - len(carry) + at + _SYNC_SIZE
        carry = buf[-(_SYNC_SIZE - 1) :]
        pos += len(chunk)


def index_container(path: str | Path, fh: BinaryIO | None = None,
                    head: bytes | None = None) -> ContainerIndex:
    """Index an object container file: its header and where each block is, reading only the
    block headers and sync markers (nothing is decompressed or decoded). A truncated or corrupt
    block becomes a :class:`Problem` and indexing resumes at the next sync marker. Raises
    :class:`AvroFileError` when the header cannot be read.

    ``fh`` and ``head``: the file already open and its first bytes already read (one open per
    file when a folder of single-alert files is indexed).
    """
    if fh is None:
        with open(path, "rb") as own:
            return index_container(path, own)
    blocks: list[tuple[int, int]] = []
    problems: list[Problem] = []
    header, buf = _read_header(fh, head)
    size_of_file = fh.seek(0, 2)
    offset = header.data_start
    while offset < size_of_file:
        try:
            if offset + 20 <= len(buf) or len(buf) == size_of_file:
                head = buf[offset : offset + 20]
            else:
                fh.seek(offset)
                head = fh.read(20)
            count, pos = _long_at(head, 0)
            size, pos = _long_at(head, pos)
            if count < 0 or size < 0:
                raise ValueError("malformed block header")
            end = offset + pos + size
            if end + _SYNC_SIZE > size_of_file:
                raise EOFError(f"file truncated inside a block ({size_of_file - offset} "
                               f"bytes left of {pos + size + _SYNC_SIZE})")
            if end + _SYNC_SIZE <= len(buf):
                marker = buf[end : end + _SYNC_SIZE]
            else:
                fh.seek(end)
                marker = fh.read(_SYNC_SIZE)
            if marker != header.sync:
                raise ValueError("block not followed by the file's sync marker (corrupt)")
        except (ValueError, EOFError, IndexError) as exc:
            problems.append(Problem(offset, f"block at byte {offset}: {_first(exc)}"))
            nxt = _resync(fh, offset + 1, header.sync)
            if nxt is None:
                break
            offset = nxt
            continue
        blocks.append((offset, count))
        offset = end + _SYNC_SIZE
    return ContainerIndex(header, blocks, problems)


def _read_block(fh: BinaryIO, header: ContainerHeader, offset: int) -> tuple[int, bytes]:
    """``(record count, decompressed bytes)`` of the block at byte ``offset``."""
    fh.seek(offset)
    count = _read_long(fh)
    size = _read_long(fh)
    if count is None or size is None or count < 0 or size < 0:
        raise ValueError(f"no block at byte {offset}")
    data = fh.read(size)
    if len(data) < size:
        raise EOFError(f"file truncated inside the block at byte {offset}")
    return count, _CODECS[header.codec](data)


def read_block_fields(path: str | Path, offset: int) -> list[dict | Exception]:
    """The leading fields (up to the main record) of every record of the block at ``offset``;
    an exception in place of a record that cannot be decoded (and of the records after it)."""
    with open(path, "rb") as fh:
        header = _read_header(fh)[0]
        try:
            count, data = _read_block(fh, header, offset)
        except (ValueError, EOFError, OSError, zlib.error, lzma.LZMAError) as exc:
            return [exc]
    schema = header.schema
    buf = io.BytesIO(data)
    out: list[dict | Exception] = []
    for _ in range(count):
        try:
            if count == 1 and schema.prefix is not None:  # common: the leading fields only
                out.append(_decode(buf, schema.prefix))
            else:  # later records start where this one ends: decode it in full
                out.append(_pick(_decode(buf, schema.parsed), schema))
        except Exception as exc:  # noqa: BLE001 - fastavro raises many types
            out.extend([exc] * (count - len(out)))
            break
    return out


def read_container_record(path: str | Path, offset: int, index: int) -> dict:
    """Record ``index`` of the block at byte ``offset``, decoded in full (with its cutouts)."""
    with open(path, "rb") as fh:
        header = _read_header(fh)[0]
        count, data = _read_block(fh, header, offset)
    if index >= count:
        raise ValueError(f"no record {index} in the block at byte {offset}")
    buf = io.BytesIO(data)
    for _ in range(index):
        fastavro.schemaless_reader(buf, header.schema.parsed)
    return _decode(buf, header.schema.parsed)


# ------------------------------------------------------------------------------ wire format


def _wire_schema(head: bytes, offset: int) -> AlertSchema:
    if len(head) < 5 or head[0] != 0:
        raise AvroFileError(f"no Confluent wire-format message at byte {offset}")
    schema_id = int.from_bytes(head[1:5], "big")
    schema = rubin_schema_for_id(schema_id)
    if schema is None:
        raise AvroFileError(
            f"starts like a Confluent wire-format message, but with schema id {schema_id}, "
            "which is not a Rubin alert schema lsst-alert-packet knows"
        )
    return schema


def scan_wire_format(path: str | Path) -> Iterator[Record | Problem]:
    """Every message of a file of Confluent wire-format messages (each decoded in full once, to
    find where the next one starts), and the problem that ends the scan, if any."""
    with open(path, "rb") as fh:
        while True:
            offset = fh.tell()
            head = fh.read(5)
            if not head:
                return
            try:
                schema = _wire_schema(head, offset)
                record = _decode(fh, schema.parsed)
            except AvroFileError as exc:
                if offset == 0:
                    raise
                yield Problem(offset, f"{exc}; the rest of the file is skipped")
                return
            except Exception as exc:  # noqa: BLE001 - fastavro raises many types
                yield Problem(
                    offset, f"message at byte {offset}: {_first(exc)}; the rest of the file is "
                    "skipped (a wire-format file has no markers to resume at)"
                )
                return
            yield Record(offset, 0, schema, _pick(record, schema))


def read_wire_record(path: str | Path, offset: int) -> dict:
    """The wire-format message at byte ``offset``, decoded in full."""
    with open(path, "rb") as fh:
        fh.seek(offset)
        schema = _wire_schema(fh.read(5), offset)
        return _decode(fh, schema.parsed)


__all__ = [
    "HEAD_READ",
    "AvroFileError",
    "MAGIC",
    "Problem",
    "Record",
    "index_container",
    "read_block_fields",
    "scan_wire_format",
]
