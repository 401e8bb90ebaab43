"""Score > Improve model from my labels…: fine-tune a model on session labels, in a job.

:class:`QtTrainDialog` chooses the base model (the window's model list), the sessions (the
current one, saved first; more can be added), the seed, the threshold reported besides 0.5 and
the most epochs. It shows the label counts per class as ``diascan train --from-sessions`` reads
them (:func:`diascan.learn.gather.plan_labels`) and refuses too few with the counts
(:func:`diascan.models.labelled.check_label_counts`, the core's rule). Train runs the CLI's own
job, :func:`diascan.learn.job.run_train_job`, in a ``train`` job of the window's jobs layer
(background: rescoring and labelling go on), with the training and held-out loss of every epoch
plotted as it comes, a progress bar and Cancel. Errors are dialogs
(:func:`~diascan.qt.qt_jobs.error_text`). The new package joins the window's model list and its
report opens (:class:`~diascan.qt.qt_train_report.QtTrainReportDialog`).

Closing the dialog while it trains only hides it (the menu entry shows it again); closing the
window cancels the training.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from PyQt6.QtCore import QEvent, QObject, Qt, QThreadPool, QTimer, pyqtSignal
from PyQt6.QtWidgets import (
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from diascan.errors import DiascanError
from diascan.models.labelled import MIN_PER_CLASS, check_label_counts
from diascan.qt.qt_frames import adopt_menus
from diascan.qt.qt_jobs import Job, error_text
from diascan.qt.qt_train_report import QtTrainReportDialog, add_package, loss_plot, set_losses
from diascan.qt.qt_uncertain import QtUncertainSort

# diascan.learn.job and .gather (the pipeline, scipy) and torch are imported when the dialog
# is used, not when the window starts.

log = logging.getLogger(__name__)


def session_path_of(window: Any) -> Path | None:
    """Where the window's current session is saved (None: no session)."""
    ctl = getattr(window, "label_controller", None)
    return None if ctl is None else Path(ctl.autosave.path)


def save_current_session(window: Any) -> str | None:
    """Save the window's session now; ``None`` on success (or no session), else why not."""
    ctl = getattr(window, "label_controller", None)
    if ctl is None or ctl.autosave.save():
        return None
    return f"the session could not be saved ({ctl.autosave.last_error}); training reads the " \
           "labels from the saved session file"


