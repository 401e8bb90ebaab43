"""The demo data set cached in the user's cache folder (for ``diascan view --demo``)."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from diascan.demo.generate import DEMO_FILES, DEMO_VERSION, VISIT, generate_demo
from diascan.progress import CancelToken, ProgressCallback

#: Written last into a complete cached demo folder.
MARKER = ".complete"


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/diascan`` (default ``~/.cache/diascan``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "diascan"


def demo_cache_dir(small: bool = False, seed: int = 1, visit: int | None = None) -> Path:
    """Folder of one cached demo: ``demo-v<N>-<full|small>-seed<seed>[-visit<visit>]``."""
    name = f"demo-v{DEMO_VERSION}-{'small' if small else 'full'}-seed{seed}"
    return cache_root() / (name if visit is None else f"{name}-visit{visit}")


def is_complete(folder: Path) -> bool:
    """True when ``folder`` holds the marker and every demo file."""
    return (folder / MARKER).is_file() and all((folder / f).is_file() for f in DEMO_FILES)


def cached_demo(
    small: bool = False,
    seed: int = 1,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    visit: int | None = None,
) -> Path:
    """Return the cached demo folder, generating it first when missing or incomplete.

    ``visit``: another visit number than the demo's (see :func:`generate_demo`). Generation
    goes to a temporary sibling folder that is renamed into place when complete, so an
    interrupted run never leaves a half-written demo that looks usable.
    """
    final = demo_cache_dir(small, seed, visit)
    if is_complete(final):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        generate_demo(tmp, small=small, seed=seed, progress=progress, cancel=cancel,
                      visit=VISIT if visit is None else visit)
        (tmp / MARKER).write_text(f"diascan demo v{DEMO_VERSION}\n")
        if final.exists() and not is_complete(final):
            shutil.rmtree(final, ignore_errors=True)
        try:
            os.rename(tmp, final)
        except OSError:
            if not is_complete(final):  # someone else won the race only if theirs is complete
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


__all__ = ["MARKER", "cache_root", "cached_demo", "demo_cache_dir", "is_complete"]
