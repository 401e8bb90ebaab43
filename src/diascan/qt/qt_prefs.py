"""Keyboard preferences: the ``?`` sheet and the key remapping dialog, both over every
registered action (:data:`diascan.actions.ACTIONS`)."""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from diascan.actions import ACTIONS
from diascan.qt.qt_actions import QtActions
from diascan.session.keymap import KeyMap, KeyMapConflict


class QtCheatSheet(QDialog):
    """Every action: its title, keys, where it is and what it does (shown with ``?``)."""

    def __init__(self, actions: QtActions, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        table = QTableWidget(len(ACTIONS), 4, self)
        table.setHorizontalHeaderLabels(["Action", "Keys", "Where", "What it does"])
        table.verticalHeader().setVisible(False)
        for row, a in enumerate(ACTIONS):
            for col, text in enumerate((a.title, actions.keys_text(a.id),
                                        a.where, a.help)):
                table.setItem(row, col, QTableWidgetItem(text))
        table.resizeColumnsToContents()
        table.horizontalHeader().setStretchLastSection(True)
        self.table = table
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("Keys work wherever the focus is in the main window; text fields "
                             "keep the letters, digits and spaces typed into them."))
        lay.addWidget(table)
        lay.addWidget(buttons)
        self.resize(760, 520)


class QtKeyPrefsDialog(QDialog):
    """Remap the keys of any action: one comma-separated field per action; saved on OK (only
    the keys that differ from the defaults are written)."""

    def __init__(self, keymap: KeyMap, path: str | Path | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Key bindings")
        self.keymap = keymap
        self.path = path
        self.edits: dict[str, QLineEdit] = {}
        fields = QWidget()
        form = QFormLayout(fields)
        for a in ACTIONS:
            edit = QLineEdit(", ".join(keymap.keys_for(a.id)))
            edit.setObjectName(f"keys_{a.id}")
            edit.setToolTip(a.help)
            self.edits[a.id] = edit
            form.addRow(a.title, edit)
        scroll = QScrollArea()  # 29 actions: taller than a small screen
        scroll.setWidgetResizable(True)
        scroll.setWidget(fields)
        self.error_label = QLabel("")
        self.error_label.setStyleSheet("color: #c00")
        self.error_label.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.RestoreDefaults
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(
            self.restore_defaults
        )
        lay = QVBoxLayout(self)
        lay.addWidget(scroll, 1)
        lay.addWidget(self.error_label)
        lay.addWidget(self.buttons)
        self.resize(460, 560)

    def restore_defaults(self) -> None:
        for a in ACTIONS:
            self.edits[a.id].setText(", ".join(a.keys))

    def bindings(self) -> dict[str, list[str]]:
        return {
            a: [k.strip() for k in e.text().split(",") if k.strip()] for a, e in self.edits.items()
        }

    def accept(self) -> None:
        """Validate (clashes, unknown keys); on success update and save the key map."""
        try:
            self.keymap.replace_all(self.bindings())
        except (KeyMapConflict, ValueError) as exc:
            self.error_label.setText(str(exc))
            return
        try:
            self.keymap.save(self.path)
        except OSError as exc:
            self.error_label.setText(f"could not save the key bindings: {exc}")
            return
        super().accept()
