"""Alert collections: alerts from files and folders as a table of fields and lazily decoded
stamps, a :class:`~diascan.stamps.StampSource` for the gallery.

:func:`open_alerts` only indexes: for each file its layout and where its records are (Avro block
offsets, Parquet rows), so 10,000 single-alert files open in about a second. The fields of an
alert are decoded when first needed, one Avro block (or Parquet table) at a time
(:meth:`AlertCollection.row`, or all of them for :attr:`AlertCollection.table`, which
:meth:`AlertCollection.load_fields` fills with progress and cancellation); the cutouts when the
alert is shown or scored (:meth:`AlertCollection.stamps`), the last :data:`CACHE_SIZE` decoded
alerts being kept. Memory holds the index and the fields, never the packets.

Problems never stop the rest: files or blocks that cannot be read become
:attr:`AlertCollection.notes`; an alert whose record or cutouts cannot be decoded (a JPEG 2016
packet, a missing or corrupt cutout) keeps its row, shows NaN stamps and says why in
:meth:`AlertCollection.alert_notes`.
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table

from diascan.alerts.avro import (
    HEAD_READ,
    MAGIC,
    AvroFileError,
    Problem,
    index_container,
    read_block_fields,
    read_container_record,
    read_wire_record,
    scan_wire_format,
)
from diascan.alerts.cutouts import (
    Cutout,
    CutoutError,
    decode_cutout,
    display_stamp,
    stamp_bytes,
    ztf_centre,
)
from diascan.alerts.fields import ROW_BUILDERS, FieldColumns
from diascan.alerts.parquet import CUTOUT_FIELDS, BrokerTable, BrokerTableError
from diascan.alerts.schemas import MAIN_RECORD, AlertSchema
from diascan.errors import InputError
from diascan.models.inputs import InputSpec, StampMismatch
from diascan.progress import CancelToken, ProgressCallback, check, report
from diascan.stamps import FRAME_ORDER, StampTriplet

#: File name endings collected from folders (any file named explicitly is read by its content).
ALERT_SUFFIXES = (".avro", ".parquet", ".pq")

_SURVEY_NAMES = {"rubin": "Rubin", "ztf": "ZTF"}

#: Decoded alerts kept in memory: the gallery's page and the pages before and after it, of its
#: largest grid (3 x 120; 512 alerts ~ 40 MB: ZTF cutouts keep only their pixels, Rubin ones
#: their FITS bytes too, for the variance and PSF).
CACHE_SIZE = 512


@dataclass(frozen=True)
class AlertNote:
    """Something in a file that did not become an alert (or a whole file that did not)."""

    path: Path
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


@dataclass
class AlertStamps:
    """The decoded cutouts of one alert by frame name (None: no pixels, see ``notes``) and the
    source position ``(x, y)`` in each, in array pixels."""

    survey: str
    cutouts: dict[str, Cutout | None]
    centres: dict[str, tuple[float, float] | None]
    notes: list[str] = field(default_factory=list)

    def planes(self) -> dict[str, np.ndarray | None]:
        """The cutout images by frame name (None where there is none)."""
        return {k: (c.image if c is not None else None) for k, c in self.cutouts.items()}


@dataclass
class _Unit:
    """What is decoded at once: an Avro block, a wire-format message, a Parquet table."""

    source: int
    offset: int
    first: int  # its first row
    loaded: bool = False


#: The fields known from the index, set for every row when indexing ends.
_INDEX_FIELDS = ("survey", "schema", "file", "record")


def _message(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text and text[0] else type(exc).__name__


# ---------------------------------------------------------------------- sources


class _ContainerSource:
    """An Avro object container file: units are its blocks."""

    def __init__(self, path: str, schema: AlertSchema) -> None:
        self.path = path
        self.schema = schema

    def unit_fields(self, offset: int) -> list[tuple[dict, Any] | Exception]:
        assert self.schema.survey is not None  # only alert schemas are indexed (_index_container)
        main = MAIN_RECORD[self.schema.survey]
        return [
            r if isinstance(r, Exception) else (r, r.get(main))
            for r in read_block_fields(self.path, offset)
        ]

    def record(self, offset: int, index: int) -> dict:
        return read_container_record(self.path, offset, index)


class _WireSource:
    """A file of Confluent wire-format messages: one unit per message, fields read at open."""

    def __init__(self, path: str) -> None:
        self.path = path

    def record(self, offset: int, index: int) -> dict:
        return read_wire_record(self.path, offset)


class _TableSource:
    """A broker Parquet table: one unit, the whole table."""

    def __init__(self, table: BrokerTable) -> None:
        self.path = table.path
        self.table = table

    def unit_fields(self, offset: int) -> list[tuple[dict, Any] | Exception]:
        return [(top, main) for _, top, main in self.table.rows()]

    def record(self, offset: int, index: int) -> dict:
        return self.table.cutout_bytes(offset)


def _file_names(paths: Iterable[str | Path]) -> list[str]:
    # os.scandir and plain strings: pathlib's rglob, sorting and Path objects took ~1 s of CPU
    # for a folder of 10,000 files (measured), more than reading their headers; the entries
    # know their type (no stat per file).
    out: list[str] = []
    for p in paths:
        p = Path(p).expanduser()
        if p.is_dir():
            found: list[str] = []
            folders = [str(p)]
            while folders:
                with os.scandir(folders.pop()) as entries:
                    for e in entries:
                        if e.is_dir(follow_symlinks=False):  # as os.walk: no link loops
                            folders.append(e.path)
                        elif e.name.lower().endswith(ALERT_SUFFIXES) and e.is_file():
                            found.append(e.path)
            out.extend(sorted(found))
        elif p.is_file():
            out.append(str(p))
        else:
            raise InputError(p, "no such file or folder")
    return out


def alert_files(paths: Iterable[str | Path]) -> list[Path]:
    """The files to read: each file as given, each folder's ``*.avro``, ``*.parquet`` and
    ``*.pq`` files (recursively, sorted). Raises :class:`InputError` for a path that does not
    exist."""
    return [Path(f) for f in _file_names(paths)]


@contextlib.contextmanager
def _gc_paused():
    """Indexing allocates ~10 small objects per file and no cycles; the collector's full passes
    over the interpreter's heap (astropy, torch ...) took up to half the CPU time of opening
    10,000 files (measured), so it waits until the index is built."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# ---------------------------------------------------------------------- the collection


