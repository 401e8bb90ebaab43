"""Labels are never lost: what the viewer does when its session file cannot be saved.

:class:`QtSaveGuard` watches a label controller's :class:`~diascan.session.store.Autosave`
(its ``on_error``/``on_saved`` callbacks):

* the first failure of a streak (read-only folder, disk full, the file replaced by a folder...)
  opens a dialog at once naming the file and the reason, with **Save As…**; later failures of
  the same streak only update the banner, so labelling on does not bring a dialog per key;
* a banner over the frames says that the labels are not saved, with Save As… and Retry, until
  a save succeeds (every label stays in memory and autosave retries on each change);
* :meth:`QtSaveGuard.confirm_leave` is asked before the window closes or another session
  replaces this one: while the session holds changes that are not in its file, the user chooses
  Save As… (another file), Discard or Cancel.

Without dialogs (``window.show_errors_as_dialogs`` False: ``--screenshot``) the failure goes
to ``window.show_error`` (the status bar, ``error_shown``) and leaving is not refused.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from PyQt6.QtCore import QObject
from PyQt6.QtWidgets import QFileDialog, QMessageBox, QWidget

from diascan.errors import SessionError
from diascan.session.recent import remember_last_session

log = logging.getLogger(__name__)

#: The banner key of the "labels not saved" warning.
BANNER = "not_saved"
SESSION_FILTER = "diascan sessions (*.json);;All files (*)"


def ask_session_path(parent: QWidget | None, start: Path) -> Path | None:
    """Ask where to save a session (the dialog asks before replacing a file); ``None`` when
    cancelled. Starts in ``start``'s folder, or in the home folder when that one cannot be
    written (the usual reason to Save As)."""
    if not os.access(start.parent, os.W_OK):
        start = Path.home() / start.name
    dlg = QFileDialog(parent, "Save session as", str(start), SESSION_FILTER)
    dlg.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
    dlg.setDefaultSuffix("json")
    dlg.selectFile(start.name)
    if not dlg.exec():
        return None
    files = dlg.selectedFiles()
    return Path(files[0]) if files else None


class QtSaveGuard(QObject):
    """The save-failure flow of one label controller (see the module docstring)."""

    def __init__(self, controller: Any) -> None:
        super().__init__(controller)
        self.ctl = controller
        self.window = controller.window
        #: True from a failed save until the next successful one (one dialog per streak).
        self.failing = False
        #: The failure dialog of the current streak, while it is open.
        self.dialog: QMessageBox | None = None
        #: The Save As / Discard / Cancel question while it is asked.
        self.leave_box: QMessageBox | None = None
        self._leaving = False

    # --- Autosave callbacks ----------------------------------------------------------------
    def failed(self, exc: SessionError) -> None:
        """``Autosave.on_error``: banner now, dialog at the first failure of a streak."""
        first = not self.failing
        self.failing = True
        self._banner(exc)
        msg = f"Labels not saved: {exc}"
        self.ctl.save_failed.emit(msg)
        if not first or self._leaving:  # the leave question says it itself
            self.window.statusBar().showMessage(msg, 15000)
            return
        text = (f"{exc}\n\nEvery label is kept in memory and saving is tried again on each "
                "change. Choose Save As… to save the session to another file now.")
        if not self.interactive:
            self.window.show_error("Labels not saved", str(exc))
            return
        self.dialog = self.window.show_error(
            "Labels not saved", text, buttons=[("Save As…", self.save_as)])
        if self.dialog is not None:
            self.dialog.finished.connect(lambda _r=0: setattr(self, "dialog", None))

    def saved(self, path: Path) -> None:
        """``Autosave.on_saved``: a save worked, the streak (banner, dialog) ends."""
        if self.failing:
            self.reset()
            self.window.statusBar().showMessage(f"labels saved to {path}", 10000)

    def reset(self) -> None:
        """End a failure streak: banner and dialog go (a save worked, or the session was left)."""
        self.failing = False
        self.window.banners.clear(BANNER)
        if self.dialog is not None:
            self.dialog.close()

    def _banner(self, exc: SessionError) -> None:
        self.window.banners.show_banner(
            BANNER,
            ["Labels NOT saved: every label is kept in memory; saving is tried again on each "
             "change, or choose Save As…", str(exc)],
            level="error", dismissable=False,
            buttons=[("Save As…", self.save_as), ("Retry", self.retry)],
        )

    @property
    def interactive(self) -> bool:
        return bool(getattr(self.window, "show_errors_as_dialogs", True))

    # --- user actions ----------------------------------------------------------------------
    def retry(self) -> bool:
        """Save again now (after the user freed space or fixed the folder)."""
        return self.ctl.autosave.save()

    def save_as(self, path: str | Path | None = None) -> bool:
        """Save the session to ``path`` (asked for when ``None``) and autosave there from now
        on; a failure is shown and the old file stays in use. ``True`` when saved."""
        if path is None:
            path = ask_session_path(self.window, Path(self.ctl.autosave.path))
            if path is None:
                return False
        try:
            path = self.ctl.autosave.save_as(path)
        except SessionError as exc:
            self.window.show_error("Save As failed", str(exc))
            return False
        self.ctl.session_path = path
        link = getattr(self.window, "session_link", None)
        if link is not None and getattr(link, "ctl", None) is self.ctl:
            link.session_path = path
        remember_last_session(path)
        self.window.statusBar().showMessage(
            f"session saved to {path}; labels are saved there from now on", 10000)
        return True

    def confirm_leave(self, doing: str = "close the window") -> bool:
        """Save once more; when the session still holds unsaved changes, ask Save As… /
        Discard / Cancel. ``True`` when the user may go on (saved, saved elsewhere or
        discarded), ``False`` to stay."""
        auto = self.ctl.autosave
        self._leaving = True
        try:
            if auto.save() or not auto.dirty:
                return True
        finally:
            self._leaving = False
        if not self.interactive:
            log.warning("%s: unsaved labels were not saved (%s)", auto.path, auto.last_error)
            return True
        while True:
            box = QMessageBox(
                QMessageBox.Icon.Warning, "Labels not saved",
                f"The labels of this session could not be saved:\n{auto.last_error}\n\n"
                f"Save them to another file before you {doing}?",
                QMessageBox.StandardButton.NoButton, self.window,
            )
            save = box.addButton("Save As…", QMessageBox.ButtonRole.AcceptRole)
            discard = box.addButton("Discard changes", QMessageBox.ButtonRole.DestructiveRole)
            cancel = box.addButton(QMessageBox.StandardButton.Cancel)
            box.setDefaultButton(save)
            box.setEscapeButton(cancel)
            self.leave_box = box
            box.exec()
            self.leave_box = None
            clicked = box.clickedButton()
            if clicked is save:
                if self.save_as():
                    return True
                continue  # cancelled or failed: ask again
            if clicked is discard:
                log.warning("%s: unsaved labels discarded by the user", auto.path)
                return True
            return False


__all__ = ["BANNER", "QtSaveGuard", "ask_session_path"]
