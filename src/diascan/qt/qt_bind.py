"""Two-way bindings between Qt widgets and fields of the evented state (``diascan.viewstate``).

A :class:`Binding` makes a widget show one field of a psygnal-evented object and writes the
user's changes back; :meth:`Binding.retarget` moves it to another object of the same kind (the
toolbar's stretch box follows the frame chosen beside it). No ``blockSignals``: a widget whose
value already shows the field writes nothing back, Qt emits a widget's change signal only when
its value changes, and psygnal a field's signal only when the field changes, so every change
ends after at most one round trip. A value the state refuses (``ValueError``) puts the widget
back to the field's value.

Hand-written because neither psygnal nor superqt binds widgets to plain evented objects
(magicgui does, for its own widgets only).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PyQt6.QtWidgets import QCheckBox, QComboBox, QSlider

from diascan.display import plane_is_on, planes_with


class Binding:
    """Widget <-> ``getattr(target, field)``.

    ``show(value)`` puts a widget value on the widget; ``changed`` is the widget's change
    signal (emitting the widget value); ``to_widget(value)`` / ``to_state(widget_value,
    old)`` convert between the field's value and the widget's. psygnal holds the binding's
    slot weakly: given ``widget``, the widget's ``destroyed`` connection keeps the binding alive
    as long as the widget (and disconnects it then); else keep a reference to it.
    """

    def __init__(
        self,
        target: Any,
        field: str,
        show: Callable[[Any], None],
        changed: Any,
        to_widget: Callable[[Any], Any] = lambda v: v,
        to_state: Callable[[Any, Any], Any] = lambda widget_value, old: widget_value,
        widget: Any = None,
    ) -> None:
        self.field = field
        self.target: Any = None
        self._show = show
        self._to_widget = to_widget
        self._to_state = to_state
        self._shown: Any = object()  # the widget value last shown or read
        changed.connect(self._from_widget)
        if widget is not None:  # the widget keeps its binding; when it goes, so does the link
            widget.destroyed.connect(lambda *_: self.disconnect())
        self.retarget(target)

    def retarget(self, target: Any) -> None:
        """Bind to ``target`` (an object of the same kind) instead; the widget shows its value."""
        self.disconnect()
        self.target = target
        target.events[self.field].connect(self._from_state)
        self._from_state(getattr(target, self.field))

    def disconnect(self) -> None:
        if self.target is not None:
            self.target.events[self.field].disconnect(self._from_state, missing_ok=True)
            self.target = None

    def _from_state(self, value: Any) -> None:
        shown = self._to_widget(value)
        self._shown = shown
        self._show(shown)

    def _from_widget(self, widget_value: Any) -> None:
        if self.target is None or widget_value == self._shown:
            return  # the widget shows the field already (it is being set from the state)
        old = getattr(self.target, self.field)
        try:
            setattr(self.target, self.field, self._to_state(widget_value, old))
        except ValueError:
            self._from_state(getattr(self.target, self.field))  # refused: show the field again
            return
        self._shown = widget_value


def bind_combo(combo: QComboBox, target: Any, field: str) -> Binding:
    """A combo box of texts <-> a text field."""
    return Binding(target, field, combo.setCurrentText, combo.currentTextChanged, widget=combo)


def bind_check(check: QCheckBox, target: Any, field: str) -> Binding:
    """A check box <-> a boolean field."""
    return Binding(target, field, check.setChecked, check.toggled, bool, widget=check)


def bind_plane(check: QCheckBox, target: Any, field: str, plane: str) -> Binding:
    """A check box <-> whether mask plane ``plane`` is in a frozenset field, under either
    spelling (:func:`diascan.display.plane_is_on`: ``SAT`` ticks a ``SATURATED`` box too)."""
    return Binding(
        target, field, check.setChecked, check.toggled,
        to_widget=lambda names: plane_is_on(plane, names),
        to_state=lambda on, names: planes_with(names, plane, on),
        widget=check,
    )  # fmt: skip


def bind_slider(slider: QSlider, target: Any, field: str, scale: float) -> Binding:
    """An integer slider <-> a number field, ``slider value = round(field * scale)``."""
    return Binding(
        target, field, slider.setValue, slider.valueChanged,
        to_widget=lambda v: round(v * scale), to_state=lambda v, _old: v / scale,
        widget=slider,
    )  # fmt: skip


__all__ = ["Binding", "bind_check", "bind_combo", "bind_plane", "bind_slider"]
