"""Session dialogs: open a session, ask for visits, export (tables/regions/PNG), resume offer,
locate moved input files; the session's file checks as jobs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QMessageBox,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from diascan.errors import InputError
from diascan.qt.qt_jobs import Job, QtJobs, error_text
from diascan.session.export import export_sources
from diascan.session.labels import Label
from diascan.session.model import FileRef, Session, VisitEntry
from diascan.session.recent import last_session
from diascan.session.store import load_session
from diascan.session.verify import FileProblem, locate_in_folder, relocate, verify_inputs
from diascan.session.visits import files_to_hash, hash_files, store_hashes, visit_from_view

EXPORT_FILTER = (
    "CSV (*.csv);;ECSV (*.ecsv);;FITS (*.fits);;Parquet (*.parquet);;DS9 regions (*.reg)"
)


def visit_from_window(window: Any, checksum: bool = False) -> VisitEntry:
    """A visit of what the main window shows (:func:`diascan.session.visits.visit_from_view`):
    its sources, the loader's input files, the model of the scores shown."""
    result = getattr(window, "result", None)
    model = getattr(window, "model", None)
    name = getattr(result, "model_name", None) or getattr(model, "name", None) or getattr(
        getattr(window, "state", None), "model_name", None)
    version = getattr(result, "model_version", None) or getattr(model, "version", None)
    return visit_from_view(
        getattr(window, "sources", None), getattr(window, "images", {}) or {},
        getattr(result, "input_files", None), model_name=name, model_version=version,
        catalog_path=getattr(result, "catalog_path", None), checksum=checksum,
    )


def checksum_job(jobs: QtJobs, visits: list[VisitEntry], on_done=None) -> Job | None:
    """Fill missing sha256 of the visits' input files in a job (off the GUI thread).

    The hashes are written into the FileRefs in the GUI thread, then ``on_done()`` runs
    (e.g. an autosave). ``None`` when every file already has one.
    """
    refs = files_to_hash(visits)
    if not refs:
        return None

    def apply(hashes: dict) -> None:
        store_hashes(refs, hashes)
        if on_done is not None:
            on_done()

    job = Job("checksum", lambda job: hash_files(refs, job.report, job.token), "checksums")
    job.succeeded.connect(apply)
    return jobs.run(job)


def verify_job(jobs: QtJobs, session: Session, on_done) -> Job:
    """``verify_inputs`` (sizes and sha256) in a job; ``on_done(problems)`` in the GUI (a
    check that fails lists no problems: the files are then read, and report their own)."""
    job = Job("verify", lambda job: verify_inputs(session, checksum=True), "checking files")
    job.succeeded.connect(on_done)
    job.failed.connect(lambda exc: on_done([]))
    return jobs.run(job)


# --- export ------------------------------------------------------------------------------------
def export_to(controller, path: str | Path, labels=None, ask: bool = True,
              visits: list[int] | None = None, frame: str = "icrs") -> int | None:
    """Export to ``path`` (``labels``/``visits``/``frame`` as :func:`export_sources` takes
    them; region colours from the window's palette); asks before replacing an existing file
    (``None`` when declined)."""
    path = Path(path)
    overwrite = False
    if path.exists():
        if ask and not _confirm(controller.window, "Replace file",
                                f"{path.name} exists. Replace it?"):
            return None
        overwrite = True
    try:
        n = export_sources(controller.session, path, labels=labels, overwrite=overwrite,
                           visits=visits, frame=frame,
                           palette=getattr(controller.window, "palette_name", None),
                           session_path=getattr(controller, "session_path", None))
    except InputError as exc:
        _error(controller.window, "Export failed", str(exc))
        return None
    controller.window.statusBar().showMessage(f"exported {n} sources to {path}", 10000)
    return n


