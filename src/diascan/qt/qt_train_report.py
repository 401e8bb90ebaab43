"""The report of a fine-tuning run: before/after numbers on the held-out labels, ROC curves.

:class:`QtTrainReportDialog` shows a :class:`~diascan.learn.job.TrainReport` as the core
measured it: ROC AUC, purity and completeness at 0.5 and at the chosen threshold, the confusion
matrices, the label counts used, the ROC curves of the base and the new model on the held-out
labels (the operating points at the thresholds marked) and the loss per epoch. "Use it and
rescore all" selects the new package in the window's model list and rescores every source with
it (:func:`use_model`). :func:`add_package` puts a package into the window's model list.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from diascan.models.locate import model_choices, package_name
from diascan.qt.qt_frames import adopt_menus

#: Colours of the base and the new model's ROC curves.
BASE_COLOR = (150, 150, 150)
NEW_COLOR = (40, 110, 230)
#: Colours of the two loss curves (training, held-out).
TRAIN_COLOR = (90, 140, 230)
HELDOUT_COLOR = (240, 150, 40)


def loss_plot(title: str | None = None) -> tuple[pg.PlotWidget, pg.PlotDataItem, pg.PlotDataItem]:
    """A plot of the training and held-out loss per epoch: ``(plot, training, held-out)``;
    fill the curves with :func:`set_losses`."""
    p = pg.PlotWidget()
    if title:
        p.setTitle(title)
    p.setLabel("bottom", "epoch")
    p.setLabel("left", "loss")
    p.showGrid(x=True, y=True, alpha=0.3)
    for ax in ("left", "bottom"):
        p.getAxis(ax).enableAutoSIPrefix(False)  # no "x 0.001" rescaled labels
    p.addLegend(offset=(-10, 10))
    curves = [p.plot([], [], pen=pg.mkPen(color, width=2), symbol="o", symbolSize=5,
                     symbolBrush=color, name=name)
              for name, color in (("training", TRAIN_COLOR), ("held-out", HELDOUT_COLOR))]
    return p, curves[0], curves[1]


def set_losses(train: pg.PlotDataItem, heldout: pg.PlotDataItem, history: list) -> None:
    """Show ``history`` (EpochStats) on the two curves of :func:`loss_plot`."""
    train.setData([s.epoch for s in history], [s.loss for s in history])
    held = [s for s in history if s.heldout_loss is not None]
    heldout.setData([s.epoch for s in held], [s.heldout_loss for s in held])


def add_package(window: Any, path: str | Path) -> str:
    """Put the package at ``path`` (and any other new one :func:`model_choices` finds) into the
    window's model list, keeping its entries and selection; returns its name there."""
    path = Path(path)
    specs = dict(window.model_specs)
    found, _ = model_choices()
    for name, spec in found.items():
        specs.setdefault(name, spec)
    name = package_name(path)
    specs.setdefault(name, path)
    window.set_models(specs, window.state.model_name)
    return name


def use_model(window: Any, name: str) -> None:
    """Select model ``name`` in the window's switcher and rescore all sources with it."""
    if window.model_combo.currentText() == name:
        window.rescore_all()
    else:
        window.model_combo.setCurrentText(name)  # the switch rescores all sources


def _item(text: str, align=Qt.AlignmentFlag.AlignRight) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setTextAlignment(int(align | Qt.AlignmentFlag.AlignVCenter))
    item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
    return item


def _table(rows: int, cols: int, headers: list[str], row_headers: list[str]) -> QTableWidget:
    t = QTableWidget(rows, cols)
    t.setHorizontalHeaderLabels(headers)
    t.setVerticalHeaderLabels(row_headers)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
    t.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    t.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    t.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    return t


def _fit_height(t: QTableWidget) -> None:
    """No scrolling: as tall as its rows."""
    h = t.horizontalHeader().sizeHint().height() + 2 * t.frameWidth()
    h += sum(t.verticalHeader().sectionSize(r) for r in range(t.rowCount()))
    t.setFixedHeight(h)


