"""Qt-free viewer state and display preparation (glue/napari style).

The viewer's state lives in psygnal-evented dataclasses (:class:`FrameState`,
:class:`ViewerState`: one signal per field, values checked on every assignment, batched
updates) and in :class:`SourceSet`; Qt widgets bind to them (:mod:`diascan.qt.qt_bind`), so the
state can be tested, saved and restored without a window. The display maths (limits, stretches, lookup tables, mask overlays) is in
:mod:`diascan.display`; :func:`prepare_display` applies it to the frames.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from psygnal import Signal, SignalGroupDescriptor

from diascan.display import (
    COLORMAPS,
    LIMIT_MODES,
    STRETCHES,
    compute_levels,
    display_copy,
    planes_with,
)
from diascan.evented import batch
from diascan.session.model import FLAG_PREFIX
from diascan.stamps import FRAME_ORDER as FRAMES

STATUSES = ("matched", "unmatched", "target", "missing")


# -- validation on set -------------------------------------------------------------------------
# Each check returns the value to store (normalised) or raises ValueError naming the problem;
# the state's __setattr__ runs them, so a bad value is refused wherever it comes from (a
# widget, a session file, a script), and psygnal emits only accepted changes.


def _choice(name: str, choices: Sequence[str]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in choices:
            raise ValueError(f"bad {name} {value!r}: one of {', '.join(choices)}")
        return value

    return check


def _unit_interval(name: str, optional: bool = False) -> Callable[[Any], float | None]:
    def check(value: Any) -> float | None:
        if value is None and optional:
            return None
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"bad {name} {value!r}: a number from 0 to 1") from None
        if not 0.0 <= v <= 1.0:  # NaN fails too
            raise ValueError(f"bad {name} {value!r}: a number from 0 to 1")
        return v

    return check


def _names(name: str) -> Callable[[Any], frozenset[str]]:
    def check(value: Any) -> frozenset[str]:
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise ValueError(f"bad {name} {value!r}: a list of names")
        return frozenset(str(v) for v in value)

    return check


def _optional_int(name: str) -> Callable[[Any], int | None]:
    def check(value: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ValueError(f"bad {name} {value!r}: an integer or none")
        return int(value)

    return check


def _optional_str(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"bad name {value!r}: text or none")
    return value


def _blink_index(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) \
            or not 0 <= value < len(FRAMES):
        raise ValueError(f"bad blink index {value!r}: 0 to {len(FRAMES) - 1}")
    return int(value)


def _levels(value: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"bad levels {value!r}: two numbers") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
        raise ValueError(f"bad levels {value!r}: finite, low <= high")
    return lo, hi


def _view_range(value: Any) -> tuple[tuple[float, float], tuple[float, float]] | None:
    if value is None:
        return None
    try:
        (xa, xb), (ya, yb) = ((float(a), float(b)) for a, b in value)
    except (TypeError, ValueError):
        raise ValueError(f"bad view range {value!r}: [[x_min, x_max], [y_min, y_max]]") from None
    if not all(np.isfinite([xa, xb, ya, yb])) or xb <= xa or yb <= ya:
        raise ValueError(f"bad view range {value!r}: finite, min < max")
    return (xa, xb), (ya, yb)


class _Checked:
    """Runs the class's ``_checks`` on every assignment (before psygnal compares and emits)."""

    _checks: ClassVar[dict[str, Callable[[Any], Any]]] = {}

    def __setattr__(self, name: str, value: Any) -> None:
        check = self._checks.get(name)
        super().__setattr__(name, value if check is None else check(value))


