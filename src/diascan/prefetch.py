"""Prefetch of the next visits of a session (issue 15.4): settings and the memory budget.

Qt-free. The viewer (:mod:`diascan.qt.qt_prefetch`) reads, warps and detects the next
``depth`` visits in the session's order while the user works on the current one, and keeps
their results while their size fits in ``budget_mb``. The settings are the user's, stored in
``$XDG_CONFIG_HOME/diascan/prefetch.json`` (written atomically).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from diascan.atomic import atomic_write_text
from diascan.session.keymap import config_dir

#: Visits prefetched ahead at most (the preference's range is 0..MAX_DEPTH).
MAX_DEPTH = 3


@dataclass
class PrefetchSettings:
    """How far ahead to prefetch (0 = off) and how much memory the kept results may take."""

    depth: int = 1
    budget_mb: int = 2048

    def __post_init__(self) -> None:
        self.depth = max(0, min(MAX_DEPTH, int(self.depth)))
        self.budget_mb = max(0, int(self.budget_mb))


def settings_path() -> Path:
    """``$XDG_CONFIG_HOME/diascan/prefetch.json``."""
    return config_dir() / "prefetch.json"


def load_settings(path: Path | None = None) -> PrefetchSettings:
    """The user's prefetch settings (the defaults when the file is absent or unreadable)."""
    path = path or settings_path()
    try:
        data = json.loads(path.read_text())
        return PrefetchSettings(int(data.get("depth", 1)), int(data.get("budget_mb", 2048)))
    except (OSError, ValueError, TypeError, AttributeError):
        return PrefetchSettings()


def save_settings(settings: PrefetchSettings, path: Path | None = None) -> Path:
    """Write the settings (atomically); returns the path."""
    path = path or settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, json.dumps(asdict(settings), indent=1) + "\n")


def ahead(current: int, n_visits: int, depth: int) -> list[int]:
    """Indices of the visits to prefetch after ``current`` (the session's order)."""
    return [i for i in range(current + 1, min(n_visits, current + 1 + depth))]


def nbytes(value: Any) -> int:
    """Approximate memory of a prefetched ``(result, display)``: its images' arrays and the
    display copies (the tables are small beside them)."""
    result, display = value
    total = 0
    for name in ("science", "template", "difference"):
        img = getattr(result, name, None)
        for attr in ("image", "mask", "variance"):
            arr = getattr(img, attr, None)
            if isinstance(arr, np.ndarray):
                total += arr.nbytes
    for disp, _levels in (display or {}).values():
        total += getattr(disp, "nbytes", 0)
    return total


__all__ = ["MAX_DEPTH", "PrefetchSettings", "ahead", "load_settings", "nbytes",
           "save_settings", "settings_path"]
