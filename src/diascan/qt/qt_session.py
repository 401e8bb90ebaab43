"""Session dialogs: open, export (tables/regions/PNG), resume offer, locate moved input files."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from PyQt6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from diascan.errors import InputError
from diascan.session.export import export_sources
from diascan.session.model import FileRef, SourceRecord, VisitEntry
from diascan.session.recent import last_session
from diascan.session.store import load_session
from diascan.session.verify import locate_in_folder, relocate, verify_inputs

EXPORT_FILTER = (
    "CSV (*.csv);;ECSV (*.ecsv);;FITS (*.fits);;Parquet (*.parquet);;DS9 regions (*.reg)"
)


def sessions_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "diascan" / "sessions"


def new_session_path() -> Path:
    """A fresh autosave file, ``$XDG_DATA_HOME/diascan/sessions/session-<time>.json``."""
    d = sessions_dir()
    d.mkdir(parents=True, exist_ok=True)
    return d / f"session-{datetime.now():%Y%m%d-%H%M%S}.json"


def _num(a, i):
    v = float(a[i])
    return None if np.isnan(v) else v


def visit_from_window(window: Any, checksum: bool = True) -> VisitEntry:
    """A visit built from what the main window shows (its SourceSet and image paths)."""
    src = getattr(window, "sources", None)
    sources = []
    if src is not None:
        for i in range(len(src)):
            sources.append(SourceRecord(
                id=int(src.ids[i]), ra=_num(src.ra, i), dec=_num(src.dec, i), x=_num(src.x, i),
                y=_num(src.y, i), psfFlux=_num(src.flux, i), snr=_num(src.snr, i),
                score=_num(src.score, i), original_reliability=_num(src.original, i),
                status=str(src.status[i]),
            ))
    images = getattr(window, "images", {}) or {}

    def path_of(name):
        img = images.get(name)
        return getattr(img, "path", None) if img is not None else None

    sci = images.get("science")
    meta = getattr(sci, "metadata", {}) or {}
    model = getattr(window, "model", None)
    result = getattr(window, "result", None)
    return VisitEntry.create(
        sources, science=path_of("science"), difference=path_of("difference"),
        template=path_of("template"), catalog=getattr(result, "catalog_path", None),
        checksum=checksum, visit=meta.get("visit"), detector=meta.get("detector"),
        band=meta.get("band"),
        model_name=getattr(model, "name", None) or getattr(window.state, "model_name", None)
        if hasattr(window, "state") else None,
        model_version=getattr(model, "version", None),
    )


# --- export ------------------------------------------------------------------------------------
def export_to(controller, path: str | Path, labels=None, ask: bool = True) -> int | None:
    """Export to ``path``; asks before replacing an existing file (``None`` when declined)."""
    path = Path(path)
    overwrite = False
    if path.exists():
        if ask and not _confirm(controller.window, "Replace file",
                                f"{path.name} exists. Replace it?"):
            return None
        overwrite = True
    try:
        n = export_sources(controller.session, path, labels=labels, overwrite=overwrite)
    except InputError as exc:
        _error(controller.window, "Export failed", str(exc))
        return None
    controller.window.statusBar().showMessage(f"exported {n} sources to {path}", 10000)
    return n


def export_dialog(controller) -> int | None:
    path, _ = QFileDialog.getSaveFileName(
        controller.window, "Export labelled sources", "", EXPORT_FILTER,
        options=QFileDialog.Option.DontConfirmOverwrite,  # export_to asks itself
    )
    return export_to(controller, path) if path else None


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
    """Load a session, offer to locate moved/changed inputs, switch the controller to it."""
    try:
        session = load_session(path)
    except InputError as exc:
        _error(controller.window, "Cannot open session", str(exc))
        return False
    if locate and verify_inputs(session, checksum=False):
        dlg = QtLocateFilesDialog(session, controller.window)
        controller.locate_dialog = dlg
        if dlg.exec() != QDialog.DialogCode.Accepted:
            return False
    controller.set_session(session, path)
    return True


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
    """Lists missing or changed input files; locate them one by one or by searching a folder."""

    def __init__(self, session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
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
        self.refresh()

    def refresh(self) -> None:
        self.problems = verify_inputs(self.session, checksum=True)
        self.list.clear()
        for p in self.problems:
            self.list.addItem(str(p))
        if self.problems:
            self.list.setCurrentRow(0)

    def locate(self, ref: FileRef, new_path: str | Path) -> bool:
        try:
            relocate(self.session, ref.path, new_path)
        except ValueError as exc:
            _error(self, "Not the same file", str(exc))
            return False
        self.refresh()
        return True

    def search_folder(self, folder: str | Path) -> int:
        n = locate_in_folder(self.session, folder)
        self.refresh()
        return n

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
    QMessageBox.warning(parent, title, text)