class QtExportOptions(QDialog):
    """What to export: which labels (unlabelled too), which visits, the regions' sky frame."""

    LABELS = (*((label.value, label) for label in Label), ("unlabelled", None))

    def __init__(self, session: Session, path: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export labelled sources")
        self.session = session
        form = QFormLayout(self)
        form.addRow(QLabel(f"to <b>{path.name}</b>"))
        row = QHBoxLayout()
        self.label_checks: dict[str, QCheckBox] = {}
        for name, _label in self.LABELS:
            cb = QCheckBox(name)
            cb.setChecked(name != "unlabelled")  # the default: every labelled source
            cb.toggled.connect(self._update_ok)
            self.label_checks[name] = cb
            row.addWidget(cb)
        form.addRow("labels", row)
        n = len(session.visits)
        self.all_visits = QRadioButton("the one visit" if n == 1 else f"all {n} visits")
        self.current_visit = QRadioButton(f"this visit only ({session.current.name})")
        group = QButtonGroup(self)
        for rb in (self.all_visits, self.current_visit):
            group.addButton(rb)
        self.all_visits.setChecked(True)
        visits = QHBoxLayout()
        visits.addWidget(self.all_visits)
        visits.addWidget(self.current_visit)
        form.addRow("visits", visits)
        self.frame_combo = QComboBox()
        self.frame_combo.addItems(["icrs", "fk5"])
        self.frame_combo.setEnabled(path.suffix.lower() == ".reg")
        form.addRow("region frame", self.frame_combo)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)

    def _update_ok(self) -> None:
        ok = any(cb.isChecked() for cb in self.label_checks.values())
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ok)

    def labels(self) -> set[Label | None]:
        return {label for name, label in self.LABELS if self.label_checks[name].isChecked()}

    def visits(self) -> list[int] | None:
        return [self.session.current_visit] if self.current_visit.isChecked() else None

    def frame(self) -> str:
        return self.frame_combo.currentText()


def export_dialog(controller, path: str | Path | None = None,
                  options: QtExportOptions | None = None) -> int | None:
    """File > Export: a file, then what to export (``path``/``options`` given: no dialogs, for
    tests and scripts; ``options`` must then already hold the choices)."""
    if path is None:
        path, _ = QFileDialog.getSaveFileName(
            controller.window, "Export labelled sources", "", EXPORT_FILTER,
            options=QFileDialog.Option.DontConfirmOverwrite,  # export_to asks itself
        )
        if not path:
            return None
    path = Path(path)
    if options is None:
        options = QtExportOptions(controller.session, path, controller.window)
        if options.exec() != QDialog.DialogCode.Accepted:
            return None
    return export_to(controller, path, labels=options.labels(), visits=options.visits(),
                     frame=options.frame())  # fmt: skip


