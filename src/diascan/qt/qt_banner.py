"""Banners above the frames: what the user must see without a dialog in the way.

:class:`QtBannerArea` holds at most one :class:`QtBanner` per key, stacked over the window's
central widget (:func:`install_banners`). Two kinds use it: the pipeline's warnings about a
visit (``PipelineResult.warnings``; dismissable, replaced by the next visit's) and "labels are
not saved" after a failed autosave (not dismissable: it stays until a save succeeds, with Save
As… and Retry buttons).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

#: Background, border and text colours of each level (readable on light and dark themes alike,
#: since the banner sets its own background).
LEVELS: dict[str, tuple[str, str, str]] = {
    "warning": ("#fff3cd", "#e0b000", "#4d3800"),
    "error": ("#f8d7da", "#c0392b", "#58151c"),
}


class QtBanner(QFrame):
    """One banner: an icon, text (one line per item), buttons and, if dismissable, a ×."""

    dismissed = pyqtSignal()

    def __init__(self, key: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.key = key
        self.setObjectName(f"banner_{key}")
        self.icon = QLabel()
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # label keys keep going to the window
        self.buttons: dict[str, QPushButton] = {}
        self.close_button = QToolButton()
        self.close_button.setText("×")
        self.close_button.setToolTip("Dismiss")
        self.close_button.setAutoRaise(True)
        self.close_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.close_button.clicked.connect(self.dismiss)
        self._row = QHBoxLayout(self)
        self._row.setContentsMargins(8, 4, 4, 4)
        self._row.addWidget(self.icon, 0, Qt.AlignmentFlag.AlignTop)
        self._row.addWidget(self.label, 1)
        self._row.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)

    def set_content(self, lines: Sequence[str], level: str = "warning",
                    buttons: Sequence[tuple[str, Callable[[], object]]] = (),
                    dismissable: bool = True) -> None:
        """Show ``lines`` (the first one bold when there are several) with ``buttons``."""
        bg, border, fg = LEVELS[level]
        self.level = level
        self.setStyleSheet(
            f"QFrame#{self.objectName()} {{ background: {bg}; border: 1px solid {border}; "
            f"border-radius: 3px; }} QFrame#{self.objectName()} QLabel {{ color: {fg}; }}"
        )
        pixmap = QStyle.StandardPixmap.SP_MessageBoxWarning if level == "warning" else (
            QStyle.StandardPixmap.SP_MessageBoxCritical)  # fmt: skip
        self.icon.setPixmap(self.style().standardIcon(pixmap).pixmap(20, 20))
        self.lines = [str(t) for t in lines]
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setText("\n".join(self.lines))
        for b in self.buttons.values():
            self._row.removeWidget(b)
            b.deleteLater()
        self.buttons = {}
        for i, (text, slot) in enumerate(buttons):
            b = QPushButton(text)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.clicked.connect(lambda _checked=False, s=slot: s())
            self._row.insertWidget(2 + i, b, 0, Qt.AlignmentFlag.AlignTop)
            self.buttons[text] = b
        self.close_button.setVisible(dismissable)

    def text(self) -> str:
        return self.label.text()

    def dismiss(self) -> None:
        self.hide()
        self.dismissed.emit()


class QtBannerArea(QWidget):
    """The banners of a window, top to bottom in the order they were first shown."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._banners: dict[str, QtBanner] = {}
        self._lay = QVBoxLayout(self)
        self._lay.setContentsMargins(4, 2, 4, 2)
        self._lay.setSpacing(2)
        self.setVisible(False)

    def show_banner(self, key: str, lines: Sequence[str], level: str = "warning",
                    buttons: Sequence[tuple[str, Callable[[], object]]] = (),
                    dismissable: bool = True) -> QtBanner:
        """Show (or update) banner ``key``."""
        banner = self._banners.get(key)
        if banner is None:
            banner = QtBanner(key, self)
            banner.dismissed.connect(self._update_visible)
            self._banners[key] = banner
            self._lay.addWidget(banner)
        banner.set_content(lines, level, buttons, dismissable)
        banner.show()
        self._update_visible()
        return banner

    def clear(self, key: str) -> None:
        """Remove banner ``key`` (nothing happens when it is not shown)."""
        banner = self._banners.pop(key, None)
        if banner is not None:
            self._lay.removeWidget(banner)
            banner.deleteLater()
        self._update_visible()

    def banner(self, key: str) -> QtBanner | None:
        """Banner ``key`` while it is shown (not dismissed), else ``None``."""
        banner = self._banners.get(key)
        return banner if banner is not None and not banner.isHidden() else None

    def _update_visible(self) -> None:
        self.setVisible(any(not b.isHidden() for b in self._banners.values()))


def install_banners(window: QMainWindow) -> QtBannerArea:
    """Put a banner area above ``window``'s central widget (whatever its layout is)."""
    central = window.takeCentralWidget()
    box = QWidget()
    lay = QVBoxLayout(box)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.setSpacing(0)
    area = QtBannerArea(box)
    lay.addWidget(area)
    if central is not None:
        lay.addWidget(central, 1)
    window.setCentralWidget(box)
    return area


__all__ = ["LEVELS", "QtBanner", "QtBannerArea", "install_banners"]
