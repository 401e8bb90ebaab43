"""The source table: a model over :class:`diascan.viewstate.SourceSet`, a filter proxy, a view.

The model has a column for every column of the sources (``SourceSet.columns``): the default
ones first (:data:`COLUMNS`, shown), then the others in the table's order (``diaSourceId``,
``visit``, ``detector``, ``pixelFlags_*``, ...; hidden until the user shows them from the
header's context menu, :meth:`QtSourceTable.set_column_shown`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PyQt6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPoint,
    QSortFilterProxyModel,
    Qt,
)
from PyQt6.QtGui import QColor
from PyQt6.QtWidgets import QAbstractItemView, QMenu, QTableView, QWidget

from diascan import viewstate as vs
from diascan.palettes import get_palette


@dataclass(frozen=True)
class TableColumn:
    """One column of the table view: its header, the SourceSet column, the cell format."""

    header: str
    name: str
    fmt: str = "{}"
    text: bool = False  #: left-aligned text (else a right-aligned number)


#: The columns shown by default. What a labeller needs (label, status, scores) comes first so
#: it is visible at the default window size; positions last (RA/Dec to 5 decimals: 1e-5 deg =
#: 0.036 arcsec, finer than a centroid). Always the model's first columns, in this order.
COLUMNS: list[TableColumn] = [
    TableColumn("id", "id"),
    TableColumn("label", "label", text=True),
    TableColumn("status", "status", text=True),
    TableColumn("score", "score", "{:.4f}"),
    TableColumn("reliability", "original_reliability", "{:.4f}"),
    TableColumn("SNR", "snr", "{:.1f}"),
    TableColumn("flux", "psfFlux", "{:.0f}"),
    TableColumn("x", "x", "{:.1f}"),
    TableColumn("y", "y", "{:.1f}"),
    TableColumn("RA", "ra", "{:.5f}"),
    TableColumn("Dec", "dec", "{:.5f}"),
]
#: Position of each default column, by header.
COL = {c.header: k for k, c in enumerate(COLUMNS)}
#: The model's scores (hidden while "hide model scores" is on).
SCORE_COLUMNS = ("score", "original_reliability")
SORT_ROLE = Qt.ItemDataRole.UserRole
#: Text of a true flag cell (a false one is empty: flags stand out).
TRUE_TEXT = "✓"
#: A computed row order's rank (:meth:`QtSourceFilter.set_row_order`).
ORDER_ROLE = Qt.ItemDataRole.UserRole + 1


def status_colors(palette: str | None = None) -> dict[str, QColor]:
    """Text colour of each status in the table, from ``palette`` (:mod:`diascan.palettes`)."""
    pal = get_palette(palette)
    return {status: QColor(*pal.status_color(status))
            for status in ("matched", "unmatched", "target")}


STATUS_COLORS = status_colors()


def table_columns(sources: vs.SourceSet) -> list[TableColumn]:
    """The view's columns for ``sources``: :data:`COLUMNS`, then every other column."""
    shown = {c.name for c in COLUMNS}
    out = list(COLUMNS)
    for name, values in sources.columns.items():
        if name not in shown:
            kind = np.asarray(values).dtype.kind
            fmt = "{:.6g}" if kind == "f" else "{}"
            out.append(TableColumn(name, name, fmt, text=kind in "OUS"))
    return out


