"""Alerts in the main window: File > Open alerts…, dropped alert files, the alerts' rescoring.

Alerts open in THE gallery of the window (:class:`~diascan.qt.qt_gallery.QtGallery`) over the
:class:`~diascan.alerts.collection.AlertCollection` (a :class:`~diascan.stamps.StampSource`,
cutouts decoded when shown or scored) with the alerts as the window's ``SourceSet``
(:mod:`diascan.alerts.viewer`): the same table, filter expressions, labels, keys, undo, autosave
and exports as a visit. The window calls :func:`show_alerts` from ``set_result``; the frames
show a note instead of images (alerts carry only their cutouts).

Rescoring runs in the window's jobs (kind ``rescore``) with :func:`alert_models`: the selected
model if it is meant for the alerts' survey, else a package in the model switcher that is (the
braai package for ZTF alerts). Alerts the model cannot take (Rubin's ~30x30 cutouts and the
51x51 DP1 model) keep no score, and a banner says why in plain words: no padded guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtWidgets import QFileDialog, QLabel

from diascan import viewstate as vs
from diascan.qt.qt_jobs import Job

#: File dialog filter of alert files.
ALERT_FILTER = "Alerts (*.avro *.parquet *.pq);;All files (*)"
#: What the frames' place says while alerts are shown.
NO_FRAMES_TEXT = ("Alerts carry only their cutouts, not whole images: the gallery (G) and the "
                  "Cutouts tab show them. Open images (Ctrl+O) to see frames again.")
#: The other alerts' fields are decoded this long after the first page was asked for: the job
#: would share the GIL with the page's cutout decoding (measured: benchmarks/bench_alerts.py).
FIELDS_DELAY_MS = 1000
#: Alert columns the table shows besides its default ones (the others: the header's menu).
SHOWN_COLUMNS = ("diaSourceId", "object_id", "time", "band", "mag", "flags", "is_negative",
                 "dipole", "ss_match", "rb", "drb")
#: Warning lines shown in the banner at most (the rest are counted).
BANNER_LINES = 8


def no_frames_label() -> QLabel:
    """The widget shown in the frames' place while alerts are shown."""
    label = QLabel(NO_FRAMES_TEXT)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setWordWrap(True)
    label.setObjectName("no_frames")
    return label


def is_alert_path(path: Path) -> bool:
    """True for a file named like an alert file (``.avro``, ``.parquet``)."""
    from diascan.alerts.collection import ALERT_SUFFIXES

    return path.suffix.lower() in ALERT_SUFFIXES


def dropped_alerts(paths: Sequence[Path]) -> list[Path] | None:
    """The dropped paths when they are alert files (all of them), else None."""
    files = [p for p in paths if p.is_file()]
    return list(paths) if files and len(files) == len(paths) and all(
        is_alert_path(p) for p in files) else None


def open_alerts(window: Any, paths: Sequence[str | Path]) -> Job:
    """Load alert files and folders into ``window`` (a load job, like a visit's files); the
    job decodes the cutouts of the gallery's first page too (it paints them at once)."""
    from diascan.alerts.viewer import alerts_loader

    # one row of tiles more than the grid has now: the grid may gain one when the load's
    # progress bar goes (1920 x 1080: 60 tiles while loading, 66 after, measured)
    state = window.gallery_state
    loader = alerts_loader(paths, first_stamps=state.per_page + state.columns)
    display = window.gallery.display

    def load(progress=None, cancel=None):
        result = loader(progress=progress, cancel=cancel)
        display.warm()  # the first page's colour tables, off the GUI thread too
        return result

    return window.load(load)


def decode_ahead(window: Any, rows: Sequence[int]) -> bool:
    """Decode the cutouts of alert ``rows`` (the gallery's next page) in a quiet ``stamps``
    job, off the GUI thread; the gallery composes them when it is done
    (``QtGallery.decode_ahead``). False when the gallery shows no alerts of the window."""
    alerts, gallery = window.alerts, window.gallery
    if alerts is None or gallery.source is not alerts:
        return False
    rows = [int(r) for r in rows]

    def build() -> Job:
        job = Job("stamps", lambda job: alerts.decode_stamps(rows, job.token), "decoding")
        job.succeeded.connect(lambda _: gallery.source is alerts and gallery.prefetch_more())
        return job

    window.jobs.request("stamps", build)  # started now, or once a load is done
    return True