def export_png(widget: QWidget, path: str | Path, overwrite: bool = False) -> Path:
    """Save a widget as it looks now (``grab``) to a PNG file."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(path, "file exists")
    if not widget.grab().save(str(path), "PNG"):
        raise InputError(path, "cannot write PNG")
    return path


def export_png_dialog(controller, what: str) -> Path | None:
    widget = getattr(controller.window, what, None) or controller.window
    path, _ = QFileDialog.getSaveFileName(controller.window, f"Export {what} as PNG", "",
                                          "PNG (*.png)")
    if not path:
        return None
    try:  # the Qt dialog already asked before replacing
        return export_png(widget, path, overwrite=True)
    except InputError as exc:
        _error(controller.window, "Export failed", str(exc))
        return None


# --- open / resume -----------------------------------------------------------------------------
def open_session_file(controller, path: str | Path, locate: bool = True) -> bool:
    """Load a session and switch the controller to it once its inputs are checked.

    The check (sizes, sha256) runs in a job; moved or changed inputs open
    :class:`QtLocateFilesDialog` first (Cancel keeps the current session). Returns ``False``
    when the file cannot be read (an error dialog was shown), else ``True``.
    """
    try:
        session = load_session(path)
    except InputError as exc:
        _error(controller.window, "Cannot open session", str(exc))
        return False
    if not locate:
        return controller.set_session(session, path)

    def checked(problems: list) -> None:
        if problems and not locate_files(session, problems, controller.window, controller):
            return
        controller.set_session(session, path)

    controller.verify = verify_job(controller.window.jobs, session, checked)
    return True


def locate_files(session: Session, problems: list[FileProblem], parent=None,
                 holder: Any = None) -> bool:
    """Show the locate dialog (modal); ``True`` when the user continues."""
    dlg = QtLocateFilesDialog(session, parent, problems=problems)
    if holder is not None:
        holder.locate_dialog = dlg
    return dlg.exec() == QDialog.DialogCode.Accepted


def ask_visits_path(parent) -> str | None:
    """Folder of visit folders, or a text file listing visit folders; ``None`` if cancelled."""
    box = QMessageBox(QMessageBox.Icon.Question, "Open visits",
                      "Open a folder of visit folders, or a text file listing visit folders?",
                      QMessageBox.StandardButton.Cancel, parent)
    folder = box.addButton("Folder…", QMessageBox.ButtonRole.AcceptRole)
    listing = box.addButton("List file…", QMessageBox.ButtonRole.AcceptRole)
    box.exec()
    if box.clickedButton() is folder:
        path = QFileDialog.getExistingDirectory(parent, "Folder of visit folders")
    elif box.clickedButton() is listing:
        path, _ = QFileDialog.getOpenFileName(parent, "Visit list", "",
                                              "Visit lists (*.txt *.lst);;All files (*)")
    else:
        return None
    return path or None


def open_session_dialog(controller) -> bool:
    path, _ = QFileDialog.getOpenFileName(controller.window, "Open session", "",
                                          "diascan sessions (*.json)")
    return open_session_file(controller, path) if path else False


def offer_resume(parent: QWidget | None = None) -> Path | None:
    """At start: ask whether to resume the last session; its path, or ``None``."""
    path = last_session()
    if path is None:
        return None
    if _confirm(parent, "Resume session", f"Resume the last session?\n{path}"):
        return path
    return None


class QtLocateFilesDialog(QDialog):
    """Lists missing or changed input files; locate them one by one or by searching a folder.

    Checking files (sha256 of large images) runs in a job; ``checked`` is emitted when the
    list is up to date. ``problems`` given: shown at once without a first check.
    """

    checked = pyqtSignal()

    def __init__(self, session, parent: QWidget | None = None,
                 problems: list[FileProblem] | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.problems: list[FileProblem] = []
        self.jobs = QtJobs(self)
        self.job: Job | None = None
        self.setWindowTitle("Input files moved or changed")
        self.info = QLabel(
            "Some input files of this session are missing or differ from when it was saved.\n"
            "Locate them, or continue: labels and scores are kept either way."
        )
        self.list = QListWidget()
        self.locate_btn = QPushButton("Locate selected…")
        self.folder_btn = QPushButton("Search a folder…")
        self.locate_btn.clicked.connect(self._locate_selected)
        self.folder_btn.clicked.connect(self._search_folder)
        buttons = QDialogButtonBox()
        self.continue_btn = buttons.addButton("Continue", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(self.locate_btn)
        row.addWidget(self.folder_btn)
        lay = QVBoxLayout(self)
        lay.addWidget(self.info)
        lay.addWidget(self.list)
        lay.addLayout(row)
        lay.addWidget(buttons)
        if problems is None:
            self.refresh()
        else:
            self._show(problems)

    def _run(self, fn, then) -> Job:
        """Run ``fn()`` (file checks) in a job; ``then(result)`` in the GUI thread."""
        for w in (self.locate_btn, self.folder_btn):
            w.setEnabled(False)
        self.info_status = "checking files…"
        self.list.clear()
        self.list.addItem(self.info_status)
        job = Job("verify", lambda job: fn(), "checking files")
        job.succeeded.connect(then)
        job.failed.connect(lambda exc: (_error(self, "Check failed", error_text(exc)),
                                        self._show(self.problems)))
        self.job = job
        return self.jobs.run(job)

    def refresh(self) -> Job:
        """Check every input again (in a worker); ``checked`` when done."""
        return self._run(lambda: verify_inputs(self.session, checksum=True), self._show)

    def _show(self, problems: list[FileProblem]) -> None:
        self.problems = list(problems)
        self.list.clear()
        for p in self.problems:
            self.list.addItem(str(p))
        if self.problems:
            self.list.setCurrentRow(0)
        for w in (self.locate_btn, self.folder_btn):
            w.setEnabled(True)
        self.checked.emit()

    def locate(self, ref: FileRef, new_path: str | Path) -> Job:
        """Point ``ref`` (and equal references) at ``new_path`` if it is the same file."""

        def work():
            try:
                return relocate(self.session, ref.path, new_path)
            except ValueError as exc:
                return str(exc)

        def done(res) -> None:
            if isinstance(res, str):
                _error(self, "Not the same file", res)
            self.refresh()

        return self._run(work, done)

    def search_folder(self, folder: str | Path) -> Job:
        """Find missing inputs by name (and size/sha256) under ``folder``; then re-check."""
        self.found = 0

        def done(n) -> None:
            self.found = int(n)
            self.refresh()

        return self._run(lambda: locate_in_folder(self.session, folder), done)

    def _locate_selected(self) -> None:
        row = self.list.currentRow()
        if not 0 <= row < len(self.problems):
            return
        ref = self.problems[row].ref
        path, _ = QFileDialog.getOpenFileName(self, f"Locate {Path(ref.path).name}",
                                              str(Path(ref.path).parent))
        if path:
            self.locate(ref, path)

    def _search_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Search folder")
        if folder:
            self.search_folder(folder)


def _confirm(parent, title: str, text: str) -> bool:
    box = QMessageBox(QMessageBox.Icon.Question, title, text,
                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, parent)
    return box.exec() == QMessageBox.StandardButton.Yes


def _error(parent, title: str, text: str) -> None:
    """An error naming the file and the problem: the window's (non-blocking) error dialog,
    else a message box."""
    show = getattr(parent, "show_error", None)
    if show is not None:
        show(title, text)
    else:
        QMessageBox.warning(parent, title, text)
