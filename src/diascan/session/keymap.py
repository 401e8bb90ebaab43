"""The user's keys: the registry's default keys (:mod:`diascan.actions`) with their overrides.

Keys are Qt key-sequence strings (``"R"``, ``"Space"``, ``"Ctrl+Z"``); they are normalised so
``"r"`` and ``"R"``, ``"ctrl+z"`` and ``"Ctrl+Z"`` compare equal. Actions are dispatched by id
(:meth:`KeyMap.action_for`), so key handling is testable without a window. The user's file,
``$XDG_CONFIG_HOME/diascan/keys.json`` (``~/.config`` without ``XDG_CONFIG_HOME``), holds only
the actions whose keys differ from the defaults (version 2); a version-1 file (every labelling
action's keys) still loads. A clash in a file is resolved and reported (:attr:`KeyMap.notes`),
never dropped silently.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from diascan.actions import BY_ID, clashes
from diascan.errors import InputError

FILE_VERSION = 2

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
    """Two actions bound to the same key where both keys are live."""


def _defaults() -> dict[str, list[str]]:
    return {a.id: list(a.keys) for a in BY_ID.values()}


def _check_action(action: str) -> None:
    if action not in BY_ID:
        raise KeyError(f"unknown action {action!r}")


def _normalized(keys: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(normalize_key(k) for k in keys))


class KeyMap:
    """Action id -> key sequences: the registry's defaults with overrides; clash-checked."""

    def __init__(self, bindings: Mapping[str, Sequence[str]] | None = None) -> None:
        """Defaults with ``bindings`` (action id -> keys) applied; raises
        :class:`KeyMapConflict` on a clash and ``KeyError`` for an unknown action."""
        self._bindings = _defaults()
        #: What :meth:`load` changed in the user's file to make it usable (shown to the user).
        self.notes: list[str] = []
        if bindings:
            self.replace_all(bindings)

    @classmethod
    def defaults(cls) -> KeyMap:
        return cls()

    def bindings(self) -> dict[str, list[str]]:
        """Every action's keys."""
        return {a: list(k) for a, k in self._bindings.items()}

    def overrides(self) -> dict[str, list[str]]:
        """The actions whose keys differ from the defaults (what the user's file stores)."""
        return {a: list(k) for a, k in self._bindings.items() if k != list(BY_ID[a].keys)}

    def keys_for(self, action: str) -> list[str]:
        _check_action(action)
        return list(self._bindings[action])

    def action_for(self, key: str) -> str | None:
        """The first action bound to ``key``, or ``None``."""
        try:
            k = normalize_key(key)
        except ValueError:
            return None
        for action, keys in self._bindings.items():
            if k in keys:
                return action
        return None

    def set_keys(self, action: str, keys: Sequence[str]) -> None:
        """Rebind ``action``; raises :class:`KeyMapConflict` if a key is used by another action."""
        self.replace_all({action: keys})

    def replace_all(self, bindings: Mapping[str, Sequence[str]]) -> None:
        """Rebind several actions at once (validated as a whole; unchanged on error)."""
        trial = dict(self._bindings)
        for action, keys in bindings.items():
            _check_action(action)
            trial[action] = _normalized(keys)
        found = clashes(trial)
        if found:
            raise KeyMapConflict(_describe(found))
        self._bindings = trial

    def conflicts(self) -> dict[str, list[str]]:
        """Key -> actions for every key bound to several actions live at once (none: a
        KeyMap never holds a clash)."""
        return clashes(self._bindings)

    # --- persistence -----------------------------------------------------------------------
    def to_json(self) -> dict:
        return {"version": FILE_VERSION, "overrides": self.overrides()}

    def save(self, path: str | Path | None = None) -> Path:
        """Write the overrides atomically (default :func:`default_keys_path`)."""
        from diascan.session.store import atomic_write_text

        path = Path(path) if path is not None else default_keys_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(self.to_json(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path | None = None) -> KeyMap:
        """Read the user's keys; a missing file gives the defaults, a broken one an
        :class:`InputError`. A usable file with problems loads with what can be kept, and
        :attr:`notes` says what was not (unknown actions, bad keys, clashes)."""
        path = Path(path) if path is not None else default_keys_path()
        if not path.exists():
            return cls()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            wanted = data["overrides"] if "overrides" in data else data["bindings"]  # v2 / v1
            if not isinstance(wanted, dict):
                raise TypeError("the key bindings are not an object")
            return cls._resolved(wanted, path.name)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(path, f"not a valid key bindings file ({exc})") from None

    @classmethod
    def _resolved(cls, wanted: Mapping[str, object], where: str) -> KeyMap:
        """The defaults with the file's ``wanted`` keys, every problem resolved and noted.

        A key the file gives to two actions is given to neither; a key the file gives to one
        action is taken from the other action whose default it is (the file's choice wins, as
        it always did for labelling keys).
        """
        km = cls()
        notes: list[str] = []
        chosen: dict[str, list[str]] = {}
        for action, keys in wanted.items():
            if action not in BY_ID:
                notes.append(f"{where}: unknown action {action!r} ignored")
                continue
            if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
                notes.append(f"{where}: keys of {action} are not a list of key names; "
                             "defaults kept")
                continue
            try:
                chosen[action] = _normalized(keys)
            except ValueError as exc:
                notes.append(f"{where}: {action}: {exc}; defaults kept")
        for key, ids in clashes(chosen).items():
            for action in ids:
                if key in chosen.get(action, []):
                    chosen[action].remove(key)
            notes.append(f"{where}: key {key} is bound to {', '.join(ids)}; given to none")
        trial = {**km._bindings, **chosen}
        for key, ids in clashes(trial).items():
            for action in ids:
                if action not in chosen:  # a default loses the key the file gave elsewhere
                    trial[action] = [k for k in trial[action] if k != key]
                    owner = next(i for i in ids if i in chosen)
                    left = ", ".join(trial[action]) or "no key"
                    notes.append(f"{where}: key {key} is bound to {owner}; "
                                 f"{BY_ID[action].title} now has {left}")
        km._bindings = trial
        km.notes = notes
        return km


def _describe(conflicts: dict[str, list[str]]) -> str:
    return "; ".join(f"key {k} is bound to {', '.join(a)}" for k, a in conflicts.items())
