"""The viewer's actions, in one place (Qt-free): id, title, default keys, menu, help, context.

Everything a user can do from a menu or a key is an :class:`Action` in :data:`ACTIONS`. The Qt
layer builds its QActions, menus, the ``?`` sheet and the key-remapping dialog from it
(``diascan.qt.qt_actions``); the README's key table is generated from it
(:func:`markdown_table`, checked by a test); the user's key file stores only the keys that
differ from these defaults (``diascan.session.keymap``). Order is the order of menus and of
the ``?`` sheet.

Contexts say where a key works: ``window`` anywhere in the main window; ``table`` only while
the source table has focus (Return rescores there, and types elsewhere); ``frames`` while the
frames are shown, wherever the focus is (the table's too); ``gallery`` while the gallery is
shown and has the focus (its arrows, pages and Return would take the table's keys away). The
frames and the gallery are never shown at once. Two actions may share a key only in contexts
that never overlap (:func:`contexts_overlap`): ``+`` zooms the frames or the gallery's tiles.

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

#: What :attr:`Action.where` adds for each context.
_CONTEXT_WHERE = {"window": "", "table": ", table focused", "frames": ", frames shown",
                  "gallery": ", gallery focused"}

#: Menus in menu-bar order: name -> title with its mnemonic.
MENUS: dict[str, str] = {"File": "&File", "View": "&View", "Gallery": "&Gallery",
                         "Source": "S&ource", "Score": "S&core", "Session": "&Session"}


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
        return where + _CONTEXT_WHERE[self.context]

    def __post_init__(self) -> None:
        if self.context not in CONTEXTS:
            raise ValueError(f"{self.id}: unknown context {self.context!r}")
        if self.menu is not None and self.menu not in MENUS:
            raise ValueError(f"{self.id}: unknown menu {self.menu!r}")


ACTIONS: tuple[Action, ...] = (
    # File
    Action("open_images", "Open images…", ("Ctrl+O",), "File",
           "open a visit's science, difference, template and catalog files"),
    Action("open_alerts", "Open alerts…", ("Ctrl+Shift+O",), "File",
           "open Rubin or ZTF alert files (Avro, broker Parquet tables) in the gallery"),
    Action("open_session", "Open session…", (), "File", "open a saved inspection session"),
    Action("open_visits", "Open visits…", (), "File",
           "open a folder of visit folders (or a list of them) as one session"),
    Action("save_session_as", "Save session as…", ("Ctrl+Shift+S",), "File",
           "save the session (labels, view, visits) to another file; it is saved there from then "
           "on (the way out when its file cannot be written)", separator=True),
    Action("export", "Export labels (table, DS9 regions)…", (), "File",
           "write the labelled sources to a table or a DS9 region file"),
    Action("export_view", "Export view as PNG…", (), "File", "save the frames as a PNG image"),
    Action("export_plots", "Export plots as PNG…", (), "File", "save the plots as a PNG image"),
    Action("file_info", "File info…", ("Ctrl+I",), "File",
           "what was read from each loaded file: layout, HDUs, mask planes, WCS, notes",
           separator=True),
    Action("quit", "Quit", ("Ctrl+Q",), "File",
           "close the window (the session is saved; if it cannot be, you are asked first)",
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
    Action("gallery", "Gallery", ("G",), "View",
           "the gallery of triplets instead of the frames (Enter opens a tile in the frames)",
           checkable=True, separator=True),
    Action("fit", "Zoom to fit", ("F",), "View", "show the whole image in the frames",
           context="frames", separator=True),
    Action("zoom_in", "Zoom in", ("+", "="), "View", "zoom the frames in (x2)",
           context="frames"),
    Action("zoom_out", "Zoom out", ("-",), "View", "zoom the frames out (x2)",
           context="frames"),
    Action("zoom_source", "Zoom to the source", ("Z",), "View",
           "centre the frames on the selected source at the zoom-to-source scale",
           context="frames"),
    Action("zoom_source_scale", "Zoom-to-source scale…", (), "View",
           "how many screen pixels an image pixel takes when zooming to a source"),
    Action("markers", "Markers", ("M",), "View",
           "show the source markers (hide them to see the pixels under them)",
           context="frames", checkable=True),
    Action("legend", "Legend", (), "View", "show the marker legend", checkable=True),
    Action("palette", "Colour-blind-safe colours", (), "View",
           "Okabe-Ito colours for statuses and labels in the frames, gallery, table and region "
           "exports (off: the classic colours)", checkable=True),
    Action("stamps_follow_frames", "Stamps follow the frames' stretch", ("Shift+T",), "View",
           "the toolbar's stretch and limits on every stamp (off: each stamp's own zscale)",
           checkable=True, separator=True),
    Action("larger_stamps", "Larger stamps", (">",), "View",
           "more sky around each source in the gallery and the stamp dock"),
    Action("smaller_stamps", "Smaller stamps", ("<",), "View",
           "less sky around each source in the gallery and the stamp dock"),
    # Gallery: while it is shown and has the focus (r / b / u, n / p, Left / Right are the
    # labelling keys, which work there too)
    Action("gallery.up", "Tile above", ("Up",), "Gallery", "select the tile above",
           context="gallery"),
    Action("gallery.down", "Tile below", ("Down",), "Gallery", "select the tile below",
           context="gallery"),
    Action("gallery.next_page", "Next page", ("PgDown",), "Gallery",
           "the next page of tiles", context="gallery"),
    Action("gallery.previous_page", "Previous page", ("PgUp",), "Gallery",
           "the previous page of tiles", context="gallery"),
    Action("gallery.first", "First tile", ("Home",), "Gallery", "select the first tile",
           context="gallery"),
    Action("gallery.last", "Last tile", ("End",), "Gallery", "select the last tile",
           context="gallery"),
    Action("gallery.open", "Open in the frames", ("Return", "Enter"), "Gallery",
           "show the selected source in the linked frames, centred (or double click)",
           context="gallery"),
    Action("gallery.enlarge", "Enlarge the tile", ("Z",), "Gallery",
           "show the selected tile 3x larger, in place", context="gallery", separator=True),
    Action("gallery.enlarge_on_hover", "Enlarge tiles under the mouse", ("Shift+Z",),
           "Gallery", "the tile under the mouse is shown 3x larger", context="gallery"),
    Action("gallery.zoom_in", "Larger tiles", ("+", "="), "Gallery",
           "more screen pixels per image pixel: fewer, larger tiles", context="gallery"),
    Action("gallery.zoom_out", "Smaller tiles", ("-",), "Gallery",
           "fewer screen pixels per image pixel: more tiles on a page", context="gallery"),
    # Source: the selected source (and the right-click menu of a source)
    Action("copy_position", "Copy position", (), "Source",
           "copy the source's RA, Dec (degrees and sexagesimal) to the clipboard"),
    Action("open_legacy_survey", "Open in the Legacy Survey viewer", (), "Source",
           "the source's position in the Legacy Survey sky viewer, in the browser"),
    Action("open_simbad", "Search SIMBAD", (), "Source",
           "SIMBAD's objects near the source, in the browser"),
    Action("open_tns", "Search TNS", (), "Source",
           "the Transient Name Server's objects near the source, in the browser"),
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
    Action("prefetch_settings", "Prefetch…", (), "Session",
           "how many next visits are read, warped and detected ahead (0-3) and their memory "
           "budget"),
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
    """True when keys of contexts ``a`` and ``b`` can be live at once (then they must differ):
    ``window`` with all; ``frames`` keys work with the table focused; the table and the gallery
    are never focused at once, nor the frames and the gallery shown at once."""
    return a == b or "window" in (a, b) or {a, b} == {"frames", "table"}


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
