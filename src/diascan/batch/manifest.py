"""The visits a batch run scores: a manifest table, a folder of visit folders or a visit list.

A manifest table (CSV or Parquet) has one row per visit-detector. Columns (names are matched
case-insensitively; others are ignored):

* ``science``, ``difference``: the images (required);
* ``template`` or ``template_patches`` (one of them per row): one template image, or template
  coadd patches (a list column in Parquet; paths separated by ``;`` in CSV);
* ``catalog``: the DIA source catalog (optional: without it nothing is matched);
* ``target``: a known transient as ``"RA,DEC"`` (optional, as ``--target`` takes it);
* ``visit``, ``detector``: integers naming the outputs and selecting the catalog rows
  (optional: by default read from the science image's header).

Relative paths are relative to the manifest's folder. A folder of visit folders or a text file
listing them (as ``diascan view --visits`` takes, :func:`diascan.inputs.visits_from_arg`) is a
manifest too; a visit folder's ``target.json`` is its target.

A table that cannot be read, or lacks a required column altogether, is bad input
(:class:`~diascan.errors.InputError`); a row with an empty required cell, a missing file or an
unreadable header becomes a :class:`VisitJob` with an ``error``, recorded in the summary while
the other visits run.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diascan.errors import InputError
from diascan.inputs import (
    VisitFiles,
    check_files_exist,
    folder_target,
    parse_target,
    visits_from_arg,
)

#: Separator of several template patches in one CSV cell.
PATCH_SEPARATOR = ";"

_TABLE_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass
class VisitJob:
    """One visit-detector to score: its files, its ids, or the reason it cannot be scored."""

    row: int  #: 1-based position in the manifest (data rows of a table; folders in order)
    files: VisitFiles = field(default_factory=dict)  #: role -> absolute path (see inputs.py)
    visit: int | None = None
    detector: int | None = None
    error: str | None = None  #: one line; the visit is not run when set

    @property
    def name(self) -> str:
        """``<visit>-<detector>`` (detector zero-padded to 3 digits), or ``row<N>`` without ids."""
        if self.visit is None:
            return f"row{self.row}"
        return f"{self.visit}" if self.detector is None else f"{self.visit}-{self.detector:03d}"


def read_manifest(path: str | Path) -> list[VisitJob]:
    """The visits of a manifest (table, folder of visit folders or visit list), ids resolved.

    Raises :class:`~diascan.errors.InputError` for a manifest that cannot be used at all; rows
    that cannot be scored come back with ``error`` set.
    """
    path = Path(path).expanduser()
    kind = _TABLE_SUFFIXES.get(path.suffix.lower()) if path.is_file() else None
    if kind is None:
        jobs = [_folder_job(i, files) for i, files in enumerate(visits_from_arg(path), 1)]
    else:
        records = _read_csv(path) if kind == "csv" else _read_parquet(path)
        _check_columns(path, records)
        jobs = [_row_job(i, rec, path.parent) for i, rec in enumerate(records, 1)]
    _resolve_ids(jobs)
    return jobs


# --------------------------------------------------------------------------------------------
# Reading the table


def _read_csv(path: Path) -> list[dict[str, Any]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            records = [_lower_keys(r) for r in reader]
            header = reader.fieldnames
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(path, f"cannot be read as a CSV manifest ({exc})") from None
    if not header:
        raise InputError(path, "empty manifest (no header row)")
    if not records:
        # keep the header's names so a table without rows is told apart from a wrong table
        records = [dict.fromkeys(k.strip().lower() for k in header if k)]
        records[0]["__empty__"] = True
    return records


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(path, f"cannot be read as a Parquet manifest ({exc})") from None
    names = [n.strip().lower() for n in table.column_names]
    rows = [_lower_keys(r) for r in table.to_pylist()]
    return rows or [dict.fromkeys(names) | {"__empty__": True}]


def _lower_keys(record: dict) -> dict[str, Any]:
    return {str(k).strip().lower(): v for k, v in record.items() if k is not None}


def _check_columns(path: Path, records: list[dict[str, Any]]) -> None:
    names = set(records[0])
    missing = [c for c in ("science", "difference") if c not in names]
    if not names & {"template", "template_patches"}:
        missing.append("template or template_patches")
    if missing:
        found = ", ".join(sorted(n for n in names if n != "__empty__")) or "none"
        raise InputError(path, f"not a visit manifest: no {' and no '.join(missing)} column "
                               f"(columns: {found})")
    if records[0].get("__empty__"):
        raise InputError(path, "the manifest has no rows")


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _absolute(path: str | Path) -> Path:
    """Absolute and without ``..`` (for the workers, whatever their folder); links kept."""
    return Path(os.path.abspath(Path(path).expanduser()))


def _path(value: Any, base: Path) -> Path:
    p = Path(_text(value)).expanduser()
    return _absolute(p if p.is_absolute() else base / p)


def _row_job(row: int, rec: dict[str, Any], base: Path) -> VisitJob:
    files: VisitFiles = {}
    job = VisitJob(row, files)
    try:
        for role in ("science", "difference"):
            if not _text(rec.get(role)):
                raise InputError(None, f"row {row}: the {role!r} cell is empty")
            files[role] = _path(rec[role], base)
        if _text(rec.get("template")):
            files["template"] = _path(rec["template"], base)
        patches = rec.get("template_patches")
        if isinstance(patches, str) or patches is None:
            patches = [p for p in _text(patches).split(PATCH_SEPARATOR) if p.strip()]
        if patches:
            files["template_patches"] = [_path(p, base) for p in patches]
        if not files.get("template") and not files.get("template_patches"):
            raise InputError(None, f"row {row}: no template (the 'template' and "
                                   "'template_patches' cells are empty)")
        if _text(rec.get("catalog")):
            files["catalog"] = _path(rec["catalog"], base)
        target = parse_target(_text(rec.get("target")), what=f"row {row}: target")
        if target is not None:
            files["target"] = target
        job.visit = _int_cell(rec, "visit", row)
        job.detector = _int_cell(rec, "detector", row)
        check_files_exist(files)
    except InputError as exc:
        job.error = one_line(exc)
    return job


def _int_cell(rec: dict[str, Any], name: str, row: int) -> int | None:
    text = _text(rec.get(name))
    if not text:
        return None
    try:
        value = float(text)
        if value.is_integer():
            return int(value)
    except ValueError:
        pass
    raise InputError(None, f"row {row}: {name} {text!r} is not an integer")


def _folder_job(row: int, files: VisitFiles) -> VisitJob:
    files = {k: ([_absolute(p) for p in v] if k == "template_patches" else _absolute(v))
             for k, v in files.items()}
    job = VisitJob(row, files)
    try:
        target = folder_target(files["science"].parent)
        if target is not None:
            files["target"] = target
        check_files_exist(files)
    except InputError as exc:
        job.error = one_line(exc)
    return job


# --------------------------------------------------------------------------------------------
# Visit and detector numbers


def _resolve_ids(jobs: list[VisitJob]) -> None:
    """Fill missing visit/detector numbers from the science headers; flag repeated ids.

    Only the headers are read here (no pixels); the images are read by the workers.
    """
    from diascan.io import read_image_metadata

    seen: dict[tuple[int, int | None], int] = {}
    for job in jobs:
        if job.error is not None:
            continue
        if job.visit is None or job.detector is None:
            try:
                meta = read_image_metadata(job.files["science"])
            except InputError as exc:
                if job.visit is None:
                    job.error = one_line(exc)
                    continue
                meta = {}  # the worker reports the unreadable image
            if job.visit is None and isinstance(meta.get("visit"), int):
                job.visit = meta["visit"]
            if job.detector is None and isinstance(meta.get("detector"), int):
                job.detector = meta["detector"]
            if job.visit is None:
                job.error = (f"{job.files['science']}: no visit number in the header; give "
                             "'visit' and 'detector' columns in a manifest table")
                continue
        ids = (job.visit, job.detector)
        if ids in seen:
            job.error = f"row {job.row}: visit {job.name} is also row {seen[ids]}"
            continue
        seen[ids] = job.row


def one_line(exc: BaseException) -> str:
    """An exception as one line: the message of an InputError, else ``Type: message``."""
    text = str(exc) if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split()) or type(exc).__name__


__all__ = ["PATCH_SEPARATOR", "VisitJob", "one_line", "read_manifest"]
