"""Human labels of sources: the :class:`Label` values and the per-visit :class:`LabelStore`.

A :class:`LabelStore` holds the label, note and label time of every source of one visit, in the
order the user works through them. It supports undo, "label all remaining", statistics with the
labelling rate, next / previous / next-unlabelled navigation, and notifies listeners on every
change (the autosave and the views subscribe).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

SourceId = int | str


class Label(enum.StrEnum):
    """A human label of one source (no label is ``None``)."""

    REAL = "real"
    BOGUS = "bogus"
    UNSURE = "unsure"


def parse_label(value: str | Label | None) -> Label | None:
    """``"real"``/``"bogus"``/``"unsure"`` (any case) -> :class:`Label`; ``None``/``""``/``"none"``
    -> ``None``. Raises ``ValueError`` naming the valid labels otherwise."""
    if value is None or isinstance(value, Label):
        return value
    text = str(value).strip().lower()
    if text in ("", "none", "null"):
        return None
    try:
        return Label(text)
    except ValueError:
        valid = ", ".join(lab.value for lab in Label)
        raise ValueError(f"unknown label {value!r} (valid: {valid})") from None


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_time(t: datetime | None) -> str | None:
    """ISO 8601 UTC with a ``Z`` suffix, millisecond precision."""
    if t is None:
        return None
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


@dataclass(frozen=True)
class LabelRecord:
    """The label state of one source."""

    label: Label | None = None
    time: datetime | None = None
    note: str = ""


@dataclass(frozen=True)
class LabelStats:
    """Counts per label and the labelling rate (labels per minute, ``None`` when unknown)."""

    total: int
    real: int
    bogus: int
    unsure: int
    rate_per_min: float | None

    @property
    def labelled(self) -> int:
        return self.real + self.bogus + self.unsure

    @property
    def unlabelled(self) -> int:
        return self.total - self.labelled

    @property
    def fraction(self) -> float:
        return self.labelled / self.total if self.total else 1.0


#: ``listener(changed_ids)`` called after every change.
Listener = Callable[[list[SourceId]], None]


class LabelStore:
    """Labels, notes and times of the sources of one visit, with undo and navigation."""

    def __init__(
        self,
        source_ids: Sequence[SourceId],
        records: dict[SourceId, LabelRecord] | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._ids: list[SourceId] = list(source_ids)
        self._index = {sid: i for i, sid in enumerate(self._ids)}
        if len(self._index) != len(self._ids):
            raise ValueError("duplicate source ids")
        self._records: dict[SourceId, LabelRecord] = {}
        for sid, rec in (records or {}).items():
            if sid not in self._index:
                raise KeyError(f"label for unknown source id {sid!r}")
            if rec != LabelRecord():
                self._records[sid] = rec
        self._undo: list[dict[SourceId, LabelRecord]] = []
        self._listeners: list[Listener] = []
        self._clock = clock
        self._event_times: list[datetime] = []

    # --- reading ---------------------------------------------------------------------------
    @property
    def ids(self) -> list[SourceId]:
        return list(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, sid: object) -> bool:
        return sid in self._index

    def record(self, sid: SourceId) -> LabelRecord:
        self._require(sid)
        return self._records.get(sid, LabelRecord())

    def label(self, sid: SourceId) -> Label | None:
        return self.record(sid).label

    def note(self, sid: SourceId) -> str:
        return self.record(sid).note

    def label_time(self, sid: SourceId) -> datetime | None:
        return self.record(sid).time

    def records(self) -> dict[SourceId, LabelRecord]:
        """Non-empty records, keyed by source id."""
        return dict(self._records)

    def ids_with(self, labels: Iterable[Label | None]) -> list[SourceId]:
        """Source ids (in order) whose label is one of ``labels`` (``None`` = unlabelled)."""
        wanted = set(labels)
        return [sid for sid in self._ids if self.label(sid) in wanted]

    # --- changing --------------------------------------------------------------------------
    def add_ids(self, source_ids: Sequence[SourceId]) -> int:
        """Append sources not yet in the store (a visit whose sources are known only once its
        images are loaded); listeners and undo history are kept. Returns how many were added."""
        added = 0
        for sid in source_ids:
            if sid not in self._index:
                self._index[sid] = len(self._ids)
                self._ids.append(sid)
                added += 1
        return added

    def replace_ids(self, source_ids: Sequence[SourceId],
                    moved: Mapping[SourceId, SourceId] | None = None) -> None:
        """Make the store's sources exactly ``source_ids`` (in that order): records of ids that
        stay are kept, ``moved`` (old id -> new id) carries an old id's record to a new id
        that has none, the other ids go with their records and undo steps. Listeners are kept
        and told about the moved records (a held label of a progressive load landing on its
        detection, :meth:`VisitEntry.fill_sources`)."""
        ids = list(source_ids)
        index = {sid: i for i, sid in enumerate(ids)}
        if len(index) != len(ids):
            raise ValueError("duplicate source ids")
        landed = []
        for old, new in (moved or {}).items():
            rec = self._records.get(old)
            if rec is not None and new in index and new not in self._records:
                self._records[new] = rec
                landed.append(new)
        self._records = {sid: r for sid, r in self._records.items() if sid in index}
        self._undo = [u for u in ({s: r for s, r in step.items() if s in index}
                                  for step in self._undo) if u]
        self._ids, self._index = ids, index
        if landed:
            self._notify(landed)

    def set_label(self, sid: SourceId, label: Label | str | None) -> None:
        """Label (or with ``None`` clear) one source; the time is recorded, the note kept."""
        parsed = parse_label(label)
        old = self.record(sid)
        if old.label == parsed:
            return
        time = self._clock() if parsed is not None else None
        self._apply({sid: replace(old, label=parsed, time=time)})
        if time is not None:
            self._event_times.append(time)

    def clear(self, sid: SourceId) -> None:
        self.set_label(sid, None)

    def set_note(self, sid: SourceId, note: str) -> None:
        old = self.record(sid)
        if old.note == note:
            return
        self._apply({sid: replace(old, note=note)})

    def label_remaining(self, label: Label | str = Label.BOGUS) -> int:
        """Give every unlabelled source ``label`` (one undo step); returns how many."""
        parsed = parse_label(label)
        if parsed is None:
            raise ValueError("label_remaining needs a label")
        now = self._clock()
        changes = {
            sid: replace(self.record(sid), label=parsed, time=now)
            for sid in self._ids
            if self.label(sid) is None
        }
        if changes:
            self._apply(changes)
        return len(changes)

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    def undo(self) -> list[SourceId]:
        """Revert the last change; returns the ids it touched (empty when nothing to undo)."""
        if not self._undo:
            return []
        previous = self._undo.pop()
        self._write(previous)
        changed = list(previous)
        self._notify(changed)
        return changed

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    # --- navigation ------------------------------------------------------------------------
    def next(self, sid: SourceId | None, skip: Callable[[SourceId], bool] | None = None):
        """The id after ``sid`` (the first when ``None``), skipping ids where ``skip(id)``;
        ``None`` at the end."""
        return self._walk(sid, +1, skip)

    def previous(self, sid: SourceId | None, skip: Callable[[SourceId], bool] | None = None):
        """The id before ``sid`` (the last when ``None``); ``None`` at the start."""
        return self._walk(sid, -1, skip)

    def next_unlabelled(self, sid: SourceId | None) -> SourceId | None:
        """The next unlabelled id after ``sid``, wrapping around; ``None`` when all are labelled."""
        n = len(self._ids)
        if n == 0:
            return None
        start = -1 if sid is None else self._index[sid]
        for k in range(1, n + 1):
            cand = self._ids[(start + k) % n]
            if self.label(cand) is None:
                return cand
        return None

    # --- statistics ------------------------------------------------------------------------
    def statistics(self) -> LabelStats:
        """Counts per label and the labelling rate.

        The rate counts labels given between the first and last label event of this run of the
        program (labels per minute); it falls back to the stored label times when this run has
        fewer than two events.
        """
        counts = {lab: 0 for lab in Label}
        for rec in self._records.values():
            if rec.label is not None:
                counts[rec.label] += 1
        times = self._event_times
        if len(times) < 2:
            times = sorted(r.time for r in self._records.values() if r.time is not None)
        rate = None
        if len(times) >= 2:
            span = (max(times) - min(times)).total_seconds()
            if span > 0:
                rate = (len(times) - 1) / span * 60.0
        return LabelStats(
            total=len(self._ids),
            real=counts[Label.REAL],
            bogus=counts[Label.BOGUS],
            unsure=counts[Label.UNSURE],
            rate_per_min=rate,
        )

    # --- internals -------------------------------------------------------------------------
    def _require(self, sid: SourceId) -> None:
        if sid not in self._index:
            raise KeyError(f"unknown source id {sid!r}")

    def _walk(self, sid, step, skip):
        n = len(self._ids)
        i = (-1 if step > 0 else n) if sid is None else self._index[sid]
        i += step
        while 0 <= i < n:
            cand = self._ids[i]
            if skip is None or not skip(cand):
                return cand
            i += step
        return None

    def _apply(self, changes: dict[SourceId, LabelRecord]) -> None:
        for sid in changes:
            self._require(sid)
        self._undo.append({sid: self.record(sid) for sid in changes})
        self._write(changes)
        self._notify(list(changes))

    def _write(self, changes: dict[SourceId, LabelRecord]) -> None:
        for sid, rec in changes.items():
            if rec == LabelRecord():
                self._records.pop(sid, None)
            else:
                self._records[sid] = rec

    def _notify(self, changed: list[SourceId]) -> None:
        for listener in list(self._listeners):
            listener(changed)
