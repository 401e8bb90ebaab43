"""The main window: frames, source table, cutouts, plots, controls, workers.

Hooks for the session controller: :attr:`QtMainWindow.table_model`, :meth:`selection_model`,
:meth:`select_source`, :meth:`source_ids`, :meth:`displayed_source_ids` (the table's rows in
its order: the controller's triage moves through them), the ``selection_changed(int)`` signal,
:attr:`actions` (every registered action as a QAction, in its menu: the controller binds the
labelling and session ones), the right dock area (:meth:`add_dock`), :attr:`label_controller`
(closed with the window) and ``state.hide_scores`` ("hide model scores while labelling":
table, markers, cutouts, plots; the label controller sets it).

Keys come from the action registry (:mod:`diascan.actions`) and the user's key file. Blink is
``]`` (forward) and ``[`` (backward): Imviz uses B / Shift+B, but B labels a source bogus here;
Return rescores only while the table has focus. Blinking while the three frames are side by
side switches to the single-frame view, keeping the focus where it was.

Workers: a load is never cancelled by a rescore request; the request waits for the load and then
runs on the loaded data. A rescore request during a rescore replaces it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PyQt6.QtCore import QItemSelectionModel, Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSlider,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from diascan import viewstate as vs
from diascan.qt.qt_actions import QtActions
from diascan.qt.qt_cutouts import QtCutouts
from diascan.qt.qt_frames import MASK_COLORS, QtFrames, adopt_menus
from diascan.qt.qt_jobs import Job, QtJobs, error_text, in_background
from diascan.qt.qt_plots import QtPlots
from diascan.qt.qt_table import COL, QtSourceFilter, QtSourceTable, QtSourceTableModel
from diascan.qt.qt_train import install_learning
from diascan.session.keymap import KeyMap

log = logging.getLogger(__name__)

#: A loader runs in a job: ``loader(progress=..., cancel=...) -> result``.
Loader = Callable[..., Any]

#: Short frame names of the status-bar readout.
SHORT_NAMES = {"science": "sci", "template": "tmpl", "difference": "diff"}


class QtMainWindow(QMainWindow):
    """diascan's viewer window. ``set_result`` shows a pipeline result; ``load`` makes one."""

    selection_changed = pyqtSignal(int)
    data_loaded = pyqtSignal()
    load_failed = pyqtSignal(str)
    rescore_done = pyqtSignal(object)  # (indices, scores) or None when cancelled/failed
    error_shown = pyqtSignal(str)

    def __init__(self, state: vs.ViewerState | None = None, parent: QWidget | None = None,
                 keymap: KeyMap | None = None) -> None:
        super().__init__(parent)
        #: The user's keys (``~/.config/diascan/keys.json`` unless given).
        self._keymap = keymap
        self.setWindowTitle("diascan")
        self.resize(1500, 950)
        self.setAcceptDrops(True)
        self.state = state or vs.ViewerState()
        self.sources: vs.SourceSet | None = None
        self.images: dict[str, Any] = {}
        self.result: Any = None
        self.model: Any = None
        #: ``--trust-model-code``: allow an unrecognised package's arch*.py to run.
        self.trust_model_code = False
        self.model_specs: dict[str, Any] = {}
        #: The window's background jobs and their scheduling (``qt_jobs.POLICIES``).
        self.jobs = QtJobs(self)
        self.jobs.started.connect(self._job_started)
        self.jobs.finished.connect(self._job_finished)
        #: The job the progress bar shows (the last started), until it is done.
        self.shown_job: Job | None = None
        self.last_error: str | None = None
        #: The session's QtLabelController, when one is attached (closed in closeEvent).
        self.label_controller: Any = None
        #: Source to select when the next result arrives (a session's saved selection);
        #: without it the known transient (status 'target') is selected.
        self.pending_selection: int | None = None
        self.show_errors_as_dialogs = True
        self._dialogs: list[QMessageBox] = []
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(50)
        self._refresh_timer.timeout.connect(self._refresh_scores)

        self.frames = QtFrames(self.state)
        self.table_model = QtSourceTableModel()
        self.proxy = QtSourceFilter(self.state)
        self.proxy.setSourceModel(self.table_model)
        self.table = QtSourceTable(self.proxy)
        self.cutouts = QtCutouts()
        self.plots = QtPlots(self.state)
        self._build_layout()
        self._build_controls()
        self._build_menus()
        self._build_statusbar()
        self._connect()
        adopt_menus(self)
        # a clash in the user's key file is said, not dropped (once the caller set up the window)
        QTimer.singleShot(0, self.actions.report_notes)

    # -- layout --------------------------------------------------------------------------
    def _build_layout(self) -> None:
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("filter rows (any column)")
        self.goto_edit = QLineEdit()
        self.goto_edit.setPlaceholderText("go to id or RA Dec (deg or hh:mm:ss dd:mm:ss)")
        top = QHBoxLayout()
        top.addWidget(self.filter_edit)
        top.addWidget(self.goto_edit)
        table_box = QWidget()
        tl = QVBoxLayout(table_box)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addLayout(top)
        tl.addWidget(self.table)
        self.side_tabs = QTabWidget()
        self.side_tabs.addTab(self.cutouts, "Cutouts")
        self.side_tabs.addTab(self.plots, "Plots")
        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(table_box)
        bottom.addWidget(self.side_tabs)
        bottom.setSizes([900, 500])
        main = QSplitter(Qt.Orientation.Vertical)
        main.addWidget(self.frames)
        main.addWidget(bottom)
        main.setSizes([560, 360])
        self.setCentralWidget(main)

    def _build_controls(self) -> None:
        bar = self.addToolBar("Display")
        bar.setObjectName("display_toolbar")
        self.frame_combo = QComboBox()
        self.frame_combo.addItems(vs.FRAMES)
        self.stretch_combo = QComboBox()
        self.stretch_combo.addItems(vs.STRETCHES)
        self.limits_combo = QComboBox()
        self.limits_combo.addItems(vs.LIMIT_MODES)
        self.cmap_combo = QComboBox()
        self.cmap_combo.addItems(vs.COLORMAPS)
        self.symmetric_check = QCheckBox("symmetric")
        for label, w in (
            ("frame", self.frame_combo),
            ("stretch", self.stretch_combo),
            ("limits", self.limits_combo),
            ("cmap", self.cmap_combo),
        ):
            bar.addWidget(QLabel(f" {label} "))
            bar.addWidget(w)
        bar.addWidget(self.symmetric_check)
        bar.addSeparator()
        self.blink_back_btn = QPushButton("◀ blink")
        self.blink_btn = QPushButton("blink ▶")
        self.single_check = QCheckBox("single frame")
        for w in (self.blink_back_btn, self.blink_btn, self.single_check):
            bar.addWidget(w)
        bar.addSeparator()
        self.threshold_check = QCheckBox("score threshold")
        bar.addWidget(self.threshold_check)

        bar2 = self.addToolBar("Model")
        bar2.setObjectName("model_toolbar")
        bar2.addWidget(QLabel(" model "))
        self.model_combo = QComboBox()
        self.model_combo.setMinimumWidth(220)
        bar2.addWidget(self.model_combo)
        self.rescore_sel_btn = QPushButton("Rescore selected")
        self.rescore_all_btn = QPushButton("Rescore all")
        bar2.addWidget(self.rescore_sel_btn)
        bar2.addWidget(self.rescore_all_btn)

        # Mask planes dock.
        self.mask_box = QWidget()
        self.mask_layout = QVBoxLayout(self.mask_box)
        self.mask_layout.addWidget(QLabel("transparency"))
        self.alpha_slider = QSlider(Qt.Orientation.Horizontal)
        self.alpha_slider.setRange(0, 100)
        self.alpha_slider.setValue(int(self.state.mask_alpha * 100))
        self.mask_layout.addWidget(self.alpha_slider)
        self.mask_checks: dict[str, QCheckBox] = {}
        self.mask_layout.addStretch(1)
        self.mask_dock = self.add_dock("Mask planes", self.mask_box)
        self._sync_frame_controls()

    def _build_menus(self) -> None:
        """Menus and keys from the action registry; the window binds the actions it does."""
        self.actions = QtActions(self, self._keymap)
        acts = self.actions
        self.file_menu = acts.menus["File"]
        self.view_menu = acts.menus["View"]
        self.session_menu = acts.menus["Session"]
        for action_id, slot in (
            ("open_images", self.open_dialog),
            ("quit", self.close),
            ("blink_forward", lambda: self.state.blink(1)),
            ("blink_backward", lambda: self.state.blink(-1)),
            ("toggle_single", self.toggle_single),
            ("goto", self.goto_edit.setFocus),
            ("legend", self.frames.set_legend_visible),
            ("rescore_selected", self.rescore_selected),
            ("rescore_all", self.rescore_all),
            ("cheat_sheet", self.show_cheat_sheet),
            ("key_bindings", self.show_key_prefs),
        ):
            acts.bind(action_id, slot)
        acts.attach("rescore_selected", self.table)  # Return rescores in the table only
        self.legend_action = acts["legend"]
        self.legend_action.setChecked(True)
        for edit in (self.filter_edit, self.goto_edit):
            acts.guard_search_field(edit)
        acts.notes_reported.connect(
            lambda notes: self.show_error("Key bindings", "\n".join(notes), warning=True))
        install_learning(self)  # Score > Improve model from my labels…, uncertain first

    def _build_statusbar(self) -> None:
        sb = self.statusBar()
        self.cursor_label = QLabel("")
        sb.addWidget(self.cursor_label, 1)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(260)
        self.progress.setRange(0, 1000)
        self.progress.setVisible(False)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setVisible(False)
        self.cancel_btn.clicked.connect(self.cancel_work)
        sb.addPermanentWidget(self.progress)
        sb.addPermanentWidget(self.cancel_btn)

    def add_dock(self, title: str, widget: QWidget,
                 area=Qt.DockWidgetArea.RightDockWidgetArea) -> QDockWidget:
        """Add ``widget`` in a dock (used by the session controller too)."""
        dock = QDockWidget(title, self)
        dock.setObjectName(title.replace(" ", "_"))
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        if self.isVisible():  # a dock added after show() stays hidden otherwise
            dock.show()
        return dock

    def _connect(self) -> None:
        self.frames.source_clicked.connect(self._select_row_and_center)
        self.plots.source_clicked.connect(self._select_row_and_center)
        self.frames.cursor_moved.connect(self._update_cursor)
        self.table.selectionModel().currentRowChanged.connect(self._table_row_changed)
        self.filter_edit.textChanged.connect(self.proxy.setFilterFixedString)
        self.goto_edit.returnPressed.connect(lambda: self.goto(self.goto_edit.text()))
        self.frame_combo.currentTextChanged.connect(lambda _: self._sync_frame_controls())
        self.stretch_combo.currentTextChanged.connect(lambda v: self._set_frame("stretch", v))
        self.limits_combo.currentTextChanged.connect(lambda v: self._set_frame("limits", v))
        self.cmap_combo.currentTextChanged.connect(lambda v: self._set_frame("colormap", v))
        self.symmetric_check.toggled.connect(lambda v: self._set_frame("symmetric", v))
        self.blink_btn.clicked.connect(lambda: self.state.blink(1))
        self.blink_back_btn.clicked.connect(lambda: self.state.blink(-1))
        self.single_check.toggled.connect(lambda v: setattr(self.state, "single", v))
        self.threshold_check.toggled.connect(self.plots.set_threshold_enabled)
        self.alpha_slider.valueChanged.connect(lambda v: setattr(self.state, "mask_alpha", v / 100))
        self.rescore_sel_btn.clicked.connect(self.rescore_selected)
        self.rescore_all_btn.clicked.connect(self.rescore_all)
        self.model_combo.currentIndexChanged.connect(self._model_changed)
        self.state.connect(self._on_state)
        for fs in self.state.frames.values():
            fs.connect(lambda _name, _value: self._sync_frame_controls())

    # -- public API (session engineer, tests) ---------------------------------------------
    def source_ids(self) -> list[int]:
        """Ids of all detections, in table-model row order."""
        return [] if self.sources is None else [int(i) for i in self.sources.ids]

    def displayed_source_ids(self) -> list[int]:
        """Ids of the rows the table shows, in its order (filters and sorting applied)."""
        if self.sources is None:
            return []
        proxy, ids = self.proxy, self.sources.ids
        return [int(ids[proxy.mapToSource(proxy.index(r, 0)).row()])
                for r in range(proxy.rowCount())]

    def selection_model(self) -> QItemSelectionModel:
        return self.table.selectionModel()

    def selected_id(self) -> int | None:
        return self.state.selected_id

    def select_source(self, source_id: int, center: bool = True) -> bool:
        """Select detection ``source_id``: table row, marker highlight, cutouts; centre the view."""
        if self.sources is None:
            return False
        row = self.sources.index_of(source_id)
        if row is None:
            return False
        self._select_row(row, center=center)
        return True

    # -- data ----------------------------------------------------------------------------
    def load(self, loader: Loader) -> Job:
        """Run ``loader`` in a job (progress bar, cancel); its result goes to set_result.

        A load replaces a running load and cancels rescoring (see ``qt_jobs.POLICIES``)."""
        frames = self.state.frames

        def work(job: Job) -> tuple:
            result = loader(progress=job.report, cancel=job.token)
            job.token.check()
            images = {n: getattr(result, n, None) for n in vs.FRAMES}
            return result, vs.prepare_display(images, frames, job.report)

        job = Job("load", work, "loading")
        job.succeeded.connect(lambda res: self.set_result(*res))
        job.failed.connect(self._load_error)
        job.cancelled.connect(lambda: self.statusBar().showMessage("loading cancelled"))
        return self.jobs.run(job)

    def _load_error(self, exc: BaseException) -> None:
        msg = error_text(exc)
        self.show_error("Could not load the data", msg)
        self.load_failed.emit(msg)

    def set_result(self, result: Any, display: dict | None = None) -> None:
        """Show a pipeline result (science/template/difference ImageData, detections, missing).

        ``display``: prepared display copies and levels (``viewstate.prepare_display``).
        """
        self.jobs.data_changed()  # scores computed for the data shown until now are dropped
        self.result = result
        self.images = {
            name: getattr(result, name, None) for name in ("science", "template", "difference")
        }
        self.frames.set_images(self.images, display)
        dets = getattr(result, "detections", None)
        self.sources = vs.SourceSet.from_table(dets) if dets is not None else None
        sel = self.state.selected_id
        if sel is not None and (self.sources is None or self.sources.index_of(sel) is None):
            self.state.selected_id = None  # another visit: the old selection is not there
        missing_xy = _missing_xy(getattr(result, "missing", None), self.images.get("science"))
        if self.sources is not None:
            self.table_model.set_sources(self.sources)
            self.sources.connect(self._on_sources)
            self.frames.set_sources(self.sources, missing_xy)
            self.plots.set_sources(self.sources)
            self.table.fit_columns(self.sources)
            if self.state.hide_scores:  # the model reset showed every column again
                self._apply_hide_scores(True)
        self._build_mask_checks()
        sci = self.images.get("science")
        if sci is not None and getattr(sci, "path", None):
            self.setWindowTitle(f"diascan — {Path(sci.path).name}")
        pending, self.pending_selection = self.pending_selection, None
        if pending is not None and self.sources is not None:
            row = self.sources.index_of(pending)
            if row is not None:  # a session's saved selection
                self._select_row(row, center=True)
        if self.sources is not None and self.state.selected_id is None:
            targets = np.flatnonzero(self.sources.status == "target")
            if targets.size:  # start on the known transient
                self._select_row(int(targets[0]), center=False)
        self.statusBar().showMessage(
            f"{len(self.sources) if self.sources is not None else 0} detections, "
            f"{len(missing_xy)} catalog rows unmatched",
            10000,
        )
        self.data_loaded.emit()

    def _build_mask_checks(self) -> None:
        for cb in self.mask_checks.values():
            cb.setParent(None)
            cb.deleteLater()
        self.mask_checks = {}
        planes: dict[str, int] = {}
        for img in self.images.values():
            if img is not None:
                planes.update(img.mask_planes)
        for name in sorted(planes, key=planes.get):
            cb = QCheckBox(name)
            col = MASK_COLORS.get(name, (255, 0, 255))
            cb.setStyleSheet(f"QCheckBox {{ color: rgb{col}; }}")
            cb.setChecked(name in self.state.mask_planes_on)
            cb.toggled.connect(lambda on, n=name: self.state.toggle_mask_plane(n, on))
            self.mask_layout.insertWidget(self.mask_layout.count() - 1, cb)
            self.mask_checks[name] = cb

    # -- models and rescoring --------------------------------------------------------------
    def set_models(self, specs: dict[str, Any], current: str | None = None) -> None:
        """Fill the model switcher: name -> spec (path for ``load_model``, or a loaded model)."""
        self.model_specs = dict(specs)
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        self.model_combo.addItems(list(specs))
        if current in specs:
            self.model_combo.setCurrentText(current)
        self.model_combo.blockSignals(False)
        name = self.model_combo.currentText() or None
        self.model = None
        self.state.model_name = name

    def _model_changed(self, _index: int) -> None:
        name = self.model_combo.currentText() or None
        self.model = None
        self.state.model_name = name
        loading = self.jobs.busy("load")  # then the loaded data get the new model
        if name is not None and (loading or self.sources is not None and len(self.sources)):
            self.rescore_all()

    def _resolve_model(self):
        if self.model is not None:
            return self.model
        spec = self.model_specs.get(self.state.model_name)
        if spec is None:
            raise RuntimeError("no model selected")
        if hasattr(spec, "score_stamps"):
            return spec
        from diascan.models import load_model

        return load_model(spec, trust_model_code=self.trust_model_code)

    def rescore_selected(self) -> Job | None:
        """Rescore the selected source in the background."""
        if self.sources is None or self.state.selected_id is None:
            self.statusBar().showMessage("select a source first", 3000)
            return None
        return self.rescore([self.sources.index_of(self.state.selected_id)])

    def rescore_all(self) -> Job | None:
        """Rescore every detection in the background, streaming results per batch.

        During a load it waits and then rescores the loaded data."""
        if self.sources is None and not self.jobs.busy("load"):
            return None
        return self.rescore(None)

    def rescore(self, indices=None, batch_size: int = 64) -> Job | None:
        """Ask for a rescoring job on rows ``indices`` (``None``: all rows).

        A running load is never cancelled: the request waits for it and runs on the loaded data
        (rows remembered by source id). A running rescore is cancelled and replaced by this one
        (``qt_jobs.POLICIES``). Returns the job if it started now, else None (waiting/refused).
        """
        if self.sources is None and not self.jobs.busy("load"):
            return None
        if not self.model_specs and self.model is None:
            self.show_error("No model", "no model package found; see `diascan models`")
            return None
        ids = None if indices is None or self.sources is None else [
            int(self.sources.ids[i]) for i in indices]
        job = self.jobs.request("rescore", lambda: self._rescore_job(ids, batch_size))
        if job is None and self.jobs.busy("load"):
            self.statusBar().showMessage("rescoring starts when loading has finished", 5000)
        return job

    def _rescore_job(self, ids: list[int] | None, batch_size: int) -> Job | None:
        """The rescoring job for source ``ids`` (None: all) of the sources shown now."""
        sources, images = self.sources, dict(self.images)
        if sources is None:
            return None
        if ids is None:
            rows = np.arange(len(sources))
        else:
            found = [sources.index_of(i) for i in ids]
            rows = np.array([r for r in found if r is not None], dtype=int)
            if rows.size == 0:
                return None
        holder: dict[str, Any] = {}

        def work(job: Job) -> tuple[np.ndarray, np.ndarray]:
            from diascan.models.scoring import score_sources

            model = holder["model"] = self._resolve_model()
            job.report("score", 0.0, f"scoring {rows.size} sources")
            scores = score_sources(
                model, {"x": sources.x[rows], "y": sources.y[rows]}, images["difference"],
                images["science"], images["template"], batch_size=batch_size,
                progress=job.report, cancel=job.token,
                on_batch=lambda pos, sc: job.emit((rows[pos], sc)),
            )
            return rows, scores

        job = Job("rescore", work, "scoring")
        # Batches go to the sources they were computed for (never to newly loaded ones).
        job.partial.connect(lambda batch: self._batch_done(sources, *batch))
        job.succeeded.connect(lambda res: self._rescore_finished(res, holder.get("model")))
        job.failed.connect(self._rescore_error)
        job.cancelled.connect(self._rescore_cancelled)
        return job

    def _batch_done(self, sources: vs.SourceSet, indices, scores) -> None:
        if sources is self.sources:
            sources.set_scores(indices, scores)

    def _rescore_finished(self, res, model) -> None:
        if model is not None:
            self.model = model
        self._refresh_timer.stop()
        self._refresh_scores()
        n = len(res[0])
        self.statusBar().showMessage(f"rescored {n} source(s) with {self.state.model_name}", 5000)
        self.rescore_done.emit(res)

    def _rescore_error(self, exc: BaseException) -> None:
        self.show_error("Rescoring failed", error_text(exc))
        self.rescore_done.emit(None)

    def _rescore_cancelled(self) -> None:
        self.statusBar().showMessage("rescoring cancelled", 3000)
        self.rescore_done.emit(None)

    def _on_sources(self, kind: str, indices) -> None:
        # Batches can arrive faster than a repaint: coalesce marker/plot/filter refreshes
        # (napari's qthrottled idea) so the GUI thread does one rebuild per ~50 ms at most.
        if kind == "scores" and not self._refresh_timer.isActive():
            self._refresh_timer.start()
        elif kind == "labels":
            if self.state.hidden_labels:  # markers of hidden labels go: full rebuild
                if not self._refresh_timer.isActive():
                    self._refresh_timer.start()
            else:  # only the label glyphs change (cheap, shown at once)
                self.frames.refresh_labels()

    def _refresh_scores(self) -> None:
        if self.sources is None:
            return
        self.frames.refresh_markers()
        self.plots.refresh()
        if self.state.threshold is not None:
            self.proxy.refilter()
        if self.state.selected_id is not None:
            self._show_cutouts()

    # -- jobs ----------------------------------------------------------------------------
    def _job_started(self, job: Job) -> None:
        """The progress bar and Cancel button follow the job started last (not the quiet
        background ones)."""
        if in_background(job):
            return
        self.shown_job = job
        self.progress.setValue(0)
        self.progress.setFormat(f"{job.title} %p%")
        self.progress.setVisible(True)
        self.cancel_btn.setVisible(True)
        job.progress.connect(lambda *a, j=job: self._progress(j, *a))

    def _progress(self, job: Job, stage: str, fraction: float, message: str) -> None:
        if job is not self.shown_job:
            return
        self.progress.setFormat(f"{stage} %p%")
        self.progress.setValue(int(1000 * max(0.0, min(1.0, fraction))))
        if message:
            self.statusBar().showMessage(f"{stage}: {message}")

    def _job_finished(self, job: Job) -> None:
        if job is self.shown_job:
            self.shown_job = None
            self.progress.setVisible(False)
            self.cancel_btn.setVisible(False)

    def cancel_work(self) -> None:
        """Cancel the running jobs (loading and rescoring) and any waiting request."""
        self.jobs.cancel_all()

    def wait_idle(self, msecs: int = 30000) -> None:
        """Block until the job threads are idle (shutdown and tests)."""
        self.jobs.wait_idle(msecs)

    # -- selection -----------------------------------------------------------------------
    def _select_row_and_center(self, row: int) -> None:
        self._select_row(row, center=True)

    def _select_row(self, row: int, center: bool = True) -> None:
        src = self.sources
        if src is None:
            return
        sid = int(src.ids[row])
        self.state.selected_id = sid
        self.table.select_source_row(row)
        if center:
            self.frames.center_on(float(src.x[row]), float(src.y[row]))

    def _table_row_changed(self, current, _previous) -> None:
        if not current.isValid() or self.sources is None:
            return
        if self.proxy.filtering or self.table_model.updating:
            return  # Qt moved the current row because filtering hid it: not a user choice
        row = self.proxy.mapToSource(current).row()
        sid = int(self.sources.ids[row])
        if sid != self.state.selected_id:
            self.state.selected_id = sid
            self.frames.center_on(float(self.sources.x[row]), float(self.sources.y[row]))

    def _on_state(self, name: str, value) -> None:
        if name == "selected_id" and value is not None:
            self._show_cutouts()
            self.selection_changed.emit(int(value))
        elif name == "single" and self.single_check.isChecked() != bool(value):
            self.single_check.setChecked(bool(value))
        elif name == "mask_planes_on":  # state restored from a session: mirror in the widgets
            for plane, cb in self.mask_checks.items():
                if cb.isChecked() != (plane in value):
                    cb.blockSignals(True)
                    cb.setChecked(plane in value)
                    cb.blockSignals(False)
        elif name == "mask_alpha" and self.alpha_slider.value() != round(value * 100):
            self.alpha_slider.blockSignals(True)
            self.alpha_slider.setValue(round(value * 100))
            self.alpha_slider.blockSignals(False)
        elif name == "hide_scores":
            self._apply_hide_scores(bool(value))
        elif name == "threshold" and self.threshold_check.isChecked() != (value is not None):
            self.threshold_check.blockSignals(True)
            self.threshold_check.setChecked(value is not None)
            self.threshold_check.blockSignals(False)

    def _apply_hide_scores(self, on: bool) -> None:
        """Hide (or show) the model's scores everywhere: table, markers, cutouts, plots."""
        for col in ("score", "reliability"):
            self.table.setColumnHidden(COL[col], on)
        header = self.table.horizontalHeader()
        if on and header.sortIndicatorSection() in (COL["score"], COL["reliability"]):
            # rows sorted by score would still give the model's ranking away (and n / p walk
            # the table's order)
            self.table.sortByColumn(COL["id"], Qt.SortOrder.AscendingOrder)
        self.side_tabs.setTabVisible(self.side_tabs.indexOf(self.plots), not on)
        self.cutouts.set_hide_scores(on)  # marker tooltips and plots read the state themselves

    def _show_cutouts(self) -> None:
        row = self.sources.index_of(self.state.selected_id) if self.sources is not None else None
        if row is None or any(self.images.get(k) is None for k in vs.FRAMES):
            return
        size = int(getattr(self.model, "stamp_size", 51))
        self.cutouts.show_source(self.sources, row, self.images, size)

    def goto(self, text: str) -> bool:
        """Go to a source by id or by position (degrees or sexagesimal: the nearest source);
        the status bar says what was found, in words."""
        if self.sources is None:
            return False
        from diascan.goto import locate_source

        answer = locate_source(text, self.sources.ids, self.sources.ra, self.sources.dec)
        self.statusBar().showMessage(answer.message, 8000)
        if answer.row is None:
            return False
        self._select_row(answer.row, center=True)
        return True

    def toggle_single(self) -> None:
        self.state.single = not self.state.single

    def show_cheat_sheet(self) -> None:
        """``?``: every action and its keys."""
        from diascan.qt.qt_prefs import QtCheatSheet

        self.cheat_sheet = QtCheatSheet(self.actions, self)
        self.cheat_sheet.show()

    def show_key_prefs(self) -> None:
        """Session > Key bindings…: remap any action's keys (saved on OK)."""
        from diascan.qt.qt_prefs import QtKeyPrefsDialog

        dlg = QtKeyPrefsDialog(self.actions.keymap, parent=self)
        self.key_prefs = dlg
        dlg.accepted.connect(lambda: self.actions.set_keymap(dlg.keymap))
        dlg.open()

    # -- display controls ----------------------------------------------------------------
    def _sync_frame_controls(self) -> None:
        fs = self.state.frames[self.frame_combo.currentText()]
        for combo, value in (
            (self.stretch_combo, fs.stretch),
            (self.limits_combo, fs.limits),
            (self.cmap_combo, fs.colormap),
        ):
            combo.blockSignals(True)
            combo.setCurrentText(value)
            combo.blockSignals(False)
        self.symmetric_check.blockSignals(True)
        self.symmetric_check.setChecked(fs.symmetric)
        self.symmetric_check.blockSignals(False)

    def _set_frame(self, attr: str, value) -> None:
        setattr(self.state.frames[self.frame_combo.currentText()], attr, value)

    def _update_cursor(self, x: float, y: float) -> None:
        self.cursor_label.setText(self.cursor_text(x, y))

    def cursor_text(self, x: float, y: float) -> str:
        """Status-bar readout at parent pixel (x, y): x, y, RA/Dec, values, mask planes."""
        xi, yi = int(np.floor(x + 0.5)), int(np.floor(y + 0.5))
        parts = [f"x {xi}  y {yi}"]
        sci = self.images.get("science")
        if sci is not None and sci.has_sky:
            ra, dec = sci.wcs.pixel_to_world_values(x - sci.x0, y - sci.y0)
            parts.append(f"RA {float(ra):.6f}  Dec {float(dec):.6f}")
        masks: list[str] = []  # per frame: the frames' masks differ (template, difference)
        for name in vs.FRAMES:
            img = self.images.get(name)
            if img is None:
                continue
            r, c = yi - img.y0, xi - img.x0
            if 0 <= r < img.shape[0] and 0 <= c < img.shape[1]:
                short = SHORT_NAMES[name]
                parts.append(f"{short} {float(img.image[r, c]):.4g}")
                planes = vs.planes_set(int(img.mask[r, c]), img.mask_planes)
                if planes:
                    masks.append(f"{short}: {','.join(planes)}")
        if masks:
            parts.append("mask " + "  ".join(masks))
        return "   ".join(parts)

    # -- errors, files -------------------------------------------------------------------
    def show_error(self, title: str, message: str, warning: bool = False) -> None:
        """Show an error (or a ``warning``) in a non-blocking dialog, the status bar and the log."""
        (log.warning if warning else log.error)("%s: %s", title, message)
        self.last_error = message
        self.statusBar().showMessage(f"{title}: {message}", 10000)
        if self.show_errors_as_dialogs:
            icon = QMessageBox.Icon.Warning if warning else QMessageBox.Icon.Critical
            box = QMessageBox(icon, title, message, parent=self)
            box.setModal(False)
            box.finished.connect(lambda _=0, b=box: self._dialogs.remove(b))
            self._dialogs.append(box)
            box.show()
        self.error_shown.emit(message)

    def open_dialog(self) -> None:
        """File > Open: pick science, difference, template(s) and catalog files."""
        from diascan.errors import InputError
        from diascan.qt.qt_open import QtOpenDialog

        dlg = QtOpenDialog(self)
        if dlg.exec():
            try:
                self.open_files(dlg.files())
            except InputError as exc:
                self.show_error("Cannot open", str(exc))

    def open_files(self, files: dict[str, Any]) -> None:
        """Load user files (keys: science, difference, template, template_patches, catalog)."""
        from diascan.inputs import files_loader

        self.load(files_loader(files))  # the result carries ``input_files`` (sessions)

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        from diascan.inputs import guess_roles

        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        files = guess_roles(paths)
        if files is None:
            self.show_error(
                "Cannot open dropped files",
                "drop a folder with science/difference/template FITS and a catalog, or those files",
            )
            return
        self.open_files(files)

    def closeEvent(self, event) -> None:  # noqa: N802
        if self.label_controller is not None:
            self.label_controller.close()  # final save (selection and view included)
        self.cancel_work()
        self.wait_idle(10000)
        for box in list(self._dialogs):
            box.close()
        super().closeEvent(event)


def _missing_xy(missing: Any, science: Any) -> np.ndarray:
    """Parent-pixel positions of catalog rows no detection matched."""
    if missing is None or len(missing) == 0:
        return np.empty((0, 2))
    cols = missing.colnames
    if "x" in cols and "y" in cols:
        return np.column_stack([np.asarray(missing["x"], float), np.asarray(missing["y"], float)])
    if science is not None and science.has_sky and "ra" in cols:
        px, py = science.wcs.world_to_pixel_values(
            np.asarray(missing["ra"], float), np.asarray(missing["dec"], float)
        )
        return np.column_stack([px + science.x0, py + science.y0])
    return np.empty((0, 2))

