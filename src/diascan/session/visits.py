"""A session's visits and the viewer's data (Qt-free).

A visit is made from what the viewer shows (:func:`visit_from_view`) or listed from
``--visits`` folders before its images are read (:func:`session_from_visits`, sources filled
when it is first opened); :func:`visit_files` gives the files that load it again. Input files
are recorded with their sizes at once and hashed later, off the GUI thread
(:func:`files_to_hash`, :func:`hash_files`, :func:`store_hashes`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from diascan.errors import InputError
from diascan.progress import CancelToken, ProgressCallback, check, report
from diascan.session.model import (
    FileRef,
    Session,
    SourceRecord,
    VisitEntry,
    optional_int,
    sha256_file,
)


class SourceArrays(Protocol):
    """The per-source arrays a visit records (``diascan.viewstate.SourceSet`` has them).

    ``dia_source_id``, ``visit``, ``detector``: integer arrays, masked where unknown;
    ``columns``: every column by name (the pixel flags among them, :attr:`flag_names`)."""

    @property
    def ids(self) -> Any: ...
    @property
    def ra(self) -> Any: ...
    @property
    def dec(self) -> Any: ...
    @property
    def x(self) -> Any: ...
    @property
    def y(self) -> Any: ...
    @property
    def flux(self) -> Any: ...
    @property
    def snr(self) -> Any: ...
    @property
    def score(self) -> Any: ...
    @property
    def original(self) -> Any: ...
    @property
    def status(self) -> Any: ...
    @property
    def dia_source_id(self) -> Any: ...
    @property
    def visit(self) -> Any: ...
    @property
    def detector(self) -> Any: ...
    @property
    def flag_names(self) -> list[str]: ...
    @property
    def columns(self) -> Mapping[str, Any]: ...

    def __len__(self) -> int: ...


def _num(a: Any, i: int) -> float | None:
    v = float(a[i])
    return None if math.isnan(v) else v


def _plain(values: Any, i: int) -> Any:
    """Value ``i`` of a column as JSON takes it (None for missing, NaN or masked)."""
    if np.ma.is_masked(values[i]):
        return None
    v = values[i].item() if hasattr(values[i], "item") else values[i]
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return None if v == "" else v


def source_records(sources: SourceArrays | None) -> list[SourceRecord]:
    """Session records of the sources the viewer shows (scores as they are now), with their
    diaSourceId, visit, detector and set pixel flags."""
    if sources is None:
        return []
    flags = [(name, np.asarray(sources.columns[name], dtype=bool))
             for name in sources.flag_names]
    dia, visit, det = sources.dia_source_id, sources.visit, sources.detector
    # other columns a session keeps per source (an alert's fields: band, time, mag...)
    extra = [(name, sources.columns[name]) for name in getattr(sources, "record_columns", ())]
    return [
        SourceRecord(
            id=int(sources.ids[i]), ra=_num(sources.ra, i), dec=_num(sources.dec, i),
            x=_num(sources.x, i), y=_num(sources.y, i), psfFlux=_num(sources.flux, i),
            snr=_num(sources.snr, i), score=_num(sources.score, i),
            original_reliability=_num(sources.original, i), status=str(sources.status[i]),
            diaSourceId=optional_int(dia[i]), visit=optional_int(visit[i]),
            detector=optional_int(det[i]),
            flags=tuple(name for name, values in flags if values[i]),
            extra={name: _plain(values, i) for name, values in extra},
        )
        for i in range(len(sources))
    ]  # fmt: skip


def visit_from_view(
    sources: SourceArrays | None,
    images: Mapping[str, Any],
    input_files: Mapping[str, Any] | None = None,
    *,
    model_name: str | None = None,
    model_version: str | None = None,
    catalog_path: str | None = None,
    checksum: bool = False,
) -> VisitEntry:
    """A visit of what the viewer shows: its sources, input files and science metadata.

    The files are the loader's (``input_files``: science, difference, template or template
    patches, catalog), else the images' own paths. The model is recorded only when some source
    has a score. ``checksum=False`` (default) records sizes only: large files are hashed later,
    off the GUI thread.
    """
    records = source_records(sources)
    files = dict(input_files or {})
    flags = [] if sources is None else list(sources.flag_names)

    def path_of(name: str) -> str | None:
        if files.get(name):
            return str(files[name])
        img = images.get(name)
        return getattr(img, "path", None) if img is not None and name != "template" else None

    meta = getattr(images.get("science"), "metadata", {}) or {}
    scored = any(s.score is not None for s in records)
    return VisitEntry.create(
        records, science=path_of("science"), difference=path_of("difference"),
        template=path_of("template"),
        template_patches=[str(p) for p in files.get("template_patches") or []],
        catalog=path_of("catalog") or catalog_path, checksum=checksum,
        alerts=[str(p) for p in files.get("alerts") or []],
        visit=meta.get("visit"), detector=meta.get("detector"), band=meta.get("band"),
        model_name=model_name if scored else None,
        model_version=None if not scored or model_version is None else str(model_version),
        flag_columns=flags,
    )  # fmt: skip


def session_from_visits(visits: Sequence[Mapping[str, Any]]) -> Session:
    """A session listing the visits' files (``--visits``); sources are filled when a visit is
    opened, checksums later (:func:`hash_files`)."""
    entries = [
        VisitEntry.create(
            [], science=files.get("science"), difference=files.get("difference"),
            template=files.get("template"),
            template_patches=[str(p) for p in files.get("template_patches") or []],
            catalog=files.get("catalog"), checksum=False,
        )
        for files in visits
    ]  # fmt: skip
    return Session(visits=entries)


def visit_files(visit: VisitEntry) -> dict[str, Any]:
    """The visit's files by role (``diascan.inputs.files_loader`` loads them again); the demo's
    ``target.json`` beside the science image gives the known transient."""
    files: dict[str, Any] = {}
    for role in ("science", "difference", "template", "catalog"):
        ref = getattr(visit, role)
        if ref is not None:
            files[role] = Path(ref.path)
    if visit.template_patches:
        files["template_patches"] = [Path(r.path) for r in visit.template_patches]
    if visit.alerts:
        files["alerts"] = [Path(r.path) for r in visit.alerts]
    if "science" in files and (files["science"].parent / "target.json").exists():
        from diascan.pipeline import read_target

        with contextlib.suppress(InputError):  # the known transient (start there)
            files["target"] = read_target(files["science"].parent / "target.json")
    return files


def files_to_hash(visits: Sequence[VisitEntry]) -> list[FileRef]:
    """The input files of ``visits`` that have no sha256 yet."""
    return [r for v in visits for _, r in v.files() if r.sha256 is None]


def hash_files(
    refs: Sequence[FileRef],
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, str]:
    """sha256 of each existing file whose size still matches its reference: path -> hex.

    Slow on large images: run it in a worker, then :func:`store_hashes` in the GUI thread.
    """
    out: dict[str, str] = {}
    for k, ref in enumerate(refs):
        check(cancel)
        p = Path(ref.path)
        if p.is_file() and (ref.size is None or p.stat().st_size == ref.size):
            out[ref.path] = sha256_file(p)
        report(progress, "checksum", (k + 1) / len(refs), p.name)
    return out


def store_hashes(refs: Sequence[FileRef], hashes: Mapping[str, str]) -> None:
    """Write the hashes :func:`hash_files` computed into the references that still lack one."""
    for r in refs:
        if r.sha256 is None and r.path in hashes:
            r.sha256 = hashes[r.path]


__all__ = [
    "SourceArrays", "files_to_hash", "hash_files", "session_from_visits", "source_records",
    "store_hashes", "visit_files", "visit_from_view",
]
