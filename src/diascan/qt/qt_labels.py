"""Keyboard labelling on the main window: label actions, label panel, statistics, autosave.

:class:`QtLabelController` binds the registry's labelling and session actions
(:data:`diascan.actions.ACTIONS`) that the window built as QActions with the user's keys;
text fields keep their typed keys because Qt lets a focused ``QLineEdit`` claim printable keys
first (ShortcutOverride). Every action goes through
the Qt-free :class:`~diascan.session.triage.Triage`; every label change is mirrored into the
window's table/markers and autosaved atomically. Scores the window recomputes
(``rescore_done``) are written into the visit's sources with the model that made them and
autosaved; a resumed session shows its saved scores and selects its saved model. A save that
fails is :class:`~diascan.qt.qt_save.QtSaveGuard`'s business (``self.guard``): dialog, banner,
Save As, and the question before the session is left (:meth:`QtLabelController.close`,
:meth:`QtLabelController.set_session`).

What the controller (and its save guard) needs from the window is the protocol
:class:`~diascan.qt.qt_window_protocols.LabelWindow`.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import numpy as np
from PyQt6.QtCore import QEvent, QObject, Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QGridLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from diascan.qt import qt_session
from diascan.qt.qt_save import QtSaveGuard
from diascan.qt.qt_window_protocols import LabelWindow
from diascan.session.labels import Label, SourceId
from diascan.session.model import Session, VisitEntry
from diascan.session.recent import new_session_path, remember_last_session
from diascan.session.store import Autosave
from diascan.session.triage import LABEL_ACTIONS, Triage

log = logging.getLogger(__name__)

#: Registry actions the controller performs through :meth:`QtLabelController.trigger`.
LABELLING = ("label_real", "label_bogus", "label_unsure", "clear_label", "next", "previous",
             "next_unlabelled", "edit_note", "undo", "next_visit")


class QtNoteEdit(QLineEdit):
    """Line edit that keeps Return/Enter/Escape even when the window has shortcuts on them."""

    def event(self, e) -> bool:
        if e.type() == QEvent.Type.ShortcutOverride and e.key() in (
            Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Escape
        ):
            e.accept()
            return True
        return super().event(e)

    def keyPressEvent(self, e) -> None:  # noqa: N802 - Qt API
        if e.key() == Qt.Key.Key_Escape:
            self.escape_pressed()
            return
        super().keyPressEvent(e)

    def escape_pressed(self) -> None:
        """Leave the field without saving (the controller restores the stored note)."""
        self.clearFocus()


class QtLabelStats(QWidget):
    """Counts per label, labelling rate and per-visit progress (a list of all visits;
    activating one emits ``visit_activated(index)``)."""

    visit_activated = pyqtSignal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.text = QLabel("")
        self.visit_label = QLabel("")
        self.bar = QProgressBar()
        self.visits = QListWidget()
        self.visits.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # label keys keep working
        self.visits.setMaximumHeight(110)
        self.visits.itemActivated.connect(lambda item: self.visit_activated.emit(
            self.visits.row(item)))
        self.visits.itemDoubleClicked.connect(lambda item: self.visit_activated.emit(
            self.visits.row(item)))
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.visit_label)
        lay.addWidget(self.bar)
        lay.addWidget(self.text)
        lay.addWidget(self.visits)

    def update_from(self, session: Session) -> None:
        visit = session.current
        st = visit.labels.statistics()
        rate = "–" if st.rate_per_min is None else f"{st.rate_per_min:.1f}/min"
        self.text.setText(
            f"real {st.real} · bogus {st.bogus} · unsure {st.unsure} · "
            f"unlabelled {st.unlabelled} · rate {rate}"
        )
        self.visit_label.setText(
            f"{visit.name} ({session.current_visit + 1} of {len(session.visits)})"
        )
        self.bar.setRange(0, max(st.total, 1))
        self.bar.setValue(st.labelled)
        self.bar.setFormat(f"{st.labelled} / {st.total} labelled")
        self.visits.setVisible(len(session.visits) > 1)
        rows = [visit_progress_text(i, v, i == session.current_visit)
                for i, v in enumerate(session.visits)]
        if [self.visits.item(i).text() for i in range(self.visits.count())] != rows:
            self.visits.clear()
            self.visits.addItems(rows)
        self.visits.setCurrentRow(session.current_visit)


def visit_progress_text(index: int, visit: VisitEntry, current: bool = False) -> str:
    """One line of the visit list: ``▶ 2. visit 123 det 5 — 10 / 38 labelled``."""
    if visit.is_loaded:
        done, total = visit.progress()
        prog = "done" if done == total else f"{done} / {total} labelled"
    else:
        prog = "not opened yet"
    return f"{'▶' if current else '  '} {index + 1}. {visit.name} — {prog}"


class QtLabelController(QObject):
    """Connects a main window to a labelling :class:`Session` (see the module docstring)."""

    labels_changed = pyqtSignal(list)
    #: A visit to show: the window must load its images (``session.visits[index]``).
    visit_requested = pyqtSignal(int)
    save_failed = pyqtSignal(str)

    def __init__(
        self,
        window: LabelWindow,
        session: Session | None = None,
        session_path: str | Path | None = None,
    ) -> None:
        super().__init__(window)
        self.window = window
        window.label_controller = self  # the window closes (saves) it in closeEvent
        #: A message for the status bar once the visit's data are shown (e.g. model missing).
        self.pending_notice: str | None = None
        given = session is not None
        if session is None:
            session = Session(visits=[qt_session.visit_from_window(window)])
        self.session = session
        self.session_path = Path(session_path) if session_path else new_session_path()
        #: The visit whose data the window shows (its pan and zoom are that visit's view);
        #: the session link sets it when a visit's data arrive.
        self.window_visit: VisitEntry | None = self.shown_visit()
        self.triage = self._make_triage(session)
        self.triage.add_selection_listener(self._triage_selected)
        #: What happens when a save fails: dialog, banner, Save As, the close question.
        self.guard = QtSaveGuard(self)
        self.autosave = self._autosave(session, self.session_path)
        self._watch_visits()
        self._build_panel()
        self._bind_actions()
        window.selection_changed.connect(self._window_selected)
        # a progressive load's detections too; the notice once it is done
        window.sources_shown.connect(lambda final: self.sync_window(notice=final))
        window.rescore_done.connect(self._rescored)
        if given:
            self.restore_model()
        self.sync_window()
        self.autosave.save()
        remember_last_session(self.session_path)

    # --- actions and keys -------------------------------------------------------------------
    def _bind_actions(self) -> None:
        """Bind the registry's labelling and session actions (the window built them)."""
        acts = self.window.actions
        for action_id in LABELLING:
            acts.bind(action_id, functools.partial(self.trigger, action_id))
        for action_id, slot in (
            ("open_session", lambda: qt_session.open_session_dialog(self)),
            ("open_visits", self.open_visits),
            ("save_session_as", lambda: self.guard.save_as()),
            ("export", lambda: qt_session.export_dialog(self)),
            ("export_view", lambda: qt_session.export_png_dialog(self, "frames")),
            ("export_plots", lambda: qt_session.export_png_dialog(self, "plots")),
            ("hide_scores", self.hide_scores_check.setChecked),
            ("hide_labelled", self.hide_labelled_check.setChecked),
            ("remaining_bogus", self.label_remaining_bogus),
        ):
            acts.bind(action_id, slot)
        acts.keys_changed.connect(self._update_captions)
        self._update_captions()

    def _update_captions(self) -> None:
        """Show the bound keys on the label buttons (``Real [R]``)."""
        for action, (text, button) in self.label_buttons.items():
            keys = self.window.actions.keys_text(action, "/")
            button.setText(f"{text} [{keys}]" if keys else text)

    def trigger(self, action: str) -> bool:
        """Run a named action (what a key press does)."""
        if action == "edit_note":
            self.note_edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
            self.note_edit.selectAll()
            return True
        if action == "next_visit":
            return self.next_visit()
        loading = getattr(self.window, "loading", None)
        if action in LABEL_ACTIONS and loading is not None and loading.active:
            # catalog sources shown before the detections (qt_loading): their labels go to
            # the matched detections when those arrive
            label = LABEL_ACTIONS[action]
            if loading.label_selected(None if label is None else label.value):
                return True
        return self.triage.perform(action)

    # --- panel / menu ----------------------------------------------------------------------
    def _button(self, text: str, action_id: str) -> QPushButton:
        """A panel button that triggers registry action ``action_id`` (as its key and menu do)."""
        b = QPushButton(text)
        b.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys keep going to the window
        b.clicked.connect(lambda _checked=False: self.window.actions[action_id].trigger())
        return b

    def _build_panel(self) -> None:
        panel = QWidget()
        self.stats = QtLabelStats()
        self.stats.visit_activated.connect(self.goto_visit)
        self.note_edit = QtNoteEdit()
        self.note_edit.setPlaceholderText("note on the selected source (Enter saves)")
        self.note_edit.returnPressed.connect(self.commit_note)
        grid = QGridLayout()
        #: action -> (caption, button); the bound keys are added by :meth:`_update_captions`.
        self.label_buttons: dict[str, tuple[str, QPushButton]] = {}
        for i, (text, action) in enumerate((("Real", "label_real"), ("Bogus", "label_bogus"),
                                            ("Unsure", "label_unsure"), ("Clear", "clear_label"))):
            button = self._button(text, action)
            self.label_buttons[action] = (text, button)
            grid.addWidget(button, 0, i)
        grid.addWidget(self._button("Undo", "undo"), 1, 0)
        grid.addWidget(self._button("Next unlabelled", "next_unlabelled"), 1, 1)
        grid.addWidget(self._button("Remaining → bogus…", "remaining_bogus"), 1, 2)
        grid.addWidget(self._button("Next visit", "next_visit"), 1, 3)
        self.hide_scores_check = QCheckBox("Hide model scores while labelling")
        self.hide_labelled_check = QCheckBox("Hide labelled sources")
        for cb in (self.hide_scores_check, self.hide_labelled_check):
            cb.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.hide_scores_check.setChecked(self.triage.hide_scores)
        self.hide_labelled_check.setChecked(self.triage.hide_labelled)
        self.hide_scores_check.toggled.connect(self.set_hide_scores)
        self.hide_labelled_check.toggled.connect(self.set_hide_labelled)
        lay = QVBoxLayout(panel)
        lay.addWidget(self.stats)
        lay.addLayout(grid)
        lay.addWidget(self.note_edit)
        lay.addWidget(self.hide_scores_check)
        lay.addWidget(self.hide_labelled_check)
        lay.addStretch(1)
        self.panel = panel
        self.dock = self.window.add_dock("Labels", panel)

    # --- actions ---------------------------------------------------------------------------
    def commit_note(self) -> None:
        self.triage.set_note(self.note_edit.text())
        self.window.table.setFocus()

    def label_source(self, sid: SourceId, label: str | None) -> bool:
        """Label source ``sid`` (None clears it) without moving the selection (the gallery
        asks so); autosaved and undone like a key press. False for an unknown id."""
        if sid not in self.triage.store:
            return False
        self.triage.store.set_label(sid, label)
        return True

    def label_remaining_bogus(self, confirm: bool = True) -> int:
        """Label every unlabelled source of this visit bogus, after a confirmation dialog."""
        n = self.triage.store.statistics().unlabelled
        if n == 0:
            return 0
        if confirm:
            box = QMessageBox(
                QMessageBox.Icon.Question, "Label remaining as bogus",
                f"Label all {n} unlabelled sources of {self.session.current.name} as bogus?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self.window,
            )
            box.setDefaultButton(QMessageBox.StandardButton.Cancel)
            self.last_dialog = box
            if box.exec() != QMessageBox.StandardButton.Yes:
                return 0
        return self.triage.label_remaining_bogus()

    def set_hide_scores(self, on: bool) -> None:
        self.triage.set_option("hide_scores", on)
        self.window.actions["hide_scores"].setChecked(on)
        self.hide_scores_check.setChecked(on)
        self._apply_hide_scores()
        self.autosave.save()

    def set_hide_labelled(self, on: bool) -> None:
        self.triage.set_option("hide_labelled", on)
        self.window.actions["hide_labelled"].setChecked(on)
        self.hide_labelled_check.setChecked(on)
        self._apply_hide_labelled()
        self.autosave.save()

    def next_visit(self) -> bool:
        """Go to the next visit (the window loads it through ``visit_requested``)."""
        self._store_view()  # keep the view of the visit we leave
        if not self.triage.next_visit():
            self._status("this is the last visit of the session", 5000)
            return False
        self._visit_changed()
        return True

    def goto_visit(self, index: int) -> bool:
        """Go to visit ``index`` of the session (visit list in the Labels dock)."""
        if index == self.session.current_visit or not 0 <= index < len(self.session.visits):
            return False
        self._store_view()  # keep the view of the visit we leave
        self.triage.set_visit(index)
        self._visit_changed()
        return True

    def add_visit(self, visit: VisitEntry, make_current: bool = True) -> int:
        """Append a visit to the session (e.g. images opened while labelling); its index."""
        self._store_view()
        self.session.visits.append(visit)
        self.autosave.watch(visit)
        visit.labels.add_listener(functools.partial(self._labels_changed, visit))
        index = len(self.session.visits) - 1
        if make_current:
            self.triage.set_visit(index)
            self.window_visit = visit
        self.sync_window()
        self.autosave.save()
        return index

    def _visit_changed(self) -> None:
        self.visit_requested.emit(self.session.current_visit)
        self.sync_window()
        self.autosave.save()

    def open_visits(self) -> bool:
        """File > Open visits…, through the window's session link (which loads the visits)."""
        link = self.window.session_link
        if link is None:
            self._notice("no session link: open visits with `diascan view --visits`")
            return False
        return link.open_visits()

    def close(self) -> bool:
        """When the window closes: save (selection and view included) and stop autosaving.

        If the session cannot be saved the user chooses Save As…, Discard or Cancel
        (:meth:`QtSaveGuard.confirm_leave`); ``False`` (Cancel): keep the window open, nothing
        stopped.
        """
        if not self.guard.confirm_leave("close the window"):
            return False
        self.autosave.detach()
        return True

    def _autosave(self, session: Session, path: Path) -> Autosave:
        return Autosave(session, path, on_error=self.guard.failed, on_saved=self.guard.saved,
                        before_save=self._store_view)

    def set_session(self, session: Session, path: str | Path) -> bool:
        """Switch to another session (File > Open session, Open visits); ``False`` when the
        current one cannot be saved and the user cancelled (see :meth:`close`)."""
        # the session we leave is saved with its selection and view (or saved elsewhere, or
        # its unsaved changes discarded: the user's choice)
        if not self.guard.confirm_leave("open another session"):
            return False
        self.autosave.detach()
        self.guard.reset()  # the old session's warning goes with it
        self.session = session
        self.session_path = Path(path)
        self.window_visit = None  # until the new session's visit is shown
        self.triage = self._make_triage(session)
        self.triage.add_selection_listener(self._triage_selected)
        self.autosave = self._autosave(session, self.session_path)
        self._watch_visits()
        self.hide_scores_check.setChecked(self.triage.hide_scores)
        self.hide_labelled_check.setChecked(self.triage.hide_labelled)
        remember_last_session(self.session_path)
        self.restore_model()
        self.visit_requested.emit(session.current_visit)
        self.sync_window()
        return True

    # --- scores and model ------------------------------------------------------------------
    def shown_visit(self) -> VisitEntry | None:
        """The visit whose sources the window shows (the current one, unless a visit switch is
        still loading), or ``None``."""
        ids = self.window.source_ids()
        if not ids:
            return None
        want = set(ids)
        for v in (self.session.current, *self.session.visits):
            if v.is_loaded and set(v.labels.ids) == want:
                return v
        return None

    def _rescored(self, res) -> None:
        """``rescore_done``: write the new scores and the model into the visit; autosave.

        Only scores the window shows are written: a rescoring of sources replaced since (a
        visit switch) leaves the session alone.
        """
        src = self.window.sources
        visit = self.shown_visit()
        if res is None or src is None or visit is None:
            return
        idx = np.asarray(res[0], dtype=int)
        scores = np.asarray(res[1], dtype=float)
        if idx.size and (idx.max() >= len(src)
                         or not np.array_equal(src.score[idx], scores, equal_nan=True)):
            log.info("rescored sources are not the ones shown; their scores are not saved")
            return
        name, version, path = self.window_model()
        n = visit.set_scores({int(i): float(v) for i, v in zip(src.ids[idx], scores, strict=True)},
                             name, version, path)
        log.info("%d scores of %s saved (model %s %s)", n, visit.name, name, version)
        self.autosave.save()

    def window_model(self) -> tuple[str | None, str | None, str | None]:
        """``(name, version, package path)`` of the window's current model."""
        model = self.window.model  # a loaded model package, or None until one is loaded
        name = self.window.state.model_name or getattr(model, "name", None)
        version = getattr(model, "version", None)
        path = getattr(model, "path", None)
        if path is None and name is not None:
            path = _spec_path(self.window.model_specs.get(name))
        return (name, None if version is None else str(version),
                None if path is None else str(path))

    def restore_model(self) -> str | None:
        """Select the current visit's saved model in the window's switcher (no rescoring).

        Found by name (and package path), else by package path, else by name alone; a saved
        package folder that still exists is added to the switcher. When it is not available,
        the log and the status bar say so (the saved scores are kept). Returns the selected
        name, or ``None``.
        """
        visit = self.session.current
        name, path = visit.model_name, visit.model_path
        if not name and not path:
            return None
        specs = dict(self.window.model_specs)
        want = _resolved(path)
        same = [k for k, sp in specs.items() if want and _resolved(_spec_path(sp)) == want]
        chosen = same[0] if same else None
        if name in specs and (not same or name in same):
            chosen = name
        if chosen is None and path and Path(path).is_dir():
            chosen = name or Path(path).name
            specs[chosen] = Path(path)
        if chosen is None:
            what = f"{name or Path(path).name}" + (f" {visit.model_version}"
                                                   if visit.model_version else "")
            current = self.window.state.model_name
            msg = (f"model {what} of this session is not available ({path or 'no path saved'})"
                   f"; saved scores kept, rescoring uses {current or 'no model'}")
            log.warning(msg)
            self._notice(msg)
            return None
        if self.window.state.model_name != chosen or chosen not in self.window.model_specs:
            self.window.set_models(specs, chosen)
        return chosen

    def _apply_scores(self, visit: VisitEntry, src) -> None:
        """Show the visit's saved scores in the window (one ``scores`` notification)."""
        rows, vals = [], []
        for s in visit.sources:
            if s.score is None:
                continue
            row = _row(src, s.id)
            if row is not None and src.score[row] != s.score:
                rows.append(row)
                vals.append(s.score)
        if rows:
            src.set_scores(rows, vals)

    def _notice(self, msg: str) -> None:
        """Status-bar message now and again once the visit's data are shown."""
        self.pending_notice = msg
        self._status(msg, 15000)

    def _status(self, msg: str, msecs: int) -> None:
        bar = self.window.statusBar()
        if bar is not None:
            bar.showMessage(msg, msecs)

    # --- window sync -----------------------------------------------------------------------
    def sync_window(self, notice: bool = True) -> None:
        """Mirror labels, options, view and selection of the current visit into the window
        (``notice``: and show the pending notice, after the load's own status message)."""
        ids = self.window.source_ids()
        visit = self.session.current
        if ids and set(ids) != set(visit.labels.ids):
            log.info("window shows sources that are not in this visit; labels not mirrored")
            self.stats.update_from(self.session)
            return
        src = self.window.sources
        if src is not None:
            rows, labs = [], []
            for sid in visit.labels.ids:
                row = src.index_of(sid)
                lab = visit.labels.label(sid)
                if row is not None and src.labels[row] != (lab.value if lab else None):
                    rows.append(row)
                    labs.append(lab.value if lab else None)
            src.set_labels(rows, labs)
            self._apply_scores(visit, src)
        if ids and self.pending_notice and notice:  # after the load's own status message
            self._status(self.pending_notice, 15000)
            self.pending_notice = None
        self._restore_view(visit.view)
        self._apply_hide_scores()
        self._apply_hide_labelled()
        if visit.current_source is not None and visit.current_source in visit.labels:
            self.window.select_source(visit.current_source)
        elif ids and (shown := self.window.selected_id()) is not None and shown in visit.labels:
            # a new visit: the source the window selected by itself (the known transient) is
            # the one the label keys act on
            self.triage.select(shown, notify=False)
        self._show_note()
        self.stats.update_from(self.session)

    def _watch_visits(self) -> None:
        for v in self.session.visits:
            self.autosave.watch(v)
            v.labels.add_listener(functools.partial(self._labels_changed, v))

    def _labels_changed(self, visit: VisitEntry, ids: list) -> None:
        if visit is not self.session.current:
            return
        src = self.window.sources
        if src is not None:
            rows, labs = [], []
            for sid in ids:
                row = src.index_of(sid)
                if row is not None:
                    lab = visit.labels.label(sid)
                    rows.append(row)
                    labs.append(lab.value if lab else None)
            src.set_labels(rows, labs)  # one refresh of table rows, filter and markers
        self._show_note()
        self.stats.update_from(self.session)
        self.labels_changed.emit(list(ids))

    def _triage_selected(self, sid) -> None:
        if sid is not None:
            self.window.select_source(sid)
        self._show_note()

    def _window_selected(self, sid: int) -> None:
        if sid in self.triage.store:
            self.triage.select(sid, notify=False)
            self._show_note()

    def _show_note(self) -> None:
        sid = self.triage.current
        note = "" if sid is None else self.triage.store.note(sid)
        if not self.note_edit.hasFocus():
            self.note_edit.setText(note)

    def _make_triage(self, session: Session) -> Triage:
        """The Qt-free triage model; n / p / Space follow the table's displayed order."""
        return Triage(session, order=self.window.displayed_source_ids)

    def _apply_hide_scores(self) -> None:
        # the window hides them everywhere: table, markers, cutouts, plots
        self.window.state.hide_scores = self.triage.hide_scores

    def _apply_hide_labelled(self) -> None:
        """Hide labelled sources in the table and on the frames (the proxy filters by label,
        so the hidden rows stay right after sorting and re-filtering)."""
        self.window.state.hidden_labels = (
            frozenset(lab.value for lab in Label) if self.triage.hide_labelled else frozenset()
        )

    def _store_view(self) -> None:
        """Keep the window's view (pan, zoom, display) in the visit it shows, and only there:
        while the next visit loads, the window still shows the last one (its zoom must not
        become the new visit's), and before any data it shows nothing."""
        visit = self.window_visit
        if visit is not None:
            view = dict(self.window.state.to_dict())
            view.pop("selected_id", None)
            visit.view = view

    def _restore_view(self, view: dict) -> None:
        state = self.window.state
        if not view:
            return
        # The model is the window's switcher's business (its combo box), not a view setting.
        view = {k: v for k, v in view.items() if k != "model_name"}
        skipped = state.update_from_dict(view, selection=False)
        if skipped:  # a stale or hand-edited setting: skipped, the rest applied
            log.warning("view settings not restored: %s", ", ".join(skipped))


def _spec_path(spec: Any) -> Any:
    """The package path of a model switcher entry (a path, or a loaded model with ``path``)."""
    if spec is None or isinstance(spec, str | Path):
        return spec
    return getattr(spec, "path", None)


def _resolved(path: Any) -> str | None:
    if path is None:
        return None
    try:
        return str(Path(path).expanduser().resolve())
    except (OSError, RuntimeError):
        return str(path)


def _row(src: Any, sid: SourceId) -> int | None:
    try:
        return src.index_of(sid)
    except (TypeError, ValueError):  # a string id the window's integer ids cannot hold
        return None


__all__ = ["Label", "QtLabelController", "QtLabelStats"]