class QtSourceTableModel(QAbstractTableModel):
    """Rows = detections, columns = the sources' columns (:func:`table_columns`); scores and
    labels update in place through SourceSet listeners."""

    def __init__(self, sources: vs.SourceSet | None = None, parent=None) -> None:
        super().__init__(parent)
        #: True while ``dataChanged`` is emitted (proxies may hide rows: not a user move).
        self.updating = False
        #: Rank of each row in a computed order (:data:`ORDER_ROLE`), or None.
        self.row_rank: np.ndarray | None = None
        self.status_colors = STATUS_COLORS
        self.set_sources(sources or vs.SourceSet.empty())

    def set_palette(self, name: str) -> None:
        """Colour the status column with palette ``name``."""
        self.status_colors = status_colors(name)
        if len(self.sources):
            col = COL["status"]
            self.updating = True
            try:
                self.dataChanged.emit(self.index(0, col), self.index(len(self.sources) - 1, col),
                                      [Qt.ItemDataRole.ForegroundRole])
            finally:
                self.updating = False

    def set_sources(self, sources: vs.SourceSet) -> None:
        self.beginResetModel()
        self.row_rank = None
        self.sources = sources
        self.columns = table_columns(sources)
        self._arrays = [sources.columns[c.name] for c in self.columns]
        sources.connect(self._on_sources)
        self.endResetModel()

    def column_of(self, name: str) -> int | None:
        """Model column of SourceSet column ``name`` (None if the sources have none)."""
        return next((k for k, c in enumerate(self.columns) if c.name == name), None)

    def _on_sources(self, kind: str, indices: np.ndarray) -> None:
        if len(indices) == 0:
            return
        top, bottom = int(np.min(indices)), int(np.max(indices))
        if kind == "columns":  # values of any column changed in place
            first, last = 0, len(self.columns) - 1
        else:
            first = last = COL["score"] if kind == "scores" else COL["label"]  # fixed columns
        self.updating = True
        try:
            self.dataChanged.emit(self.index(top, first), self.index(bottom, last))
        finally:
            self.updating = False

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.sources)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.columns[section].header
        return None

    def value(self, row: int, col: int):
        """The cell's value (None for a missing one: a masked cell)."""
        v = self._arrays[col][row]
        return None if v is np.ma.masked else v

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        r, c = index.row(), index.column()
        v = self.value(r, c)
        if role == Qt.ItemDataRole.DisplayRole:
            return cell_text(v, self.columns[c].fmt)
        if role == SORT_ROLE:
            if isinstance(v, bool | np.bool_):
                return int(v)
            if isinstance(v, np.integer):
                return int(v)
            if isinstance(v, float | np.floating):
                return float(v) if np.isfinite(v) else -np.inf
            if v is None and not self.columns[c].text:
                return -np.inf  # a missing number sorts first
            return "" if v is None else str(v)
        if role == ORDER_ROLE:  # after the common roles: column sorts stay as fast
            return r if self.row_rank is None else int(self.row_rank[r])
        if role == Qt.ItemDataRole.ForegroundRole and c == COL["status"]:
            return self.status_colors.get(str(v))
        if role == Qt.ItemDataRole.TextAlignmentRole and not self.columns[c].text:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


def cell_text(value, fmt: str) -> str:
    """What a table cell shows: empty for a missing value, a tick for a true flag."""
    if value is None:
        return ""
    if isinstance(value, bool | np.bool_):
        return TRUE_TEXT if value else ""
    if isinstance(value, float | np.floating) and not np.isfinite(value):
        return ""
    return fmt.format(value)


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
        #: The filter box's rows (a boolean per source row), None: no filter.
        self.row_mask: np.ndarray | None = None
        self.filtering = False
        for name in ("threshold", "hidden_statuses", "hidden_labels"):
            state.events[name].connect(self.refilter)

    def set_row_mask(self, mask: np.ndarray | None) -> None:
        """Show only the rows where ``mask`` is True (the filter box's expression)."""
        self.row_mask = None if mask is None else np.asarray(mask, dtype=bool)
        self.refilter()

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
        mask = self.row_mask
        if mask is not None and len(mask) == len(src) and not mask[row]:
            return False
        return super().filterAcceptsRow(row, parent)


