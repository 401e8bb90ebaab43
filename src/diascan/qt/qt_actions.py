"""The window's QActions and menus, built from the action registry (:mod:`diascan.actions`).

:class:`QtActions` makes one QAction per registered action, in the registry's menus, with the
keys of the user's :class:`~diascan.session.keymap.KeyMap`. Whoever implements an action binds
it (:meth:`QtActions.bind`: the window its views, the label controller labelling and the
session's files); an action nobody bound is disabled, so its keys do nothing until then.

Keys are window-wide (``Qt.ShortcutContext.WindowShortcut``), except ``table`` and ``gallery``
actions, which work while that widget has focus. The actions of a view (``frames``,
``gallery``) are enabled only while it is shown (:meth:`QtActions.set_live`): the frames' keys
then work wherever the focus is, and are greyed out in the menus while the gallery is shown.
A triggered shortcut never moves the focus. Text fields keep
the printable keys typed into them (Qt lets a focused line edit claim them first); the search
fields (filter, go-to) leave the keys of ``over_text`` actions to their shortcuts
(:meth:`QtActions.guard_search_field`), so ``]`` blinks instead of emptying the table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PyQt6.QtCore import QEvent, QObject, Qt, pyqtSignal
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import QLineEdit, QMenu, QWidget

from diascan.actions import ACTIONS, BY_ID, MENUS
from diascan.session.keymap import KeyMap, normalize_key

log = logging.getLogger(__name__)

_CONTEXT = {
    "window": Qt.ShortcutContext.WindowShortcut,
    "table": Qt.ShortcutContext.WidgetWithChildrenShortcut,
    "frames": Qt.ShortcutContext.WindowShortcut,  # live while shown (set_live)
    "gallery": Qt.ShortcutContext.WidgetWithChildrenShortcut,
}


def load_keymap(path: Any = None) -> KeyMap:
    """The user's keys; a broken file gives the defaults, with a note saying so."""
    try:
        return KeyMap.load(path)
    except Exception as exc:  # a broken prefs file must not stop the viewer
        km = KeyMap()
        km.notes = [f"key bindings not loaded ({exc}); using the defaults"]
        return km


class QtActions(QObject):
    """Every registered action as a QAction of ``window``, in the menu bar's menus."""

    #: The keys changed (:meth:`set_keymap`): captions showing keys are redrawn.
    keys_changed = pyqtSignal()
    #: Lines about the user's key file that could not be applied as written (clashes...).
    notes_reported = pyqtSignal(list)

    def __init__(self, window: QWidget, keymap: KeyMap | None = None) -> None:
        super().__init__(window)
        self.window = window
        self.keymap = keymap if keymap is not None else load_keymap()
        self.qactions: dict[str, QAction] = {}
        self.menus: dict[str, QMenu] = {name: window.menuBar().addMenu(title)
                                        for name, title in MENUS.items()}
        self._over_text: set[str] = set()
        self._slots: dict[str, Callable[..., Any]] = {}
        #: Contexts whose view is not shown (their actions stay disabled).
        self._hidden: set[str] = set()
        for a in ACTIONS:
            act = QAction(a.title, window)
            act.setObjectName(f"action_{a.id}")
            act.setCheckable(a.checkable)
            act.setStatusTip(a.help)
            act.setShortcutContext(_CONTEXT[a.context])
            act.setEnabled(False)  # until someone binds it
            if a.menu is not None:
                if a.separator:
                    self.menus[a.menu].addSeparator()
                self.menus[a.menu].addAction(act)
            if a.context == "window":
                window.addAction(act)  # live without a menu too (labelling keys)
            self.qactions[a.id] = act
        self._apply_keys()

    def __getitem__(self, action_id: str) -> QAction:
        return self.qactions[action_id]

    def bind(self, action_id: str, slot: Callable[..., Any]) -> QAction:
        """Give ``action_id`` its handler (``slot(checked)`` for an option) and enable it; a
        handler bound before is replaced."""
        act = self.qactions[action_id]
        signal = act.toggled if BY_ID[action_id].checkable else act.triggered
        if action_id in self._slots:
            signal.disconnect()
        self._slots[action_id] = slot
        if BY_ID[action_id].checkable:
            act.toggled.connect(slot)
        else:
            act.triggered.connect(lambda _checked=False: slot())
        act.setEnabled(BY_ID[action_id].context not in self._hidden)
        return act

    def is_bound(self, action_id: str) -> bool:
        """True when someone implements ``action_id`` (it may still be off: its view hidden)."""
        return action_id in self._slots

    def set_live(self, context: str, live: bool) -> None:
        """Enable (or disable) the bound actions of ``context`` (a view shown or hidden)."""
        (self._hidden.discard if live else self._hidden.add)(context)
        for action_id, act in self.qactions.items():
            if BY_ID[action_id].context == context and action_id in self._slots:
                act.setEnabled(live)

    def attach(self, action_id: str, widget: QWidget) -> None:
        """Make a ``table``/``frames``/``gallery`` action's keys live while ``widget`` (or a
        child of it) has focus."""
        widget.addAction(self.qactions[action_id])

    def set_keymap(self, keymap: KeyMap) -> None:
        """Use ``keymap``'s keys from now on (after the key bindings dialog)."""
        self.keymap = keymap
        self._apply_keys()
        self.keys_changed.emit()

    def keys_text(self, action_id: str, sep: str = ", ") -> str:
        """The keys of ``action_id`` as shown to the user (``N, Right``)."""
        return sep.join(self.keymap.keys_for(action_id))

    def report_notes(self) -> list[str]:
        """Tell the user (``notes_reported``) what of their key file could not be applied."""
        notes = list(self.keymap.notes)
        if notes:
            for line in notes:
                log.warning("%s", line)
            self.notes_reported.emit(notes)
        return notes

    def _apply_keys(self) -> None:
        self._over_text = set()
        for action_id, act in self.qactions.items():
            keys = self.keymap.keys_for(action_id)
            act.setShortcuts([QKeySequence(k) for k in keys])
            if BY_ID[action_id].over_text:
                self._over_text.update(keys)

    # --- search fields ---------------------------------------------------------------------
    def guard_search_field(self, edit: QLineEdit) -> None:
        """Let ``over_text`` keys reach their shortcuts while ``edit`` has focus."""
        edit.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt API
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(obj, QLineEdit):
            text = QKeySequence(event.keyCombination()).toString()
            try:
                key = normalize_key(text)
            except ValueError:
                return False
            if key in self._over_text:
                event.ignore()  # not claimed by the field: the shortcut fires, nothing is typed
                return True
        return False


__all__ = ["QtActions", "load_keymap"]
