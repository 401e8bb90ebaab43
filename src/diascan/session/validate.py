"""Validation of a parsed session document: the type and range of every field, a nesting limit.

:func:`validate_document` runs on every session file read (after migration to the current
schema, before any object is built), so the viewer and ``diascan export`` never meet a value of
the wrong type or out of range: the first bad field is named in one :class:`SessionError` line (``broken session file: ...``),
e.g. ``visits[0].sources[12].score: must be a number in [0, 1] or null, got 7``.

The rules follow ``docs/session-schema.md``; every file diascan writes passes them (the writer
stores non-finite numbers as ``null``). Keys this version does not know are ignored, as before.
Hand-written by design: the checks are a few dozen lines, give messages with the field's path,
and need no schema library at run time.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from diascan.errors import SessionError
from diascan.session.labels import parse_label, parse_time

#: Deepest nesting of objects and arrays accepted anywhere in a session file. The schema itself
#: needs 7 (top > visits > visit > view > frames > frame > value); free ``view``/``extra``
#: objects get room to spare, and nothing can make a reader recurse without bound.
MAX_DEPTH = 32
#: Integer ids and visit/detector numbers are int64 in every table diascan writes.
INT64 = (-(2**63), 2**63 - 1)
#: Pixel coordinates beyond this are nonsense on any detector (and overflow int32 casts).
MAX_PIXEL = 1e9

_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


class _Bad(Exception):
    """A field that fails its rule (turned into a :class:`SessionError` naming the field)."""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_depth(doc: Any, limit: int = MAX_DEPTH) -> None:
    """Raise ``ValueError`` when objects/arrays nest deeper than ``limit`` (iterative: a deep
    document cannot exhaust the stack here)."""
    stack = [(doc, 1)] if isinstance(doc, dict | list) else []
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            raise ValueError(f"nested more than {limit} levels deep")
        items = value.values() if isinstance(value, dict) else value
        stack.extend((v, depth + 1) for v in items if isinstance(v, dict | list))


# --- rules: each takes the value and returns a complaint, or None when it is fine ------------------
Rule = Callable[[Any], str | None]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def integer(low: int, high: int, nullable: bool = True) -> Rule:
    def rule(v: Any) -> str | None:
        if (v is None and nullable) or (_is_int(v) and low <= v <= high):
            return None
        return f"must be an integer in [{low}, {high}]{' or null' if nullable else ''}"

    return rule


def number(low: float = -math.inf, high: float = math.inf) -> Rule:
    rng = "" if (low, high) == (-math.inf, math.inf) else f" in [{low:g}, {high:g}]"

    def rule(v: Any) -> str | None:
        if v is None:
            return None
        if isinstance(v, int | float) and not isinstance(v, bool):
            try:
                f = float(v)
            except OverflowError:  # an integer with hundreds of digits
                f = math.inf
            if math.isfinite(f) and low <= f <= high:
                return None
        return f"must be a finite number{rng} or null"

    return rule


def text(v: Any) -> str | None:
    return None if v is None or isinstance(v, str) else "must be a string or null"


def obj(v: Any) -> str | None:
    return None if v is None or isinstance(v, dict) else "must be an object or null"


def flag(v: Any) -> str | None:
    return None if v is None or isinstance(v, bool) else "must be true or false"


def time(v: Any) -> str | None:
    if v is None or v == "":
        return None
    try:
        parse_time(v)
    except (TypeError, ValueError, AttributeError):
        return "must be an ISO 8601 time or null"
    return None


def label(v: Any) -> str | None:
    if v is not None and not isinstance(v, str):
        return "must be a label string or null"
    try:
        parse_label(v)
    except ValueError as exc:
        return str(exc)
    return None


def names(v: Any) -> str | None:
    """A list of names (pixel flag columns), or null."""
    if v is None or (isinstance(v, list) and all(isinstance(x, str) and x for x in v)):
        return None
    return "must be an array of non-empty strings or null"


def source_id(v: Any) -> str | None:
    if isinstance(v, str) or (_is_int(v) and INT64[0] <= v <= INT64[1]):
        return None
    return "must be an int64 integer or a string"


SOURCE_RULES: dict[str, Rule] = {
    "diaSourceId": integer(0, INT64[1]),
    "visit": integer(*INT64),
    "detector": integer(*INT64),
    "flags": names,
    "ra": number(-360.0, 360.0),
    "dec": number(-90.0, 90.0),
    "x": number(-MAX_PIXEL, MAX_PIXEL),
    "y": number(-MAX_PIXEL, MAX_PIXEL),
    "psfFlux": number(),
    "snr": number(),
    "score": number(0.0, 1.0),
    "original_reliability": number(),
    "status": text,
    "label": label,
    "label_time": time,
    "note": text,
    "extra": obj,
}
VISIT_RULES: dict[str, Rule] = {
    "visit": integer(*INT64),
    "detector": integer(*INT64),
    "band": text,
    "files": obj,
    "model": obj,
    "view": obj,
    "flag_columns": names,
}
TOP_RULES: dict[str, Rule] = {
    "schema_minor": integer(0, 2**31 - 1),
    "app_version": text, "created": time, "modified": time, "view_settings": obj,
}  # fmt: skip


# --- the walk ------------------------------------------------------------------------------------
def _check(where: str, value: Any, rule: Rule) -> None:
    complaint = rule(value)
    if complaint is not None:
        raise _Bad(f"{where}: {complaint}, got {_short(value)}")


def _fields(where: str, d: dict, rules: dict[str, Rule]) -> None:
    for key, rule in rules.items():
        _check(f"{where}.{key}" if where else key, d.get(key), rule)


def _file_ref(where: str, v: Any) -> None:
    if v is None or isinstance(v, str) and v and "\0" not in v:
        return
    if not isinstance(v, dict):
        raise _Bad(f"{where}: must be a file reference object or null, got {_short(v)}")
    path = v.get("path")
    if not isinstance(path, str) or not path or "\0" in path:
        raise _Bad(f"{where}.path: must be a non-empty file name, got {_short(path)}")
    sha = v.get("sha256")
    if sha is not None and not (isinstance(sha, str) and _SHA256.fullmatch(sha)):
        raise _Bad(f"{where}.sha256: must be 64 hex digits or null, got {_short(sha)}")
    _check(f"{where}.size", v.get("size"), integer(0, INT64[1]))


def _visit(where: str, v: Any) -> None:
    if not isinstance(v, dict):
        raise _Bad(f"{where}: must be an object, got {_short(v)}")
    _fields(where, v, VISIT_RULES)
    files = v.get("files") or {}
    for role in ("science", "difference", "template", "catalog"):
        _file_ref(f"{where}.files.{role}", files.get(role))
    for key in ("template_patches", "alerts"):  # arrays of file refs (alerts: schema 2)
        refs = files.get(key)
        if refs is not None and not isinstance(refs, list):
            raise _Bad(f"{where}.files.{key}: must be an array, got {_short(refs)}")
        for i, ref in enumerate(refs or []):
            _file_ref(f"{where}.files.{key}[{i}]", ref)
    model = v.get("model") or {}
    for key in ("name", "version", "path"):
        _check(f"{where}.model.{key}", model.get(key), text)
    current = v.get("current_source")
    if current is not None:
        _check(f"{where}.current_source", current, source_id)
    sources = v.get("sources")
    if not isinstance(sources, list):
        raise _Bad(f"{where}.sources: must be an array, got {_short(sources)}")
    seen: set = set()
    known_flags = set(v.get("flag_columns") or ())
    for i, s in enumerate(sources):
        here = f"{where}.sources[{i}]"
        if not isinstance(s, dict):
            raise _Bad(f"{here}: must be an object, got {_short(s)}")
        if "id" not in s:
            raise _Bad(f"{here}: has no id")
        _check(f"{here}.id", s["id"], source_id)
        _fields(here, s, SOURCE_RULES)
        unknown = [f for f in s.get("flags") or () if f not in known_flags]
        if unknown:
            raise _Bad(f"{here}.flags: {_short(unknown[0])} is not one of the visit's "
                       f"flag_columns")
        id_key = (type(s["id"]), s["id"])
        if id_key in seen:
            raise _Bad(f"{here}.id: duplicate source id {_short(s['id'])}")
        seen.add(id_key)


def validate_document(doc: Any, path: str | Path | None = None) -> None:
    """Raise :class:`SessionError` naming the first field of ``doc`` that breaks its rule.

    ``doc`` is a parsed session document of the current schema version (already migrated).
    """
    try:
        try:
            check_depth(doc)
        except ValueError as exc:
            raise _Bad(str(exc)) from None
        if not isinstance(doc, dict):
            raise _Bad("not a JSON object")
        _fields("", doc, TOP_RULES)
        settings = doc.get("view_settings") or {}
        for key in ("hide_scores", "hide_labelled"):
            _check(f"view_settings.{key}", settings.get(key), flag)
        visits = doc.get("visits")
        if not isinstance(visits, list):
            raise _Bad(f"visits: must be an array, got {_short(visits)}")
        for i, v in enumerate(visits):
            _visit(f"visits[{i}]", v)
        high = max(len(visits) - 1, 0)
        _check("current_visit", doc.get("current_visit", 0), integer(0, high, nullable=False))
    except _Bad as exc:
        raise SessionError(path, f"broken session file: {exc}") from None


__all__ = ["MAX_DEPTH", "check_depth", "validate_document"]
