"""The main window: frames, source table, cutouts, plots, controls, workers.

Hooks for the session controller: :attr:`QtMainWindow.table_model`, :meth:`selection_model`,
:meth:`select_source`, :meth:`source_ids`, :meth:`displayed_source_ids` (the table's rows in
its order: the controller's triage moves through them), the ``selection_changed(int)`` signal,
:attr:`actions` (every registered action as a QAction, in its menu: the controller binds the
labelling and session ones), the right dock area (:meth:`add_dock`), :attr:`label_controller`
(closed with the window: its ``close()`` returns ``False`` to keep the window open when the
session cannot be saved and the user cancels), :attr:`banners` (over the frames: the pipeline's
warnings, "labels not saved"), :meth:`show_error` and ``state.hide_scores`` ("hide model scores
while labelling": table, markers, cutouts, plots; the label controller sets it).

Keys come from the action registry (:mod:`diascan.actions`) and the user's key file. Blink is
``]`` (forward) and ``[`` (backward): Imviz uses B / Shift+B, but B labels a source bogus here;
Return rescores only while the table has focus. Blinking while the three frames are side by
side switches to the single-frame view, keeping the focus where it was, and centres the
selected source.

Two scanning views share the window's top half: the linked frames and the gallery of triplets
(View > Gallery, ``G``; :class:`~diascan.qt.qt_gallery.QtGallery` over a
:class:`~diascan.gallery.GalleryState`). The gallery's tiles follow the table's filter and sort;
its selection and the window's are one; Enter or a double click opens the tile in the frames.
The filter box takes expressions (:mod:`diascan.filter_expressions`) over the table's columns
(:meth:`~diascan.viewstate.SourceSet.filter_columns`): one mask for the table, the markers and the gallery. A right-click on
a source (frames, table, gallery) opens the Source menu (copy the position, open it in other
archives) with the labelling actions.

Workers: a load is never cancelled by a rescore request; the request waits for the load and then
runs on the loaded data. A rescore request during a rescore replaces it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PyQt6.QtCore import QItemSelectionModel, QPoint, Qt, QTimer, QUrl, pyqtSignal
from PyQt6.QtGui import QDesktopServices, QGuiApplication
from PyQt6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDockWidget,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSlider,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from diascan import links
from diascan import viewstate as vs
from diascan.display import plane_color, plane_list
from diascan.filter_expressions import CompiledFilter, FilterError, compile_filter
from diascan.gallery import GALLERY_ACTIONS, GalleryState
from diascan.io.info import layout_summary
from diascan.io.mask_planes import spellings
from diascan.qt import qt_alerts
from diascan.qt.qt_actions import QtActions
from diascan.qt.qt_banner import install_banners
from diascan.qt.qt_bind import Binding, bind_check, bind_combo, bind_plane, bind_slider
from diascan.qt.qt_cutouts import QtCutouts
from diascan.qt.qt_frames import MASK_COLORS, ZOOM_STEP, QtFrames, adopt_menus
from diascan.qt.qt_gallery import QtGallery
from diascan.qt.qt_jobs import Job, QtJobs, error_text, in_background
from diascan.qt.qt_plots import QtPlots
from diascan.qt.qt_table import QtSourceFilter, QtSourceTable, QtSourceTableModel
from diascan.qt.qt_train import install_learning
from diascan.session.keymap import KeyMap

log = logging.getLogger(__name__)

#: A loader runs in a job: ``loader(progress=..., cancel=...) -> result``.
Loader = Callable[..., Any]

#: Short frame names of the status-bar readout.
SHORT_NAMES = {"science": "sci", "template": "tmpl", "difference": "diff"}

#: The window's size where the screen has room, and the share of the screen it takes at most.
PREFERRED_SIZE = (1500, 950)
SCREEN_SHARE = 0.9
#: In a window less high than this the docks share the height as tabs.
COMPACT_HEIGHT = 800
#: The progress bar follows a job at most this often (seconds; its start and end always).
PROGRESS_INTERVAL = 0.1


def window_size(available: tuple[int, int], preferred: tuple[int, int] = PREFERRED_SIZE,
                share: float = SCREEN_SHARE) -> tuple[int, int]:
    """The window's opening size on a screen whose available area is ``available`` (width,
    height): ``preferred``, but at most ``share`` of the screen either way."""
    return (min(preferred[0], int(available[0] * share)),
            min(preferred[1], int(available[1] * share)))



class QtMainWindow(QMainWindow):
    """diascan's viewer window. ``set_result`` shows a pipeline result; ``load`` makes one."""

    selection_changed = pyqtSignal(int)
    #: A visit's sources are shown (``True``: the load is done; ``False``: a progressive
    #: load's detections, before its template and result, ``qt_loading``).
    sources_shown = pyqtSignal(bool)
    #: A load is done: its result is shown (after ``sources_shown(True)``).
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
        self._fit_to_screen()
        self.setAcceptDrops(True)
        self.state = state or vs.ViewerState()
        self.sources: vs.SourceSet | None = None
        self.images: dict[str, Any] = {}
        self.result: Any = None
        #: The alerts shown (an AlertCollection: the sources are alerts, no images), or None.
        self.alerts: Any = None
        #: The mask planes dock was hidden because alerts were shown (shown with a visit).
        self.mask_dock_hidden_for_alerts = False
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
        self._progress_shown = 0.0  # when the progress bar last changed (time.monotonic)
        self.last_error: str | None = None
        #: The session's QtLabelController, when one is attached (closed in closeEvent).
        self.label_controller: Any = None
        #: The QtSessionLink that owns the controller, when the application made one.
        self.session_link: Any = None
        #: Source to select when the next result arrives (a session's saved selection);
        #: without it the known transient (status 'target') is selected.
        self.pending_selection: int | None = None
        #: The progressive load showing its products (``qt_loading.QtProgressiveLoad``) or None.
        self.loading: Any = None
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
        #: The gallery of triplets (View > Gallery) and what it shows.
        self.gallery_state = GalleryState()
        self.gallery = QtGallery(self.gallery_state)
        self.gallery.decode_ahead = lambda rows: qt_alerts.decode_ahead(self, rows)
        self.gallery.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.gallery.set_frames(self.state.frames)
        #: The filter box's checked expression (None: no filter) and the rows it keeps.
        self.row_filter: CompiledFilter | None = None
        #: Colours of statuses and labels everywhere (View > Colour-blind-safe colours).
        self.palette_name = "classic"
        self._order_timer = QTimer(self)
        self._order_timer.setSingleShot(True)
        self._order_timer.setInterval(0)
        self._order_timer.timeout.connect(self.sync_gallery_order)
        self._build_layout()
        #: Banners over the frames: the pipeline's warnings, "labels not saved".
        self.banners = install_banners(self)
        self._build_controls()
        self._build_menus()
        self._build_statusbar()
        self._connect()
        adopt_menus(self)
        # a clash in the user's key file is said, not dropped (once the caller set up the window)
        QTimer.singleShot(0, self.actions.report_notes)

    # -- layout --------------------------------------------------------------------------
    def _fit_to_screen(self) -> None:
        """Open at most SCREEN_SHARE of the available screen (1366 x 768 laptops too)."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is None:
            self.resize(*PREFERRED_SIZE)
            return
        area = screen.availableGeometry()
        w, h = window_size((area.width(), area.height()))
        self.resize(w, h)
        self.move(area.x() + (area.width() - w) // 2, area.y() + (area.height() - h) // 2)

    def _build_layout(self) -> None:
        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText('filter: snr > 10, status == "matched", '
                                            "label == none…")
        self.filter_edit.setToolTip(
            "Show only the rows that pass: comparisons of the table's columns (== != < <= > "
            ">=, in), joined by and / or / not; e.g. score < 0.5 and label == none. A plain "
            "id or value (matched, real) works too. The markers and the gallery follow.")
        self.filter_error = QLabel("")
        self.filter_error.setStyleSheet("color: #d33")
        self.filter_error.setWordWrap(True)
        self.filter_error.setVisible(False)
        self.goto_edit = QLineEdit()
        self.goto_edit.setPlaceholderText("go to id or RA Dec (deg or hh:mm:ss dd:mm:ss)")
        top = QHBoxLayout()
        top.addWidget(self.filter_edit, 3)
        top.addWidget(self.goto_edit, 2)
        table_box = QWidget()
        tl = QVBoxLayout(table_box)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addLayout(top)
        tl.addWidget(self.filter_error)
        tl.addWidget(self.table)
        self.side_tabs = QTabWidget()
        self.side_tabs.addTab(self.cutouts, "Cutouts")
        self.side_tabs.addTab(self.plots, "Plots")
        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(table_box)
        bottom.addWidget(self.side_tabs)
        bottom.setSizes([900, 500])
        #: The frames or the gallery (View > Gallery), above the table.
        self.view_stack = QStackedWidget()
        self.view_stack.addWidget(self.frames)
        self.view_stack.addWidget(self.gallery)
        #: In the frames' place while alerts are shown (they have no images).
        self.no_frames = qt_alerts.no_frames_label()
        self.view_stack.addWidget(self.no_frames)
        main = QSplitter(Qt.Orientation.Vertical)
        main.addWidget(self.view_stack)
        main.addWidget(bottom)
        main.setStretchFactor(0, 3)
        main.setStretchFactor(1, 2)
        main.setSizes([560, 360])
        main.setChildrenCollapsible(False)
        self.main_split = main
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
        self.toolbars = (bar, bar2)

        # Mask planes dock.
        self.mask_box = QWidget()
        self.mask_layout = QVBoxLayout(self.mask_box)
        self.mask_layout.addWidget(QLabel("transparency"))
        self.alpha_slider = QSlider(Qt.Orientation.Horizontal)
        self.alpha_slider.setRange(0, 100)
        self.mask_layout.addWidget(self.alpha_slider)
        self.mask_checks: dict[str, QCheckBox] = {}
        self.mask_layout.addStretch(1)
        scroll = QScrollArea()  # a file with many planes must not make the window taller
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(self.mask_box)
        self.mask_dock = self.add_dock("Mask planes", scroll)

    def _build_menus(self) -> None:
        """Menus and keys from the action registry; the window binds the actions it does."""
        self.actions = QtActions(self, self._keymap)
        acts = self.actions
        self.file_menu = acts.menus["File"]
        self.view_menu = acts.menus["View"]
        self.session_menu = acts.menus["Session"]
        self.gallery_menu = acts.menus["Gallery"]
        self.source_menu = acts.menus["Source"]
        gallery = self.gallery.actions()
        for action_id, slot in (
            ("open_images", self.open_dialog),
            ("open_alerts", lambda: qt_alerts.open_alerts_dialog(self)),
            ("quit", self.close),
            ("blink_forward", lambda: self.blink(1)),
            ("blink_backward", lambda: self.blink(-1)),
            ("toggle_single", self.toggle_single),
            ("goto", self.goto_edit.setFocus),
            ("gallery", self.show_gallery),
            ("fit", self.frames.fit),
            ("zoom_in", lambda: self.frames.zoom(ZOOM_STEP)),
            ("zoom_out", lambda: self.frames.zoom(1 / ZOOM_STEP)),
            ("zoom_source", self.frames.zoom_to_selected),
            ("zoom_source_scale", self.ask_source_scale),
            ("markers", self.frames.set_markers_visible),
            ("legend", self.frames.set_legend_visible),
            ("palette", lambda on: self.set_palette("okabe-ito" if on else "classic")),
            ("stamps_follow_frames", lambda on: setattr(self.gallery_state, "follow_frames", on)),
            ("larger_stamps", self.gallery_state.larger_stamps),
            ("smaller_stamps", self.gallery_state.smaller_stamps),
            ("copy_position", self.copy_position),
            ("open_legacy_survey", lambda: self.open_archive(links.legacy_survey_url)),
            ("open_simbad", lambda: self.open_archive(links.simbad_url)),
            ("open_tns", lambda: self.open_archive(links.tns_url)),
            ("rescore_selected", self.rescore_selected),
            ("rescore_all", self.rescore_all),
            ("cheat_sheet", self.show_cheat_sheet),
            ("key_bindings", self.show_key_prefs),
            ("prefetch_settings", self.show_prefetch_settings),
            *((action_id, gallery[action_id]) for action_id in GALLERY_ACTIONS),
            ("file_info", self.show_file_info),
        ):
            acts.bind(action_id, slot)
        acts.attach("rescore_selected", self.table)  # Return rescores in the table only
        for action_id in GALLERY_ACTIONS:  # while the gallery has the focus
            acts.attach(action_id, self.gallery)
        acts.set_live("gallery", False)  # the frames are shown first
        self.legend_action = acts["legend"]
        self.legend_action.setChecked(True)
        acts["markers"].setChecked(True)
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
        others = [d for d in self.findChildren(QDockWidget)
                  if d is not dock and self.dockWidgetArea(d) == area and not d.isFloating()]
        if others and self.compact():  # a short screen: docks share the height as tabs
            self.tabifyDockWidget(others[0], dock)
            QTimer.singleShot(0, dock.raise_)  # the newest (the Labels) in front
        if self.isVisible():  # a dock added after show() stays hidden otherwise
            dock.show()
        return dock

    def compact(self) -> bool:
        """True in a short window (under COMPACT_HEIGHT pixels: what a 768-line laptop gives):
        docks added then share the height as tabs."""
        return self.height() < COMPACT_HEIGHT

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        """The Model toolbar goes on a second row when both do not fit in one (its rescore
        buttons must never hide behind the toolbar's overflow arrow)."""
        super().resizeEvent(event)
        first, second = self.toolbars
        need = first.sizeHint().width() + second.sizeHint().width() + 16
        broken = self.toolBarBreak(second)
        if need > self.width() and not broken:
            self.insertToolBarBreak(second)
        elif need <= self.width() and broken:
            self.removeToolBarBreak(second)

    def _connect(self) -> None:
        self.frames.source_clicked.connect(self._select_row_and_center)
        self.frames.source_menu_requested.connect(self._source_menu)
        self.plots.source_clicked.connect(self._select_row_and_center)
        self.frames.cursor_moved.connect(self._update_cursor)
        self.table.selectionModel().currentRowChanged.connect(self._table_row_changed)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._table_menu)
        self.filter_edit.textChanged.connect(self.set_filter)
        # the gallery's tiles: the table's rows in its order; one selection; labels by id
        for signal in (self.proxy.layoutChanged, self.proxy.rowsInserted,
                       self.proxy.rowsRemoved, self.proxy.modelReset):
            signal.connect(lambda *_: self._order_timer.start())
        self.gallery_state.events.current.connect(self._gallery_selected)
        self.gallery_state.open_requested.connect(self.open_in_frames)
        self.gallery_state.label_requested.connect(self._gallery_label)
        self.gallery.menu_requested.connect(self._gallery_menu)
        self.gallery.display_changed.connect(self.cutouts.set_display)
        self.gallery_state.events.stamp_size.connect(self.cutouts.set_stamp_size)
        self.gallery_state.events.follow_frames.connect(self._follow_frames_changed)
        self.goto_edit.returnPressed.connect(lambda: self.goto(self.goto_edit.text()))
        self.blink_btn.clicked.connect(lambda: self.state.blink(1))
        self.blink_back_btn.clicked.connect(lambda: self.state.blink(-1))
        self.rescore_sel_btn.clicked.connect(self.rescore_selected)
        self.rescore_all_btn.clicked.connect(self.rescore_all)
        self.model_combo.currentIndexChanged.connect(self._model_changed)
        self._bind_state()

    def _bind_state(self) -> None:
        """Controls bound to the state's fields (``qt_bind``); per-field listeners."""
        state = self.state
        # the stretch/limits/colormap/symmetric controls show the frame chosen beside them
        frame = state.frames[self.frame_combo.currentText()]
        self.frame_bindings = [
            bind_combo(self.stretch_combo, frame, "stretch"),
            bind_combo(self.limits_combo, frame, "limits"),
            bind_combo(self.cmap_combo, frame, "colormap"),
            bind_check(self.symmetric_check, frame, "symmetric"),
        ]
        self.frame_combo.currentTextChanged.connect(
            lambda name: [b.retarget(state.frames[name]) for b in self.frame_bindings])
        self.bindings = [
            bind_check(self.single_check, state, "single"),
            bind_slider(self.alpha_slider, state, "mask_alpha", 100),
            # ticking the box turns the threshold on at the plot's line (off: None)
            Binding(state, "threshold", self.threshold_check.setChecked,
                    self.threshold_check.toggled, to_widget=lambda v: v is not None,
                    to_state=lambda on, _old: float(self.plots.line.value()) if on else None,
                    widget=self.threshold_check),
        ]
        state.events.selected_id.connect(self._selected_changed)
        state.events.hide_scores.connect(self._apply_hide_scores)
        for fs in state.frames.values():  # tiles that follow the frames' stretch
            for field in ("stretch", "colormap", "levels", "limits", "symmetric"):
                fs.events[field].connect(self.gallery.frames_changed)

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

    def load_progressive(self, start: Callable[..., Any], keep_rows: Any = ()) -> Job:
        """Load a visit progressively (:mod:`diascan.qt.qt_loading`): frames, catalog markers,
        template and detections are shown as each is ready; ``start`` starts the pipeline
        (:func:`diascan.inputs.files_starter`); ``keep_rows``: see :meth:`set_result`.
        Returns the load job."""
        from diascan.qt.qt_loading import load_progressive

        return load_progressive(self, start, keep_rows).job

    def _load_error(self, exc: BaseException) -> None:
        msg = error_text(exc)
        self.show_error("Could not load the data", msg)
        self.load_failed.emit(msg)

    def set_result(self, result: Any, display: dict | None = None, fit: bool = True,
                   keep_rows: Any = (), final: bool = True) -> None:
        """Show a pipeline result (science/template/difference ImageData, detections, missing).

        ``display``: prepared display copies and levels (``viewstate.prepare_display``);
        ``fit=False`` keeps the view (the frames of a progressive load are shown already);
        frames already shown (the same ImageData) are not uploaded again; ``keep_rows``:
        catalog rows no detection matched shown as sources (status 'missing',
        ``viewstate.keep_missing``): the ones the user labelled. ``final=False``: a
        progressive load's detections (no template or scores yet): ``sources_shown(False)``
        and no ``data_loaded``.
        """
        self.jobs.data_changed()  # scores computed for the data shown until now are dropped
        self.result = result
        self.alerts = getattr(result, "alerts", None)  # alerts: no images (qt_alerts)
        self.images = {
            name: getattr(result, name, None) for name in ("science", "template", "difference")
        }
        shown = all(self.frames.images.get(n) is self.images[n] for n in vs.FRAMES)
        if self.alerts is None and not shown:
            self.frames.set_images(self.images, display, fit=fit)
        elif self.view_stack.currentWidget() is self.frames:
            self.view_stack.setCurrentWidget(self.no_frames)
        dets = getattr(result, "detections", None)
        missing = getattr(result, "missing", None)
        if dets is not None and self.alerts is None:
            dets, missing = vs.keep_missing(dets, missing, self.images.get("science"), keep_rows)
        meta = getattr(self.images.get("science"), "metadata", None) or {}
        if self.alerts is not None:
            self.sources = vs.SourceSet(dets)
            self.sources.record_columns = tuple(result.record_columns)
        else:
            self.sources = None if dets is None else vs.SourceSet.from_table(
                dets, visit=meta.get("visit"), detector=meta.get("detector"))
        sel = self.state.selected_id
        if sel is not None and (self.sources is None or self.sources.index_of(sel) is None):
            self.state.selected_id = None  # another visit: the old selection is not there
        missing_xy = vs.catalog_xy(missing, self.images.get("science"))
        if self.sources is not None:
            self._compile_filter()  # the filter box's text, over the new sources
            self.proxy.row_mask = self._row_mask()
            self.table.sort_for(self.sources.ids)  # no needless sort of 10,000 alerts
            self.table_model.set_sources(self.sources)
            self.sources.connect(self._on_sources)
            if self.alerts is None:  # the frames keep the last visit's (hidden) with alerts
                self.frames.row_mask = self.proxy.row_mask
                self.frames.set_sources(self.sources, missing_xy)
            self.plots.set_sources(self.sources)
            self.table.fit_columns(self.sources)
        self._build_mask_checks()
        if self.alerts is not None:
            qt_alerts.show_alerts(self, result)
        else:
            self._show_stamps()
            self._show_warnings(getattr(result, "warnings", None) or [])
            if self.view_stack.currentWidget() is self.no_frames:
                self.view_stack.setCurrentWidget(self.frames)
            if self.mask_dock_hidden_for_alerts:
                self.mask_dock.show()
                self.mask_dock_hidden_for_alerts = False
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
            elif self.alerts is not None and len(self.sources):  # the gallery's first tile
                order = self.gallery_state.order
                self._select_row(order[0] if order else 0, center=False)
        if self.alerts is None:
            self.statusBar().showMessage(
                f"{len(self.sources) if self.sources is not None else 0} detections, "
                f"{len(missing_xy)} catalog rows unmatched · {layout_summary(self.images)} "
                "(File > File info…)",
                15000,
            )
        self.sources_shown.emit(final)
        if final:
            self.data_loaded.emit()

    def _show_stamps(self) -> None:
        """One stamp source for the gallery and the stamp dock, over the shown visit."""
        from diascan.visit_stamps import VisitStamps

        stamps = None
        if self.sources is not None and all(self.images.get(n) is not None for n in vs.FRAMES):
            stamps = VisitStamps(self.images, self.sources.x, self.sources.y)
        self.gallery.set_source(stamps, self.sources if stamps is not None else None)
        self.cutouts.set_stamp_source(stamps)
        self.sync_gallery_order()

    def _show_warnings(self, warnings: list[str]) -> None:
        """The pipeline's warnings of the visit shown, in a dismissable banner (the next
        visit's replace them)."""
        if not warnings:
            self.banners.clear("warnings")
            return
        head = ("This visit's inputs make the result meaningless:" if len(warnings) == 1 else
                f"{len(warnings)} problems with this visit's inputs make the result meaningless:")
        self.banners.show_banner("warnings", [head, *(f"• {w}" for w in warnings)])

    def _build_mask_checks(self) -> None:
        """One check box per mask plane, however each image spells it (``SAT`` and a DP2
        file's ``SATURATED`` are one box), coloured as the overlay; its description is the
        tooltip."""
        for cb in self.mask_checks.values():
            # hidden, not unparented: a box added since the event loop last ran has a queued
            # show, which would pop it up as a window of its own, taking the activation (a
            # progressive load shows a visit twice in one go, qt_loading)
            self.mask_layout.removeWidget(cb)
            cb.hide()
            cb.deleteLater()
        self.mask_checks = {}
        for name, desc in plane_list(self.images.get(n) for n in vs.FRAMES):
            cb = QCheckBox(name)
            cb.setStyleSheet(f"QCheckBox {{ color: rgb{plane_color(name, MASK_COLORS)}; }}")
            other = [s for s in spellings(name) if s != name]
            cb.setToolTip(desc + (f" (also called {other[0]})" if other else ""))
            bind_plane(cb, self.state, "mask_planes_on", name)  # lives as long as the box
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
        if self.alerts is not None:
            return qt_alerts.alert_rescore_job(self, rows, batch_size)
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
        self.gallery.refresh_rows(indices)  # the tiles' texts (score, badge)
        if self.row_filter is not None and (
                {"score": "score", "labels": "label"}.get(kind) in self.row_filter.columns):
            self._refresh_timer.start()  # a filter on what changed: rows come and go
        if kind == "columns":  # alert fields decoded: a filter on them passes other rows
            if self.row_filter is not None:
                self._apply_row_mask()
            return
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
        if self.row_filter is not None and self.row_filter.columns & {"score", "label"}:
            self._apply_row_mask()  # rows that now pass the filter, or no longer do
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
        now = time.monotonic()
        if now - self._progress_shown < PROGRESS_INTERVAL and 0.0 < fraction < 1.0:
            return  # each repaint of the bar costs ~2 ms of the GUI thread (10,000 alerts: 160)
        self._progress_shown = now
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

    def _selected_changed(self, value: int | None) -> None:
        if value is not None:
            self._show_cutouts()
            row = self.sources.index_of(value) if self.sources is not None else None
            if row is not None:
                self.gallery_state.select_row(row)  # the gallery follows the window
            self.selection_changed.emit(int(value))

    def _apply_hide_scores(self, on: bool) -> None:
        """Hide (or show) the model's scores everywhere: table, markers, cutouts, plots."""
        self.table.set_hide_scores(on)  # and back to id order if sorted by a score (n / p
        # walk the table's order: it would give the model's ranking away)
        self.side_tabs.setTabVisible(self.side_tabs.indexOf(self.plots), not on)
        self.cutouts.set_hide_scores(on)  # marker tooltips and plots read the state themselves
        self.gallery_state.hide_scores = on

    def _show_cutouts(self) -> None:
        row = self.sources.index_of(self.state.selected_id) if self.sources is not None else None
        if row is not None and self.alerts is not None:  # the alert's own cutouts
            self.cutouts.show_source(self.sources, row, {})
            return
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
        if self.alerts is not None and answer.row is None:  # the alert's own id (candid...)
            own = locate_source(text, np.ma.filled(self.sources.dia_source_id, -1))
            answer = own if own.row is not None else answer
        self.statusBar().showMessage(answer.message, 8000)
        if answer.row is None:
            return False
        self._select_row(answer.row, center=True)
        return True

    def toggle_single(self) -> None:
        self.state.single = not self.state.single

    def blink(self, step: int = 1) -> None:
        """``]`` / ``[``: the next (previous) frame in the single view, centred on the selected
        source (from the gallery: the frames come back first)."""
        if self.gallery_shown():
            self.actions["gallery"].setChecked(False)
        self.state.blink(step)
        row = self.sources.index_of(self.state.selected_id) if (
            self.sources is not None and self.state.selected_id is not None) else None
        if row is not None:
            self.frames.center_on(float(self.sources.x[row]), float(self.sources.y[row]))

    def ask_source_scale(self) -> None:
        """View > Zoom-to-source scale…: screen pixels per image pixel of ``Z``."""
        value, ok = QInputDialog.getDouble(
            self, "Zoom to the source", "screen pixels per image pixel:",
            self.frames.source_scale, 1.0, 64.0, 1)
        if ok:
            self.set_source_scale(value)

    def set_source_scale(self, scale: float) -> None:
        """The zoom of ``Z`` (screen pixels per image pixel)."""
        self.frames.source_scale = float(scale)
        self.statusBar().showMessage(f"Z zooms to the source at {scale:g} screen pixels per "
                                     "image pixel", 5000)

    # -- the gallery ---------------------------------------------------------------------
    def gallery_shown(self) -> bool:
        """True while the gallery (not the frames) is the view on screen."""
        return self.view_stack.currentWidget() is self.gallery

    def show_gallery(self, on: bool = True) -> None:
        """View > Gallery (``G``): the gallery of triplets in place of the frames, or back.

        The actions of the view shown are live (the gallery's while it has the focus, which
        it takes); the selected source stays selected."""
        act = self.actions["gallery"]
        if act.isChecked() != bool(on):
            act.setChecked(bool(on))  # comes back here through the action
            return
        focus = QApplication.focusWidget()
        had_focus = focus is not None and self.view_stack.isAncestorOf(focus)
        frames = self.frames if self.alerts is None else self.no_frames
        self.view_stack.setCurrentWidget(self.gallery if on else frames)
        self.actions.set_live("gallery", on)
        self.actions.set_live("frames", not on)
        if on:
            self.sync_gallery_order()
            self.gallery.setFocus(Qt.FocusReason.OtherFocusReason)
        elif had_focus:  # the focus does not fall into the filter box (typed keys)
            self.frames.setFocus(Qt.FocusReason.OtherFocusReason)

    def sync_gallery_order(self) -> None:
        """The gallery's tiles: the rows the table shows, in its order (filter and sort)."""
        self._order_timer.stop()
        proxy = self.proxy
        n = proxy.rowCount()
        if proxy.sortColumn() < 0 and n == self.table_model.rowCount():
            rows = list(range(n))  # neither sorted nor filtered (10,000 mapToSource: 0.1-0.3 s)
        else:
            rows = [proxy.mapToSource(proxy.index(r, 0)).row() for r in range(n)]
        self.gallery_state.set_order(rows if self.sources is not None else [])
        row = self.sources.index_of(self.state.selected_id) if (
            self.sources is not None and self.state.selected_id is not None) else None
        if row is not None:
            self.gallery_state.select_row(row)

    def _gallery_selected(self, *_args) -> None:
        """The gallery's selection is the window's (no centring: the frames are hidden)."""
        row = self.gallery_state.selected_row
        if row is None or self.sources is None or not self.gallery_shown():
            return
        if int(self.sources.ids[row]) != self.state.selected_id:
            self._select_row(row, center=False)

    def open_in_frames(self, row: int) -> None:
        """Enter / double click on a tile: the frames, centred on that source (zoomed to it
        when the frames showed more than the zoom-to-source view)."""
        if self.sources is None:
            return
        if self.alerts is not None:  # no frames: the tile grows in place instead
            self.gallery_state.enlarged = True
            self.statusBar().showMessage("alerts have no frames: the tile is enlarged", 5000)
            return
        self.show_gallery(False)
        self._select_row(row, center=False)
        x, y = float(self.sources.x[row]), float(self.sources.y[row])
        if self.frames.pixel_size() * self.frames.source_scale > 1.0:
            self.frames.zoom_to(x, y)
        else:
            self.frames.center_on(x, y)

    def _gallery_label(self, row: int, label) -> None:
        """A label asked by the gallery: through the label controller (autosave, undo)."""
        if self.sources is None:
            return
        ctl = self.label_controller
        if ctl is not None and hasattr(ctl, "label_source"):
            ctl.label_source(int(self.sources.ids[row]), label)
        else:
            self.sources.set_label(row, label)

    def _follow_frames_changed(self, on: bool) -> None:
        act = self.actions["stamps_follow_frames"]
        if act.isChecked() != bool(on):
            act.setChecked(bool(on))

    # -- filter box ----------------------------------------------------------------------
    def set_filter(self, text: str) -> bool:
        """Filter the table, the markers and the gallery by the expression ``text`` (the filter
        box); a filter that cannot be used says why next to the box (the last good one stays).
        Returns True when ``text`` was applied."""
        if self.filter_edit.text() != text:
            self.filter_edit.setText(text)  # comes back here
            return self.filter_error.isHidden()
        ok = self._compile_filter()
        if ok:
            self._apply_row_mask()
        return ok

    def _compile_filter(self) -> bool:
        text = self.filter_edit.text()
        if self.sources is None:
            return True
        try:
            self.row_filter = compile_filter(text, self.sources.filter_columns())
        except FilterError as exc:
            self.filter_error.setText(str(exc))
            self.filter_error.setVisible(True)
            self.filter_edit.setStyleSheet("QLineEdit { border: 1px solid #d33; }")
            return False
        self.filter_error.setVisible(False)
        self.filter_edit.setStyleSheet("")
        return True

    def _row_mask(self) -> np.ndarray | None:
        if self.row_filter is None or self.sources is None:
            return None
        return self.row_filter(self.sources.filter_columns())

    def _apply_row_mask(self) -> None:
        """One mask of the filter box's rows for the table, the markers and the gallery."""
        mask = self._row_mask()
        self.proxy.set_row_mask(mask)
        if self.alerts is None:  # the frames do not show alerts
            self.frames.set_row_mask(mask)
        self.sync_gallery_order()

    # -- colours -------------------------------------------------------------------------
    def set_palette(self, name: str) -> None:
        """Colour statuses and labels with palette ``name`` in the frames, the gallery, the
        table and region exports (:mod:`diascan.palettes`)."""
        from diascan.palettes import get_palette

        self.palette_name = get_palette(name).name
        act = self.actions["palette"]
        if act.isChecked() != (self.palette_name != "classic"):
            act.setChecked(self.palette_name != "classic")
        self.frames.set_palette(self.palette_name)
        self.gallery_state.palette = self.palette_name
        self.table_model.set_palette(self.palette_name)

    # -- the selected source: context menu, position, archives ----------------------------
    def _selected_row(self) -> int | None:
        if self.sources is None or self.state.selected_id is None:
            return None
        return self.sources.index_of(self.state.selected_id)

    def selected_position(self) -> tuple[float, float] | None:
        """RA, Dec (degrees) of the selected source; None (and a status message) without."""
        row = self._selected_row()
        if row is None:
            self.statusBar().showMessage("select a source first", 3000)
            return None
        ra, dec = float(self.sources.ra[row]), float(self.sources.dec[row])
        if not (np.isfinite(ra) and np.isfinite(dec)):
            self.statusBar().showMessage("this source has no sky position (no WCS)", 5000)
            return None
        return ra, dec

    def copy_position(self) -> str | None:
        """Source > Copy position: RA, Dec in degrees and sexagesimal, to the clipboard."""
        pos = self.selected_position()
        if pos is None:
            return None
        text = links.position_text(*pos)
        QGuiApplication.clipboard().setText(text)
        self.statusBar().showMessage(f"copied {text}", 5000)
        return text

    def archive_url(self, build: Callable[[float, float], str]) -> str | None:
        """The URL ``build`` (a :mod:`diascan.links` function) makes for the selected source."""
        pos = self.selected_position()
        return None if pos is None else build(*pos)

    def open_archive(self, build: Callable[[float, float], str]) -> str | None:
        """Open the selected source's position in another archive, in the browser."""
        url = self.archive_url(build)
        if url is not None:
            QDesktopServices.openUrl(QUrl(url))
            self.statusBar().showMessage(f"opened {url}", 5000)
        return url

    def source_context_menu(self) -> QMenu:
        """The right-click menu of a source: the Source menu's actions and the labelling
        actions (the same QActions, with their keys)."""
        menu = QMenu(self)
        menu.addActions(self.source_menu.actions())
        menu.addSeparator()
        for action_id in ("label_real", "label_bogus", "label_unsure", "clear_label"):
            act = self.actions[action_id]
            if act.isEnabled():
                menu.addAction(act)
        return menu

    def _source_menu(self, row: int, pos: QPoint) -> None:
        """Right-click on source ``row`` at global ``pos``: select it, then the menu."""
        if self.sources is None:
            return
        self._select_row(row, center=False)
        self.last_context_menu = self.source_context_menu()
        self.last_context_menu.popup(pos)

    def _table_menu(self, pos: QPoint) -> None:
        idx = self.table.indexAt(pos)
        if idx.isValid():
            row = self.proxy.mapToSource(idx).row()
            self._source_menu(row, self.table.viewport().mapToGlobal(pos))

    def _gallery_menu(self, row: int, pos: QPoint) -> None:
        self._source_menu(row, pos)

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

    def show_prefetch_settings(self) -> None:
        """Session > Prefetch…: visits prefetched ahead and their memory budget (saved on OK)."""
        link = getattr(self, "session_link", None)
        if link is None:
            self.show_error("Prefetch", "Prefetch works in a session (open visits first).",
                            warning=True)
            return
        from diascan.qt.qt_prefetch import QtPrefetchDialog

        dlg = QtPrefetchDialog(link.prefetcher, parent=self)
        self.prefetch_prefs = dlg
        dlg.open()

    # -- display controls ----------------------------------------------------------------
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
    def show_error(self, title: str, message: str, warning: bool = False,
                   buttons: Sequence[tuple[str, Callable[[], object]]] = ()) -> QMessageBox | None:
        """Show an error (or a ``warning``) in a non-blocking dialog and the status bar.

        ``buttons``: ``(text, slot)`` offered next to OK (e.g. Save As…); the slot runs once the
        dialog is closed. Returns the dialog, ``None`` without dialogs (``--screenshot``). The
        log gets it at INFO only: the dialog is the user's channel, and under ``--screenshot``
        ``run_viewer`` prints the one error line itself.
        """
        log.info("%s: %s", title, message)
        self.last_error = message
        self.statusBar().showMessage(f"{title}: {message}", 10000)
        box = None
        if self.show_errors_as_dialogs:
            icon = QMessageBox.Icon.Warning if warning else QMessageBox.Icon.Critical
            box = QMessageBox(icon, title, message, QMessageBox.StandardButton.Ok, self)
            actions = {box.addButton(text, QMessageBox.ButtonRole.ActionRole): slot
                       for text, slot in buttons}
            box.setEscapeButton(QMessageBox.StandardButton.Ok)  # Esc and close() still work
            box.setModal(False)
            box.finished.connect(lambda _=0, b=box: self._dialogs.remove(b))
            # the chosen action runs once the box is gone (it may open a modal dialog)
            box.finished.connect(
                lambda _=0, b=box: actions.get(b.clickedButton(), lambda: None)())
            self._dialogs.append(box)
            box.show()
        self.error_shown.emit(message)
        return box

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
        from diascan.inputs import files_starter

        self.load_progressive(files_starter(files))  # the result carries ``input_files``

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        from diascan.inputs import guess_roles

        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if qt_alerts.dropped_alerts(paths) is not None:  # .avro / .parquet alert files
            qt_alerts.open_alerts(self, paths)
            return
        files = guess_roles(paths)
        if files is None:
            self.show_error(
                "Cannot open dropped files",
                "drop a folder with science/difference/template FITS and a catalog, or those files",
            )
            return
        self.open_files(files)

    def show_file_info(self) -> Any:
        """File > File info…: what was read from each loaded file."""
        from diascan.qt.qt_info import show_file_info

        return show_file_info(self)

    def closeEvent(self, event) -> None:  # noqa: N802
        # final save (selection and view included); when it fails the user chooses Save As,
        # Discard or Cancel (then the window stays open, every label in memory)
        if self.label_controller is not None and not self.label_controller.close():
            event.ignore()
            return
        self.jobs.cancel_all(also=frozenset({"prefetch", "train", "stamps"}))
        self.wait_idle(10000)
        for box in list(self._dialogs):
            box.close()
        super().closeEvent(event)