class AlertCollection:
    """Alerts with a table of fields (columns :data:`~diascan.alerts.fields.FIELDS`) and lazily
    decoded stamps; a :class:`~diascan.stamps.StampSource` by row. Thread-safe: the gallery may
    decode stamps in a worker while its table reads fields."""

    def __init__(self) -> None:
        self.notes: list[AlertNote] = []
        self._sources: list = []
        self._columns = FieldColumns()
        # per row: source, byte offset (or Parquet row), record in block, unit
        self._rows: list[tuple[int, int, int, int]] = []
        # while indexing: per row (survey, schema, file, record number), made columns by _done()
        self._base: list[tuple[str, str, str, int]] = []
        self._pending: list[tuple[int, str, str, dict, Any]] = []
        self._units: list[_Unit] = []
        self._row_notes: dict[int, list[str]] = {}
        self._cache: OrderedDict[int, AlertStamps] = OrderedDict()
        self._lock = threading.RLock()
        self._table: Table | None = None
        self._all_loaded = False

    def __len__(self) -> int:
        return len(self._rows)

    def __repr__(self) -> str:
        return f"AlertCollection({len(self)} alerts, {len(self.notes)} notes)"

    # ------------------------------------------------------------------ building (open_alerts)

    def _add_unit(self, src: int, offset: int, loaded: bool) -> int:
        self._units.append(_Unit(src, offset, len(self._rows), loaded))
        return len(self._units) - 1

    def _add_row(self, src: int, offset: int, sub: int, unit: int,
                 base: tuple[str, str, str, int]) -> int:
        self._rows.append((src, offset, sub, unit))
        self._base.append(base)
        return len(self._rows) - 1

    def _done(self) -> None:
        """End of indexing: the table columns for every row, the index fields filled in."""
        self._columns = FieldColumns(len(self._rows))
        if self._base:
            for name, values in zip(_INDEX_FIELDS, zip(*self._base, strict=True), strict=True):
                self._columns.column(name)[:] = values
        self._base = []
        for args in self._pending:
            self._fill(*args)
        self._pending = []

    def _fill(self, index: int, survey: str, version: str, top: dict, main: Any) -> None:
        if not isinstance(main, dict):
            self._note(index, f"no {MAIN_RECORD[survey]} record in the alert")
            return
        self._columns.update(index, ROW_BUILDERS[survey](top, main, version))

    def _note(self, index: int, note: str) -> None:
        with self._lock:
            notes = self._row_notes.setdefault(index, [])
            if note not in notes:
                notes.append(note)

    # ------------------------------------------------------------------ fields

    def _load_unit(self, unit: int) -> None:
        u = self._units[unit]
        if u.loaded:
            return
        # decoded outside the lock: the gallery's cutouts (another thread) need not wait
        try:
            records = self._sources[u.source].unit_fields(u.offset)
        except Exception as exc:  # noqa: BLE001 - an unreadable file since indexing
            records = [exc]
        with self._lock:
            if u.loaded:  # decoded meanwhile by another thread
                return
            for k in range(self._unit_size(unit)):
                i = u.first + k
                rec = records[min(k, len(records) - 1)]
                if isinstance(rec, Exception):
                    self._note(i, f"record cannot be decoded: {_message(rec)}")
                    continue
                row = self._columns.get(i)
                self._fill(i, row["survey"], row["schema"], *rec)
            u.loaded = True

    def row(self, index: int) -> dict[str, Any]:
        """The fields of alert ``index`` (decoded now if not yet), None where missing."""
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"alert {index} out of range (0..{len(self) - 1})")
        self._load_unit(self._rows[index][3])
        with self._lock:
            return self._columns.get(index)

    def load_fields(
        self, progress: ProgressCallback | None = None, cancel: CancelToken | None = None
    ) -> None:
        """Decode the fields of every alert (``progress("fields", fraction, message)``)."""
        if self._all_loaded:
            return
        todo = [k for k, unit in enumerate(self._units) if not unit.loaded]
        n = len(todo)
        report(progress, "fields", 0.0, f"{len(self)} alerts")
        for k, unit in enumerate(todo):
            if k % 64 == 0:
                check(cancel)
                report(progress, "fields", k / max(n, 1), f"{self._units[unit].first}/{len(self)}")
            self._load_unit(unit)
        self._all_loaded = True
        report(progress, "fields", 1.0, f"{len(self)}/{len(self)}")

    @property
    def table(self) -> Table:
        """Every alert's fields (decoding those not yet decoded: see :meth:`load_fields`)."""
        self.load_fields()
        with self._lock:
            if self._table is None:
                self._table = self._columns.table()
            return self._table

    def column(self, name: str) -> list:
        """One field of every alert, as decoded so far (None where not yet or missing)."""
        with self._lock:
            return list(self._columns.column(name))

    @property
    def surveys(self) -> set[str]:
        """The surveys of the alerts (``"rubin"``, ``"ztf"``): known from the index."""
        return set(self.column("survey"))

    def survey(self, index: int) -> str:
        with self._lock:
            return self._columns.column("survey")[int(index)]

    def alert_notes(self, index: int) -> list[str]:
        """What is wrong with alert ``index`` (found so far: its record and cutouts are checked
        when decoded), empty when nothing."""
        with self._lock:
            return list(self._row_notes.get(int(index), ()))

    # ------------------------------------------------------------------ stamps

    def _centre(self, survey: str, cutout: Cutout, row: dict) -> tuple[float, float] | None:
        x = np.nan if row["x"] is None else float(row["x"])
        y = np.nan if row["y"] is None else float(row["y"])
        if survey == "ztf":
            return ztf_centre(cutout.shape, x, y)
        if cutout.origin is not None and np.isfinite(x) and np.isfinite(y):
            return x - cutout.origin[0], y - cutout.origin[1]
        ra, dec = row["ra"], row["dec"]
        if cutout.wcs is not None and ra is not None and dec is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                px, py = cutout.wcs.world_to_pixel_values(ra, dec)
            if np.isfinite(px) and np.isfinite(py):
                return float(px), float(py)
        return None

    def _unit_size(self, unit: int) -> int:
        end = self._units[unit + 1].first if unit + 1 < len(self._units) else len(self)
        return end - self._units[unit].first

    def _decode(self, index: int) -> AlertStamps:
        src, offset, sub, unit = self._rows[index]
        survey = self.survey(index)
        source = self._sources[src]
        notes: list[str] = []
        try:
            record = source.record(offset, sub)
        except Exception as exc:  # noqa: BLE001 - a record that indexed but does not decode
            record = {}
            notes.append(f"record cannot be decoded: {_message(exc)}")
        with self._lock:
            if record and isinstance(source, _ContainerSource) and not self._units[unit].loaded \
                    and self._unit_size(unit) == 1:
                # The full record is at hand: its fields too (saves reading the block again).
                row = self._columns.get(index)
                self._fill(index, survey, row["schema"], record, record.get(MAIN_RECORD[survey]))
                self._units[unit].loaded = True
        row = self.row(index)
        cutouts: dict[str, Cutout | None] = {}
        centres: dict[str, tuple[float, float] | None] = {}
        problems: dict[str, list[str]] = {}
        for frame in FRAME_ORDER:
            try:
                value = record.get(frame, record.get(CUTOUT_FIELDS[frame]))
                cut = decode_cutout(stamp_bytes(value))
            except CutoutError as exc:
                cutouts[frame], centres[frame] = None, None
                problems.setdefault(str(exc), []).append(frame)
                continue
            cutouts[frame] = cut
            centres[frame] = self._centre(survey, cut, row)
        if not notes:  # a record that does not decode says it all
            for problem, frames in problems.items():
                notes.append(f"{', '.join(frames)}: {problem}")
        return AlertStamps(survey, cutouts, centres, notes)

    def stamps(self, index: int) -> AlertStamps:
        """The decoded cutouts of alert ``index`` (decoded now, or kept from a recent call)."""
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"alert {index} out of range (0..{len(self) - 1})")
        with self._lock:
            hit = self._cache.get(index)
            if hit is not None:
                self._cache.move_to_end(index)
                return hit
        stamps = self._decode(index)
        with self._lock:
            self._cache[index] = stamps
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        for note in stamps.notes:
            self._note(index, note)
        return stamps

    def decoded(self, index: int) -> bool:
        """True when alert ``index``'s cutouts are decoded (kept), so showing it is cheap."""
        with self._lock:
            return int(index) in self._cache

    def decode_stamps(self, indices: Iterable[int], cancel: CancelToken | None = None) -> None:
        """Decode the cutouts (and fields) of alerts ``indices`` ahead of showing them, e.g. in
        a job while the window shows others; those kept already cost nothing."""
        for k, index in enumerate(indices):
            if k % 8 == 0:
                check(cancel)
            self.stamps(index)

    def triplet(self, index: int, size: int) -> StampTriplet:
        """Display stamps of alert ``index``, ``size`` x ``size``, centred on the source, NaN
        where the cutout has no pixels (or the alert no usable cutout)."""
        st = self.stamps(index)
        frames = {
            name: display_stamp(None if c is None else c.image, st.centres[name], size)
            for name, c in st.cutouts.items()
        }
        return StampTriplet(**frames)

    def model_input(self, index: int, spec: InputSpec) -> np.ndarray:
        """Input ``(C, size, size)`` of a model with input ``spec`` for alert ``index``.

        Raises :class:`~diascan.models.inputs.StampMismatch` saying why when the alert's stamps
        cannot be given to that model (another survey's model, stamps too small, no pixels).
        """
        survey = self.survey(index)
        if not spec.suits(survey):
            raise StampMismatch(
                f"meant for {spec.stamps.upper()} stamps, not {_SURVEY_NAMES[survey]} ones"
            )
        st = self.stamps(index)
        if any(c is None for c in st.cutouts.values()):
            raise StampMismatch("; ".join(st.notes) or "cutouts missing")
        return spec.prepare(st.planes(), st.centres)


