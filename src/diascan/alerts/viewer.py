"""Alerts for the viewer (Qt-free): an alert collection as the viewer's sources and stamps.

:func:`alerts_loader` makes a loader the window runs in a job like a visit's loader; its
:class:`AlertsResult` has no images (alerts carry only their cutouts), ``detections`` (one row per
alert, the columns of :func:`alert_columns`) and ``alerts`` (the
:class:`~diascan.alerts.collection.AlertCollection`, the gallery's
:class:`~diascan.stamps.StampSource`). Only the fields of the first :data:`FIRST_ROWS` alerts
(and the cutouts of the first gallery page) are decoded before the window shows them
(10,000 single-alert files decode in ~5-10 s, the first gallery page must show in 2 s);
:func:`fill_alert_columns` writes the rest into the viewer's columns in place once
:meth:`AlertCollection.load_fields` decoded them (a job).

Row ids are ``1..N`` in the collection's order (files sorted by name, records in file order),
as a visit's detections are numbered, so a session finds its labels again when it reopens the
same files; the alert's own id (Rubin ``diaSourceId``, ZTF ``candid``) is the ``diaSourceId``
column, in the table and every export.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from diascan.alerts.collection import AlertCollection, no_alerts_error, open_alerts
from diascan.alerts.fields import FIELDS
from diascan.progress import CancelToken, ProgressCallback, check, report

#: Alerts whose fields are decoded before the window shows the collection (the largest first
#: page: 12 x 10 tiles, ``diascan.gallery.GRID_MAX``).
FIRST_ROWS = 128

#: Alert fields under the viewer's core column names (``diascan.viewstate.CORE_COLUMNS``).
CORE_FIELDS = {"id": "diaSourceId", "survey": "status", "flux": "psfFlux"}
#: Fields not shown as columns of their own (``reliability`` is the core
#: ``original_reliability``: Rubin's reliability, else ZTF's drb).
SKIPPED_FIELDS = ("reliability",)
#: The alert columns a session records per source (``SourceRecord.extra``) and exports, besides
#: the core ones (id, diaSourceId, ra, dec, x, y, psfFlux, snr, scores, status).
RECORD_COLUMNS = tuple(
    f.name for f in FIELDS
    if f.name not in (*SKIPPED_FIELDS, *CORE_FIELDS, "ra", "dec", "x", "y", "snr")
)

@dataclass
class AlertsResult:
    """What the window shows for alerts: no images, one row per alert, lazily decoded stamps."""

    alerts: AlertCollection
    #: The viewer's columns (:func:`alert_columns`), made into a ``SourceSet`` by the window.
    detections: dict[str, np.ndarray]
    #: The files read (``{"alerts": [paths]}``): what a session records and reopens.
    input_files: dict[str, Any] = field(default_factory=dict)
    #: One line per file or record that did not become an alert.
    warnings: list[str] = field(default_factory=list)
    #: Columns the session records and exports per alert (:data:`RECORD_COLUMNS`).
    record_columns: tuple[str, ...] = RECORD_COLUMNS
    science: None = None
    template: None = None
    difference: None = None
    missing: None = None


def _array(kind: str, values: list) -> np.ndarray:
    if kind == "float":
        return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    if kind == "int":
        data = np.array([-1 if v is None else int(v) for v in values], dtype=np.int64)
        return np.ma.array(data, mask=[v is None for v in values])
    if kind == "bool":
        data = np.array([bool(v) for v in values], dtype=bool)
        return np.ma.array(data, mask=[v is None for v in values])
    # object arrays: filled in place later with strings of any length
    return np.array(["" if v is None else str(v) for v in values], dtype=object)


def alert_columns(collection: AlertCollection) -> dict[str, np.ndarray]:
    """The viewer's columns for ``collection``, from the fields decoded so far (missing values
    where not yet: NaN, masked, empty)."""
    n = len(collection)
    cols: dict[str, np.ndarray] = {"id": np.arange(1, n + 1, dtype=np.int64)}
    for f in FIELDS:
        if f.name in SKIPPED_FIELDS:
            continue
        cols[CORE_FIELDS.get(f.name, f.name)] = _array(f.kind, collection.column(f.name))
    cols["original_reliability"] = _production_score(collection)
    return cols


def _production_score(collection: AlertCollection) -> np.ndarray:
    rel = _array("float", collection.column("reliability"))
    drb = _array("float", collection.column("drb"))
    return np.where(np.isfinite(rel), rel, drb)


def fill_alert_columns(columns: MutableMapping[str, Any], collection: AlertCollection) -> None:
    """Write the fields decoded so far into the viewer's ``columns`` in place (the arrays the
    table and the gallery hold stay the same objects)."""
    new = alert_columns(collection)
    for name, values in new.items():
        if name == "id" or name not in columns:
            continue
        out = columns[name]
        if np.ma.isMaskedArray(out) and np.ma.isMaskedArray(values):
            out[:] = values.data
            out.mask = np.ma.getmaskarray(values).copy()
        elif np.ma.isMaskedArray(out):
            out[:] = np.ma.asarray(values)
        else:
            out[:] = np.ma.getdata(values)


def alerts_loader(paths: Iterable[str | Path], first_rows: int = FIRST_ROWS,
                  first_stamps: int = FIRST_ROWS) -> Callable[..., AlertsResult]:
    """A loader (``loader(progress=, cancel=)``) of alert files and folders for the window:
    the fields of the first ``first_rows`` alerts and the cutouts of the first
    ``first_stamps`` (the gallery's first page) are decoded in it.

    Raises :class:`~diascan.errors.InputError` (one line naming the file) when the paths hold
    no alert at all; files that cannot be read otherwise become the result's ``warnings``.
    """
    paths = [Path(p) for p in paths]

    def load(progress: ProgressCallback | None = None,
             cancel: CancelToken | None = None) -> AlertsResult:
        collection = open_alerts(paths, progress=progress, cancel=cancel)
        if not len(collection):
            raise no_alerts_error(collection, paths)
        check(cancel)
        n = min(first_rows, len(collection))
        report(progress, "fields", 0.0, f"first {n} of {len(collection)} alerts")
        # the first page's cutouts are decoded here, off the GUI thread (with the fields of
        # single-alert files): the gallery paints them from ready stamps
        collection.decode_stamps(range(min(first_stamps, n)), cancel)
        for i in range(n):
            collection.row(i)  # one block per file: the first pages' fields
        files = list(dict.fromkeys(collection.column("file")))  # those that gave alerts
        return AlertsResult(collection, alert_columns(collection), {"alerts": files},
                            [str(note) for note in collection.notes])

    return load


def status_counts(columns: Mapping[str, Any]) -> str:
    """``"9 ztf, 2 rubin"``: the alerts per survey, for the status bar."""
    names, counts = np.unique(np.asarray(columns["status"], dtype=str), return_counts=True)
    return ", ".join(f"{c} {n}" for n, c in zip(names, counts, strict=True))


__all__ = ["AlertsResult", "FIRST_ROWS", "RECORD_COLUMNS", "alert_columns", "alerts_loader", "fill_alert_columns",
           "status_counts"]
