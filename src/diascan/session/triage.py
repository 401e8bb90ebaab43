"""Qt-free labelling loop: the selected source of the current visit and the named actions.

:class:`Triage` turns action ids (see :data:`diascan.actions.ACTIONS`) into label
changes and selection moves, so key handling is testable without a window; the Qt controller
only maps key presses to :meth:`Triage.perform` and mirrors :attr:`Triage.current` into the
main window's selection.

Moves follow the order the user sees: :attr:`Triage.order` (set by the Qt layer) returns the
ids of the rows the table shows, filtered and sorted; without it the visit's id order is used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from diascan.session.labels import Label, LabelStore, SourceId
from diascan.session.model import Session, VisitEntry

LABEL_ACTIONS = {
    "label_real": Label.REAL,
    "label_bogus": Label.BOGUS,
    "label_unsure": Label.UNSURE,
    "clear_label": None,
}


class Triage:
    """Selection and labelling actions over one session (current visit)."""

    def __init__(
        self,
        session: Session,
        auto_advance: bool = True,
        order: Callable[[], Sequence[SourceId]] | None = None,
    ) -> None:
        self.session = session
        #: Ids of the sources shown, in display order (filtered, sorted), asked at each move;
        #: ``None``: every source of the visit in id order.
        self.order = order
        #: After a label, move to the next unlabelled source.
        self.auto_advance = auto_advance
        #: Hide model scores while labelling (for unbiased labels); read by the views.
        self.hide_scores = bool(session.view_settings.get("hide_scores", False))
        #: Skip labelled sources when moving with next/previous.
        self.hide_labelled = bool(session.view_settings.get("hide_labelled", False))
        self._selection_listeners: list[Callable[[SourceId | None], None]] = []

    # --- state -----------------------------------------------------------------------------
    @property
    def visit(self) -> VisitEntry:
        return self.session.current

    @property
    def store(self) -> LabelStore:
        return self.visit.labels

    @property
    def current(self) -> SourceId | None:
        return self.visit.current_source

    def add_selection_listener(self, fn: Callable[[SourceId | None], None]) -> None:
        self._selection_listeners.append(fn)

    def select(self, sid: SourceId | None, notify: bool = True) -> None:
        """Make ``sid`` the current source (``notify=False`` when the view already shows it)."""
        if sid is not None and sid not in self.store:
            raise KeyError(f"unknown source id {sid!r}")
        changed = sid != self.visit.current_source
        self.visit.current_source = sid
        if notify and changed:
            for fn in list(self._selection_listeners):
                fn(sid)

    def set_option(self, name: str, value: bool) -> None:
        """Set ``hide_scores`` or ``hide_labelled`` (kept in the session's view settings)."""
        if name not in ("hide_scores", "hide_labelled"):
            raise KeyError(name)
        setattr(self, name, bool(value))
        self.session.view_settings[name] = bool(value)

    def visible_ids(self) -> list[SourceId]:
        """Source ids to show (labelled ones dropped when ``hide_labelled``)."""
        if not self.hide_labelled:
            return self.store.ids
        return self.store.ids_with([None])

    def set_visit(self, index: int) -> VisitEntry:
        if not 0 <= index < len(self.session.visits):
            raise IndexError(f"no visit {index}")
        self.session.current_visit = index
        for fn in list(self._selection_listeners):
            fn(self.current)
        return self.visit

    # --- actions ---------------------------------------------------------------------------
    def perform(self, action: str) -> bool:
        """Run a named action; ``False`` when it did nothing (or belongs to the UI, such as
        ``edit_note`` and ``cheat_sheet``)."""
        if action in LABEL_ACTIONS:
            return self.label_current(LABEL_ACTIONS[action])
        if action == "next":
            return self._move(self._skip_next(+1))
        if action == "previous":
            return self._move(self._skip_next(-1))
        if action == "next_unlabelled":
            return self._move(self.next_unlabelled(self.current))
        if action == "undo":
            return self.undo()
        if action == "next_visit":
            return self.next_visit()
        return False

    def label_current(self, label: Label | None) -> bool:
        sid = self.current
        if sid is None:
            return False
        if label is not None and self.auto_advance:
            # move first, so the autosave triggered by the label records the new selection
            nxt = self.next_unlabelled(sid)
            if nxt is not None and nxt != sid:
                self.select(nxt)
        if self.store.label(sid) == label:
            return False
        self.store.set_label(sid, label)
        return True

    def set_note(self, note: str) -> bool:
        if self.current is None:
            return False
        self.store.set_note(self.current, note)
        return True

    def undo(self) -> bool:
        changed = self.store.undo()
        if not changed:
            return False
        if len(changed) == 1:
            self.select(changed[0])
        return True

    def label_remaining_bogus(self) -> int:
        return self.store.label_remaining(Label.BOGUS)

    def next_visit(self) -> bool:
        if self.session.current_visit + 1 >= len(self.session.visits):
            return False
        self.set_visit(self.session.current_visit + 1)
        return True

    def shown_ids(self) -> list[SourceId]:
        """Ids the user can move to, in display order (:attr:`order`, or the visit's order)."""
        if self.order is None:
            return self.store.ids
        store = self.store
        return [sid for sid in self.order() if sid in store]  # another visit's rows: none

    def next_unlabelled(self, sid: SourceId | None) -> SourceId | None:
        """The next shown unlabelled source after ``sid`` in display order, wrapping around
        (to ``sid`` itself last); ``None`` when every shown source is labelled."""
        ids = self.shown_ids()
        if not ids:
            return None
        start = self._position(ids, sid, +1)
        n = len(ids)
        for k in range(n):
            cand = ids[(start + k) % n]
            if self.store.label(cand) is None:
                return cand
        return None

    def _position(self, ids: list[SourceId], sid: SourceId | None, step: int) -> int:
        """Index in ``ids`` of the first candidate after (``step`` > 0) or before ``sid``.

        A ``sid`` that is not shown (filtered out) stands where it would in the visit's id
        order; the result may be ``len(ids)`` or -1 (past the end / before the start).
        """
        if sid is None:
            return 0 if step > 0 else len(ids) - 1
        pos = {s: k for k, s in enumerate(ids)}
        if sid in pos:
            return pos[sid] + (1 if step > 0 else -1)
        walk = self.store.next if step > 0 else self.store.previous
        near = walk(sid, lambda s: s not in pos)
        if near is None:
            return len(ids) if step > 0 else -1
        return pos[near]

    def _skip_next(self, step: int) -> SourceId | None:
        ids = self.shown_ids()
        i = self._position(ids, self.current, step)
        while 0 <= i < len(ids):
            cand = ids[i]
            if not (self.hide_labelled and self.store.label(cand) is not None):
                return cand
            i += 1 if step > 0 else -1
        return None

    def _move(self, sid: SourceId | None) -> bool:
        if sid is None:
            return False
        self.select(sid)
        return True
