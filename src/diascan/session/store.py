"""Reading and writing session files (JSON, versioned), atomically; autosave on every change.

Writes go to a temporary file in the same folder, which is flushed and ``fsync``-ed, then moved
over the target with :func:`os.replace` and the folder is ``fsync``-ed: a crash or kill at any
moment leaves either the previous or the new file, never a broken one. Older schema versions are
upgraded on load by the functions in :data:`MIGRATIONS`. The format is described in
``docs/session-schema.md``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from diascan import __version__
from diascan.errors import SessionError
from diascan.session.labels import LabelRecord, format_time, parse_label, parse_time, utc_now
from diascan.session.model import (
    SCHEMA_VERSION,
    SOURCE_FIELDS,
    FileRef,
    Session,
    SourceRecord,
    VisitEntry,
)

FORMAT_NAME = "diascan-session"

#: ``MIGRATIONS[v]`` turns a version-``v`` document (dict) into a version ``v + 1`` document.
MIGRATIONS: dict[int, Callable[[dict], dict]] = {}


def register_migration(from_version: int):
    """Decorator registering a migration from ``from_version`` to ``from_version + 1``."""

    def deco(fn: Callable[[dict], dict]) -> Callable[[dict], dict]:
        MIGRATIONS[from_version] = fn
        return fn

    return deco


# --- atomic write ------------------------------------------------------------------------------
def atomic_write_text(path: str | Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically (temp file + fsync + rename + dir fsync)."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    if os.name != "posix":  # directories cannot be opened for fsync on Windows
        return
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


# --- to / from JSON ----------------------------------------------------------------------------
def _jsonable(value: Any) -> Any:
    """Plain JSON values from numpy scalars/arrays, paths, tuples; NaN/inf become ``None``."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def _ref(ref: FileRef | None) -> dict | None:
    return None if ref is None else ref.to_json()


def session_to_json(session: Session) -> dict[str, Any]:
    """The session as a JSON-ready dict of the current schema version."""
    visits = []
    for v in session.visits:
        sources = []
        for s in v.sources:
            rec = v.labels.record(s.id)
            d = {f: _scalar(getattr(s, f)) for f in SOURCE_FIELDS}
            d["label"] = None if rec.label is None else rec.label.value
            d["label_time"] = format_time(rec.time)
            d["note"] = rec.note
            if s.extra:
                d["extra"] = _jsonable(s.extra)
            sources.append(d)
        visits.append(
            {
                "visit": v.visit,
                "detector": v.detector,
                "band": v.band,
                "files": {
                    "science": _ref(v.science),
                    "difference": _ref(v.difference),
                    "template": _ref(v.template),
                    "template_patches": [p.to_json() for p in v.template_patches],
                    "catalog": _ref(v.catalog),
                },
                "model": {"name": v.model_name, "version": v.model_version,
                          "path": v.model_path},
                "view": _jsonable(v.view),
                "current_source": _scalar(v.current_source),
                "sources": sources,
            }
        )
    return {
        "format": FORMAT_NAME,
        "schema_version": SCHEMA_VERSION,
        "app_version": __version__,
        "created": session.created,
        "modified": session.modified,
        "current_visit": int(session.current_visit),
        "view_settings": _jsonable(session.view_settings),
        "visits": visits,
    }


