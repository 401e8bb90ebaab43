"""The action registry (Qt-free): valid, clash-free defaults, the README's generated key table,
and the user's key file (only overrides stored, old files load, clashes resolved and said)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diascan.actions import ACTIONS, BY_ID, MENUS, clashes, markdown_table, with_readme_table
from diascan.session.keymap import KeyMap, KeyMapConflict, default_keys_path, normalize_key

REPO = Path(__file__).resolve().parents[1]


def test_registry_is_valid_and_its_defaults_never_clash():
    assert len(BY_ID) == len(ACTIONS)  # ids unique
    assert clashes({a.id: a.keys for a in ACTIONS}) == {}
    for a in ACTIONS:
        assert a.title and a.help, a.id
        assert a.menu is None or a.menu in MENUS
        assert all(normalize_key(k) == k for k in a.keys), a.id  # stored canonical
    # the actions the old keymap knew are all still there, with their old default keys
    old = {"label_real": ("R",), "label_bogus": ("B",), "label_unsure": ("U",),
           "clear_label": ("0",), "next": ("N", "Right"), "previous": ("P", "Left"),
           "next_unlabelled": ("Space",), "edit_note": ("E",), "next_visit": ("Shift+N",),
           "undo": ("Ctrl+Z",), "cheat_sheet": ("?",)}
    assert {k: BY_ID[k].keys for k in old} == old


def test_contexts_decide_what_clashes():
    # Return in the table and on a window action would both be live in the table: a clash
    assert clashes({"rescore_selected": ["Return"], "quit": ["Return"]})
    # two window actions: a clash; none when one of them has no key
    assert clashes({"label_real": ["X"], "toggle_single": ["X"]}) == {
        "X": ["label_real", "toggle_single"]}
    assert clashes({"label_real": ["X"], "toggle_single": []}) == {}


def test_readme_key_table_is_the_generated_one():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert with_readme_table(text) == text, "run `python -m diascan.actions README.md`"
    table = markdown_table()
    for a in ACTIONS:  # every action with a key has its row
        assert (f"| {a.title.rstrip('…')}: " in table) == bool(a.keys), a.id
    with pytest.raises(ValueError, match="no key table"):
        with_readme_table("no markers here")


def test_keymap_stores_only_overrides(tmp_path):
    km = KeyMap()
    assert km.overrides() == {} and km.keys_for("blink_forward") == ["]"]
    km.set_keys("label_real", ["1"])
    km.set_keys("blink_forward", ["]", "."])
    path = km.save(tmp_path / "keys.json")
    data = json.loads(path.read_text())
    assert data == {"version": 2, "overrides": {"blink_forward": ["]", "."],
                                                "label_real": ["1"]}}
    back = KeyMap.load(path)
    assert back.bindings() == km.bindings() and back.notes == []
    back.set_keys("label_real", ["R"])  # back to the default: no longer stored
    assert "label_real" not in back.overrides()


def test_version_1_keymap_file_still_loads(tmp_path):
    """The old file held every labelling action's keys, defaults included."""
    path = tmp_path / "keys.json"
    old = {a: list(BY_ID[a].keys) for a in ("label_real", "label_bogus", "label_unsure",
                                            "clear_label", "next", "previous", "undo")}
    old["label_real"] = ["1"]
    path.write_text(json.dumps({"version": 1, "bindings": old}))
    km = KeyMap.load(path)
    assert km.keys_for("label_real") == ["1"] and km.keys_for("label_bogus") == ["B"]
    assert km.overrides() == {"label_real": ["1"]} and km.notes == []


def test_clashes_in_a_file_are_resolved_and_reported(tmp_path):
    path = tmp_path / "keys.json"
    # T is toggle_single's default (the old viewer silently took it from the window);
    # 2 is given to two actions; one action is unknown; one key is not a key
    path.write_text(json.dumps({"version": 1, "bindings": {
        "label_real": ["T"], "label_bogus": ["2"], "label_unsure": ["2"],
        "no_such_action": ["X"], "clear_label": ["Hyper+Q"]}}))
    km = KeyMap.load(path)
    assert km.conflicts() == {}
    assert km.keys_for("label_real") == ["T"] and km.keys_for("toggle_single") == []
    assert km.keys_for("label_bogus") == [] and km.keys_for("label_unsure") == []
    assert km.keys_for("clear_label") == ["0"]
    text = "\n".join(km.notes)
    assert "key T is bound to label_real; Single/triple frame now has no key" in text
    assert "key 2 is bound to label_bogus, label_unsure; given to none" in text
    assert "unknown action 'no_such_action'" in text and "clear_label" in text
    assert len(km.notes) == 4


def test_programmatic_clash_is_refused_and_leaves_the_map_alone():
    km = KeyMap()
    with pytest.raises(KeyMapConflict, match=r"key \] is bound to blink_forward, label_real"):
        km.replace_all({"label_real": ["]"]})
    assert km.keys_for("label_real") == ["R"]
    with pytest.raises(KeyError, match="unknown action"):
        km.set_keys("nope", ["X"])


def test_default_path_follows_xdg(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert default_keys_path() == tmp_path / "diascan" / "keys.json"
    assert KeyMap.load().overrides() == {}
