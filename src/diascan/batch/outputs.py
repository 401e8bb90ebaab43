"""The output folder of a batch run.

::

    OUT/visits/<visit>-<detector>.parquet                 one table per visit (all columns)
    OUT/dataset/visit=<visit>/<visit>-<detector>.parquet  the same rows, Hive-partitioned by visit
                                                          (no visit column: the folder names it)
    OUT/summary.parquet                                   one row per manifest row (SUMMARY_SCHEMA)

Every file is written atomically (:func:`diascan.io.tables.write_table`: a temporary file
renamed into place), so a killed worker leaves no half-written table, at most a temporary file
that :func:`remove_leftovers` deletes before and after a run. The per-visit file
is written last and carries, in its table metadata under ``"batch"``, the record of how it was
made (the resume key, input checksums, model, settings, counts): a visit counts as finished only
when both its files exist with the same key.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from astropy.table import Table

from diascan.batch.manifest import VisitJob
from diascan.errors import InputError
from diascan.io.tables import arrow_to_table, read_parquet_meta, write_table

VISITS_DIR = "visits"
DATASET_DIR = "dataset"
SUMMARY_FILE = "summary.parquet"
#: Key of the batch record in a per-visit table's metadata.
RECORD_KEY = "batch"

#: Columns of ``summary.parquet``. ``status``: done (scored in this run), skipped (finished
#: before with the same key; counts and seconds are those of that run), failed (``error``
#: says why) or not run (the run was interrupted first).
SUMMARY_SCHEMA = pa.schema([
    ("row", pa.int64()),
    ("visit", pa.int64()),
    ("detector", pa.int64()),
    ("sources", pa.int64()),
    ("matched", pa.int64()),
    ("seconds", pa.float64()),
    ("status", pa.string()),
    ("error", pa.string()),
    ("worker", pa.string()),
    ("science", pa.string()),
    ("output", pa.string()),
])  # fmt: skip


def visit_file(out_dir: Path, job: VisitJob) -> Path:
    """The per-visit table of ``job``."""
    return Path(out_dir) / VISITS_DIR / f"{job.name}.parquet"


def dataset_file(out_dir: Path, job: VisitJob) -> Path:
    """The dataset part of ``job`` (in its ``visit=<visit>`` partition)."""
    return Path(out_dir) / DATASET_DIR / f"visit={job.visit}" / f"{job.name}.parquet"


def finished_record(out_dir: Path, job: VisitJob) -> dict[str, Any] | None:
    """The batch record of a finished visit (both files there, same key); else None."""
    try:
        record = read_parquet_meta(visit_file(out_dir, job)).get(RECORD_KEY)
        part = read_parquet_meta(dataset_file(out_dir, job)).get(RECORD_KEY)
    except InputError:  # missing or unreadable: not finished
        return None
    if not isinstance(record, dict) or not isinstance(part, dict):
        return None
    return record if record.get("key") and record.get("key") == part.get("key") else None


def write_visit(out_dir: Path, job: VisitJob, table: Table, record: dict[str, Any]) -> Path:
    """Write the visit's dataset part, then its per-visit table (the one that marks it done)."""
    table = table.copy(copy_data=False)
    table.meta[RECORD_KEY] = record
    part = table.copy(copy_data=False)
    part.remove_column("visit")  # the partition folder holds it (a column too would clash)
    write_table(part, dataset_file(out_dir, job), overwrite=True)
    return write_table(table, visit_file(out_dir, job), overwrite=True)


def remove_visit(out_dir: Path, job: VisitJob) -> None:
    """Delete the outputs of ``job`` left by an earlier run (they no longer match its inputs)."""
    if job.visit is None:
        return
    for path in (visit_file(out_dir, job), dataset_file(out_dir, job)):
        path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # only when empty
        dataset_file(out_dir, job).parent.rmdir()


def remove_leftovers(out_dir: Path) -> int:
    """Delete what killed writes left in the per-visit and dataset folders (anything there but
    ``*.parquet`` tables: the folders are the batch's own); returns how many files."""
    n = 0
    root = Path(out_dir)
    for folder in [root / VISITS_DIR, *root.glob(f"{DATASET_DIR}/visit=*")]:
        for f in folder.glob("*") if folder.is_dir() else ():
            if f.is_file() and (f.name.startswith(".") or f.suffix != ".parquet"):
                with contextlib.suppress(OSError):
                    f.unlink()
                    n += 1
    return n


def write_summary(out_dir: Path, rows: list[dict[str, Any]]) -> Path:
    """Write ``summary.parquet`` (rows as dicts with the :data:`SUMMARY_SCHEMA` fields)."""
    table = pa.Table.from_pylist(
        [{k: r.get(k) for k in SUMMARY_SCHEMA.names} for r in rows], schema=SUMMARY_SCHEMA
    )
    return write_table(arrow_to_table(table), Path(out_dir) / SUMMARY_FILE, overwrite=True)


def read_summary(out_dir: str | Path) -> pa.Table:
    """The summary table of the last run in ``out_dir``."""
    return pq.read_table(Path(out_dir) / SUMMARY_FILE)


def read_dataset(out_dir: str | Path) -> pa.Table:
    """All visits' sources as one table (the dataset, ``visit`` as int64, schemas unified).

    A plain ``pyarrow.parquet.read_table(OUT / "dataset")`` works too; it reads ``visit`` as
    a dictionary of strings (Hive partition values) and takes the first file's schema.
    """
    import pyarrow.dataset as ds

    root = Path(out_dir) / DATASET_DIR
    files = sorted(p for p in root.glob("visit=*/*.parquet") if not p.name.startswith("."))
    partitioning = ds.partitioning(pa.schema([("visit", pa.int64())]), flavor="hive")
    if not files:
        return pa.table({"visit": pa.array([], pa.int64())})
    schema = pa.unify_schemas([pq.read_schema(f) for f in files] + [partitioning.schema])
    dataset = ds.dataset([str(f) for f in files], schema=schema, partitioning=partitioning,
                         partition_base_dir=str(root))
    return dataset.to_table()


__all__ = [
    "DATASET_DIR",
    "RECORD_KEY",
    "SUMMARY_FILE",
    "SUMMARY_SCHEMA",
    "VISITS_DIR",
    "dataset_file",
    "finished_record",
    "read_dataset",
    "read_summary",
    "remove_leftovers",
    "remove_visit",
    "visit_file",
    "write_summary",
    "write_visit",
]
