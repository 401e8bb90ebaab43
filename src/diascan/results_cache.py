"""On-disk cache of the derived pipeline products (warped template, detections) per input set.

An entry lives in ``<cache_root>/results/<key>/``: ``template.fits`` (uncompressed LSST
exposure), ``detections.parquet`` (the detection table before scoring/matching) and
``entry.json`` (written last; the template's notes/metadata and the key). The key is the sha256
of the diascan version, :data:`CACHE_VERSION`, the detection settings and, for each input file
the products depend on, its resolved path, size and ``mtime_ns`` (no content hashing: the
files are hundreds of MB). Entries are written into a temporary folder and renamed into place;
a corrupt or partial entry is removed and treated as a miss. At most :data:`MAX_ENTRIES` are
kept (least recently used removed); only folders named like entries are ever deleted, and
nothing is stored in a cache folder that holds one of the run's input files
(:mod:`diascan.safety`). Cache failures are logged, never raised to the user.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from astropy.table import Table

from diascan import __version__
from diascan.errors import OutputError
from diascan.io import ImageData, read_image, read_table, write_exposure, write_table
from diascan.safety import check_output_folder

log = logging.getLogger(__name__)

#: Bump when the layout or the meaning of the cached products changes.
CACHE_VERSION = 1
#: Entries kept; older ones (by last use) are deleted after a store.
MAX_ENTRIES = 4

TEMPLATE_FILE = "template.fits"
DETECTIONS_FILE = "detections.parquet"
ENTRY_FILE = "entry.json"  #: written last: its presence marks a complete entry
_KEY_NAME = re.compile(r"[0-9a-f]{64}")  #: an entry folder (a sha256 key)
_TMP_NAME = re.compile(r"\.tmp-[0-9a-f]{16}-\d+-[0-9a-f]{8}")  #: an entry being written


@dataclass
class CachedProducts:
    """What one cache entry holds."""

    template: ImageData
    detections: Table


def results_root() -> Path:
    """``$DIASCAN_RESULTS_CACHE`` if set, else ``<cache_root>/results``
    (``$XDG_CACHE_HOME/diascan/results``, default ``~/.cache``)."""
    env = os.environ.get("DIASCAN_RESULTS_CACHE")
    if env:
        return Path(env)
    from diascan.demo.cache import cache_root

    return cache_root() / "results"


def cache_key(
    files: Iterable[str | Path],
    threshold: float,
    psf_sigma: float | None,
) -> str:
    """sha256 hex key of the version, settings and each file's resolved path, size, mtime_ns.

    Raises ``OSError`` when a file cannot be stat'ed (the caller then runs uncached).
    """
    parts: list[Any] = [__version__, CACHE_VERSION, float(threshold), psf_sigma]
    for f in files:
        p = Path(f).resolve()
        st = p.stat()
        parts.append([str(p), st.st_size, st.st_mtime_ns])
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def entry_dir(key: str) -> Path:
    """The folder of the entry with ``key``."""
    return results_root() / key


def has_entry(key: str) -> bool:
    """True when a complete-looking entry exists (it may still turn out corrupt on load)."""
    return (entry_dir(key) / ENTRY_FILE).is_file()


def load(key: str) -> CachedProducts | None:
    """The cached products of ``key``; None on a miss. A corrupt entry is removed (a miss)."""
    folder = entry_dir(key)
    if not (folder / ENTRY_FILE).is_file():
        return None
    try:
        info = json.loads((folder / ENTRY_FILE).read_text())
        if info.get("key") != key:
            raise ValueError("key mismatch")
        template = read_image(folder / TEMPLATE_FILE)
        detections = read_table(folder / DETECTIONS_FILE)
        if len(detections) != int(info["n_detections"]):
            raise ValueError("detection count mismatch")
        if list(template.shape) != list(info["template_shape"]):
            raise ValueError("template shape mismatch")
    except Exception as exc:  # noqa: BLE001 - any failure of a cache entry means "rebuild"
        log.warning("ignoring corrupt results cache entry %s: %s", folder, exc)
        shutil.rmtree(folder, ignore_errors=True)
        return None
    template.notes = list(info.get("template_notes", template.notes))
    template.metadata.update(info.get("template_metadata", {}))
    tpath = info.get("template_path")
    template.path = Path(tpath) if tpath else None
    template.variance_estimated = bool(info.get("template_variance_estimated", False))
    with contextlib.suppress(OSError):
        os.utime(folder)  # mark as recently used for pruning
    return CachedProducts(template, detections)


def store(key: str, template: ImageData, detections: Table,
          inputs: Iterable[str | Path | None] = ()) -> bool:  # fmt: skip
    """Write an entry for ``key``; False (logged) when it cannot be written.

    ``inputs`` are the files of the run: when one of them lies in the cache folder (say
    ``$DIASCAN_RESULTS_CACHE`` points at the data folder) nothing is stored, since the cache
    replaces and prunes what it finds there.
    """
    root = results_root()
    try:
        check_output_folder(root, inputs, "results cache folder")
    except OutputError as exc:
        log.warning("results cache not used: %s", exc)
        return False
    final = root / key
    tmp = root / f".tmp-{key[:16]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir(parents=True)
        write_exposure(tmp / TEMPLATE_FILE, template, compress=False)
        write_table(detections, tmp / DETECTIONS_FILE)
        meta = {k: v for k, v in template.metadata.items() if _json_ok(v)}
        info = {
            "key": key,
            "diascan_version": __version__,
            "cache_version": CACHE_VERSION,
            "n_detections": len(detections),
            "template_shape": list(template.shape),
            "template_notes": [str(n) for n in template.notes],
            "template_metadata": meta,
            "template_path": str(template.path) if template.path else None,
            "template_variance_estimated": bool(template.variance_estimated),
        }
        (tmp / ENTRY_FILE).write_text(json.dumps(info))
        if final.exists():
            if has_entry(key):
                return True  # another process stored it meanwhile
            shutil.rmtree(final, ignore_errors=True)
        os.rename(tmp, final)
    except Exception as exc:  # noqa: BLE001 - a cache that cannot be written is not an error
        if not has_entry(key):
            log.warning("could not write results cache entry %s: %s", final, exc)
            return False
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    prune()
    return True


def prune(keep: int = MAX_ENTRIES) -> None:
    """Delete all but the ``keep`` most recently used entries (and temp folders over 1 h old)."""
    root = results_root()
    try:
        dirs = [p for p in root.iterdir() if p.is_dir()]
    except OSError:
        return
    stale = time.time_ns() - 3600 * 10**9
    for p in dirs:
        if _TMP_NAME.fullmatch(p.name) and _mtime(p) < stale:
            shutil.rmtree(p, ignore_errors=True)
    # Only folders named like an entry are ever deleted: whatever else is there is not ours.
    entries = [p for p in dirs if _KEY_NAME.fullmatch(p.name)]
    entries.sort(key=_mtime, reverse=True)
    for p in entries[keep:]:
        shutil.rmtree(p, ignore_errors=True)


def _mtime(p: Path) -> int:
    try:
        return p.stat().st_mtime_ns
    except OSError:
        return 0


def _json_ok(value: Any) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


__all__ = [
    "CACHE_VERSION",
    "MAX_ENTRIES",
    "CachedProducts",
    "cache_key",
    "entry_dir",
    "has_entry",
    "load",
    "prune",
    "results_root",
    "store",
]
