"""Answering the viewer's modal dialogs from a test: ``exec()`` blocks, so the answer is armed
first and given from the dialog's own event loop (a timer polling for the active modal widget).
A dialog nobody answers is rejected after the timeout, so a broken test fails instead of
hanging."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QApplication, QFileDialog, QMessageBox

#: Every dialog seen by :func:`answer`, in order: ``(class name, title, text)``.
SEEN: list[tuple[str, str, str]] = []


def answer(kind: type, act: Callable, timeout_s: float = 10.0) -> None:
    """Call ``act(dialog)`` on the next visible modal widget of type ``kind``."""
    deadline = time.monotonic() + timeout_s

    def poll() -> None:
        w = QApplication.activeModalWidget()
        if isinstance(w, kind) and w.isVisible():
            text = w.text() if isinstance(w, QMessageBox) else ""
            SEEN.append((type(w).__name__, w.windowTitle(), text))
            act(w)
        elif time.monotonic() < deadline:
            QTimer.singleShot(20, poll)
        elif w is not None:
            SEEN.append(("timeout", w.windowTitle(), ""))
            w.reject()  # unblock the test; its assertions then fail

    QTimer.singleShot(0, poll)


def click(text: str) -> Callable[[QMessageBox], None]:
    """An ``act`` clicking the message box button whose text is ``text``."""

    def act(box: QMessageBox) -> None:
        button = next(b for b in box.buttons() if b.text() == text)
        button.click()

    return act


def save_file_as(path: Path) -> Callable[[QFileDialog], None]:
    """An ``act`` typing ``path`` into a save dialog and accepting it."""

    def act(dlg: QFileDialog) -> None:
        dlg.selectFile(str(path))
        dlg.accept()

    return act


def then_save_as(path: Path, button: str = "Save As…") -> Callable[[QMessageBox], None]:
    """An ``act`` clicking ``button`` of a message box, then saving to ``path`` in the file
    dialog it opens."""

    def act(box: QMessageBox) -> None:
        answer(QFileDialog, save_file_as(path))
        click(button)(box)

    return act