def open_alerts_dialog(window: Any) -> bool:
    """File > Open alerts…: pick alert files (Avro, Parquet); False when cancelled."""
    paths, _ = QFileDialog.getOpenFileNames(window, "Open alerts", "", ALERT_FILTER)
    if not paths:
        return False
    open_alerts(window, paths)
    return True


def show_alerts(window: Any, result: Any) -> None:
    """Show an :class:`~diascan.alerts.viewer.AlertsResult` in ``window`` (whose ``sources``
    are its alerts already, in the table): the collection as the gallery's and the stamp
    dock's stamp source, the gallery in front, then the other alerts' fields decoded in a
    job."""
    from diascan.alerts.viewer import status_counts

    for name in SHOWN_COLUMNS:  # unless the user chose otherwise
        window.table.column_choice.setdefault(name, True)
    window.table.apply_columns()
    if window.mask_dock.isVisible():  # alerts have no mask planes: back with the next visit
        window.mask_dock.hide()
        window.mask_dock_hidden_for_alerts = True
    window.gallery.set_source(result.alerts, window.sources)
    window.cutouts.set_stamp_source(result.alerts)
    window.view_stack.setCurrentWidget(window.gallery if window.gallery_shown()
                                       else window.no_frames)
    window.show_gallery(True)
    _show_notes(window, result.warnings)
    n = len(result.alerts)
    window.setWindowTitle(f"diascan — {n} alerts")
    window.statusBar().showMessage(f"{n} alerts ({status_counts(result.detections)}), "
                                   f"{len(result.warnings)} file(s) or record(s) not read", 15000)
    # once the first page is painted (FIELDS_DELAY_MS)
    sources = window.sources
    timer = QTimer(window)  # goes with the window (a closed window starts no job)
    timer.setSingleShot(True)
    timer.timeout.connect(lambda: window.sources is sources and _load_fields(
        window, result.alerts, sources))
    timer.timeout.connect(timer.deleteLater)
    timer.start(FIELDS_DELAY_MS)


def _show_notes(window: Any, warnings: list[str]) -> None:
    if not warnings:
        window.banners.clear("warnings")
        return
    head = f"{len(warnings)} file(s) or record(s) could not be read as alerts (the rest are open):"
    lines = [f"• {w}" for w in warnings[:BANNER_LINES]]
    if len(warnings) > BANNER_LINES:
        lines.append(f"• … and {len(warnings) - BANNER_LINES} more (File > File info…)")
    window.banners.show_banner("warnings", [head, *lines])


def _load_fields(window: Any, alerts: Any, sources: vs.SourceSet) -> Job:
    """Decode every alert's fields in a job, then fill the window's columns in place."""
    from diascan.alerts.viewer import fill_alert_columns

    def done(_result) -> None:
        if window.sources is not sources:
            return  # other data are shown now
        fill_alert_columns(sources.columns, alerts)
        sources.columns_changed()
        window.table.fit_columns(sources)
        _update_session(window, sources)

    job = Job("fields", lambda job: alerts.load_fields(job.report, job.token),
              "reading alert fields")
    job.succeeded.connect(done)
    return window.jobs.run(job)


def _update_session(window: Any, sources: vs.SourceSet) -> None:
    """The session's records of the alerts shown get the fields decoded since (ra, dec, SNR,
    diaSourceId...), and it is saved."""
    from diascan.session.visits import source_records

    ctl = getattr(getattr(window, "session_link", None), "ctl", None)
    visit = getattr(ctl, "window_visit", None)
    if visit is not None and visit.alerts and visit.update_sources(source_records(sources)):
        ctl.autosave.save()


# ---------------------------------------------------------------------- rescoring


def _spec_of(spec: Any):
    """A switcher entry's input spec (a loaded model's, or read from its package folder)."""
    if hasattr(spec, "input_spec"):
        return spec.input_spec
    from diascan.models.package import package_info

    try:
        return package_info(Path(spec)).input_spec
    except (OSError, ValueError):
        return None


