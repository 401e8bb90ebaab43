"""The source table: a model over :class:`diascan.viewstate.SourceSet`, a filter proxy, a view."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PyQt6.QtGui import QColor
from PyQt6.QtWidgets import QAbstractItemView, QTableView, QWidget

from diascan import viewstate as vs
from diascan.palettes import get_palette

#: (header, SourceSet attribute, format). What a labeller needs (label, status, scores) comes
#: first so it is visible at the default window size; positions last (RA/Dec to 5 decimals:
#: 1e-5 deg = 0.036 arcsec, finer than a centroid).
COLUMNS: list[tuple[str, str, str]] = [
    ("id", "ids", "{}"),
    ("label", "labels", "{}"),
    ("status", "status", "{}"),
    ("score", "score", "{:.4f}"),
    ("reliability", "original", "{:.4f}"),
    ("SNR", "snr", "{:.1f}"),
    ("flux", "flux", "{:.0f}"),
    ("x", "x", "{:.1f}"),
    ("y", "y", "{:.1f}"),
    ("RA", "ra", "{:.5f}"),
    ("Dec", "dec", "{:.5f}"),
]
COL = {h: k for k, (h, _, _) in enumerate(COLUMNS)}
#: Columns of text (left-aligned); the others are numbers (right-aligned).
TEXT_COLUMNS = frozenset({COL["label"], COL["status"]})
SORT_ROLE = Qt.ItemDataRole.UserRole
#: A computed row order's rank (:meth:`QtSourceFilter.set_row_order`).
ORDER_ROLE = Qt.ItemDataRole.UserRole + 1
STATUS_COLORS = {
    status: QColor(*get_palette().status_color(status))
    for status in ("matched", "unmatched", "target")
}


class QtSourceTableModel(QAbstractTableModel):
    """Rows = detections; scores and labels update in place through SourceSet listeners."""

    def __init__(self, sources: vs.SourceSet | None = None, parent=None) -> None:
        super().__init__(parent)
        self.sources = sources or _empty_sources()
        self.sources.connect(self._on_sources)
        #: True while ``dataChanged`` is emitted (proxies may hide rows: not a user move).
        self.updating = False
        #: Rank of each row in a computed order (:data:`ORDER_ROLE`), or None.
        self.row_rank: np.ndarray | None = None

    def set_sources(self, sources: vs.SourceSet) -> None:
        self.beginResetModel()
        self.row_rank = None
        self.sources = sources
        sources.connect(self._on_sources)
        self.endResetModel()

    def _on_sources(self, kind: str, indices: np.ndarray) -> None:
        if len(indices) == 0:
            return
        col = COL["score"] if kind == "scores" else COL["label"]
        top, bottom = int(np.min(indices)), int(np.max(indices))
        self.updating = True
        try:
            self.dataChanged.emit(self.index(top, col), self.index(bottom, col))
        finally:
            self.updating = False

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.sources)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section][0]
        return None

    def value(self, row: int, col: int):
        attr = COLUMNS[col][1]
        v = getattr(self.sources, attr)[row]
        return v

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        r, c = index.row(), index.column()
        v = self.value(r, c)
        if role == Qt.ItemDataRole.DisplayRole:
            if v is None:
                return ""
            if isinstance(v, float | np.floating) and not np.isfinite(v):
                return ""
            return COLUMNS[c][2].format(v)
        if role == SORT_ROLE:
            if isinstance(v, np.integer):
                return int(v)
            if isinstance(v, float | np.floating):
                return float(v) if np.isfinite(v) else -np.inf
            return "" if v is None else str(v)
        if role == ORDER_ROLE:  # after the common roles: column sorts stay as fast
            return r if self.row_rank is None else int(self.row_rank[r])
        if role == Qt.ItemDataRole.ForegroundRole and c == COL["status"]:
            return STATUS_COLORS.get(str(v))
        if role == Qt.ItemDataRole.TextAlignmentRole and c not in TEXT_COLUMNS:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class QtSourceFilter(QSortFilterProxyModel):
    """Sorts by the numeric value; hides rows below the score threshold, with a hidden status
    or with a hidden label (``state.hidden_labels``: "hide labelled sources").

    Label changes re-filter their rows through ``dynamicSortFilter`` (the model emits
    ``dataChanged`` on the label column), so hidden rows never go stale after a re-sort.
    ``filtering`` is true while rows are being re-filtered (the window ignores the current-row
    moves Qt makes when the current row disappears).

    :meth:`set_row_order` shows the rows in a computed order (e.g. "uncertain first") until a
    column is sorted again (a header click).
    """

    def __init__(self, state: vs.ViewerState, parent=None) -> None:
        super().__init__(parent)
        self.state = state
        self.setSortRole(SORT_ROLE)
        self.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.setFilterKeyColumn(-1)
        self._visible: np.ndarray | None = None
        self.filtering = False
        state.connect(self._on_state)

    # A computed order ("uncertain first") is a sort by ORDER_ROLE, the rank the model holds:
    # Qt's own sort, no Python lessThan (that would slow every column sort down twofold).
    def set_row_order(self, order: np.ndarray) -> None:
        """Show the source rows in ``order`` (source-row indices, first shown first; rows left
        out go last); a later column sort ends it."""
        model = self.sourceModel()
        rank = np.full(model.rowCount(), len(order), dtype=np.int64)
        rank[np.asarray(order, dtype=np.int64)] = np.arange(len(order))
        model.row_rank = rank
        self.setSortRole(ORDER_ROLE)
        super().sort(0, Qt.SortOrder.AscendingOrder)
        self.invalidate()  # Qt skips sorting by the column and order it sorted by already

    @property
    def row_rank(self) -> np.ndarray | None:
        """The computed order shown (rank per source row), or None (a column sort)."""
        return self.sourceModel().row_rank if self.sortRole() == ORDER_ROLE else None

    def setSourceModel(self, model) -> None:  # noqa: N802 - Qt API
        super().setSourceModel(model)
        model.modelAboutToBeReset.connect(self._end_row_order)  # other sources: order gone

    def _end_row_order(self) -> None:
        self.setSortRole(SORT_ROLE)

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        computed = self.sortRole() == ORDER_ROLE
        self.setSortRole(SORT_ROLE)  # a column sort (a header click) ends a computed order
        super().sort(column, order)
        if computed:
            self.invalidate()  # even by the column and order Qt sorted by last

    def _on_state(self, name: str, value) -> None:
        if name in ("threshold", "hidden_statuses", "hidden_labels"):
            self.refilter()

    def refilter(self) -> None:
        self._visible = None
        self.filtering = True
        try:
            self.invalidateFilter() if hasattr(self, "invalidateFilter") else self.invalidate()
        finally:
            self.filtering = False

    def filterAcceptsRow(self, row: int, parent: QModelIndex) -> bool:
        src = self.sourceModel().sources
        if self._visible is None or len(self._visible) != len(src):
            self._visible = src.visible(self.state.threshold, self.state.hidden_statuses)
        if not self._visible[row]:
            return False
        hidden_labels = self.state.hidden_labels
        if hidden_labels and src.labels[row] in hidden_labels:
            return False
        return super().filterAcceptsRow(row, parent)


class QtSourceTable(QTableView):
    """Sortable, filterable table view; selection is single-row."""

    def __init__(self, proxy: QtSourceFilter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setModel(proxy)
        self.setSortingEnabled(True)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setAlternatingRowColors(True)
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setDefaultSectionSize(20)
        self.horizontalHeader().setStretchLastSection(True)
        self.sortByColumn(COL["id"], Qt.SortOrder.AscendingOrder)

    def fit_columns(self, sources: vs.SourceSet) -> None:
        """Widths from the header and the widest value of each column.

        The widest value comes from the column's extremes, not from every row
        (``resizeColumnsToContents`` formats every row: slow on thousands of sources).
        """
        fm = self.fontMetrics()
        header = self.horizontalHeader()
        hfm = header.fontMetrics()
        # room for the sort arrow and the cell margins of the style
        arrow = hfm.height() + 8
        for col, (name, attr, fmt) in enumerate(COLUMNS):
            samples = [fmt.format(v) for v in _extremes(getattr(sources, attr, None))]
            if attr == "labels":
                samples.append("unsure")
            text = max((fm.horizontalAdvance(t) for t in samples), default=0) + 12
            self.setColumnWidth(col, max(text, hfm.horizontalAdvance(name) + arrow))

    def proxy(self) -> QtSourceFilter:
        return self.model()  # type: ignore[return-value]

    def source_row_of_current(self) -> int | None:
        idx = self.currentIndex()
        if not idx.isValid():
            return None
        return self.proxy().mapToSource(idx).row()

    def select_source_row(self, row: int) -> bool:
        """Select and scroll to source row ``row``; False if it is filtered out."""
        proxy = self.proxy()
        src_idx = proxy.sourceModel().index(row, 0)
        idx = proxy.mapFromSource(src_idx)
        if not idx.isValid():
            return False
        if self.currentIndex().row() != idx.row() or not self.selectionModel().isRowSelected(
            idx.row(), QModelIndex()
        ):
            self.selectRow(idx.row())
        self.scrollTo(idx)
        return True


def _extremes(values) -> list:
    """The values whose text is widest: min and max of numbers, the longest strings."""
    if values is None or len(values) == 0:
        return []
    arr = np.asarray(values)
    if arr.dtype.kind in "iuf":
        finite = arr[np.isfinite(arr)] if arr.dtype.kind == "f" else arr
        return [] if finite.size == 0 else [finite.min(), finite.max()]
    texts = {str(v) for v in values if v is not None}
    return sorted(texts, key=len)[-1:]


def _empty_sources() -> vs.SourceSet:
    e = np.empty(0)
    return vs.SourceSet(
        ids=np.empty(0, dtype=np.int64), x=e, y=e, ra=e, dec=e, snr=e, flux=e,
        original=e, score=e, status=np.empty(0, dtype=object),
    )