@dataclass
class FrameState(_Checked):
    """Display settings of one frame: stretch, limits mode, colormap, symmetric, levels.

    Evented (psygnal): ``frame.events.stretch.connect(callback)`` calls ``callback(new,
    old)`` (or fewer arguments) after each change; a bad value raises ``ValueError``.
    """

    stretch: str = "linear"
    limits: str = "zscale"
    colormap: str = "grey"
    symmetric: bool = False
    levels: tuple[float, float] = (0.0, 1.0)

    events: ClassVar[SignalGroupDescriptor] = SignalGroupDescriptor()
    _checks: ClassVar[dict[str, Callable[[Any], Any]]] = {
        "stretch": _choice("stretch", STRETCHES),
        "limits": _choice("limits", LIMIT_MODES),
        "colormap": _choice("colormap", COLORMAPS),
        "symmetric": bool,
        "levels": _levels,
    }

    def to_dict(self) -> dict[str, Any]:
        return {
            "stretch": self.stretch,
            "limits": self.limits,
            "colormap": self.colormap,
            "symmetric": self.symmetric,
        }


def _default_frames() -> dict[str, FrameState]:
    return {
        "science": FrameState(),
        "template": FrameState(),
        "difference": FrameState(limits="zscale", symmetric=True),
    }


@dataclass
class ViewerState(_Checked):
    """Everything the viewer shows apart from the data: selection, blink, masks, filters.

    Evented (psygnal): every field has its signal, ``state.events.<field>``, emitted with
    ``(new, old)`` after a change; a bad value raises ``ValueError`` and changes nothing.
    :meth:`batch` groups changes (one emission per changed field at its end). The frames'
    settings are :class:`FrameState` objects in :attr:`frames`, each with its own signals.
    """

    frames: dict[str, FrameState] = field(default_factory=_default_frames)
    selected_id: int | None = None
    blink_index: int = 0
    single: bool = False
    mask_planes_on: frozenset[str] = frozenset()
    mask_alpha: float = 0.5
    threshold: float | None = None
    hidden_statuses: frozenset[str] = frozenset()
    model_name: str | None = None
    #: Labels whose sources the table and markers hide ("hide labelled sources"); set by
    #: the label controller, not saved with the view (the session keeps that option).
    hidden_labels: frozenset[str] = frozenset()
    #: Visible region of the linked frames, ``((x_min, x_max), (y_min, y_max))`` in parent
    #: pixels, or None for "the whole image"; kept up to date by the frames while panning.
    view_range: tuple[tuple[float, float], tuple[float, float]] | None = None
    #: "Hide model scores while labelling": markers, cutouts and plots show no scores.
    #: Mirrors the label controller's option, not saved with the view (the session keeps
    #: that option).
    hide_scores: bool = False

    events: ClassVar[SignalGroupDescriptor] = SignalGroupDescriptor()
    _checks: ClassVar[dict[str, Callable[[Any], Any]]] = {
        "selected_id": _optional_int("selected id"),
        "blink_index": _blink_index,
        "single": bool,
        "mask_planes_on": _names("mask planes"),
        "mask_alpha": _unit_interval("mask transparency"),
        "threshold": _unit_interval("score threshold", optional=True),
        "hidden_statuses": _names("hidden statuses"),
        "model_name": _optional_str,
        "hidden_labels": _names("hidden labels"),
        "view_range": _view_range,
        "hide_scores": bool,
    }

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Change several fields (of the frames too) with one emission per changed field,
        after the last change (:func:`diascan.evented.batch`)."""
        with batch(self, *self.frames.values()):
            yield

    def blink(self, step: int = 1) -> int:
        """Advance the blink frame by ``step`` (negative = backwards); returns the new index.

        Blinking while the three frames are side by side switches to the single-frame view:
        the blink index alone is not visible there.
        """
        self.blink_index = (self.blink_index + step) % len(FRAMES)
        self.single = True
        return self.blink_index

    @property
    def blink_frame(self) -> str:
        return FRAMES[self.blink_index]

    def toggle_mask_plane(self, name: str, on: bool) -> None:
        """Show or hide plane ``name``, under either spelling (``SAT`` is ``SATURATED``)."""
        self.mask_planes_on = planes_with(self.mask_planes_on, name, on)

    def to_dict(self) -> dict[str, Any]:
        """The view settings as JSON-able values (see :meth:`from_dict`)."""
        return {
            "frames": {k: f.to_dict() for k, f in self.frames.items()},
            "selected_id": self.selected_id,
            "blink_index": self.blink_index,
            "single": self.single,
            "mask_planes_on": sorted(self.mask_planes_on),
            "mask_alpha": self.mask_alpha,
            "threshold": self.threshold,
            "hidden_statuses": sorted(self.hidden_statuses),
            "model_name": self.model_name,
            "view_range": None if self.view_range is None else [list(r) for r in self.view_range],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ViewerState:
        """A new state from :meth:`to_dict` output (unknown or bad values are skipped)."""
        state = cls()
        state.update_from_dict(data)
        return state

    def update_from_dict(self, data: dict[str, Any], selection: bool = True) -> list[str]:
        """Apply :meth:`to_dict` output in place, in one :meth:`batch`; returns the skipped
        keys.

        Every value goes through the same checks as an assignment: a stale or hand-edited
        setting is skipped, never half applied (a frame's settings all or none).
        ``selection=False`` leaves ``selected_id`` alone.
        """
        skipped: list[str] = []
        with self.batch():
            for key, value in (data or {}).items():
                try:
                    if key == "frames":
                        _update_frames(self.frames, value)
                    elif key == "selected_id":
                        if selection:
                            self.selected_id = None if value is None else int(value)
                    elif key == "blink_index":
                        self.blink_index = int(value) % len(FRAMES)
                    elif key in _RESTORED:
                        setattr(self, key, value)
                    else:
                        raise KeyError(key)
                except (KeyError, TypeError, ValueError):
                    skipped.append(key)
        return skipped


#: View keys restored as they are (their checks convert and validate them).
_RESTORED = ("single", "mask_planes_on", "mask_alpha", "threshold", "hidden_statuses",
             "model_name", "view_range")


def _update_frames(frames: dict[str, FrameState], data: Any) -> None:
    """Apply saved frame settings; raises ValueError before changing anything if one is bad."""
    checked: list[tuple[FrameState, str, Any]] = []
    for name, fd in dict(data).items():
        if name not in frames:
            raise ValueError(f"unknown frame {name!r}")
        frame = frames[name]
        for k, v in dict(fd).items():
            if k in ("stretch", "limits", "colormap", "symmetric"):
                checked.append((frame, k, FrameState._checks[k](v)))
    for frame, k, v in checked:
        setattr(frame, k, v)


# ---------------------------------------------------------------------------------------------
# Display preparation


def prepare_display(
    images: dict[str, Any],
    frames: dict[str, FrameState],
    progress: Callable[[str, float, str], None] | None = None,
) -> dict[str, tuple[np.ndarray, tuple[float, float]]]:
    """Display copy and levels of each frame (run in the loading worker, off the GUI thread)."""
    out = {}
    names = [n for n in FRAMES if images.get(n) is not None]
    for k, name in enumerate(names):
        disp = display_copy(images[name].image, reuse=True)  # copied only to drop NaN
        fs = frames[name]
        out[name] = (disp, compute_levels(disp, fs.limits, fs.symmetric))
        if progress is not None:
            progress("display", (k + 1) / len(names), f"prepared {name}")
    return out


def planes_set(value: int, planes: dict[str, int]) -> list[str]:
    """Names of the mask planes whose bit is set in ``value``."""
    return [name for name, bit in sorted(planes.items(), key=lambda kv: kv[1]) if value >> bit & 1]


# ---------------------------------------------------------------------------------------------
# Sources
#
# A SourceSet is a table held as a dict of numpy columns (one array per column, in order).
# Chosen over an astropy Table and pyarrow: the window writes scores and labels in place, per
# batch, while a rescore streams in, and reads single cells for the table view; a numpy array
# takes ``score[rows] = values`` with no copy and no wrapper per access, where a pyarrow array
# is immutable (every batch would rebuild the column) and an astropy Table adds a Column
# object, units and meta to every access. The attributes (``sources.x``, ``.score``,
# ``.labels``...) are those same arrays, so writing through one is writing the column. Exports
# build their astropy Table from the session (diascan.session.export).

#: The columns every SourceSet has: name -> (attribute, input names tried in order, kind).
#: kind: "float" (NaN = missing), "int" (a masked array where missing), "text" (objects).
CORE_COLUMNS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "id": ("ids", ("id", "diaSourceId"), "id"),
    "label": ("labels", (), "label"),
    "status": ("status", ("status",), "text"),
    "score": ("score", ("score",), "float"),
    "original_reliability": ("original", ("original_reliability", "reliability"), "float"),
    "snr": ("snr", ("snr", "significance"), "float"),
    "psfFlux": ("flux", ("psfFlux", "flux", "base_PsfFlux_instFlux"), "float"),
    "x": ("x", ("x", "base_SdssCentroid_x"), "float"),
    "y": ("y", ("y", "base_SdssCentroid_y"), "float"),
    "ra": ("ra", ("ra", "coord_ra_deg"), "float"),
    "dec": ("dec", ("dec", "coord_dec_deg"), "float"),
    #: the matched catalog row's id (the pipeline writes -1 for an unmatched detection)
    "diaSourceId": ("dia_source_id", ("diaSourceId",), "int"),
    "visit": ("visit", ("visit",), "int"),
    "detector": ("detector", ("detector",), "int"),
}
#: Other names the filter knows a core column by (the table view's headers).
COLUMN_ALIASES = {"reliability": "original_reliability", "flux": "psfFlux"}


def _as_array(values: Any) -> np.ndarray:
    """A column as a plain numpy array, or a numpy masked array if it has a mask (never an
    astropy Column: it would carry its table's name, units and formats along)."""
    if np.ma.isMaskedArray(values):
        return np.ma.MaskedArray(np.asarray(values.data), mask=np.ma.getmaskarray(values))
    return np.asarray(values)


def _int_column(values: Any, n: int) -> np.ma.MaskedArray:
    """An int64 column, masked where missing (None, a masked value, NaN or negative: the
    pipeline's -1 for "none")."""
    if values is None:
        return np.ma.masked_all(n, dtype=np.int64)
    arr = np.ma.asarray(_as_array(values))
    if arr.dtype.kind == "f":
        arr = np.ma.masked_invalid(arr)
    elif arr.dtype.kind == "O":
        arr = np.ma.masked_where(np.equal(arr, np.array(None)), arr)
    out = np.ma.array(arr.filled(-1).astype(np.int64), mask=np.ma.getmaskarray(arr), copy=True)
    out[out.filled(0) < 0] = np.ma.masked
    return out


def _constant_int(value: int | None, n: int) -> np.ma.MaskedArray:
    out = np.ma.masked_all(n, dtype=np.int64)
    if value is not None:
        out[:] = int(value)
    return out


def _plain_column(values: Any) -> np.ndarray | None:
    """A table column as a 1-d array (text as str, masked kept), or None if it is not one."""
    arr = _as_array(values)
    if arr.ndim != 1:
        return None  # vector cells: not a table column here
    if arr.dtype.kind == "S":
        arr = np.char.decode(arr, "utf-8", "replace")
    if np.ma.isMaskedArray(arr):
        if arr.dtype.kind == "f":
            return arr.filled(np.nan)  # a missing number is NaN, as in the core columns
        if not np.ma.getmaskarray(arr).any():
            return arr.data  # no missing cell: a plain array
    return arr


def _column_names(table: Any) -> list[str]:
    return list(getattr(table, "colnames", None) or list(getattr(table, "columns", None) or
                                                          table.keys()))


class SourceSet:
    """The viewer's detections: a table of numpy columns with scores and labels that change
    while the viewer runs.

    :attr:`columns` holds every column (name -> array, in table order): the
    :data:`CORE_COLUMNS` (always there) and any other column of the pipeline's table
    (``pixelFlags_*``, ``psfFluxErr``, alert fields...). The attributes ``ids``, ``x``, ``y``,
    ``ra``, ``dec``, ``snr``, ``flux``, ``original``, ``score``, ``status``, ``labels``,
    ``dia_source_id``, ``visit``, ``detector`` are the core columns themselves (not copies).
    Integer columns with missing values (``diaSourceId`` of an unmatched detection, an
    unknown visit) are numpy masked arrays.

    ``changed(kind, rows)`` (psygnal) is emitted with kind 'scores' or 'labels' and the row
    indices after :meth:`set_scores` / :meth:`set_label(s)`; :meth:`connect` connects to it.
    """

    changed = Signal(str, object)

    def __init__(self, columns: Mapping[str, Any]) -> None:
        n = len(next(iter(columns.values()))) if columns else 0
        cols: dict[str, Any] = {}
        for name, (_attr, _inputs, kind) in CORE_COLUMNS.items():
            value = columns.get(name)
            cols[name] = _core_column(kind, value, n)
        for name, value in columns.items():
            if name not in cols:
                arr = _plain_column(value)
                if arr is not None:
                    cols[name] = arr
        for name, arr in cols.items():
            if len(arr) != n:
                raise ValueError(f"column {name} has {len(arr)} rows, not {n}")
        self.columns: dict[str, Any] = cols
        self._index = {int(i): k for k, i in enumerate(self.ids)}
        #: Other columns a session records per source (``SourceRecord.extra``) and exports:
        #: an alert's fields (band, time, magnitude...); a visit's detections have none.
        self.record_columns: tuple[str, ...] = ()

    # -- the core columns, by the names the frames, gallery and plots use ----------------
    @property
    def ids(self) -> np.ndarray:
        return self.columns["id"]

    @property
    def x(self) -> np.ndarray:
        return self.columns["x"]

    @property
    def y(self) -> np.ndarray:
        return self.columns["y"]

    @property
    def ra(self) -> np.ndarray:
        return self.columns["ra"]

    @property
    def dec(self) -> np.ndarray:
        return self.columns["dec"]

    @property
    def snr(self) -> np.ndarray:
        return self.columns["snr"]

    @property
    def flux(self) -> np.ndarray:
        return self.columns["psfFlux"]

    @property
    def original(self) -> np.ndarray:
        return self.columns["original_reliability"]

    @property
    def score(self) -> np.ndarray:
        return self.columns["score"]

    @property
    def status(self) -> np.ndarray:
        return self.columns["status"]

    @property
    def labels(self) -> np.ndarray:
        return self.columns["label"]

    @property
    def dia_source_id(self) -> np.ndarray:
        return self.columns["diaSourceId"]

    @property
    def visit(self) -> np.ndarray:
        return self.columns["visit"]

    @property
    def detector(self) -> np.ndarray:
        return self.columns["detector"]

    def __len__(self) -> int:
        return len(self.columns["id"])

    @classmethod
    def from_table(cls, table: Any, visit: int | None = None,
                   detector: int | None = None) -> SourceSet:
        """Build from the pipeline's detections table (an astropy Table, a dict of arrays).

        Core columns are found by their input names (:data:`CORE_COLUMNS`; missing ones become
        NaN, 'unmatched' or masked); every other 1-d column is kept under its own name.
        ``visit`` / ``detector`` fill those columns when the table has none (the science
        image's; a table of alerts has its own per row).
        """
        names = _column_names(table)
        n = len(table[names[0]]) if names else 0
        cols: dict[str, Any] = {}
        used: set[str] = set()
        for name, (_attr, inputs, _kind) in CORE_COLUMNS.items():
            found = next((c for c in inputs if c in names), None)
            if found is not None:
                cols[name] = table[found]
                used.add(found)
        if "visit" not in cols:
            cols["visit"] = _constant_int(visit, n)
        if "detector" not in cols:
            cols["detector"] = _constant_int(detector, n)
        if "id" not in cols:
            cols["id"] = np.arange(n, dtype=np.int64)
        for name in names:
            if name not in used and name not in cols:
                cols[name] = table[name]
        return cls(cols)

    @classmethod
    def empty(cls) -> SourceSet:
        return cls({"id": np.empty(0, dtype=np.int64)})

    # -- columns ---------------------------------------------------------------------------
    @property
    def flag_names(self) -> list[str]:
        """The pixel flag columns (``pixelFlags_*``), in table order."""
        return [c for c in self.columns if c.startswith(FLAG_PREFIX)]

    def filter_columns(self) -> dict[str, Any]:
        """Every column for :func:`diascan.filter_expressions.compile_filter` (which matches
        names in any case), with the table view's names for the core ones (``reliability``,
        ``flux``)."""
        cols = dict(self.columns)
        for alias, name in COLUMN_ALIASES.items():
            cols.setdefault(alias, cols[name])
        return cols

    # -- changes -----------------------------------------------------------------------------
    def connect(self, callback: Callable[[str, np.ndarray], Any]) -> None:
        """``callback(kind, rows)`` after scores or labels change (:attr:`changed`)."""
        self.changed.connect(callback)

    def index_of(self, source_id: int) -> int | None:
        """Row index of ``source_id`` or None."""
        return self._index.get(int(source_id))

    def set_scores(self, indices: Sequence[int] | np.ndarray, scores: Sequence[float]) -> None:
        """Store recomputed scores for rows ``indices`` (in place) and notify listeners."""
        idx = np.asarray(indices, dtype=int)
        self.score[idx] = np.asarray(scores, dtype=float)
        self.changed.emit("scores", idx)

    def columns_changed(self, indices: Sequence[int] | np.ndarray | None = None) -> None:
        """Say that other columns' values changed in place (``changed("columns", rows)``;
        ``None``: every row), e.g. alert fields decoded after the first page was shown."""
        idx = np.arange(len(self)) if indices is None else np.asarray(indices, dtype=np.intp)
        self.changed.emit("columns", idx)

    def set_label(self, index: int, label: str | None) -> None:
        self.labels[index] = label
        self.changed.emit("labels", np.array([index]))

    def set_labels(self, indices: Sequence[int], labels: Sequence[str | None]) -> None:
        """Set several labels with one 'labels' notification (e.g. "remaining -> bogus")."""
        idx = np.asarray(indices, dtype=int)
        for i, lab in zip(idx, labels, strict=True):
            self.labels[int(i)] = lab
        if len(idx):
            self.changed.emit("labels", idx)

    def visible(
        self, threshold: float | None, hidden: Iterable[str] = (),
        hidden_labels: Iterable[str] = (),
    ) -> np.ndarray:
        """Boolean mask of rows shown: status not hidden, label not hidden and score >=
        threshold (if set).

        Rows without a recomputed score use the original reliability; rows with neither pass.
        """
        hidden = set(hidden)
        ok = np.array([s not in hidden for s in self.status], dtype=bool)
        hidden_labels = set(hidden_labels)
        if hidden_labels:
            ok &= np.array([lab not in hidden_labels for lab in self.labels], dtype=bool)
        if threshold is not None:
            val = np.where(np.isfinite(self.score), self.score, self.original)
            ok &= ~(np.isfinite(val) & (val < threshold))
        return ok

    def nearest(self, x: float, y: float, max_dist: float = np.inf) -> int | None:
        """Row index of the source nearest parent pixel (x, y) within ``max_dist``."""
        if len(self) == 0:
            return None
        d = np.hypot(self.x - x, self.y - y)
        k = int(np.nanargmin(d)) if np.isfinite(d).any() else None
        if k is None or d[k] > max_dist:
            return None
        return k


def _core_column(kind: str, value: Any, n: int) -> Any:
    """A core column of ``kind`` from input ``value`` (None: the column's missing values).

    Float columns are always copies: scores are written in place and must not alter the
    caller's table."""
    if kind == "float":
        if value is None:
            return np.full(n, np.nan)
        arr = _as_array(value)
        if isinstance(arr, np.ma.MaskedArray):
            return np.ma.filled(arr.astype(float), np.nan)  # a new array
        return np.array(arr, dtype=float, copy=True)
    if kind == "id":
        return np.asarray(_as_array(value), dtype=np.int64)
    if kind == "int":
        return _int_column(value, n)
    if kind == "label":
        out = np.full(n, None, dtype=object)
        if value is not None:
            out[:] = list(value)
        return out
    # text
    if value is None:
        return np.full(n, "unmatched", dtype=object)
    plain = _plain_column(value)
    return np.array([str(v) for v in (_as_array(value) if plain is None else plain)], dtype=object)


def catalog_xy(missing: Any, science: Any) -> np.ndarray:
    """Parent-pixel positions of catalog rows (``x``/``y`` columns, else ``ra``/``dec`` through
    the science WCS); an empty (0, 2) array when there are none or no way to place them."""
    if missing is None or len(missing) == 0:
        return np.empty((0, 2))
    cols = missing.colnames
    if "x" in cols and "y" in cols:
        return np.column_stack([np.asarray(missing["x"], float), np.asarray(missing["y"], float)])
    if science is not None and science.has_sky and "ra" in cols:
        px, py = science.wcs.world_to_pixel_values(
            np.asarray(missing["ra"], float), np.asarray(missing["dec"], float)
        )
        return np.column_stack([px + science.x0, py + science.y0])
    return np.empty((0, 2))


def missing_source_id(catalog_row: int) -> int:
    """The source id of catalog row ``catalog_row`` kept as a source no detection matched:
    ``-(row + 1)``, never a detection's (those count from 1) and the same on every load."""
    return -(int(catalog_row) + 1)


def missing_source_row(source_id: Any) -> int | None:
    """The catalog row of a source id made by :func:`missing_source_id` (None for others)."""
    try:
        sid = int(source_id)
    except (TypeError, ValueError):
        return None
    return -sid - 1 if sid < 0 else None


def keep_missing(detections: Any, missing: Any, science: Any, rows: Any) -> tuple[Any, Any]:
    """``(detections + the catalog rows `rows` of ``missing`` as sources, the rest of
    ``missing``)``: a catalog source the user labelled that no detection matched is kept as a
    source with status ``missing`` (as ``diascan score --with-missing`` writes them), id
    :func:`missing_source_id` of its catalog row, parent-pixel x/y from :func:`catalog_xy`."""
    rows = {int(r) for r in rows}
    if not rows or missing is None or len(missing) == 0 or "catalog_row" not in missing.colnames:
        return detections, missing
    from astropy.table import vstack

    sel = np.isin(np.asarray(missing["catalog_row"], dtype=np.int64), list(rows))
    if not sel.any():
        return detections, missing
    extra = missing[sel]
    xy = catalog_xy(extra, science)
    if len(xy) == len(extra) and not ("x" in extra.colnames and "y" in extra.colnames):
        extra["x"], extra["y"] = xy[:, 0], xy[:, 1]
    if "reliability" in extra.colnames and "original_reliability" not in extra.colnames:
        extra.rename_column("reliability", "original_reliability")
    extra["id"] = [missing_source_id(r) for r in extra["catalog_row"]]
    table = vstack([detections, extra], join_type="outer", metadata_conflicts="silent")
    return table, missing[~sel]
