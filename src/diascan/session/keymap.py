"""Keyboard bindings for labelling: action name -> key sequences, persisted as JSON.

Keys are Qt key-sequence strings (``"R"``, ``"Space"``, ``"Ctrl+Z"``); they are normalised so
``"r"`` and ``"R"``, ``"ctrl+z"`` and ``"Ctrl+Z"`` compare equal. Actions are dispatched by name
(:meth:`KeyMap.action_for`), so key handling is testable without a window. The user's bindings
live in ``$XDG_CONFIG_HOME/diascan/keys.json`` (``~/.config`` without ``XDG_CONFIG_HOME``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from diascan.errors import InputError

#: Action name -> (description, default keys). Order is the cheat-sheet order.
ACTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "label_real": ("Label real", ("R",)),
    "label_bogus": ("Label bogus", ("B",)),
    "label_unsure": ("Label unsure", ("U",)),
    "clear_label": ("Clear label", ("0",)),
    "next": ("Next source", ("N", "Right")),
    "previous": ("Previous source", ("P", "Left")),
    "next_unlabelled": ("Next unlabelled source", ("Space",)),
    "edit_note": ("Edit note", ("E",)),
    "next_visit": ("Next visit", ("Shift+N",)),
    "undo": ("Undo last label", ("Ctrl+Z",)),
    "cheat_sheet": ("Show keyboard shortcuts", ("?",)),
}

_MODIFIERS = ("Ctrl", "Alt", "Shift", "Meta")
_NAMED = {
    "space": "Space", "right": "Right", "left": "Left", "up": "Up", "down": "Down",
    "return": "Return", "enter": "Enter", "tab": "Tab", "backspace": "Backspace",
    "delete": "Del", "del": "Del", "esc": "Esc", "escape": "Esc", "home": "Home", "end": "End",
    "pgup": "PgUp", "pageup": "PgUp", "pgdown": "PgDown", "pagedown": "PgDown", "ins": "Ins",
}


def config_dir() -> Path:
    """``$XDG_CONFIG_HOME/diascan`` or ``~/.config/diascan`` (not created)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "diascan"


def default_keys_path() -> Path:
    return config_dir() / "keys.json"


def normalize_key(key: str) -> str:
    """Canonical form of a key-sequence string; raises ``ValueError`` when empty or malformed."""
    text = key.strip()
    if not text:
        raise ValueError("empty key")
    if text == "+":
        return "+"
    parts = text.split("+")
    if parts[-1] == "":  # "Ctrl++"
        parts = parts[:-2] + ["+"]
    *mods, base = parts
    canon_mods = []
    for m in mods:
        m2 = {"control": "Ctrl", "cmd": "Meta", "option": "Alt"}.get(m.lower(), m.capitalize())
        if m2 not in _MODIFIERS:
            raise ValueError(f"unknown modifier {m!r} in {key!r}")
        canon_mods.append(m2)
    if len(base) == 1:
        base = base.upper()
    elif base.lower() in _NAMED:
        base = _NAMED[base.lower()]
    elif base.upper().startswith("F") and base[1:].isdigit():
        base = base.upper()
    else:
        raise ValueError(f"unknown key {base!r} in {key!r}")
    ordered = [m for m in _MODIFIERS if m in canon_mods]
    return "+".join([*ordered, base])


class KeyMapConflict(ValueError):
    """Two actions bound to the same key."""


class KeyMap:
    """Action -> key sequences, with conflict checks and JSON persistence."""

    def __init__(self, bindings: dict[str, list[str]] | None = None) -> None:
        self._bindings: dict[str, list[str]] = {
            name: list(default) for name, (_, default) in ACTIONS.items()
        }
        if bindings:
            for action, keys in bindings.items():
                self._check_action(action)
                self._bindings[action] = [normalize_key(k) for k in keys]
        conflicts = self.conflicts()
        if conflicts:
            raise KeyMapConflict(_describe(conflicts))

    @classmethod
    def defaults(cls) -> KeyMap:
        return cls()

    def bindings(self) -> dict[str, list[str]]:
        return {a: list(k) for a, k in self._bindings.items()}

    def keys_for(self, action: str) -> list[str]:
        self._check_action(action)
        return list(self._bindings[action])

    def action_for(self, key: str) -> str | None:
        """The action bound to ``key`` or ``None``."""
        try:
            k = normalize_key(key)
        except ValueError:
            return None
        for action, keys in self._bindings.items():
            if k in keys:
                return action
        return None

    def set_keys(self, action: str, keys: list[str]) -> None:
        """Rebind ``action``; raises :class:`KeyMapConflict` if a key is used by another action."""
        self._check_action(action)
        new = [normalize_key(k) for k in keys]
        trial = dict(self._bindings)
        trial[action] = new
        conflicts = _conflicts(trial)
        if conflicts:
            raise KeyMapConflict(_describe(conflicts))
        self._bindings = trial

    def replace_all(self, bindings: dict[str, list[str]]) -> None:
        """Rebind several actions at once (validated as a whole; unchanged on error)."""
        trial = dict(self._bindings)
        for action, keys in bindings.items():
            self._check_action(action)
            trial[action] = [normalize_key(k) for k in keys]
        conflicts = _conflicts(trial)
        if conflicts:
            raise KeyMapConflict(_describe(conflicts))
        self._bindings = trial

    def conflicts(self) -> dict[str, list[str]]:
        """Key -> actions for every key bound to more than one action."""
        return _conflicts(self._bindings)

    # --- persistence -----------------------------------------------------------------------
    def to_json(self) -> dict:
        return {"version": 1, "bindings": self.bindings()}

    def save(self, path: str | Path | None = None) -> Path:
        """Write the bindings atomically (default :func:`default_keys_path`)."""
        from diascan.session.store import atomic_write_text

        path = Path(path) if path is not None else default_keys_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(self.to_json(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path | None = None) -> KeyMap:
        """Read bindings; a missing file gives the defaults, a broken one an :class:`InputError`."""
        path = Path(path) if path is not None else default_keys_path()
        if not path.exists():
            return cls()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            bindings = data["bindings"]
            if not isinstance(bindings, dict):
                raise TypeError("bindings is not an object")
            known = {a: list(k) for a, k in bindings.items() if a in ACTIONS}
            return cls(known)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(path, f"not a valid key bindings file ({exc})") from None

    def _check_action(self, action: str) -> None:
        if action not in ACTIONS:
            raise KeyError(f"unknown action {action!r}")


def _conflicts(bindings: dict[str, list[str]]) -> dict[str, list[str]]:
    users: dict[str, list[str]] = {}
    for action, keys in bindings.items():
        for k in dict.fromkeys(keys):
            users.setdefault(k, []).append(action)
    return {k: a for k, a in users.items() if len(a) > 1}


def _describe(conflicts: dict[str, list[str]]) -> str:
    return "; ".join(f"key {k} is bound to {', '.join(a)}" for k, a in conflicts.items())