class QtSourceTable(QTableView):
    """Sortable, filterable table view; selection is single-row.

    Which columns show: :data:`COLUMNS` by default, any other one once the user ticks it in the
    header's context menu (kept by name across visits); the model's scores are hidden while
    :meth:`set_hide_scores` is on, whatever was chosen.
    """

    def __init__(self, proxy: QtSourceFilter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        #: The user's choices: column name -> shown (others: shown if a default column).
        self.column_choice: dict[str, bool] = {}
        self.hide_scores = False
        self.setModel(proxy)
        header = self.horizontalHeader()
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header.customContextMenuRequested.connect(self._header_menu)
        proxy.sourceModel().modelReset.connect(self.apply_columns)
        self.setSortingEnabled(True)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setAlternatingRowColors(True)
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setDefaultSectionSize(20)
        self.horizontalHeader().setStretchLastSection(True)
        self.sortByColumn(COL["id"], Qt.SortOrder.AscendingOrder)
        self.apply_columns()

    def sort_for(self, ids: np.ndarray) -> None:
        """Before new sources come in: sorted by id ascending over ids already ascending, the
        proxy keeps the model's order instead of sorting (Qt's sort of 10,000 rows calls
        ``data`` ~150,000 times: seconds); any other sort the header shows is applied."""
        header, proxy = self.horizontalHeader(), self.proxy()
        column, order = header.sortIndicatorSection(), header.sortIndicatorOrder()
        by_id = column == COL["id"] and order == Qt.SortOrder.AscendingOrder
        if by_id and bool(np.all(np.diff(np.asarray(ids, dtype=np.int64)) > 0)):
            proxy.sort(-1)
        elif proxy.sortColumn() != column or proxy.sortOrder() != order:
            proxy.sort(column, order)

    # -- which columns show ------------------------------------------------------------------
    def table_model(self) -> QtSourceTableModel:
        return self.proxy().sourceModel()  # type: ignore[return-value]

    def is_column_shown(self, name: str) -> bool:
        """Whether the user sees column ``name`` (a SourceSet column name)."""
        col = self.table_model().column_of(name)
        return col is not None and not self.isColumnHidden(col)

    def _wanted(self, name: str) -> bool:
        if self.hide_scores and name in SCORE_COLUMNS:
            return False
        return self.column_choice.get(name, any(c.name == name for c in COLUMNS))

    def set_column_shown(self, name: str, on: bool) -> None:
        """Show or hide column ``name`` (kept for the next visits' tables too)."""
        self.column_choice[name] = bool(on)
        self.apply_columns()

    def set_hide_scores(self, on: bool) -> None:
        """Hide (or show again) the model's score columns; rows sorted by a score go back to
        id order (the order would still give the model's ranking away)."""
        self.hide_scores = bool(on)
        self.apply_columns()
        score_cols = {self.table_model().column_of(n) for n in SCORE_COLUMNS}
        if on and self.horizontalHeader().sortIndicatorSection() in score_cols:
            self.sortByColumn(COL["id"], Qt.SortOrder.AscendingOrder)

    def apply_columns(self) -> None:
        """Hide and show the model's columns as chosen (after every model reset)."""
        for k, c in enumerate(self.table_model().columns):
            want = self._wanted(c.name)
            if self.isColumnHidden(k) == want:
                self.setColumnHidden(k, not want)

    def column_menu(self) -> QMenu:
        """Checkable entries for every column: the default ones, then the catalog's and the
        visit's, the pixel flags and the rest in sub-menus; the header's own actions (the
        computed orders) first."""
        menu = QMenu(self)
        if self.horizontalHeader().actions():
            menu.addActions(self.horizontalHeader().actions())
            menu.addSeparator()
        flags, more = QMenu("Pixel flags", menu), QMenu("More columns", menu)
        for k, c in enumerate(self.table_model().columns):
            if k == len(COLUMNS):
                menu.addSeparator()
            where = (flags if c.name.startswith(vs.FLAG_PREFIX) else
                     more if k >= len(COLUMNS) and c.name not in vs.CORE_COLUMNS else menu)
            act = where.addAction(c.header)
            act.setCheckable(True)
            act.setChecked(not self.isColumnHidden(k))
            act.setEnabled(not (self.hide_scores and c.name in SCORE_COLUMNS))
            act.toggled.connect(lambda on, name=c.name: self.set_column_shown(name, on))
        for sub in (flags, more):
            if not sub.isEmpty():
                menu.addMenu(sub)
        return menu

    def _header_menu(self, pos: QPoint) -> None:
        self.column_menu().popup(self.horizontalHeader().mapToGlobal(pos))

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
        for col, c in enumerate(table_columns(sources)):
            samples = [cell_text(v, c.fmt) for v in _extremes(sources.columns[c.name])]
            if c.name == "label":
                samples.append("unsure")
            text = max((fm.horizontalAdvance(t) for t in samples), default=0) + 12
            self.setColumnWidth(col, max(text, hfm.horizontalAdvance(c.header) + arrow))

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
    if np.ma.isMaskedArray(values):
        values = values.compressed()
        if len(values) == 0:
            return []
    arr = np.asarray(values)
    if arr.dtype.kind == "b":
        return [True]
    if arr.dtype.kind in "iuf":
        finite = arr[np.isfinite(arr)] if arr.dtype.kind == "f" else arr
        return [] if finite.size == 0 else [finite.min(), finite.max()]
    texts = {str(v) for v in values if v is not None}
    return sorted(texts, key=len)[-1:]

