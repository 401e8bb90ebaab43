""""Uncertain first" sorts of the source table (Score menu, table header's context menu).

Two orders from :mod:`diascan.learn.order`: the sources whose score is nearest 0.5 first, or
the sources two models disagree on most first. The two models are the previous and the current
one when the user switched models on these sources (the scores shown just before the switch are
remembered, in this window only), else the catalog's reliability (the pipeline's model) and the
current scores. The order is a snapshot of the scores; it is computed again when a rescoring of
these sources finishes, and ends with a column sort (a header click), new sources or "Hide model
scores" (the order would give the scores away).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PyQt6.QtCore import QObject

from diascan.learn.order import uncertain_first

#: The two orders, by action id.
NEAR_HALF = "sort_uncertain"
DISAGREE = "sort_disagree"


@dataclass
class PreviousScores:
    """The scores some sources showed just before the model was switched."""

    sources: Any  #: the SourceSet they belong to (identity: other sources, other scores)
    model: str | None
    scores: np.ndarray


def _finite(values: np.ndarray) -> bool:
    return bool(np.isfinite(np.asarray(values, dtype=float)).any())


class QtUncertainSort(QObject):
    """The window's "uncertain first" sorts (see the module docstring)."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        #: The order shown now (:data:`NEAR_HALF` or :data:`DISAGREE`), or None.
        self.mode: str | None = None
        self.previous: PreviousScores | None = None
        self._model = window.state.model_name
        window.state.events.model_name.connect(self._model_changed)
        window.state.events.hide_scores.connect(lambda on: on and self.end())
        window.rescore_done.connect(self._rescored)
        window.data_loaded.connect(self._data_loaded)
        header = window.table.horizontalHeader()
        header.sortIndicatorChanged.connect(self._column_sorted)
        # in the header's context menu (QtSourceTable.column_menu), above the columns
        for action_id in (NEAR_HALF, DISAGREE):
            window.actions.bind(action_id, lambda a=action_id: self.apply(a))
            header.addAction(window.actions[action_id])

    # --- the scores to order by ------------------------------------------------------------
    def scores_for(self, mode: str) -> tuple[str, np.ndarray, np.ndarray | None]:
        """``(what they are, scores, other model's scores or None)`` to order by in ``mode``;
        ``ValueError`` saying why not."""
        src = self.window.sources
        if src is None or len(src) == 0:
            raise ValueError("no sources to sort")
        current = self.window.state.model_name or "the current model"
        have_score = _finite(src.score)
        if mode == NEAR_HALF:
            if have_score:
                return f"{current} scores", src.score, None
            if _finite(src.original):
                return "the catalog's reliability", src.original, None
            raise ValueError("no scores yet: rescore first")
        if not have_score:
            raise ValueError("no scores of the current model yet: rescore first")
        prev = self.previous
        if prev is not None and prev.sources is src and _finite(prev.scores):
            return f"{prev.model or 'the previous model'} and {current}", src.score, prev.scores
        if _finite(src.original):
            return f"the catalog's reliability and {current}", src.score, src.original
        raise ValueError("needs the scores of two models: select another model (its scores are "
                         "compared with the ones shown now)")

    def apply(self, mode: str) -> bool:
        """Sort the table in ``mode``'s order; the status bar says by what (or why not)."""
        done, message = self._sort(mode)
        self.window.statusBar().showMessage(message, 8000)
        return done

    def _sort(self, mode: str) -> tuple[bool, str]:
        if self.window.state.hide_scores:
            return False, "model scores are hidden: an uncertain-first order would show them"
        try:
            what, scores, other = self.scores_for(mode)
        except ValueError as exc:
            return False, f"cannot sort: {exc}"
        order = uncertain_first(scores, other)
        self.mode = mode
        self.window.table.horizontalHeader().setSortIndicatorShown(False)  # no column's order
        self.window.proxy.set_row_order(order)
        self.window.table.scrollToTop()
        how = "score nearest 0.5" if mode == NEAR_HALF else "largest disagreement"
        return True, f"sorted {how} first ({what}); click a column to sort by it"

    def end(self) -> None:
        """Back to the column sort the header shows."""
        if self.mode is None:
            return
        self.mode = None
        header = self.window.table.horizontalHeader()
        header.setSortIndicatorShown(True)
        self.window.table.sortByColumn(header.sortIndicatorSection(), header.sortIndicatorOrder())

    # --- events -----------------------------------------------------------------------------
    def _model_changed(self, value: str | None) -> None:
        src = self.window.sources
        if src is not None and _finite(src.score):  # what the old model gave them
            self.previous = PreviousScores(src, self._model, np.array(src.score, float))
        self._model = value

    def _rescored(self, res: Any) -> None:
        if res is not None and self.mode is not None and self.window.proxy.row_rank is not None:
            self._sort(self.mode)  # the same order on the new scores

    def _data_loaded(self) -> None:
        self.end()  # the proxy dropped the order with the old sources

    def _column_sorted(self, *_args: Any) -> None:
        if self.mode is not None and self.window.proxy.row_rank is None:
            self.mode = None
            self.window.table.horizontalHeader().setSortIndicatorShown(True)


__all__ = ["DISAGREE", "NEAR_HALF", "PreviousScores", "QtUncertainSort"]