class QtTrainReportDialog(QDialog):
    """The numbers and plots of one fine-tuning run (see the module docstring)."""

    def __init__(self, report: Any, window: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent if parent is not None else window)
        self.report = report
        self.window = window
        self.model_name = package_name(report.package)
        self.setWindowTitle(f"Fine-tuned model: {self.model_name}")
        left = QVBoxLayout()
        left.addWidget(self._summary())
        left.addWidget(self._metrics_box())
        left.addWidget(self._confusion_box())
        left.addStretch(1)
        right = QVBoxLayout()
        self.roc_plot = self._roc_plot()
        self.loss_plot = self._loss_plot()
        right.addWidget(self.roc_plot, 3)
        right.addWidget(self.loss_plot, 2)
        body = QHBoxLayout()
        body.addLayout(left, 5)
        body.addLayout(right, 4)
        self.use_btn = QPushButton("Use it and rescore all")
        self.use_btn.setToolTip(f"select {self.model_name} and rescore every source with it")
        self.use_btn.clicked.connect(self.use_and_rescore)
        self.close_btn = QPushButton("Close")
        self.close_btn.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.use_btn)
        buttons.addWidget(self.close_btn)
        lay = QVBoxLayout(self)
        lay.addLayout(body, 1)
        lay.addLayout(buttons)
        self.resize(1120, 680)
        adopt_menus(self)  # the plots' context menus go with the dialog

    # --- text and tables --------------------------------------------------------------------
    def _summary(self) -> QLabel:
        r = self.report
        skipped = ", ".join(f"{n} {why}" for why, n in r.skipped.items() if n)
        stop = "stopped early" if r.stopped_early else "all epochs run"
        lines = [
            f"<b>before</b>: {r.base_name} (the base model)",
            f"<b>after</b>: {self.model_name}, written to {r.package}",
            f"labels used: {r.used.real} real, {r.used.bogus} bogus from {r.n_visits} visit(s) "
            f"of {len(r.sessions)} session(s)",
            f"trained on {r.train.real} real, {r.train.bogus} bogus; "
            f"<b>held out</b> (never trained on): {r.heldout.real} real, {r.heldout.bogus} bogus",
        ]
        if skipped:
            lines.append(f"left out: {skipped}")
        lines.append(f"seed {r.seed}; {len(r.history)} epoch(s), {stop}, weights of epoch "
                     f"{r.best_epoch} kept; {r.seconds.get('total', 0):.0f} s "
                     f"(gather {r.seconds.get('gather', 0):.0f} s, train "
                     f"{r.seconds.get('train', 0):.0f} s)")
        label = QLabel("<br>".join(lines))
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary_label = label
        return label

    def _metrics_box(self) -> QGroupBox:
        from diascan.learn.job import metric_text  # the CLI's and the card's numbers

        r = self.report
        rows = [("ROC AUC", r.before.roc_auc, r.after.roc_auc)]
        for t in r.thresholds:
            b, a = r.before.at(t), r.after.at(t)
            rows += [(f"purity at {t:g}", b.purity, a.purity),
                     (f"completeness at {t:g}", b.completeness, a.completeness)]
        t = _table(len(rows), 2, ["before", "after"], [name for name, _, _ in rows])
        t.horizontalHeaderItem(0).setToolTip(r.base_name)
        t.horizontalHeaderItem(1).setToolTip(self.model_name)
        for i, (_name, before, after) in enumerate(rows):
            t.setItem(i, 0, _item(metric_text(before)))
            t.setItem(i, 1, _item(metric_text(after)))
        _fit_height(t)
        self.metrics_table = t
        box = QGroupBox(f"On the {r.heldout.real + r.heldout.bogus} held-out labels")
        QVBoxLayout(box).addWidget(t)
        return box

    def _confusion_box(self) -> QGroupBox:
        """One 2 x 2 matrix per model and threshold: labelled real/bogus x called real/bogus."""
        r = self.report
        box = QGroupBox("Confusion matrices (called real: score ≥ threshold)")
        grid = QGridLayout(box)
        #: (threshold, "before"/"after") -> table
        self.confusion: dict[tuple[float, str], QTableWidget] = {}
        for row, thr in enumerate(r.thresholds):
            for col, (when, m) in enumerate((("before", r.before), ("after", r.after))):
                c = m.at(thr)
                t = _table(2, 2, ["called real", "called bogus"],
                           ["labelled real", "labelled bogus"])
                for i, j, v in ((0, 0, c.tp), (0, 1, c.fn), (1, 0, c.fp), (1, 1, c.tn)):
                    t.setItem(i, j, _item(str(v), Qt.AlignmentFlag.AlignCenter))
                _fit_height(t)
                title = QLabel(f"{when}, at {thr:g}")
                title.setToolTip(r.base_name if when == "before" else self.model_name)
                grid.addWidget(title, 2 * row, col)
                grid.addWidget(t, 2 * row + 1, col)
                self.confusion[(thr, when)] = t
        return box

    # --- plots ------------------------------------------------------------------------------
    def _roc_plot(self) -> pg.PlotWidget:
        from diascan.learn.job import metric_text

        r = self.report
        p = pg.PlotWidget()
        p.setTitle("ROC on the held-out labels")
        p.setLabel("bottom", "false positive rate (bogus called real)")
        p.setLabel("left", "true positive rate (completeness)")
        p.showGrid(x=True, y=True, alpha=0.3)
        for ax in ("left", "bottom"):
            p.getAxis(ax).enableAutoSIPrefix(False)
        p.setRange(xRange=(0, 1), yRange=(0, 1), padding=0.02)
        p.addLegend(offset=(-10, -10))
        p.plot([0, 1], [0, 1], pen=pg.mkPen((120, 120, 120), style=Qt.PenStyle.DashLine))
        #: "before"/"after" -> the curve item (its data are the core's ROC points)
        self.roc_curves: dict[str, pg.PlotDataItem] = {}
        for when, m, color in (("before", r.before, BASE_COLOR), ("after", r.after, NEW_COLOR)):
            self.roc_curves[when] = p.plot(m.fpr, m.tpr, pen=pg.mkPen(color, width=2),
                                           name=f"{when} (AUC {metric_text(m.roc_auc)})")
            pts = [m.at(t) for t in r.thresholds]
            fpr = [c.fp / (c.fp + c.tn) if c.fp + c.tn else np.nan for c in pts]
            tpr = [c.completeness for c in pts]
            p.plot(fpr, tpr, pen=None, symbol="o", symbolSize=8, symbolBrush=color)
        return p

    def _loss_plot(self) -> pg.PlotWidget:
        p, train, heldout = loss_plot("Loss per epoch")
        set_losses(train, heldout, self.report.history)
        p.addItem(pg.InfiniteLine(self.report.best_epoch, angle=90, label="kept",
                                  pen=pg.mkPen((90, 90, 90), style=Qt.PenStyle.DotLine),
                                  labelOpts={"position": 0.5}))
        return p

    # --- actions ----------------------------------------------------------------------------
    def use_and_rescore(self) -> None:
        """Select the new model (added to the list if it is not there) and rescore all."""
        if self.model_name not in self.window.model_specs:
            add_package(self.window, self.report.package)
        use_model(self.window, self.model_name)
        self.use_btn.setEnabled(False)
        self.use_btn.setText(f"Rescoring with {self.model_name}…")
        self.window.rescore_done.connect(self._rescored)

    def _rescored(self, res: Any) -> None:
        self.window.rescore_done.disconnect(self._rescored)
        done = res is not None  # None: the rescoring was cancelled or failed
        self.use_btn.setText("Rescored" if done else "Use it and rescore all")
        self.use_btn.setEnabled(not done)


__all__ = ["QtTrainReportDialog", "add_package", "loss_plot", "set_losses", "use_model"]
