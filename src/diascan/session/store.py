"""Reading and writing session files (JSON, versioned), atomically; autosave on every change.

Writes go through :func:`diascan.atomic.atomic_write_text` (temporary file in the same folder,
``fsync``, :func:`os.replace`, folder ``fsync``): a crash, a kill, a full disk or a folder
turned read-only at any moment leaves either the previous or the new file, never a broken one,
and an existing file keeps its permission bits. A session file is never one of the session's
own input files (:mod:`diascan.safety`). A failed save raises :class:`SessionError` naming the
file and the reason and leaves the in-memory session as it was; :class:`Autosave` then keeps
the session marked :attr:`~Autosave.dirty` and tries again on the next change.

Reading is bounded and validated: at most :data:`MAX_SESSION_BYTES`, strict JSON (no NaN), a
nesting limit, then :func:`diascan.session.validate.validate_document` checks every field
before any object is built. Older schema versions are upgraded on load by the functions in
:data:`MIGRATIONS`. The format is described in ``docs/session-schema.md``.
"""

from __future__ import annotations

import json
import math
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from diascan import __version__
from diascan.atomic import atomic_write_text  # noqa: F401 - re-exported (keymap, recent, tests)
from diascan.errors import InputError, SessionError, describe_os_error
from diascan.safety import check_output_path
from diascan.session.labels import LabelRecord, format_time, parse_label, parse_time, utc_now
from diascan.session.model import (
    SCHEMA_MINOR,
    SCHEMA_VERSION,
    SOURCE_FIELDS,
    FileRef,
    Session,
    SourceRecord,
    VisitEntry,
)
from diascan.session.validate import validate_document

FORMAT_NAME = "diascan-session"
#: Largest session file read (a session of 100 visits of 5000 sources is about 170 MB).
MAX_SESSION_BYTES = 512 * 2**20

#: ``MIGRATIONS[v]`` turns a version-``v`` document (dict) into a version ``v + 1`` document.
MIGRATIONS: dict[int, Callable[[dict], dict]] = {}


def register_migration(from_version: int):
    """Decorator registering a migration from ``from_version`` to ``from_version + 1``."""

    def deco(fn: Callable[[dict], dict]) -> Callable[[dict], dict]:
        MIGRATIONS[from_version] = fn
        return fn

    return deco


@register_migration(1)
def _v1_to_v2(doc: dict) -> dict:
    """Schema 2 adds alert entries (``files.alerts``: the alert files whose alerts are the
    entry's sources); every version-1 entry is a visit's, with no alert files."""
    for visit in doc.get("visits") or []:
        if isinstance(visit, dict) and isinstance(visit.get("files"), dict):
            visit["files"].setdefault("alerts", [])
    return doc


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
            d["flags"] = list(s.flags)
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
                    "alerts": [p.to_json() for p in v.alerts],
                },
                "model": {"name": v.model_name, "version": v.model_version,
                          "path": v.model_path},
                "view": _jsonable(v.view),
                "current_source": _scalar(v.current_source),
                # every flag a source has is listed (the file must validate whoever made
                # the records)
                "flag_columns": list(dict.fromkeys(
                    [*v.flag_columns, *(f for src in v.sources for f in src.flags)])),
                "sources": sources,
            }
        )
    return {
        "format": FORMAT_NAME,
        "schema_version": SCHEMA_VERSION,
        "schema_minor": SCHEMA_MINOR,
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
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
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
    validate_document(doc, path)
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
            flags=tuple(s.get("flags") or ()),
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
        alerts=[FileRef.from_json(p) for p in files.get("alerts") or []],
        records=records,
        visit=d.get("visit"),
        detector=d.get("detector"),
        band=d.get("band"),
        model_name=model.get("name"),
        model_version=model.get("version"),
        model_path=model.get("path"),
        view=dict(d.get("view") or {}),
        current_source=d.get("current_source"),
        flag_columns=list(d.get("flag_columns") or []),
    )


