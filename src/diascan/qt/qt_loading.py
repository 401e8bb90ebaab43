"""Progressive loading of a visit into the main window (issue 15.3).

The pipeline runs with :func:`diascan.pipeline.start_pipeline` (one future per product) inside
one ``load`` job (:mod:`diascan.qt.qt_jobs`: progress, Cancel, errors, a newer load replaces
it). The job's worker waits for the products as they come and streams them to the GUI thread
as partial results, so the window shows each as soon as it is there:

* ``science``, then ``difference``: each frame is painted as soon as it is read (the others
  blank until theirs arrive);
* ``catalog``: the catalog's rows are shown as provisional sources (status ``catalog``,
  id = the catalog's ``diaSourceId``): the user can select, pan, zoom and label them;
* ``detections``: matched to the catalog in the worker (milliseconds; the pipeline itself
  matches only after the template is warped) and shown in the table and on the frames, with
  no scores yet (``set_result(..., final=False)``, view kept, ``sources_shown(False)``): the
  session's visit gets its sources now, so labels from here on are ordinary autosaved ones;
* ``template``: the template frame fills in, keeping the user's view (the gallery and the
  stamps, which need all three frames, follow);
* the run's result: ``set_result`` (frames not uploaded again, ``data_loaded``), after which
  the window rescores.

A label given to a catalog source goes into the session file at once
(``VisitEntry.hold_label``: a record keyed as that row kept unmatched would be,
``viewstate.missing_source_id``); when the detections arrive it moves to the detection matched
to that catalog row (same ``diaSourceId``, ``VisitEntry.fill_sources``), or the row is kept as a
source with status ``missing`` (``viewstate.keep_missing``), so its label stays in the session;
reloading that visit shows it again (``keep_rows``).

Each product has its own progress in :attr:`QtProgressiveLoad.status` (the status bar's
"science ✓ · difference ✓ · catalog ✓ · detections ✓ · template 40% · scores pending").
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, wait
from typing import Any

import numpy as np
from PyQt6.QtCore import QObject, pyqtSignal
from PyQt6.QtWidgets import QLabel

from diascan import viewstate as vs
from diascan.display import make_lut
from diascan.qt.qt_jobs import Job

#: ``start(progress=, cancel=) -> PipelineRun`` (:func:`diascan.inputs.files_starter`).
Starter = Callable[..., Any]

#: The products streamed before the result, in the order they are shown (and listed in the
#: status text).
EARLY = ("science", "difference", "catalog", "detections", "template")
#: Pipeline progress stages shown per product in the status text (stage -> shown name).
STAGE_NAMES = {"load": "read", "template": "template", "detect": "detect"}
#: Shown stage -> the product that ends it (its progress is left out once that is shown).
STAGE_PRODUCTS = {"detect": "detections", "template": "template"}
#: Status of a provisional (catalog) source.
CATALOG_STATUS = "catalog"


def catalog_sources(catalog: Any, science: Any, visit=None, detector=None) -> vs.SourceSet:
    """Provisional sources from the catalog rows of a visit: id = ``diaSourceId`` (row number
    when the catalog has none), parent-pixel x/y from the science WCS, status ``catalog``."""
    if catalog is None or len(catalog) == 0:
        return vs.SourceSet.empty()
    xy = vs.catalog_xy(catalog, science)
    if len(xy) != len(catalog):
        return vs.SourceSet.empty()  # no positions to draw them at
    cols = catalog.colnames
    ids = (np.asarray(catalog["diaSourceId"], dtype=np.int64) if "diaSourceId" in cols
           else np.arange(len(catalog), dtype=np.int64))
    table = {"id": ids, "x": xy[:, 0], "y": xy[:, 1],
             "status": np.full(len(catalog), CATALOG_STATUS, dtype="<U9")}
    for name in ("ra", "dec", "reliability", "snr", "psfFlux"):
        if name in cols:
            table[name] = np.asarray(catalog[name], dtype=float)
    table["diaSourceId"] = ids
    return vs.SourceSet.from_table(table, visit=visit, detector=detector)


class Partial:
    """What a progressive load shows before the run's result: the result's fields that are
    there (``set_result`` reads them), the rest None."""

    def __init__(self, **fields: Any) -> None:
        self.science = self.difference = self.template = self.catalog = None
        self.detections = self.missing = None
        self.input_files: dict = {}
        self.warnings: list[str] = []
        self.__dict__.update(fields)


def _frame(job: Job, name: str, image: Any, frames: dict, display: dict) -> None:
    """Prepare one frame for display (in the worker) and send it to the GUI thread."""
    prepared = vs.prepare_display({name: image}, frames)
    display.update(prepared)
    job.emit(("frame", name, image, prepared[name]))


def _stream(job: Job, start: Starter, frames: dict) -> tuple[Any, dict]:
    """The load job's work: start the run, emit the products as they arrive, each frame as
    soon as it is read, the detections as soon as they are made (matched to the catalog
    here: the pipeline matches only once the template is warped, and matching takes
    milliseconds), return ``(result, display)``."""
    from diascan.pipeline import input_files_of, match

    run = start(progress=job.report, cancel=job.token)
    try:
        for fs in frames.values():  # the lookup tables (and their colour map import) off the
            make_lut(fs.colormap, fs.stretch)  # GUI thread, while the files are read
        pending = {run.future(name): name for name in EARLY}
        got: dict[str, Any] = {}
        display: dict = {}
        shown: set[str] = set()
        job.emit(("files", input_files_of(run.inputs)))
        while pending:
            done, _ = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
            job.token.check()
            for fut in done:
                got[pending.pop(fut)] = fut.result()  # a failed stage raises its error here
            for name in ("science", "difference"):  # each frame painted once it is read
                if name in got and name not in shown:
                    _frame(job, name, got[name], frames, display)
                    shown.add(name)
            if "science" not in shown:
                continue
            if "catalog" in got and "catalog" not in shown:
                job.emit(("catalog", got["catalog"], got["science"]))
                shown.add("catalog")
            if ("detections" in got and "catalog" in shown and "difference" in shown
                    and "detections" not in shown):
                inputs = run.inputs
                matched = match(got["detections"], got["catalog"], inputs.target,
                                inputs.match_radius_arcsec)
                job.emit(("detections", matched.detections, matched.missing))
                shown.add("detections")
            if "template" in got and "template" not in shown:
                _frame(job, "template", got["template"], frames, display)
                shown.add("template")
        result = run.result()
    except BaseException:
        run.cancel()
        raise
    job.token.check()
    return result, display


class QtProgressiveLoad(QObject):
    """One progressive load into ``window`` (see the module docstring)."""

    #: science and difference painted
    frames_shown = pyqtSignal()
    catalog_shown = pyqtSignal()
    #: the detections in the table and on the frames (before the template and the result)
    detections_shown = pyqtSignal()
    template_shown = pyqtSignal()

    def __init__(self, window: Any, start: Starter, keep_rows: Any = ()) -> None:
        super().__init__(window)
        self.window = window
        self.start_fn = start
        #: catalog rows kept as sources (a session's visit had labelled them before)
        self.keep_rows = {int(r) for r in keep_rows}
        #: provisional catalog id -> label value given before the detections arrived
        self.provisional_labels: dict[int, str | None] = {}
        self.provisional: vs.SourceSet | None = None
        #: the run's input files by role (``PipelineResult.input_files``), once it started
        self.input_files: dict[str, Any] = {}
        self.stage_done: dict[str, float] = {}
        self.shown: set[str] = set()
        self.job: Job | None = None

    # --- starting ----------------------------------------------------------------------------
    def start(self) -> Job:
        frames = self.window.state.frames
        job = Job("load", lambda j: _stream(j, self.start_fn, frames), "loading")
        job.progress.connect(self._progress)
        job.partial.connect(self._partial)
        job.succeeded.connect(self._succeeded)
        job.failed.connect(self.window._load_error)
        job.cancelled.connect(lambda: self.window.statusBar().showMessage("loading cancelled"))
        job.done.connect(self._done)
        self.job = job
        self.window.loading = self
        return self.window.jobs.run(job)

    @property
    def active(self) -> bool:
        """True while this load shows provisional data in the window."""
        return self.window.loading is self and self.job is not None and not self.job.finished

    # --- progress per product ------------------------------------------------------------------
    def _progress(self, stage: str, fraction: float, _message: str) -> None:
        name = STAGE_NAMES.get(stage)
        if name is not None:
            self.stage_done[name] = max(self.stage_done.get(name, 0.0), fraction)
        self._show_status()

    def status(self) -> str:
        """Per-product progress: what is shown and how far the rest is."""
        parts = [f"{n} ✓" for n in EARLY if n in self.shown]
        done = dict.fromkeys(STAGE_PRODUCTS, 0.0) | self.stage_done
        for name, frac in done.items():
            if STAGE_PRODUCTS.get(name, name) in self.shown or (
                    name == "read" and {"science", "difference"} <= self.shown):
                continue
            parts.append(f"{name} {'✓' if frac >= 1 else f'{100 * frac:.0f}%'}")
        if "detections" in self.shown:
            parts.append("scores pending")  # rescored once the load is done
        return " · ".join(parts)

    def _show_status(self) -> None:
        label = status_label(self.window)
        label.setText(self.status() if self.active else "")

    # --- products in the GUI thread ----------------------------------------------------------
    def _partial(self, value: tuple) -> None:
        if self.window.loading is not self:
            return  # a newer load owns the window
        kind = value[0]
        if kind == "files":
            self.input_files = value[1]
        elif kind == "frame":
            self._show_frame(*value[1:])
        elif kind == "catalog":
            self._show_catalog(value[1], value[2])
        elif kind == "detections":
            self._show_detections(value[1], value[2])
        self._show_status()

    def _show_frame(self, name: str, image: Any, display: tuple) -> None:
        win = self.window
        if not self.shown & set(vs.FRAMES):  # the first frame of this visit: the last goes
            win.jobs.data_changed()  # rescoring of the previous visit's data stops
            win.result = None
            win.images = dict.fromkeys(vs.FRAMES)
            win.images[name] = image
            win.frames.set_images(win.images, {name: display})
            self._set_sources(vs.SourceSet.empty())
            win.state.selected_id = None
        else:
            win.images[name] = image
            win.frames.add_image(name, image, display)
        self.shown.add(name)
        if name == "template":
            if "detections" in self.shown:
                win._show_stamps()  # the gallery and the stamps need all three frames
            self.template_shown.emit()
        elif {"science", "difference"} <= self.shown and "frames" not in self.shown:
            self.shown.add("frames")
            self.frames_shown.emit()

    def _show_catalog(self, catalog: Any, science: Any) -> None:
        meta = getattr(science, "metadata", None) or {}
        src = catalog_sources(catalog, science, meta.get("visit"), meta.get("detector"))
        self.provisional = src
        self._set_sources(src)
        self.shown.add("catalog")
        self.catalog_shown.emit()

    def _show_detections(self, detections: Any, missing: Any) -> None:
        """The detections, matched, in the table and on the frames (scores and the template
        follow): the session's visit gets its sources now (``sources_shown(False)``), so every
        label from here on is a normal, autosaved one; labels given to catalog sources move
        to their detections."""
        win = self.window
        part = Partial(science=win.images["science"], difference=win.images["difference"],
                       template=win.images["template"], detections=detections, missing=missing,
                       input_files=self.input_files)
        kept = self._unmatched_rows(missing)
        self.keep_rows |= set(kept.values())
        self.provisional = None  # labels go to the detections (the session) from now on
        win.set_result(part, fit=False, keep_rows=self.keep_rows, final=False)
        self.shown.add("detections")
        self._place_labels({cid: vs.missing_source_id(r) for cid, r in kept.items()})
        self.detections_shown.emit()

    def _set_sources(self, src: vs.SourceSet) -> None:
        win = self.window
        win.sources = src
        win.proxy.row_mask = None
        win.frames.row_mask = None
        win.table_model.set_sources(src)
        src.connect(win._on_sources)
        win.frames.set_sources(src)
        win._show_stamps()

    # --- labels before the detections ----------------------------------------------------------
    def label_selected(self, label: str | None) -> bool:
        """Label the selected provisional (catalog) source; False if none is selected."""
        sid = self.window.selected_id()
        return sid is not None and self.label(sid, label)

    def label(self, sid: int, label: str | None) -> bool:
        """Label provisional source ``sid`` (a catalog id): autosaved at once in the session's
        visit (``VisitEntry.hold_label``), moved to its detection when that arrives."""
        src = self.provisional
        if src is None or self.window.sources is not src:
            return False
        row = src.index_of(sid)
        if row is None:
            return False
        self.provisional_labels[int(sid)] = label
        src.set_label(row, label)
        self._hold(src, row, label)
        return True

    def _hold(self, src: vs.SourceSet, row: int, label: str | None) -> None:
        """The label of catalog row ``row`` into the session file now (a crash before the
        detections arrive keeps it)."""
        from diascan.session.visits import source_records

        link = getattr(self.window, "session_link", None)
        if link is None:
            return
        visit = link.loading_visit_entry(self.input_files, self.window.images)
        rec = source_records(src)[row]
        rec.id = vs.missing_source_id(row)  # as the row kept unmatched would be numbered
        visit.hold_label(rec, label)
        link.ctl.autosave.save()

    def _unmatched_rows(self, missing: Any) -> dict[int, int]:
        """Labelled catalog ids no detection matched -> their catalog rows."""
        if (not self.provisional_labels or missing is None or len(missing) == 0
                or "catalog_row" not in missing.colnames):
            return {}
        rows = np.asarray(missing["catalog_row"], dtype=np.int64)
        ids = (np.asarray(missing["diaSourceId"], dtype=np.int64)
               if "diaSourceId" in missing.colnames else rows)  # as catalog_sources numbers
        by_id = {int(i): int(r) for i, r in zip(ids, rows, strict=True)}
        return {cid: by_id[cid] for cid, lab in self.provisional_labels.items()
                if lab is not None and cid in by_id}

    def _place_labels(self, kept: dict[int, int]) -> None:
        """Labels given to catalog sources -> the detections matched to those rows, or the
        catalog rows kept as sources (``kept``: catalog id -> source id). With a session the
        visit has them already (held, moved by ``fill_sources``): this only shows them."""
        if not self.provisional_labels:
            return
        win, ctl = self.window, self.window.label_controller
        src = win.sources
        by_dia: dict[int, int] = {}
        if src is not None and len(src):
            dia = np.ma.filled(np.ma.asarray(src.dia_source_id), -1)
            by_dia = {int(d): int(i) for d, i in zip(dia, src.ids, strict=True) if d >= 0}
        by_dia.update(kept)
        lost = 0
        for cat_id, label in self.provisional_labels.items():
            det_id = by_dia.get(cat_id)
            if det_id is None:
                lost += label is not None  # unlabelled again, or a row the match dropped
                continue
            if ctl is not None and ctl.label_source(det_id, label):
                continue  # in the session: autosaved, mirrored into the window
            row = src.index_of(det_id)
            src.set_label(row, label)
        self.provisional_labels.clear()
        if ctl is not None:
            ctl.autosave.save()
        if lost:
            win.statusBar().showMessage(
                f"{lost} label(s) given to catalog rows the result lacks were not kept", 15000)

    def _succeeded(self, res: tuple) -> None:
        result, display = res
        if self.window.loading is not self:
            return
        self.window.set_result(result, display, fit="frames" not in self.shown,
                               keep_rows=self.keep_rows)

    def _done(self) -> None:
        if self.window.loading is self:
            status_label(self.window).setText("")


def status_label(window: Any) -> QLabel:
    """The status bar's per-product progress label of ``window`` (made once)."""
    label = getattr(window, "_loading_label", None)
    if label is None:
        label = QLabel()
        label.setObjectName("loading_status")
        window.statusBar().addPermanentWidget(label)
        window._loading_label = label
    return label


def load_progressive(window: Any, start: Starter, keep_rows: Any = ()) -> QtProgressiveLoad:
    """Load a visit into ``window`` progressively (see the module docstring); ``keep_rows``:
    catalog rows shown as sources (``QtMainWindow.set_result``)."""
    load = QtProgressiveLoad(window, start, keep_rows)
    load.start()
    return load


__all__ = ["CATALOG_STATUS", "QtProgressiveLoad", "catalog_sources", "load_progressive",
           "status_label"]