class QtTrainDialog(QDialog):
    """Set up and run a fine-tuning job on session labels (see the module docstring).

    ``config``: the :class:`~diascan.models.finetune.FinetuneConfig` to start from (its seed
    and epochs are the dialog's initial values; None: the defaults).
    """

    #: The job's :class:`~diascan.learn.job.TrainReport` (the package is written).
    trained = pyqtSignal(object)

    def __init__(self, window: Any, config: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent if parent is not None else window)
        from diascan.learn.job import DEFAULT_THRESHOLD
        from diascan.models.finetune import FinetuneConfig  # torch: imported by scoring anyway

        self.window = window
        self.setWindowTitle("Improve model from my labels")
        self.config = config or FinetuneConfig()
        self.min_per_class = MIN_PER_CLASS
        self.default_threshold = DEFAULT_THRESHOLD
        self.job: Job | None = None
        self.enough = False  #: the plan has enough labels of each class
        self.report: Any = None  #: the last finished run's report
        self.report_dialog: QtTrainReportDialog | None = None
        self.history: list = []  #: EpochStats of the running (or last) job
        self._controller: Any = None
        self._current: Path | None = None  #: the window's session when last filled in
        self._recount = QTimer(self)
        self._recount.setSingleShot(True)
        self._recount.setInterval(300)
        self._recount.timeout.connect(self.refresh_counts)
        self._build()
        self.reset()

    # --- layout -----------------------------------------------------------------------------
    def _build(self) -> None:
        self.base_combo = QComboBox()
        self.base_combo.setMinimumWidth(260)
        self.sessions_list = QListWidget()
        self.sessions_list.setMaximumHeight(90)
        self.add_btn = QPushButton("Add sessions…")
        self.remove_btn = QPushButton("Remove")
        self.add_btn.clicked.connect(self.ask_sessions)
        self.remove_btn.clicked.connect(self.remove_selected)
        side = QVBoxLayout()
        side.addWidget(self.add_btn)
        side.addWidget(self.remove_btn)
        side.addStretch(1)
        sessions = QHBoxLayout()
        sessions.addWidget(self.sessions_list, 1)
        sessions.addLayout(side)
        self.counts_label = QLabel("")
        self.counts_label.setWordWrap(True)
        self.counts_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setValue(int(self.config.seed))
        self.seed_spin.setToolTip("the same seed gives the same model (the same checkpoint bytes)")
        self.threshold_spin = QDoubleSpinBox()
        self.threshold_spin.setRange(0.01, 0.99)
        self.threshold_spin.setSingleStep(0.05)
        self.threshold_spin.setDecimals(2)
        self.threshold_spin.setValue(self.default_threshold)
        self.threshold_spin.setToolTip("purity and completeness are reported at 0.5 and here")
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(1, 10**5)
        self.epochs_spin.setValue(int(self.config.epochs))
        self.epochs_spin.setToolTip(f"at most; training stops when the held-out loss has not "
                                    f"improved for {self.config.patience} epochs")
        form = QFormLayout()
        form.addRow("Base model", self.base_combo)
        form.addRow("Sessions", sessions)
        form.addRow("Labels", self.counts_label)
        settings = QHBoxLayout()
        for text, w in (("seed", self.seed_spin), ("threshold", self.threshold_spin),
                        ("at most", self.epochs_spin)):
            settings.addWidget(QLabel(text))
            settings.addWidget(w)
        settings.addWidget(QLabel("epochs"))
        settings.addStretch(1)
        form.addRow("Settings", settings)

        self.loss_plot, self.train_curve, self.heldout_curve = loss_plot()
        self.loss_plot.setMinimumHeight(180)
        self.epoch_label = QLabel("")
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.train_btn = QPushButton("Train")
        self.train_btn.setDefault(True)
        self.cancel_btn = QPushButton("Cancel training")
        self.close_btn = QPushButton("Close")
        self.report_btn = QPushButton("Report…")
        self.report_btn.setToolTip("the numbers of the last model trained here")
        self.report_btn.setVisible(False)
        self.report_btn.clicked.connect(self.show_report)
        self.train_btn.clicked.connect(self.start)
        self.cancel_btn.clicked.connect(self.cancel)
        self.close_btn.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.report_btn)
        buttons.addStretch(1)
        for b in (self.train_btn, self.cancel_btn, self.close_btn):
            buttons.addWidget(b)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.loss_plot, 1)
        lay.addWidget(self.epoch_label)
        lay.addWidget(self.progress)
        lay.addWidget(self.status_label)
        lay.addLayout(buttons)
        self.resize(760, 600)
        adopt_menus(self)  # the plot's context menus go with the dialog

    # --- inputs -----------------------------------------------------------------------------
    def reset(self) -> None:
        """Fill in the window's models and current session (the menu entry calls this)."""
        if self.running:
            return
        names = list(self.window.model_specs)
        self.base_combo.clear()
        self.base_combo.addItems(names)
        if self.window.state.model_name in names:
            self.base_combo.setCurrentText(self.window.state.model_name)
        current = session_path_of(self.window)
        if current is not None:
            save_current_session(self.window)  # the counts are the ones on disk
            self._watch_labels()
        # the sessions the user added stay; the window's session may be another one now
        extra = [p for p in self.sessions() if p not in (current, self._current)]
        self._current = current
        self.sessions_list.clear()
        for p in ([current] if current is not None else []) + extra:
            self.sessions_list.addItem(str(p))
        self.refresh_counts()
        self._set_running(False)

    def _watch_labels(self) -> None:
        """Count again shortly after the user labels (the autosave wrote the file)."""
        ctl = self.window.label_controller
        if ctl is not self._controller:
            self._controller = ctl
            ctl.labels_changed.connect(self._labels_changed)

    def _labels_changed(self, _ids: list) -> None:
        if not self.running:
            self._recount.start()

    def sessions(self) -> list[Path]:
        """The session files to train on, in the list's order."""
        return [Path(self.sessions_list.item(i).text()) for i in range(self.sessions_list.count())]

    def add_sessions(self, paths: list[str | Path]) -> None:
        """Add session files (each once) and count again."""
        have = {p.resolve() for p in self.sessions()}
        for p in map(Path, paths):
            if p.resolve() not in have:
                have.add(p.resolve())
                self.sessions_list.addItem(str(p))
        self.refresh_counts()

    def ask_sessions(self) -> None:
        from diascan.session.recent import sessions_dir

        paths, _ = QFileDialog.getOpenFileNames(self, "Add sessions", str(sessions_dir()),
                                                "diascan sessions (*.json)")
        if paths:
            self.add_sessions(paths)

    def remove_selected(self) -> None:
        for item in self.sessions_list.selectedItems():
            self.sessions_list.takeItem(self.sessions_list.row(item))
        self.refresh_counts()

    def refresh_counts(self) -> bool:
        """Count the labels of the sessions per class; True when there are enough to train
        (else the counts say why not, and Train is disabled)."""
        from diascan.learn.gather import plan_labels

        ok = False
        paths = self.sessions()
        if not paths:
            text = "no session: open or label a visit, or add a session file"
        else:
            try:
                plan = plan_labels(paths)
            except DiascanError as exc:
                text = str(exc)
            else:
                text = (f"{plan.n_real} real and {plan.n_bogus} bogus in {plan.n_groups} "
                        f"visit(s) of {len(paths)} session(s)")
                if plan.skipped:
                    text += " (left out: " + ", ".join(
                        f"{n} {why}" for why, n in plan.skipped.items()) + ")"
                try:
                    check_label_counts(plan.n_real, plan.n_bogus, self.min_per_class)
                    ok = True
                except DiascanError as exc:
                    text += f"\n{exc}"
        self.enough = ok
        self.counts_label.setText(text)
        self.counts_label.setStyleSheet("" if ok else "color: rgb(200, 40, 40);")
        self.train_btn.setEnabled(ok and not self.running)
        return ok

    def base_spec(self) -> str | Path | None:
        """The chosen base model as ``load_model`` takes it (a path or a name)."""
        name = self.base_combo.currentText()
        spec = self.window.model_specs.get(name, name or None)
        return getattr(spec, "path", spec) if hasattr(spec, "score_stamps") else spec

    def train_job(self) -> Any:
        """The :class:`~diascan.learn.job.TrainJob` the dialog's settings make."""
        from diascan.learn.job import TrainJob

        cfg = dataclasses.replace(self.config, seed=self.seed_spin.value(),
                                  epochs=self.epochs_spin.value())
        return TrainJob(sessions=self.sessions(), base=self.base_spec(), config=cfg,
                        threshold=round(self.threshold_spin.value(), 4),
                        min_per_class=self.min_per_class)

    # --- running ----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.job is not None and not self.job.finished

    def start(self) -> Job | None:
        """Save the current session, check the counts, then train in a job (None: refused)."""
        if self.running:
            return None
        why = save_current_session(self.window)
        if why is not None:
            self.window.show_error("Cannot train", why)
            return None
        if not self.refresh_counts():
            return None
        tj = self.train_job()
        written: dict[str, Any] = {}

        def work(job: Job) -> Any:
            from diascan.learn.job import run_train_job

            rep = run_train_job(tj, progress=job.report, cancel=job.token, on_epoch=job.emit,
                                log=job.emit)
            written["report"] = rep  # cancelled while writing: the package is there all the same
            return rep

        job = Job("train", work, "training")
        job.progress.connect(self._progress)
        job.partial.connect(self._partial)
        job.succeeded.connect(self._succeeded)
        job.failed.connect(self._failed)
        job.cancelled.connect(lambda: self._cancelled(written.get("report")))
        job.done.connect(lambda: self._set_running(False))
        # Minutes of training must not hold one of the few pool threads (2 on 2 cores) that
        # loads, rescoring and file checks share: the pool gets one more while it runs.
        pool = QThreadPool.globalInstance()
        pool.setMaxThreadCount(pool.maxThreadCount() + 1)
        job.done.connect(lambda: pool.setMaxThreadCount(pool.maxThreadCount() - 1))
        self.job = job
        self.history = []
        self._plot()
        self.status_label.setText(f"training {self.base_combo.currentText()} on the labels of "
                                  f"{len(tj.sessions)} session(s)…")
        self._set_running(True)
        return self.window.jobs.run(job)

    def cancel(self) -> None:
        """Stop the training at its next batch; nothing is written."""
        if self.running:
            self.job.cancel()
            self.status_label.setText("cancelling…")
            self.cancel_btn.setEnabled(False)

    def _set_running(self, on: bool) -> None:
        for w in (self.base_combo, self.sessions_list, self.add_btn, self.remove_btn,
                  self.seed_spin, self.threshold_spin, self.epochs_spin):
            w.setEnabled(not on)
        self.cancel_btn.setEnabled(on)
        self.progress.setVisible(on)
        self.train_btn.setEnabled(not on and self.enough)
        if on:
            self.progress.setValue(0)

    def _progress(self, stage: str, fraction: float, message: str) -> None:
        self.progress.setFormat(f"{stage} %p%")
        self.progress.setValue(int(1000 * max(0.0, min(1.0, fraction))))
        if stage != "train" and message:
            self.status_label.setText(message)

    def _partial(self, value: Any) -> None:
        if isinstance(value, str):  # a log line of the job
            log.info("training: %s", value)
            if not value.startswith("epoch "):  # epochs are shown by the plot and its label
                self.status_label.setText(value)
            return
        self.history.append(value)
        self._plot()

    def _plot(self) -> None:
        """Both losses per epoch, and the epoch line under the plot."""
        h = self.history
        set_losses(self.train_curve, self.heldout_curve, h)
        held = [s for s in h if s.heldout_loss is not None]
        if not h:
            self.epoch_label.setText("")
            return
        last = h[-1]
        text = f"epoch {last.epoch} of at most {last.epochs}: training loss {last.loss:.4f}"
        if held:
            best = min(held, key=lambda s: s.heldout_loss)
            text += (f", held-out loss {held[-1].heldout_loss:.4f} (lowest {best.heldout_loss:.4f}"
                     f" at epoch {best.epoch})")
        self.epoch_label.setText(text + f"; {last.seconds:.0f} s")

    def _succeeded(self, rep: Any) -> None:
        self.report = rep
        name = add_package(self.window, rep.package)
        self.status_label.setText(f"wrote {rep.package} in {rep.seconds['total']:.0f} s; "
                                  f"{name} is in the model list")
        self.window.statusBar().showMessage(f"new model {name}", 10000)
        if self.report_dialog is not None:
            self.report_dialog.deleteLater()  # one report at a time: the last model's
        self.report_dialog = QtTrainReportDialog(rep, self.window)
        self.report_btn.setVisible(True)
        self.show_report()
        self.trained.emit(rep)

    def show_report(self) -> None:
        """The report of the last model trained here."""
        if self.report_dialog is not None:
            self.report_dialog.show()
            self.report_dialog.raise_()

    def _failed(self, exc: BaseException) -> None:
        text = error_text(exc)
        self.status_label.setText(f"training failed: {text}")
        self.window.show_error("Training failed", text)

    def _cancelled(self, rep: Any) -> None:
        if rep is None:
            self.status_label.setText("training cancelled; nothing was written")
            return
        name = add_package(self.window, rep.package)  # cancelled too late: it was written
        self.status_label.setText(f"cancelled after the package was written: {rep.package} "
                                  f"({name} is in the model list)")

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self.running:  # training goes on; Score > Improve model… shows it again
            self.window.statusBar().showMessage(
                "training goes on in the background (Score > Improve model… shows it)", 8000)
        super().closeEvent(event)