# --- files -------------------------------------------------------------------------------------
def save_session(session: Session, path: str | Path) -> Path:
    """Write ``session`` to ``path`` atomically; sets ``created``/``modified``.

    Raises :class:`SessionError` naming the file and the reason (disk full, read-only folder,
    a folder where the file was, ``path`` is one of the session's input files); the previous
    file, if any, and the in-memory session are then left as they were.
    """
    path = Path(path)
    try:
        check_output_path(path, session.input_files(), "session file")
    except InputError as exc:
        raise SessionError(path, exc.problem) from None
    before = (session.created, session.modified)
    now = format_time(utc_now())
    session.created = session.created or now
    session.modified = now
    try:
        atomic_write_text(path, dumps_session(session_to_json(session)))
    except OSError as exc:
        session.created, session.modified = before
        raise SessionError(path, f"cannot save the session: {describe_os_error(exc)}") from None
    except BaseException:
        session.created, session.modified = before
        raise
    return path


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def load_session(path: str | Path) -> Session:
    """Read a session file; raises :class:`SessionError` for a missing, broken, invalid,
    too-large or too-new file (one line naming the file and the problem)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise SessionError(path, "is a folder, not a session file")
        if size > MAX_SESSION_BYTES:
            raise SessionError(
                path, f"session file is {size / 2**20:.0f} MB, more than the "
                f"{MAX_SESSION_BYTES // 2**20} MB diascan reads; is it a session file?",
            )  # fmt: skip
        # utf-8-sig: a byte-order mark some editors add is not an error
        text = path.read_bytes()[: MAX_SESSION_BYTES + 1].decode("utf-8-sig")
    except FileNotFoundError:
        raise SessionError(path, "session file not found") from None
    except UnicodeDecodeError as exc:
        raise SessionError(path, f"not a session file (not UTF-8 text: {exc.reason} at byte "
                                 f"{exc.start})") from None  # fmt: skip
    except OSError as exc:
        raise SessionError(path, f"cannot read session file: {describe_os_error(exc)}") from None
    try:
        doc = json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise SessionError(path, f"broken session file (invalid JSON: {exc})") from None
    except RecursionError:
        raise SessionError(path, "broken session file (JSON nested too deeply)") from None
    except ValueError as exc:  # NaN/Infinity, an integer of thousands of digits
        raise SessionError(path, f"broken session file (invalid JSON: {exc})") from None
    return session_from_json(doc, path)


class Autosave:
    """Saves a session to ``path`` after every label change of any of its visits.

    A failed save never loses anything: the session stays in memory, :attr:`dirty` says that
    it has unsaved changes, :attr:`last_error` holds the :class:`SessionError`, and the next
    change (or :meth:`save`) tries again. :meth:`save_as` moves the autosave to another file.
    Errors go to ``on_error(SessionError)`` when given (the GUI shows them), else they raise;
    ``on_saved(path)`` is called after every successful save (the GUI clears its warning).
    """

    def __init__(
        self,
        session: Session,
        path: str | Path,
        on_error: Callable[[SessionError], None] | None = None,
        before_save: Callable[[], None] | None = None,
        on_saved: Callable[[Path], None] | None = None,
    ) -> None:
        self.session = session
        self.path = Path(path)
        self.on_error = on_error
        self.on_saved = on_saved
        #: Called before each save (the GUI copies its view settings into the session).
        self.before_save = before_save
        self.saves = 0
        #: The error of the last save, ``None`` once a save succeeded.
        self.last_error: SessionError | None = None
        #: True while the session holds changes that are not in :attr:`path`.
        self.dirty = False
        self._stores = [v.labels for v in session.visits]
        for store in self._stores:
            store.add_listener(self._changed)

    def _changed(self, _ids) -> None:
        self.dirty = True
        self.save()

    def save(self) -> bool:
        """Save now; ``True`` on success (then :attr:`dirty` is False)."""
        try:
            self._write(self.path)
        except SessionError as exc:
            self.last_error = exc
            self.dirty = True
            if self.on_error is None:
                raise
            self.on_error(exc)
            return False
        return True

    def save_as(self, path: str | Path) -> Path:
        """Save to ``path`` and keep autosaving there; raises :class:`SessionError` (the old
        path stays in use then)."""
        path = Path(path)
        self._write(path)  # raises: the caller (a Save As dialog) shows it
        self.path = path
        return path

    def _write(self, path: Path) -> None:
        if self.before_save is not None:
            self.before_save()
        save_session(self.session, path)
        self.saves += 1
        self.last_error = None
        self.dirty = False
        if self.on_saved is not None:
            self.on_saved(path)

    def watch(self, visit: VisitEntry) -> None:
        """Also save on changes of ``visit`` (one added to the session after construction)."""
        if visit.labels not in self._stores:
            self._stores.append(visit.labels)
            visit.labels.add_listener(self._changed)

    def detach(self) -> None:
        for store in self._stores:
            store.remove_listener(self._changed)
        self._stores = []
