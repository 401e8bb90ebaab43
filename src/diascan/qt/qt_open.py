"""File > Open dialog: choose science, difference, template (or patches) and catalog files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PyQt6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QWidget,
)

FITS_FILTER = "FITS images (*.fits *.fits.fz *.fits.gz *.fz);;All files (*)"
CAT_FILTER = "Catalogs (*.parquet *.csv *.ecsv *.fits);;All files (*)"
ROLES = (
    ("science", "Science image", FITS_FILTER, False),
    ("difference", "Difference image", FITS_FILTER, False),
    ("template", "Template (science grid)", FITS_FILTER, False),
    ("template_patches", "or template patches", FITS_FILTER, True),
    ("catalog", "dia_source catalog", CAT_FILTER, False),
)


class QtOpenDialog(QDialog):
    """A form with one path field and a Browse button per input role."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Open images")
        form = QFormLayout(self)
        self.edits: dict[str, QLineEdit] = {}
        for key, label, filt, many in ROLES:
            edit = QLineEdit()
            btn = QPushButton("Browse…")
            btn.clicked.connect(lambda _=False, e=edit, f=filt, m=many: self._browse(e, f, m))
            row = QHBoxLayout()
            row.addWidget(edit, 1)
            row.addWidget(btn)
            form.addRow(label, row)
            self.edits[key] = edit
        self.target = QLineEdit()
        self.target.setPlaceholderText("RA,DEC in degrees (optional)")
        form.addRow("Target", self.target)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _browse(self, edit: QLineEdit, filt: str, many: bool) -> None:
        if many:
            paths, _ = QFileDialog.getOpenFileNames(self, "Choose files", "", filt)
            if paths:
                edit.setText(";".join(paths))
        else:
            path, _ = QFileDialog.getOpenFileName(self, "Choose a file", "", filt)
            if path:
                edit.setText(path)

    def files(self) -> dict[str, Any]:
        """The chosen files as the ``files`` dict ``QtMainWindow.open_files`` takes."""
        from diascan.inputs import parse_target

        out: dict[str, Any] = {}
        for key, *_ in ROLES:
            text = self.edits[key].text().strip()
            if not text:
                continue
            out[key] = [Path(p) for p in text.split(";") if p] if key == "template_patches" else Path(text)
        out["target"] = parse_target(self.target.text().strip() or None)
        return out
