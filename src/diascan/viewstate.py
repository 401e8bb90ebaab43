"""Qt-free viewer state and display preparation (glue/napari style).

The viewer's state lives in plain observable objects (:class:`FrameState`, :class:`ViewerState`,
:class:`SourceSet`) that Qt widgets bind to, so the state can be tested, saved and restored
without a window. The display maths (limits, stretches, lookup tables, mask overlays) is in
:mod:`diascan.display`; :func:`prepare_display` applies it to the frames.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from diascan.display import COLORMAPS, LIMIT_MODES, STRETCHES, compute_levels, display_copy
from diascan.io.mask_planes import spellings
from diascan.stamps import FRAME_ORDER as FRAMES

STATUSES = ("matched", "unmatched", "target", "missing")


class Observable:
    """Tiny observer: attribute assignments to fields in ``_observed`` call listeners.

    ``obj.connect(callback)`` registers ``callback(name, value)``; assigning an observed attribute
    to a new value notifies every callback.
    """

    _observed: tuple[str, ...] = ()

    def __init__(self) -> None:
        object.__setattr__(self, "_listeners", [])

    def connect(self, callback: Callable[[str, Any], None]) -> None:
        """Register ``callback(name, value)`` called after an observed attribute changes."""
        self._listeners.append(callback)

    def disconnect(self, callback: Callable[[str, Any], None]) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    def notify(self, name: str) -> None:
        """Tell every listener that ``name`` changed (for in-place changes of mutable fields)."""
        value = getattr(self, name)
        for cb in list(self._listeners):
            cb(name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        old = getattr(self, name, _MISSING)
        object.__setattr__(self, name, value)
        if name in self._observed and not _same(old, value):
            self.notify(name)


_MISSING = object()


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # arrays and odd types: treat as changed
        return False


class FrameState(Observable):
    """Display settings of one frame: stretch, limits mode, colormap, levels."""

    _observed = ("stretch", "limits", "colormap", "levels", "symmetric")

    def __init__(
        self,
        stretch: str = "linear",
        limits: str = "zscale",
        colormap: str = "grey",
        symmetric: bool = False,
    ) -> None:
        super().__init__()
        self.stretch = stretch
        self.limits = limits
        self.colormap = colormap
        self.symmetric = symmetric
        self.levels: tuple[float, float] = (0.0, 1.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stretch": self.stretch,
            "limits": self.limits,
            "colormap": self.colormap,
            "symmetric": self.symmetric,
        }


class ViewerState(Observable):
    """Everything the viewer shows apart from the data: selection, blink, masks, filters."""

    _observed = (
        "selected_id",
        "blink_index",
        "single",
        "mask_alpha",
        "threshold",
        "hidden_statuses",
        "model_name",
        "mask_planes_on",
        "hidden_labels",
        "view_range",
        "hide_scores",
    )

    def __init__(self) -> None:
        super().__init__()
        self.frames: dict[str, FrameState] = {
            "science": FrameState(),
            "template": FrameState(),
            "difference": FrameState(limits="zscale", symmetric=True),
        }
        self.selected_id: int | None = None
        self.blink_index = 0
        self.single = False
        self.mask_planes_on: frozenset[str] = frozenset()
        self.mask_alpha = 0.5
        self.threshold: float | None = None
        self.hidden_statuses: frozenset[str] = frozenset()
        self.model_name: str | None = None
        #: Labels whose sources the table and markers hide ("hide labelled sources"); set by
        #: the label controller, not saved with the view (the session keeps that option).
        self.hidden_labels: frozenset[str] = frozenset()
        #: Visible region of the linked frames, ``((x_min, x_max), (y_min, y_max))`` in parent
        #: pixels, or None for "the whole image"; kept up to date by the frames while panning.
        self.view_range: tuple[tuple[float, float], tuple[float, float]] | None = None
        #: "Hide model scores while labelling": markers, cutouts and plots show no scores.
        #: Mirrors the label controller's option, not saved with the view (the session keeps
        #: that option).
        self.hide_scores = False

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
        planes = set(self.mask_planes_on) - set(spellings(name))
        if on:
            planes.add(name)
        self.mask_planes_on = frozenset(planes)

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
        """Apply :meth:`to_dict` output in place (listeners fire); returns the skipped keys.

        Values are validated: a stale or hand-edited setting is skipped, never half applied.
        ``selection=False`` leaves ``selected_id`` alone.
        """
        skipped: list[str] = []
        for key, value in (data or {}).items():
            try:
                if key == "frames":
                    for name, fd in dict(value).items():
                        if name not in self.frames:
                            raise ValueError(f"unknown frame {name!r}")
                        _update_frame(self.frames[name], fd)
                elif key == "selected_id":
                    if selection:
                        self.selected_id = None if value is None else int(value)
                elif key == "blink_index":
                    self.blink_index = int(value) % len(FRAMES)
                elif key == "single":
                    self.single = bool(value)
                elif key == "mask_planes_on":
                    self.mask_planes_on = frozenset(str(v) for v in value)
                elif key == "mask_alpha":
                    self.mask_alpha = min(1.0, max(0.0, float(value)))
                elif key == "threshold":
                    self.threshold = None if value is None else float(value)
                elif key == "hidden_statuses":
                    self.hidden_statuses = frozenset(str(v) for v in value)
                elif key == "model_name":
                    self.model_name = None if value is None else str(value)
                elif key == "view_range":
                    self.view_range = None if value is None else _check_range(value)
                else:
                    raise KeyError(key)
            except (KeyError, TypeError, ValueError):
                skipped.append(key)
        return skipped


def _check_range(value: Any) -> tuple[tuple[float, float], tuple[float, float]]:
    (xa, xb), (ya, yb) = ((float(a), float(b)) for a, b in value)
    if not all(np.isfinite([xa, xb, ya, yb])) or xb <= xa or yb <= ya:
        raise ValueError(f"bad view range {value!r}")
    return (xa, xb), (ya, yb)


def _update_frame(frame: FrameState, data: dict[str, Any]) -> None:
    checks = {"stretch": STRETCHES, "limits": LIMIT_MODES, "colormap": COLORMAPS}
    for k, v in dict(data).items():
        if k in checks:
            if v not in checks[k]:
                raise ValueError(f"bad {k} {v!r}")
            setattr(frame, k, v)
        elif k == "symmetric":
            frame.symmetric = bool(v)


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
        disp = display_copy(images[name].image)
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


def _col(table: Any, *names: str) -> np.ndarray | None:
    cols = getattr(table, "colnames", None) or list(getattr(table, "columns", []))
    for n in names:
        if n in cols:
            return np.asarray(table[n])
    return None


@dataclass
class SourceSet:
    """Detections as plain arrays, with scores/labels that change while the viewer runs.

    Listeners registered with :meth:`connect` get ``callback(kind, indices)`` with kind
    'scores', 'labels' or 'reset'.
    """

    ids: np.ndarray
    x: np.ndarray
    y: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    snr: np.ndarray
    flux: np.ndarray
    original: np.ndarray
    score: np.ndarray
    status: np.ndarray
    labels: list[str | None] = field(default_factory=list)
    _listeners: list[Callable[[str, np.ndarray], None]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if not self.labels:
            self.labels = [None] * len(self.ids)
        self._index = {int(i): k for k, i in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_table(cls, table: Any) -> SourceSet:
        """Build from the pipeline's detections table (missing columns become NaN/'unmatched')."""
        n = len(table)

        def num(*names: str) -> np.ndarray:
            c = _col(table, *names)
            # Always a copy: scores are written in place and must not alter the caller's table.
            return np.full(n, np.nan) if c is None else np.array(c, dtype=float, copy=True)

        ids = _col(table, "id", "diaSourceId")
        ids = np.arange(n, dtype=np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
        status = _col(table, "status")
        status = np.full(n, "unmatched", dtype=object) if status is None else status.astype(object)
        return cls(
            ids=ids,
            x=num("x", "base_SdssCentroid_x"),
            y=num("y", "base_SdssCentroid_y"),
            ra=num("ra", "coord_ra_deg"),
            dec=num("dec", "coord_dec_deg"),
            snr=num("snr", "significance"),
            flux=num("psfFlux", "flux", "base_PsfFlux_instFlux"),
            original=num("original_reliability", "reliability"),
            score=num("score"),
            status=np.array([str(s) for s in status], dtype=object),
        )

    def connect(self, callback: Callable[[str, np.ndarray], None]) -> None:
        self._listeners.append(callback)

    def _emit(self, kind: str, indices: np.ndarray) -> None:
        for cb in list(self._listeners):
            cb(kind, indices)

    def index_of(self, source_id: int) -> int | None:
        """Row index of ``source_id`` or None."""
        return self._index.get(int(source_id))

    def set_scores(self, indices: Sequence[int] | np.ndarray, scores: Sequence[float]) -> None:
        """Store recomputed scores for rows ``indices`` and notify listeners."""
        idx = np.asarray(indices, dtype=int)
        self.score[idx] = np.asarray(scores, dtype=float)
        self._emit("scores", idx)

    def set_label(self, index: int, label: str | None) -> None:
        self.labels[index] = label
        self._emit("labels", np.array([index]))

    def set_labels(self, indices: Sequence[int], labels: Sequence[str | None]) -> None:
        """Set several labels with one 'labels' notification (e.g. "remaining -> bogus")."""
        idx = np.asarray(indices, dtype=int)
        for i, lab in zip(idx, labels, strict=True):
            self.labels[int(i)] = lab
        if len(idx):
            self._emit("labels", idx)

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

