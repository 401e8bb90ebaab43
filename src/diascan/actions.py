"""The viewer's actions, in one place (Qt-free): id, title, default keys, menu, help, context.

Everything a user can do from a menu or a key is an :class:`Action` in :data:`ACTIONS`. The Qt
layer builds its QActions, menus, the ``?`` sheet and the key-remapping dialog from it
(``diascan.qt.qt_actions``); the README's key table is generated from it
(:func:`markdown_table`, checked by a test); the user's key file stores only the keys that
differ from these defaults (``diascan.session.keymap``). Order is the order of menus and of
the ``?`` sheet.

Contexts say where a key works: ``window`` anywhere in the main window; ``table`` only while
the source table has focus (Return rescores there, and types elsewhere); ``frames`` and
``gallery`` for views that are never shown at once. Two actions may share a key only in
contexts that never overlap (:func:`contexts_overlap`).

Keys are Qt key-sequence strings in the canonical form of
:func:`diascan.session.keymap.normalize_key` (``"R"``, ``"Shift+N"``, ``"Ctrl+Z"``, ``"]"``).
A text field keeps the printable keys typed into it, except the keys of ``over_text`` actions
in the window's search fields (filter, go-to), which never need them (``]`` and ``[`` blink).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

#: Where an action's keys work (see the module docstring).
CONTEXTS = ("window", "table", "frames", "gallery")

#: Menus in menu-bar order: name -> title with its mnemonic.
MENUS: dict[str, str] = {"File": "&File", "View": "&View", "Score": "S&core",
                         "Session": "&Session"}


@dataclass(frozen=True)
class Action:
    """One thing the user can do."""

    id: str
    title: str  #: menu and ``?`` sheet text
    keys: tuple[str, ...] = ()  #: default keys (canonical key strings)
    menu: str | None = None  #: a name of :data:`MENUS`; None: a key (and buttons) only
    help: str = ""  #: one line for the ``?`` sheet and the README
    context: str = "window"  #: one of :data:`CONTEXTS`
    checkable: bool = False  #: an on/off option (a check mark in its menu)
    separator: bool = False  #: a menu separator goes before it
    over_text: bool = False  #: its keys work in the search fields too

    @property
    def where(self) -> str:
        """Where it is found: its menu (or "labelling keys"), and the focus it needs."""
        where = f"{self.menu} menu" if self.menu else "labelling keys"
        return where if self.context == "window" else f"{where}, {self.context} focused"

    def __post_init__(self) -> None:
        if self.context not in CONTEXTS:
            raise ValueError(f"{self.id}: unknown context {self.context!r}")
        if self.menu is not None and self.menu not in MENUS:
            raise ValueError(f"{self.id}: unknown menu {self.menu!r}")


ACTIONS: tuple[Action, ...] = (
    # File
    Action("open_images", "Open images…", ("Ctrl+O",), "File",
           "open a visit's science, difference, template and catalog files"),
    Action("open_session", "Open session…", (), "File", "open a saved inspection session"),
    Action("open_visits", "Open visits…", (), "File",
           "open a folder of visit folders (or a list of them) as one session"),
    Action("export", "Export labels (table, DS9 regions)…", (), "File",
           "write the labelled sources to a table or a DS9 region file"),
    Action("export_view", "Export view as PNG…", (), "File", "save the frames as a PNG image"),
    Action("export_plots", "Export plots as PNG…", (), "File", "save the plots as a PNG image"),
    Action("quit", "Quit", ("Ctrl+Q",), "File", "close the window (the session is saved)",
           separator=True),
    # View. Not B / Shift+B for blink as in Imviz: B labels bogus.
    Action("blink_forward", "Blink forward", ("]",), "View",
           "show the next frame (science, template, difference) in the single view",
           over_text=True),
    Action("blink_backward", "Blink backward", ("[",), "View", "show the previous frame",
           over_text=True),
    Action("toggle_single", "Single/triple frame", ("T",), "View",
           "one frame at a time, or the three side by side"),
    Action("goto", "Go to…", ("Ctrl+G",), "View", "go to a source id or RA,DEC"),
    Action("legend", "Legend", (), "View", "show the marker legend", checkable=True),
    # Score
    Action("rescore_selected", "Rescore selected", ("Return", "Enter"), "Score",
           "rescore the selected source (Return in the table)", context="table"),
    Action("rescore_all", "Rescore all", ("Ctrl+R",), "Score",
           "rescore every source with the selected model"),
    Action("sort_uncertain", "Uncertain first", (), "Score",
           "sort the table by how near 0.5 the score is (label these first)", separator=True),
    Action("sort_disagree", "Models disagree first", (), "Score",
           "sort the table by how far two models' scores differ (the previous and the "
           "current model, else the catalog's reliability and the current model)"),
    Action("improve_model", "Improve model from my labels…", (), "Score",
           "fine-tune a model on the real/bogus labels of sessions; compare it on held-out "
           "labels", separator=True),
    # Session
    Action("hide_scores", "Hide model scores", (), "Session",
           "label without seeing the model's scores", checkable=True),
    Action("hide_labelled", "Hide labelled sources", (), "Session",
           "show only the sources still to label", checkable=True),
    Action("remaining_bogus", "Label all remaining as bogus…", (), "Session",
           "label every unlabelled source of this visit bogus (asks first)"),
    Action("next_visit", "Next visit", ("Shift+N",), "Session", "show the next visit"),
    Action("cheat_sheet", "Keyboard shortcuts…", ("?",), "Session",
           "list every action and its keys", separator=True),
    Action("key_bindings", "Key bindings…", (), "Session", "change the keys of any action"),
    # Labelling: keys and the Labels panel's buttons
    Action("label_real", "Label real", ("R",), help="label the selected source real"),
    Action("label_bogus", "Label bogus", ("B",), help="label the selected source bogus"),
    Action("label_unsure", "Label unsure", ("U",), help="label the selected source unsure"),
    Action("clear_label", "Clear label", ("0",), help="remove the selected source's label"),
    Action("next", "Next source", ("N", "Right"), help="select the next source in the table"),
    Action("previous", "Previous source", ("P", "Left"),
           help="select the previous source in the table"),
    Action("next_unlabelled", "Next unlabelled source", ("Space",),
           help="select the next source without a label"),
    Action("edit_note", "Edit note", ("E",), help="type a note on the selected source"),
    Action("undo", "Undo last label", ("Ctrl+Z",), help="undo the last label change"),
)

BY_ID: dict[str, Action] = {a.id: a for a in ACTIONS}


def action(action_id: str) -> Action:
    """The registered action ``action_id``; ``KeyError`` naming it when unknown."""
    try:
        return BY_ID[action_id]
    except KeyError:
        raise KeyError(f"unknown action {action_id!r}") from None


def contexts_overlap(a: str, b: str) -> bool:
    """True when keys of contexts ``a`` and ``b`` can be live at once (then they must differ)."""
    return a == b or "window" in (a, b)


def clashes(bindings: Mapping[str, Iterable[str]],
            actions: Mapping[str, Action] = BY_ID) -> dict[str, list[str]]:
    """Key -> action ids, for every key bound to several actions whose contexts overlap."""
    users: dict[str, list[str]] = {}
    for action_id, keys in bindings.items():
        for k in dict.fromkeys(keys):
            users.setdefault(k, []).append(action_id)
    out: dict[str, list[str]] = {}
    for key, ids in users.items():
        hit = [i for i in ids if any(j != i and contexts_overlap(actions[i].context,
                                                                actions[j].context)
                                     for j in ids)]
        if hit:
            out[key] = hit
    return out


def markdown_table(bindings: Mapping[str, Iterable[str]] | None = None) -> str:
    """The key table of the README: every action with a key, its keys and what it does."""
    rows = ["| keys | action | where |", "|---|---|---|"]
    for a in ACTIONS:
        keys = list(bindings[a.id]) if bindings is not None else list(a.keys)
        if not keys:
            continue
        shown = " ".join(f"`{k}`" for k in keys)
        rows.append(f"| {shown} | {a.title.rstrip('…')}: {a.help} | {a.where} |")
    return "\n".join(rows)


README_START = "<!-- keys: generated by `python -m diascan.actions README.md` -->"
README_END = "<!-- keys: end -->"


def with_readme_table(text: str) -> str:
    """``text`` (the README) with its generated key table replaced by the current one."""
    pattern = re.compile(re.escape(README_START) + r".*?" + re.escape(README_END), re.S)
    if not pattern.search(text):
        raise ValueError(f"no key table between {README_START!r} and {README_END!r}")
    block = f"{README_START}\n{markdown_table()}\n{README_END}"
    return pattern.sub(lambda _m: block, text)


def main(argv: list[str] | None = None) -> int:
    """``python -m diascan.actions README.md``: rewrite the README's key table in place."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m diascan.actions README.md", file=sys.stderr)
        return 2
    path = Path(args[0])
    path.write_text(with_readme_table(path.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


__all__ = ["ACTIONS", "BY_ID", "CONTEXTS", "MENUS", "Action", "action", "clashes",
           "contexts_overlap", "markdown_table", "with_readme_table"]

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
