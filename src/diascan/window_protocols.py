"""What the labelling, session and training code needs from a viewer window (Qt-free part).

The Qt layer's controllers (label controller, session link, save guard, training dialog) drive
:class:`diascan.qt.qt_main_window.QtMainWindow` through these protocols instead of probing it
with ``getattr``/``hasattr``; :mod:`diascan.qt.qt_window_protocols` adds the Qt parts (signals,
actions, docks). ``mypy`` checks a window against them where one is passed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # types only: the window's state and sources live above this module's layer
    from diascan.viewstate import SourceSet, ViewerState


class SourceWindow(Protocol):
    """A window showing one visit's sources: its state, sources, selection and model."""

    state: ViewerState
    #: The shown visit's sources, ``None`` before any data.
    sources: SourceSet | None
    #: The current model (loaded lazily; ``None`` until it is) and the switcher's entries.
    model: Any
    model_specs: dict[str, Any]

    def source_ids(self) -> list[int]:
        """Ids of the shown sources (empty before any data)."""
        ...

    def displayed_source_ids(self) -> list[int]:
        """Ids in the table's displayed order (sorted and filtered)."""
        ...

    def selected_id(self) -> int | None:
        """The selected source's id, or ``None``."""
        ...

    def select_source(self, source_id: int, center: bool = True) -> bool:
        """Select (and centre on) a source; False for an unknown id."""
        ...

    def set_models(self, specs: dict[str, Any], current: str | None = None) -> None:
        """Replace the model switcher's entries and select ``current``."""
        ...
