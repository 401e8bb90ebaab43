"""Where sessions are kept: new autosave files in the data dir, and the "resume last session"
memory (the path of the last session file, in the config dir)."""

from __future__ import annotations

import contextlib
import json
import os
from datetime import datetime
from pathlib import Path

from diascan.session.keymap import config_dir
from diascan.session.store import atomic_write_text


def recent_path() -> Path:
    return config_dir() / "last_session.json"


def remember_last_session(session_path: str | Path) -> None:
    """Record ``session_path`` as the session to offer at the next start (errors ignored)."""
    p = recent_path()
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(p, json.dumps({"path": str(Path(session_path).resolve())}) + "\n")
    except OSError:
        pass  # losing the "resume" offer is not worth an error dialog


def last_session() -> Path | None:
    """The last session file if it still exists, else ``None``."""
    try:
        path = Path(json.loads(recent_path().read_text(encoding="utf-8"))["path"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return path if path.is_file() else None


def forget_last_session() -> None:
    with contextlib.suppress(OSError):
        recent_path().unlink()


def sessions_dir() -> Path:
    """``$XDG_DATA_HOME/diascan/sessions`` (``~/.local/share`` without ``XDG_DATA_HOME``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "diascan" / "sessions"


def new_session_path() -> Path:
    """A fresh autosave file, ``sessions_dir()/session-<time>.json`` (``-2``, ``-3``...
    appended when a session of the same second exists: never an existing file)."""
    d = sessions_dir()
    d.mkdir(parents=True, exist_ok=True)
    stem = f"session-{datetime.now():%Y%m%d-%H%M%S}"
    path, n = d / f"{stem}.json", 1
    while path.exists():
        n += 1
        path = d / f"{stem}-{n}.json"
    return path