def _scalar(value: Any) -> Any:
    """A source field as a JSON scalar (fast path of :func:`_jsonable`)."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps_session(doc: dict[str, Any]) -> str:
    """JSON text of a session document: indented, one source per line.

    Hand-assembled because ``json.dumps(indent=...)`` uses the slow pure-Python encoder (70 ms
    for 5000 sources against ~15 ms here), and this runs on every label change.
    """
    enc = json.JSONEncoder(allow_nan=False, ensure_ascii=False, separators=(", ", ": "))
    visits = []
    for v in doc["visits"]:
        head = {k: val for k, val in v.items() if k != "sources"}
        lines = ",\n".join("    " + enc.encode(s) for s in v["sources"])
        body = json.dumps(head, indent=2, allow_nan=False, ensure_ascii=False)
        body = body[:-1].rstrip() + ',\n  "sources": [\n' + lines + "\n  ]\n}"
        visits.append(textwrap.indent(body, "  "))
    head = {k: val for k, val in doc.items() if k != "visits"}
    top = json.dumps(head, indent=1, allow_nan=False, ensure_ascii=False)
    return top[:-1].rstrip() + ',\n "visits": [\n' + ",\n".join(visits) + "\n ]\n}\n"


def _opt_ref(d: Any) -> FileRef | None:
    return None if d is None else FileRef.from_json(d)


def session_from_json(doc: dict[str, Any], path: str | Path | None = None) -> Session:
    """Build a :class:`Session` from a parsed document, migrating old versions first."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
        raise SessionError(path, "not a diascan session file")
    version = doc.get("schema_version")
    if not isinstance(version, int) or version < 1:
        raise SessionError(path, f"bad schema_version {version!r}")
    if version > SCHEMA_VERSION:
        raise SessionError(
            path,
            f"schema version {version} is newer than this diascan supports ({SCHEMA_VERSION}); "
            "update diascan",
        )
    while version < SCHEMA_VERSION:
        if version not in MIGRATIONS:
            raise SessionError(path, f"no migration from schema version {version}")
        doc = MIGRATIONS[version](doc)
        version += 1
        doc["schema_version"] = version
    try:
        visits = [_visit_from_json(v) for v in doc["visits"]]
        current = int(doc.get("current_visit", 0))
        if visits and not 0 <= current < len(visits):
            raise ValueError(f"current_visit {current} out of range")
        return Session(
            visits=visits,
            current_visit=current,
            view_settings=dict(doc.get("view_settings") or {}),
            created=doc.get("created"),
            modified=doc.get("modified"),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SessionError(path, f"broken session file ({type(exc).__name__}: {exc})") from None


def _visit_from_json(d: dict[str, Any]) -> VisitEntry:
    files = d.get("files") or {}
    model = d.get("model") or {}
    sources, records = [], {}
    for s in d["sources"]:
        src = SourceRecord(
            **{f: s.get(f) for f in SOURCE_FIELDS if f != "status"},
            status=s.get("status") or "",
            extra=dict(s.get("extra") or {}),
        )
        sources.append(src)
        label = parse_label(s.get("label"))
        rec = LabelRecord(label, parse_time(s.get("label_time")), s.get("note") or "")
        if rec != LabelRecord():
            records[src.id] = rec
    return VisitEntry.create(
        sources,
        science=_opt_ref(files.get("science")),
        difference=_opt_ref(files.get("difference")),
        template=_opt_ref(files.get("template")),
        template_patches=[FileRef.from_json(p) for p in files.get("template_patches") or []],
        catalog=_opt_ref(files.get("catalog")),
        records=records,
        visit=d.get("visit"),
        detector=d.get("detector"),
        band=d.get("band"),
        model_name=model.get("name"),
        model_version=model.get("version"),
        model_path=model.get("path"),
        view=dict(d.get("view") or {}),
        current_source=d.get("current_source"),
    )


# --- files -------------------------------------------------------------------------------------
def save_session(session: Session, path: str | Path) -> Path:
    """Write ``session`` to ``path`` atomically; sets ``created``/``modified``."""
    path = Path(path)
    now = format_time(utc_now())
    session.created = session.created or now
    session.modified = now
    text = dumps_session(session_to_json(session))
    try:
        atomic_write_text(path, text)
    except OSError as exc:
        raise SessionError(path, f"cannot write session file ({exc.strerror or exc})") from None
    return path


def load_session(path: str | Path) -> Session:
    """Read a session file; raises :class:`SessionError` for a missing, broken or too-new file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SessionError(path, "session file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SessionError(path, f"cannot read session file ({exc})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SessionError(path, f"broken session file (invalid JSON: {exc})") from None
    return session_from_json(doc, path)


class Autosave:
    """Saves a session to ``path`` after every label change of any of its visits.

    Errors go to ``on_error(SessionError)`` when given (the GUI shows them), else they raise.
    """

    def __init__(
        self,
        session: Session,
        path: str | Path,
        on_error: Callable[[SessionError], None] | None = None,
        before_save: Callable[[], None] | None = None,
    ) -> None:
        self.session = session
        self.path = Path(path)
        self.on_error = on_error
        #: Called before each save (the GUI copies its view settings into the session).
        self.before_save = before_save
        self.saves = 0
        self.last_error: SessionError | None = None
        self._stores = [v.labels for v in session.visits]
        for store in self._stores:
            store.add_listener(self._changed)

    def _changed(self, _ids) -> None:
        self.save()

    def save(self) -> bool:
        """Save now; ``True`` on success."""
        try:
            if self.before_save is not None:
                self.before_save()
            save_session(self.session, self.path)
        except SessionError as exc:
            self.last_error = exc
            if self.on_error is None:
                raise
            self.on_error(exc)
            return False
        self.saves += 1
        self.last_error = None
        return True

    def watch(self, visit: VisitEntry) -> None:
        """Also save on changes of ``visit`` (one added to the session after construction)."""
        if visit.labels not in self._stores:
            self._stores.append(visit.labels)
            visit.labels.add_listener(self._changed)

    def detach(self) -> None:
        for store in self._stores:
            store.remove_listener(self._changed)
        self._stores = []