class QtLearning(QObject):
    """The window's learning actions: Improve model… (one dialog per window) and the
    uncertain-first sorts; training stops when the window closes."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.dialog: QtTrainDialog | None = None
        #: FinetuneConfig for new dialogs (None: the defaults); tests make training short.
        self.config: Any = None
        self.sort = QtUncertainSort(window)
        window.actions.bind("improve_model", self.show_dialog)
        window.installEventFilter(self)

    def show_dialog(self) -> QtTrainDialog:
        """Score > Improve model from my labels…: the dialog, filled in again unless it trains."""
        if self.dialog is None:
            self.dialog = QtTrainDialog(self.window, self.config)
        else:
            self.dialog.reset()
        self.dialog.show()
        self.dialog.raise_()
        return self.dialog

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt API
        if (event.type() == QEvent.Type.Close and obj is self.window
                and self.dialog is not None and self.dialog.running):
            self.dialog.job.cancel()  # a background job would outlive the window otherwise
        return False


def install_learning(window: Any) -> QtLearning:
    """Give ``window`` (a QtMainWindow) its learning actions; kept as ``window.learning``."""
    window.learning = QtLearning(window)
    return window.learning


__all__ = ["QtLearning", "QtTrainDialog", "install_learning", "save_current_session",
           "session_path_of"]