# ---------------------------------------------------------------------- opening


def _index_file(c: AlertCollection, path: str) -> None:
    with open(path, "rb") as fh:
        head = fh.read(HEAD_READ)
        if head.startswith(MAGIC):
            _index_container(c, path, fh, head)
            return
    if head.startswith(b"PAR1"):
        _index_table(c, path)
    elif head[:1] == b"\x00" and len(head) >= 5:  # a Confluent wire-format message, or not
        _index_wire(c, path)
    else:
        c.notes.append(AlertNote(Path(path), "not an alert file (neither an Avro container, "
                                 "Confluent wire-format messages nor Parquet)"))


def _index_container(c: AlertCollection, path: str, fh, head: bytes) -> None:
    index = index_container(path, fh, head)
    schema = index.header.schema
    for p in index.problems:
        c.notes.append(AlertNote(Path(path), p.problem))
    if schema.survey is None:
        n = sum(count for _, count in index.blocks)
        c.notes.append(AlertNote(
            Path(path), f"{n} record(s) of schema {schema.describe()}, neither a Rubin nor a ZTF alert: "
            "skipped"
        ))
        return
    src = len(c._sources)
    c._sources.append(_ContainerSource(path, schema))
    number = 0
    for offset, count in index.blocks:
        unit = c._add_unit(src, offset, loaded=False)
        for k in range(count):
            c._add_row(src, offset, k, unit, (schema.survey, schema.version, path, number))
            number += 1


