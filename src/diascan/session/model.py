"""The session data model: visits with their input files, scored sources and labels.

A :class:`Session` holds a list of :class:`VisitEntry` (the visit/detector triplets the user
works through), the index of the current visit and free view settings. Each visit records its
input files as :class:`FileRef` (path, sha256, size), the model that computed the scores (name,
version, package path), its sources (:class:`SourceRecord`, scores included) and a
:class:`~diascan.session.labels.LabelStore` with the labels.
See ``docs/session-schema.md`` for the file format (written by :mod:`diascan.session.store`).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from diascan.session.labels import LabelRecord, LabelStore, SourceId, utc_now

#: Session file schema version written by this code: a new major version needs a migration
#: (``diascan.session.store.MIGRATIONS``); a minor version only adds fields, which older
#: readers ignore and this one reads as absent (null, empty) from older files.
SCHEMA_VERSION = 2
#: 1: per-source ``diaSourceId``, ``visit``, ``detector``, ``flags``; per-visit
#: ``flag_columns``.
SCHEMA_MINOR = 0
#: Pixel flag columns of a detection table (Rubin's ``pixelFlags_<plane>[Center]``).
FLAG_PREFIX = "pixelFlags_"

#: File roles of a visit, in display order.
FILE_ROLES = ("science", "difference", "template", "catalog")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass
class FileRef:
    """An input file: path as given (absolute), sha256 and size in bytes when known."""

    path: str
    sha256: str | None = None
    size: int | None = None

    @classmethod
    def from_path(cls, path: str | Path, checksum: bool = True) -> FileRef:
        """Reference an existing file, with its size and (by default) sha256."""
        p = Path(path).expanduser().resolve()
        st = p.stat()
        return cls(str(p), sha256_file(p) if checksum else None, st.st_size)

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "size": self.size}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str) -> FileRef:
        if isinstance(data, str):
            return cls(data)
        return cls(str(data["path"]), data.get("sha256"), data.get("size"))


#: Named source fields, in table order (schema v1; ``diaSourceId``, ``visit``, ``detector``
#: since 1.1). Besides them a source has ``flags``; other values go into
#: ``SourceRecord.extra``.
SOURCE_FIELDS = (
    "id", "diaSourceId", "visit", "detector", "ra", "dec", "x", "y", "psfFlux", "snr", "score",
    "original_reliability", "status",
)
#: The integer fields (None when unknown: an unmatched detection has no ``diaSourceId``).
INT_FIELDS = ("diaSourceId", "visit", "detector")
#: The number fields (None for NaN or missing).
FLOAT_FIELDS = ("ra", "dec", "x", "y", "psfFlux", "snr", "score", "original_reliability")

#: Accepted input column names per field (first match wins) for :func:`sources_from_table`.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "diaSourceId", "source_id", "sourceId"),
    "diaSourceId": ("diaSourceId",),
    "visit": ("visit",),
    "detector": ("detector",),
    "ra": ("ra", "coord_ra_deg", "RA"),
    "dec": ("dec", "coord_dec_deg", "DEC", "Dec"),
    "x": ("x", "base_SdssCentroid_x", "xcentroid"),
    "y": ("y", "base_SdssCentroid_y", "ycentroid"),
    "psfFlux": ("psfFlux", "psf_flux", "base_PsfFlux_instFlux", "flux"),
    "snr": ("snr", "SNR"),
    "score": ("score", "new_reliability", "recomputed_reliability", "reliability_new"),
    "original_reliability": ("original_reliability", "reliability"),
    "status": ("status", "match_status"),
}


#: Status of a session record held for a catalog row labelled before the visit's detections
#: existed (:meth:`VisitEntry.hold_label`); the first load's detections replace it.
HELD = "catalog"


@dataclass
class SourceRecord:
    """One scored source (labels live in the visit's :class:`LabelStore`).

    ``diaSourceId``: the matched catalog row's id (None for a detection the catalog lacks);
    ``visit`` / ``detector``: the source's own (an alert's), else its visit's; ``flags``: the
    pixel flags set on it (names of its visit's ``flag_columns``).
    """

    id: SourceId
    ra: float | None = None
    dec: float | None = None
    x: float | None = None
    y: float | None = None
    psfFlux: float | None = None  # noqa: N815 - Rubin column name
    snr: float | None = None
    score: float | None = None
    original_reliability: float | None = None
    status: str = ""
    diaSourceId: int | None = None  # noqa: N815 - Rubin column name
    visit: int | None = None
    detector: int | None = None
    flags: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


def _num(value: Any) -> float | None:
    if value is None or value is np.ma.masked:
        return None
    v = float(value)
    return None if math.isnan(v) else v


def optional_int(value: Any) -> int | None:
    """An integer field from a table cell: None for a missing (masked, NaN, None) or negative
    value (the pipeline writes -1 for "no diaSourceId")."""
    if value is None or value is np.ma.masked:
        return None
    if isinstance(value, float | np.floating) and not (math.isfinite(value)
                                                       and float(value).is_integer()):
        return None
    v = int(value)
    return None if v < 0 else v


def flag_columns(table: Any) -> list[str]:
    """The pixel flag columns of a table (:data:`FLAG_PREFIX`), in its order."""
    names = list(table.colnames) if hasattr(table, "colnames") else list(table.keys())
    return [n for n in names if n.startswith(FLAG_PREFIX)]


def _id(value: Any) -> SourceId:
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        return value
    f = float(value)
    return int(value) if f.is_integer() else str(value)


def sources_from_table(table: Any) -> list[SourceRecord]:
    """Build source records from an astropy Table, a dict of arrays or a pandas-like frame.

    Column names may be the Rubin ones (``diaSourceId``, ``reliability``...; see
    :data:`COLUMN_ALIASES`); ``id`` is required. Missing numeric values become ``None``; the
    set ``pixelFlags_*`` columns of a row become its ``flags`` (the visit's ``flag_columns``
    are :func:`flag_columns` of the table).
    """
    names = list(table.colnames) if hasattr(table, "colnames") else list(table.keys())
    chosen: dict[str, str] = {}
    for fld, aliases in COLUMN_ALIASES.items():
        for a in aliases:
            # diaSourceId may be the id as well (an alert's, a catalog's)
            if a in names and (a not in chosen.values() or fld == "diaSourceId"):
                chosen[fld] = a
                break
    if "id" not in chosen:
        raise ValueError(f"no source id column (one of {', '.join(COLUMN_ALIASES['id'])})")
    n = len(table[chosen["id"]])
    cols = {fld: list(table[col]) for fld, col in chosen.items()}
    flags = [(name, np.asarray(table[name], dtype=bool)) for name in flag_columns(table)]
    out = []
    for i in range(n):
        kw: dict[str, Any] = {"id": _id(cols["id"][i])}
        for fld in FLOAT_FIELDS:
            if fld in cols:
                kw[fld] = _num(cols[fld][i])
        for fld in INT_FIELDS:
            if fld in cols:
                kw[fld] = optional_int(cols[fld][i])
        if "status" in cols:
            s = cols["status"][i]
            kw["status"] = s.decode() if isinstance(s, bytes) else str(s)
        kw["flags"] = tuple(name for name, values in flags if values[i])
        out.append(SourceRecord(**kw))
    return out


@dataclass
class VisitEntry:
    """One visit/detector: input files, model, sources and their labels.

    ``model_name``/``model_version``/``model_path``: the model of the last rescoring written into
    the sources' ``score`` (:meth:`set_scores`). ``flag_columns``: the pixel flag columns of
    the visit's detection table (a source's ``flags`` are those set on it).
    """

    science: FileRef | None = None
    difference: FileRef | None = None
    template: FileRef | None = None
    template_patches: list[FileRef] = field(default_factory=list)
    catalog: FileRef | None = None
    #: An alert entry's alert files (schema 2): its sources are those alerts, it has no images.
    alerts: list[FileRef] = field(default_factory=list)
    visit: int | None = None
    detector: int | None = None
    band: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    model_path: str | None = None
    sources: list[SourceRecord] = field(default_factory=list)
    #: Always a store once made: ``None`` (the default) means one for ``sources``
    #: (``__post_init__``), which dataclass defaults cannot express.
    labels: LabelStore = None  # type: ignore[assignment]  # set in __post_init__
    view: dict[str, Any] = field(default_factory=dict)
    current_source: SourceId | None = None
    flag_columns: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.labels is None:
            self.labels = LabelStore([s.id for s in self.sources])

    @classmethod
    def create(
        cls,
        sources: Sequence[SourceRecord],
        *,
        science: str | Path | FileRef | None = None,
        difference: str | Path | FileRef | None = None,
        template: str | Path | FileRef | None = None,
        template_patches: Sequence[str | Path | FileRef] = (),
        catalog: str | Path | FileRef | None = None,
        alerts: Sequence[str | Path | FileRef] = (),
        checksum: bool = True,
        records: dict[SourceId, LabelRecord] | None = None,
        clock: Callable[[], datetime] = utc_now,
        **kw: Any,
    ) -> VisitEntry:
        """A visit from source records and input paths (existing files get size + sha256)."""

        def ref(p):
            if p is None or isinstance(p, FileRef):
                return p
            return FileRef.from_path(p, checksum) if os.path.exists(p) else FileRef(str(p))

        srcs = list(sources)
        return cls(
            science=ref(science),
            difference=ref(difference),
            template=ref(template),
            template_patches=[ref(p) for p in template_patches],
            catalog=ref(catalog),
            alerts=[ref(p) for p in alerts],
            sources=srcs,
            labels=LabelStore([s.id for s in srcs], records, clock=clock),
            **kw,
        )

    @property
    def name(self) -> str:
        """Short display name, e.g. ``visit 2024120400123 det 5``."""
        if self.visit is not None:
            det = f" det {self.detector}" if self.detector is not None else ""
            return f"visit {self.visit}{det}"
        if self.difference is not None:
            return Path(self.difference.path).name
        if self.alerts:
            return (Path(self.alerts[0].path).name if len(self.alerts) == 1 else
                    f"{len(self.alerts)} alert files")
        return "visit"

    def files(self) -> list[tuple[str, FileRef]]:
        """``(role, ref)`` of every input file (template patches as ``template_patch[i]``)."""
        out = [(r, getattr(self, r)) for r in FILE_ROLES if getattr(self, r) is not None]
        out += [(f"template_patch[{i}]", p) for i, p in enumerate(self.template_patches)]
        out += [(f"alert[{i}]", p) for i, p in enumerate(self.alerts)]
        return out

    def source(self, sid: SourceId) -> SourceRecord:
        for s in self.sources:
            if s.id == sid:
                return s
        raise KeyError(f"unknown source id {sid!r}")

    @property
    def is_loaded(self) -> bool:
        """False for a visit listed but never opened (sources not known yet; it may hold
        records of catalog rows labelled while its first load ran, :meth:`hold_label`)."""
        return any(s.status != HELD for s in self.sources)

    def hold_label(self, record: SourceRecord, label: Any) -> SourceId:
        """Label a catalog row shown before the visit's detections exist (a progressive
        load), in the visit at once so the autosave has it. ``record``: the row, keyed as
        the row kept unmatched would be (``viewstate.missing_source_id``), with its
        ``diaSourceId``. On a visit loaded before, the label goes to the source recorded with
        that ``diaSourceId`` when there is one; otherwise ``record`` is held (status
        :data:`HELD`) until :meth:`fill_sources` moves its label to the detection matched to
        that row, or keeps it as that row's own source. Returns the id labelled."""
        sid = record.id
        if record.diaSourceId is not None:
            sid = next((s.id for s in self.sources if s.status != HELD
                        and s.diaSourceId == record.diaSourceId), sid)
        if sid not in self.labels:
            self.sources.append(replace(record, status=HELD))
            self.labels.add_ids([sid])
        self.labels.set_label(sid, label)
        return sid

    def fill_sources(self, sources: Sequence[SourceRecord],
                     flag_columns: Sequence[str] = ()) -> int:
        """Record the sources of a visit that had none (first time its images are loaded),
        and the pixel flag columns of their table.

        Held records (:meth:`hold_label`) are replaced: a held label moves to the source with
        the held row's ``diaSourceId``, or stays on the source with the held id (the row kept
        as a source). The label store keeps its identity (autosave and the GUI keep
        listening). Returns the number of sources added; a loaded visit is left alone (0).
        """
        if self.is_loaded:
            return 0
        held = self.sources
        self.sources = list(sources)
        self.flag_columns = list(flag_columns)
        by_dia = {s.diaSourceId: s.id for s in self.sources if s.diaSourceId is not None}
        moved = {h.id: by_dia[h.diaSourceId] for h in held if h.diaSourceId in by_dia}
        self.labels.replace_ids([s.id for s in self.sources], moved)
        return len({s.id for s in self.sources} - {h.id for h in held})

    def settle_held(self, sources: Sequence[SourceRecord]) -> int:
        """A loaded visit: its held records (catalog rows labelled during a reload) become the
        records of the same id in ``sources`` (the rows kept as sources); returns how many."""
        held = {s.id for s in self.sources if s.status == HELD}
        return self.update_sources([s for s in sources if s.id in held]) if held else 0

    def update_sources(self, sources: Sequence[SourceRecord]) -> int:
        """Replace the records of sources already known (same ids; labels untouched): an
        alert entry's fields decoded after its first page was shown. Returns how many."""
        by_id = {s.id: k for k, s in enumerate(self.sources)}
        n = 0
        for rec in sources:
            k = by_id.get(rec.id)
            if k is not None:
                self.sources[k] = rec
                n += 1
        return n

    def set_scores(
        self,
        scores: Mapping[SourceId, float | None],
        model_name: str | None = None,
        model_version: str | None = None,
        model_path: str | None = None,
    ) -> int:
        """Store recomputed scores (id -> score; NaN -> ``None``) and the model that made them.

        Ids that are not sources of this visit are ignored; returns how many scores were set.
        """
        by_id = {s.id: s for s in self.sources}
        n = 0
        for sid, score in scores.items():
            src = by_id.get(sid)
            if src is not None:
                src.score = _num(score)
                n += 1
        if n:
            self.model_name, self.model_version, self.model_path = (
                model_name, model_version, model_path)
        return n

    def scores(self) -> dict[SourceId, float]:
        """Id -> score of the sources that have one."""
        return {s.id: s.score for s in self.sources if s.score is not None}

    def progress(self) -> tuple[int, int]:
        """``(labelled, total)`` for this visit."""
        st = self.labels.statistics()
        return st.labelled, st.total


