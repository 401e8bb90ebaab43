"""File > File info…: what diascan read from each loaded file, as ``diascan info`` says it.

One tab per image (science, difference, template) with
:func:`diascan.io.info.describe_images`'s text (layout, HDUs, shape, origin, units, mask planes
with their pixel counts, WCS, metadata, the reader's notes such as "variance estimated"), and
one tab for the run (input files, the pipeline's notes and warnings). Counting the pixels of
every plane takes about a second on a full detector, so the texts are made in a job; the dialog
follows the window to the next visit while it is open.
"""

from __future__ import annotations

import contextlib
from typing import Any

from PyQt6.QtGui import QFontDatabase, QGuiApplication
from PyQt6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QPlainTextEdit,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from diascan.io.info import describe_images
from diascan.qt.qt_jobs import Job, error_text

#: Tab order; the images' roles as the window names them.
ROLES = ("science", "difference", "template")


def run_text(result: Any) -> str:
    """The run's tab: input files by role, then the pipeline's notes and warnings."""
    lines = ["input files"]
    for role, value in (getattr(result, "input_files", None) or {}).items():
        values = value if isinstance(value, list | tuple) and role != "target" else [value]
        lines += [f"  {role:<17} {v}" for v in values]
    for title, items in (("notes", getattr(result, "notes", None)),
                         ("warnings", getattr(result, "warnings", None))):
        lines.append(f"{title}" if items else f"{title}: none")
        lines += [f"  {t}" for t in items or []]
    return "\n".join(lines)


class QtFileInfoDialog(QDialog):
    """The File info dialog of ``window`` (see the module docstring)."""

    def __init__(self, window: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent or window)
        self.window = window
        self.setWindowTitle("File info")
        self.tabs = QTabWidget()
        self.pages: dict[str, QPlainTextEdit] = {}
        font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        for role in (*ROLES, "run"):
            page = QPlainTextEdit()
            page.setReadOnly(True)
            page.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
            page.setFont(font)
            self.pages[role] = page
            self.tabs.addTab(page, role.capitalize() if role != "run" else "Inputs and notes")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = buttons.addButton("Copy all", QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.clicked.connect(self.copy_all)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.tabs)
        lay.addWidget(buttons)
        # wide enough for the plane table's lines, never wider than the window it is over
        self.resize(min(1000, int(window.width() * 0.85)), min(720, int(window.height() * 0.85)))
        self.job: Job | None = None
        window.data_loaded.connect(self._data_loaded)
        self.refresh()

    def refresh(self) -> Job | None:
        """Describe the window's images again (in a job)."""
        images = {r: self.window.images.get(r) for r in ROLES}
        result = self.window.result
        files = getattr(result, "input_files", None)
        for role, page in self.pages.items():
            page.setPlainText("reading…" if role == "run" or images.get(role) is not None
                              else f"no {role} image loaded")
        self.pages["run"].setPlainText(run_text(result) if result is not None else "no data")
        if not any(images.values()):
            return None
        job = Job("info", lambda job: describe_images(images, files), "file info")
        job.succeeded.connect(self._show)
        job.failed.connect(lambda exc: self.pages["science"].setPlainText(error_text(exc)))
        self.job = job
        return self.window.jobs.run(job)

    def _show(self, texts: dict[str, str]) -> None:
        for role, text in texts.items():
            self.pages[role].setPlainText(text)

    def text(self) -> str:
        """Every tab's text, in order."""
        return "\n\n".join(self.pages[r].toPlainText() for r in (*ROLES, "run"))

    def copy_all(self) -> None:
        QGuiApplication.clipboard().setText(self.text())

    def _data_loaded(self) -> None:
        if self.isVisible():
            self.refresh()

    def done(self, r: int) -> None:  # noqa: D102 - Qt API
        with contextlib.suppress(TypeError):
            self.window.data_loaded.disconnect(self._data_loaded)
        super().done(r)


def show_file_info(window: Any) -> QtFileInfoDialog:
    """File > File info…: open the dialog (non-modal) on the window's loaded files."""
    old = getattr(window, "file_info_dialog", None)
    if old is not None:
        old.close()
    dlg = QtFileInfoDialog(window)
    window.file_info_dialog = dlg
    dlg.show()
    return dlg


__all__ = ["QtFileInfoDialog", "run_text", "show_file_info"]
