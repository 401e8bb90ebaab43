"""What the Qt controllers need from the main window: :class:`LabelWindow`.

The Qt-free part (sources, state, selection, model) is
:class:`diascan.window_protocols.SourceWindow`; this adds the window's signals, actions, docks,
status bar and error channel. :class:`~diascan.qt.qt_main_window.QtMainWindow` implements it;
the label controller, its save guard and the session link are typed against it, so an attribute
they use is one the window defines (no ``getattr``/``hasattr`` probing).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from PyQt6.QtCore import pyqtBoundSignal
from PyQt6.QtWidgets import QDockWidget, QMessageBox, QStatusBar, QTabWidget, QWidget

from diascan.window_protocols import SourceWindow

if TYPE_CHECKING:
    from diascan.qt.qt_actions import QtActions
    from diascan.qt.qt_banner import QtBannerArea
    from diascan.qt.qt_plots import QtPlots
    from diascan.qt.qt_table import QtSourceTable


class LabelWindow(SourceWindow, Protocol):
    """The main window as the label controller, the save guard and the session link use it."""

    #: ``selection_changed(id)``, ``data_loaded()``, ``rescore_done((indices, scores) | None)``
    selection_changed: pyqtBoundSignal
    data_loaded: pyqtBoundSignal
    rescore_done: pyqtBoundSignal
    actions: QtActions
    table: QtSourceTable
    side_tabs: QTabWidget
    plots: QtPlots
    banners: QtBannerArea
    palette_name: str
    #: False under ``--screenshot``: errors go to the status bar, not to dialogs.
    show_errors_as_dialogs: bool
    #: Set by the controller and the link that own the window (``None`` until they exist).
    label_controller: Any
    session_link: Any

    def add_dock(self, title: str, widget: QWidget, *args: Any, **kwargs: Any) -> QDockWidget:
        """Add ``widget`` as a dock titled ``title``."""
        ...

    def statusBar(self) -> QStatusBar | None:  # noqa: N802 - Qt API
        ...

    def setFocus(self) -> None:  # noqa: N802 - Qt API
        ...

    def show_error(self, title: str, message: str, warning: bool = False,
                   buttons: Sequence[tuple[str, Callable[[], object]]] = ()) -> QMessageBox | None:
        """An error in a dialog (or the status bar without dialogs)."""
        ...