@dataclass
class Session:
    """All visits of one inspection session, the current visit and the view settings."""

    visits: list[VisitEntry] = field(default_factory=list)
    current_visit: int = 0
    view_settings: dict[str, Any] = field(default_factory=dict)
    created: str | None = None
    modified: str | None = None
    schema_version: int = SCHEMA_VERSION

    @property
    def current(self) -> VisitEntry:
        if not self.visits:
            raise IndexError("session has no visits")
        return self.visits[self.current_visit]

    def next_visit(self) -> VisitEntry | None:
        """Move to the next visit (``None`` and no move at the last one)."""
        if self.current_visit + 1 >= len(self.visits):
            return None
        self.current_visit += 1
        return self.current

    def previous_visit(self) -> VisitEntry | None:
        if self.current_visit == 0:
            return None
        self.current_visit -= 1
        return self.current

    def next_unfinished_visit(self) -> int | None:
        """Index of the first visit after the current one (wrapping) with unlabelled sources."""
        n = len(self.visits)
        for k in range(1, n + 1):
            i = (self.current_visit + k) % n
            done, total = self.visits[i].progress()
            if done < total:
                return i
        return None

    def progress(self) -> list[tuple[str, int, int]]:
        """``(name, labelled, total)`` per visit."""
        return [(v.name, *v.progress()) for v in self.visits]

    def input_files(self) -> list[tuple[str, str]]:
        """``(role, path)`` of every input file of every visit: what no session file or export
        may replace (:mod:`diascan.safety`)."""
        return [(role.replace("_", " "), ref.path) for v in self.visits for role, ref in v.files()]
