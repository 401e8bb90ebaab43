"""Keyboard preferences: the cheat-sheet dialog and the key remapping dialog."""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from diascan.session.keymap import ACTIONS, KeyMap, KeyMapConflict


class QtCheatSheet(QDialog):
    """Table of actions and their keys (shown with ``?``)."""

    def __init__(self, keymap: KeyMap, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        table = QTableWidget(len(ACTIONS), 2, self)
        table.setHorizontalHeaderLabels(["Action", "Keys"])
        table.verticalHeader().setVisible(False)
        for row, (action, (text, _)) in enumerate(ACTIONS.items()):
            table.setItem(row, 0, QTableWidgetItem(text))
            table.setItem(row, 1, QTableWidgetItem(", ".join(keymap.keys_for(action))))
        table.resizeColumnsToContents()
        self.table = table
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("Label keys work wherever focus is, except inside text fields."))
        lay.addWidget(table)
        lay.addWidget(buttons)
        self.resize(420, 380)


class QtKeyPrefsDialog(QDialog):
    """Remap the labelling keys: one comma-separated field per action; saved on OK."""

    def __init__(self, keymap: KeyMap, path: str | Path | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Labelling keys")
        self.keymap = keymap
        self.path = path
        self.edits: dict[str, QLineEdit] = {}
        form = QFormLayout()
        for action, (text, _) in ACTIONS.items():
            edit = QLineEdit(", ".join(keymap.keys_for(action)))
            edit.setObjectName(f"keys_{action}")
            self.edits[action] = edit
            form.addRow(text, edit)
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
        lay.addLayout(form)
        lay.addWidget(self.error_label)
        lay.addWidget(self.buttons)

    def restore_defaults(self) -> None:
        for action, (_, default) in ACTIONS.items():
            self.edits[action].setText(", ".join(default))

    def bindings(self) -> dict[str, list[str]]:
        return {
            a: [k.strip() for k in e.text().split(",") if k.strip()] for a, e in self.edits.items()
        }

    def accept(self) -> None:
        """Validate (conflicts, unknown keys); on success update and save the key map."""
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
