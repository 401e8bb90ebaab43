"""Broker tables of alerts: Parquet files with one row per alert and the cutout bytes in columns.

Brokers (Fink, ...) and the samples in ../shared keep the alert fields either flat (``candid``,
``jd``, ``magpsf`` ... or ``diaSourceId``, ``midpointMjdTai`` ... as columns) or nested (a
``candidate`` / ``diaSource`` struct column), and each cutout as a binary column
(``cutoutScience``, ``cutoutTemplate``, ``cutoutDifference``) or a struct with a ``stampData``
binary field. The fields are read when the table is opened, without the cutout columns; the
cutouts of a row are read on demand, one row group at a time (the last one kept in memory:
brokers write row groups of a few thousand alerts).
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from diascan.alerts.cutouts import stamp_bytes
from diascan.alerts.schemas import MAIN_RECORD

#: Cutout fields in display order.
CUTOUT_FIELDS = {
    "science": "cutoutScience",
    "template": "cutoutTemplate",
    "difference": "cutoutDifference",
}


class BrokerTableError(ValueError):
    """A Parquet file that is not a table of alerts."""


def _survey(schema: pa.Schema) -> str:
    names = set(schema.names)
    if "diaSource" in names or "diaSourceId" in names:
        return "rubin"
    if "candidate" in names or "candid" in names:
        return "ztf"
    raise BrokerTableError(
        "not a table of alerts (no diaSourceId / diaSource or candid / candidate column)"
    )


class BrokerTable:
    """A Parquet table of alerts (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._file = pq.ParquetFile(self.path)
        except (OSError, pa.ArrowException) as exc:
            raise BrokerTableError(f"unreadable Parquet file: {exc}") from exc
        schema = self._file.schema_arrow
        self.survey = _survey(schema)
        self._cutouts = [c for c in CUTOUT_FIELDS.values() if c in schema.names]
        # Fields: every column but the cutouts and the history lists (prv_candidates, ...).
        self._columns = [
            f.name
            for f in schema
            if f.name not in self._cutouts
            and not (pa.types.is_list(f.type) or pa.types.is_large_list(f.type))
        ]
        meta = self._file.metadata
        self._starts = [0]
        for i in range(meta.num_row_groups):
            self._starts.append(self._starts[-1] + meta.row_group(i).num_rows)
        self._lock = threading.Lock()
        self._cached: tuple[int, pa.Table] | None = None

    def __len__(self) -> int:
        return self._starts[-1]

    def rows(self) -> Iterator[tuple[int, dict, dict]]:
        """``(row, top-level fields, main record)`` of every row (main: the ``candidate`` /
        ``diaSource`` struct when nested, else the row itself)."""
        main = MAIN_RECORD[self.survey]
        row = 0
        for batch in self._file.iter_batches(columns=self._columns, batch_size=4096):
            for rec in batch.to_pylist():
                yield row, rec, rec.get(main) if isinstance(rec.get(main), dict) else rec
                row += 1

    def cutout_bytes(self, row: int) -> dict[str, bytes | None]:
        """The cutout bytes of ``row`` by frame name (None where the table has none)."""
        group = bisect.bisect_right(self._starts, row) - 1
        with self._lock:
            if self._cached is None or self._cached[0] != group:
                # Parquet reads whole column chunks: the row group's cutouts stay in Arrow
                # buffers (not Python objects) until another row group is needed.
                self._cached = (group, self._file.read_row_group(group, columns=self._cutouts))
            table = self._cached[1]
        k = row - self._starts[group]
        return {
            frame: stamp_bytes(table.column(field)[k].as_py()) if field in self._cutouts else None
            for frame, field in CUTOUT_FIELDS.items()
        }


__all__ = ["BrokerTable", "BrokerTableError", "CUTOUT_FIELDS"]