def alert_models(selected: Any, specs: dict[str, Any], surveys: set[str],
                 trust_model_code: bool = False) -> list:
    """The models to rescore alerts of ``surveys`` with, in order of preference: for each
    survey a model made for its stamps (``selected`` if it is, else the first of the switcher,
    ``specs``: name -> path or model, e.g. braai for ZTF), else ``selected`` when it takes
    any stamps. Never empty: without a suitable model the selected one is tried (each alert's
    note then says why it was not scored)."""
    from diascan.models import load_model

    chosen: list = []
    for survey in sorted(surveys):
        if any(m.input_spec.stamps == survey for m in chosen):
            continue
        if selected.input_spec.stamps == survey:
            chosen.append(selected)
            continue
        for name, spec in specs.items():
            input_spec = None if name == selected.name else _spec_of(spec)
            if input_spec is not None and input_spec.stamps == survey:
                chosen.append(spec if hasattr(spec, "score_stamps") else
                              load_model(spec, trust_model_code=trust_model_code))
                break
    if selected not in chosen and (selected.input_spec.stamps == "any" or not chosen):
        chosen.append(selected)
    return chosen


def alert_rescore_job(window: Any, rows: np.ndarray, batch_size: int) -> Job:
    """The rescoring job of alert ``rows`` of the window's alerts (batches stream in)."""
    from diascan.alerts.scoring import CHUNK, score_alerts

    alerts, sources = window.alerts, window.sources
    holder: dict[str, Any] = {}

    def work(job: Job) -> tuple[np.ndarray, np.ndarray]:
        selected = window._resolve_model()
        models = alert_models(selected, window.model_specs, alerts.surveys,
                              window.trust_model_code)
        holder["models"] = models
        job.report("score", 0.0, f"scoring {rows.size} alerts")
        scores = np.full(rows.size, np.nan, dtype=np.float32)
        notes: list[str] = []
        used: list[str] = []
        for start in range(0, rows.size, CHUNK):
            part = rows[start:start + CHUNK]
            res = score_alerts(alerts, models, indices=part, batch_size=batch_size,
                               cancel=job.token)
            scores[start:start + part.size] = res.score[part]
            notes.extend(res.note[i] for i in part if res.note[i])
            used.extend(res.model[i] for i in part if res.model[i])
            job.emit((part, res.score[part]))
            job.report("score", (start + part.size) / rows.size,
                       f"{start + part.size}/{rows.size}")
        holder["notes"], holder["used"] = notes, used
        return rows, scores

    job = Job("rescore", work, "scoring")
    job.partial.connect(lambda batch: window._batch_done(sources, *batch))
    job.succeeded.connect(lambda res: _rescored(window, res, holder))
    job.failed.connect(window._rescore_error)
    job.cancelled.connect(window._rescore_cancelled)
    return job


def _rescored(window: Any, res, holder: dict[str, Any]) -> None:
    """The model that scored most alerts becomes the selected one (the model follows the
    alerts); alerts left unscored are said in a banner, with the first reason."""
    used, notes = holder.get("used", []), holder.get("notes", [])
    model = None
    if used:
        name = max(set(used), key=used.count)
        model = next((m for m in holder["models"] if m.name == name), None)
        if model is not None and name != window.state.model_name:
            specs = window.model_specs if name in window.model_specs else {
                name: model, **window.model_specs}
            window.set_models(specs, name)
    if notes:
        first = max(set(notes), key=notes.count)
        window.banners.show_banner("alert_scores", [
            f"{len(notes)} of {len(res[0])} alerts not rescored: {first}"
            + ("" if len(set(notes)) == 1 else f" (and {len(set(notes)) - 1} other reason(s))"),
            "Their production scores (reliability, rb, drb) are shown; no padded guess is made.",
        ])
    else:
        window.banners.clear("alert_scores")
    window._rescore_finished(res, model)
    scored = int(np.isfinite(res[1]).sum())
    window.statusBar().showMessage(
        f"rescored {scored} of {len(res[0])} alerts with {window.state.model_name}", 5000)


__all__ = ["alert_models", "alert_rescore_job", "dropped_alerts", "is_alert_path",
           "no_frames_label", "open_alerts", "open_alerts_dialog", "show_alerts"]