def _index_wire(c: AlertCollection, path: str) -> None:
    src = len(c._sources)
    c._sources.append(_WireSource(path))
    number = 0
    for item in scan_wire_format(path):
        if isinstance(item, Problem):
            c.notes.append(AlertNote(Path(path), item.problem))
            continue
        schema = item.schema
        survey = schema.survey
        assert survey is not None  # wire-format schemas are Rubin's (_wire_schema)
        unit = c._add_unit(src, item.offset, loaded=True)
        i = c._add_row(src, item.offset, 0, unit, (survey, schema.version, path, number))
        c._pending.append((i, survey, schema.version, item.fields,
                           item.fields.get(MAIN_RECORD[survey])))
        number += 1


def _index_table(c: AlertCollection, path: str) -> None:
    table = BrokerTable(path)
    src = len(c._sources)
    c._sources.append(_TableSource(table))
    unit = c._add_unit(src, 0, loaded=False)
    for row in range(len(table)):
        c._add_row(src, row, 0, unit, (table.survey, "", path, row))


def open_alerts(
    paths: Iterable[str | Path] | str | Path,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> AlertCollection:
    """Open alert files and folders (Rubin and ZTF Avro files, Confluent wire-format messages,
    broker Parquet tables) as one :class:`AlertCollection`, indexing them only.

    Unreadable files and records become :attr:`AlertCollection.notes`, never an exception; only a
    path that does not exist raises :class:`InputError`. ``progress("open", fraction, message)``
    is called every 64 files.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    files = _file_names(paths)
    c = AlertCollection()
    n = len(files)
    report(progress, "open", 0.0, f"{n} file(s)")
    with _gc_paused():
        for k, path in enumerate(files):
            if k % 64 == 0:
                check(cancel)
            try:
                _index_file(c, path)
            except (AvroFileError, BrokerTableError) as exc:
                c.notes.append(AlertNote(Path(path), str(exc)))
            except OSError as exc:
                c.notes.append(AlertNote(Path(path), f"cannot be read: {exc.strerror or exc}"))
            if progress is not None and (k % 64 == 63 or k == n - 1):
                report(progress, "open", (k + 1) / n, f"{len(c)} alerts")
        c._done()
    return c


def no_alerts_error(collection: AlertCollection, paths: Sequence[str | Path]) -> InputError:
    """The :class:`InputError` to raise when ``collection`` holds no alert at all: its first
    note, or that no alert files were found."""
    if collection.notes:
        note = collection.notes[0]
        more = len(collection.notes) - 1
        return InputError(note.path, note.problem + (f" (and {more} more problem(s))" if more else ""))
    where = paths[0] if len(paths) == 1 else None
    return InputError(where, "no alert files found (.avro, .parquet)")


__all__ = [
    "ALERT_SUFFIXES",
    "AlertCollection",
    "AlertNote",
    "AlertStamps",
    "alert_files",
    "no_alerts_error",
    "open_alerts",
]
