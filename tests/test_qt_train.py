"""Score > Improve model from my labels… in the real window, offscreen: real sessions on the small
demo labelled from its truth table, real fine-tuning (two epochs), the report's numbers against
the CLI's run of the same job, the new package in the model list, "use it and rescore all",
cancel mid-training, too few labels refused with the counts, the uncertain-first sorts, and
pictures of both dialogs at 1920 x 1080 and 1366 x 768."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PyQt6.QtCore import Qt  # noqa: E402
from PyQt6.QtWidgets import QApplication, QMessageBox  # noqa: E402

from diascan.learn.demo import demo_detections, write_labelled_session  # noqa: E402
from diascan.learn.job import metric_text  # noqa: E402
from diascan.learn.order import uncertain_first  # noqa: E402
from diascan.models.locate import model_choices, package_name, user_models_dir  # noqa: E402
from diascan.session import load_session  # noqa: E402

pytestmark = pytest.mark.gui

#: Screens of the pictures (the window takes 90 % of the screen, the dialog on top of it).
SCREENS = {"1920x1080": (1920, 1080), "1366x768": (1366, 768)}


@pytest.fixture(autouse=True)
def dirs(tmp_path, monkeypatch):
    """Per test: the user models folder (what the model list finds) and the config."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))


@pytest.fixture(scope="module")
def demos(small_demo, tmp_path_factory):
    """Two small demo visits (seeds 1 and 2) with their detections' truth labels."""
    from diascan.demo import generate_demo

    second = tmp_path_factory.mktemp("demo_seed2")
    generate_demo(second, small=True, seed=2)
    return [demo_detections(small_demo), demo_detections(second)]


@pytest.fixture(scope="module")
def sessions(demos, tmp_path_factory):
    """One session file per demo visit, every detection labelled from the truth (as a perfect
    scanner would); together they have at least 30 labels of each class, alone they do not."""
    root = tmp_path_factory.mktemp("sessions")
    return [write_labelled_session([d], root / f"s{i + 1}.json") for i, d in enumerate(demos)]


def _counts(dets) -> tuple[int, int]:
    real = sum(int(d.real.sum()) for d in dets)
    return real, sum(len(d.real) for d in dets) - real


def open_window(qtbot, session: Path):
    """The real window showing ``session`` (its first visit) scored with the bundled model, as
    ``diascan view --session`` shows it."""
    from diascan.qt.qt_main_window import QtMainWindow
    from diascan.qt.qt_session_link import QtSessionLink

    w = QtMainWindow()
    qtbot.addWidget(w)
    w.show_errors_as_dialogs = False
    w.set_models(*model_choices())
    link = QtSessionLink(w, session_path=session, interactive=False)
    w.show()
    with qtbot.waitSignal(w.data_loaded, timeout=30000):
        link.open_session(load_session(session), session)
    with qtbot.waitSignal(w.rescore_done, timeout=60000):
        w.rescore_all()
    return w, link


def _copy(path: Path, tmp_path: Path) -> Path:
    """A copy of a session file the test's window may save into."""
    dst = tmp_path / path.name
    shutil.copy(path, dst)
    return dst


def _quick(w, **kw):
    """Short fine-tuning for the tests (one thread, as the CLI's --threads 1)."""
    from diascan.models.finetune import FinetuneConfig

    w.learning.config = FinetuneConfig(threads=1, **kw)


def _cells(table) -> list[list[str]]:
    return [[table.item(r, c).text() for c in range(table.columnCount())]
            for r in range(table.rowCount())]


def _picture(w, dialog, screen: str, out: Path) -> Path:
    """The window at 90 % of ``screen`` with ``dialog`` centred on it, as one PNG."""
    from PyQt6.QtGui import QColor, QPainter, QPixmap

    sw, sh = SCREENS[screen]
    w.resize(int(sw * 0.9), int(sh * 0.9))
    QApplication.processEvents()
    assert dialog.width() <= sw and dialog.height() <= int(sh * 0.9), "dialog larger than screen"
    hint = dialog.minimumSizeHint()
    assert hint.width() <= dialog.width() and hint.height() <= dialog.height(), "clipped"
    canvas = QPixmap(sw, sh)
    canvas.fill(QColor(40, 40, 40))
    painter = QPainter(canvas)
    painter.drawPixmap(0, 0, w.grab())
    painter.drawPixmap((w.width() - dialog.width()) // 2, (w.height() - dialog.height()) // 2,
                       dialog.grab())
    painter.end()
    path = out / f"{dialog.objectName() or type(dialog).__name__}-{screen}.png"
    assert canvas.save(str(path))
    return path


def test_too_few_labels_are_refused_with_the_counts_until_a_session_is_added(
        qtbot, tmp_path, sessions, demos):
    w, _link = open_window(qtbot, _copy(sessions[0], tmp_path))
    w.actions["improve_model"].trigger()
    dlg = w.learning.dialog
    assert dlg.isVisible() and dlg.sessions() == [tmp_path / sessions[0].name]  # the current one
    assert dlg.base_combo.currentText() == w.state.model_name  # the window's model
    real, bogus = _counts(demos[:1])
    assert 0 < real < 30 and 0 < bogus < 30
    text = dlg.counts_label.text()
    assert text.startswith(f"{real} real and {bogus} bogus in 1 visit(s) of 1 session(s)")
    assert text.endswith(f"too few labels to train: {real} real and {bogus} bogus (at least 30 "
                         "of each class needed); label more sources")
    assert not dlg.train_btn.isEnabled()
    assert dlg.start() is None and not w.jobs.busy("train")  # refused, nothing runs
    assert not user_models_dir().exists()

    dlg.add_sessions([sessions[1], sessions[1]])  # more sessions: each once
    real, bogus = _counts(demos)
    assert real >= 30 and bogus >= 30
    assert dlg.counts_label.text() == (f"{real} real and {bogus} bogus in 2 visit(s) of 2 "
                                       "session(s)")
    assert dlg.train_btn.isEnabled()
    dlg.sessions_list.setCurrentRow(1)
    dlg.remove_selected()
    assert not dlg.train_btn.isEnabled()

    # labelling in the window counts again (the session is saved at every label)
    w.select_source(w.source_ids()[0])
    before = dlg.counts_label.text()
    w.actions["label_unsure"].trigger()
    qtbot.waitUntil(lambda: dlg.counts_label.text() != before, timeout=5000)
    assert "(left out: 1 unsure)" in dlg.counts_label.text()
    dlg.close()


def test_train_report_model_list_use_and_rescore(qtbot, tmp_path, sessions, demos):
    """The dialog trains as ``diascan train --from-sessions`` does (the same checkpoint bytes
    and numbers); the report shows those numbers; the package joins the model list; "use it
    and rescore all" scores every source with it; then the models can disagree first."""
    from diascan.cli.main import main
    from diascan.models import load_model
    from diascan.models.scoring import score_sources

    current = _copy(sessions[0], tmp_path)
    w, link = open_window(qtbot, current)
    menus = _parentless_menus()
    _quick(w)
    base_scores = np.array(w.sources.score, dtype=float)
    assert np.isfinite(base_scores).all()  # the bundled model's
    dlg = w.learning.show_dialog()
    dlg.add_sessions([sessions[1]])
    dlg.seed_spin.setValue(3)
    dlg.threshold_spin.setValue(0.7)
    dlg.epochs_spin.setValue(2)
    from PyQt6.QtCore import QThreadPool

    pool = QThreadPool.globalInstance()
    threads = pool.maxThreadCount()
    with qtbot.waitSignal(dlg.trained, timeout=180000) as sig:
        qtbot.mouseClick(dlg.train_btn, Qt.MouseButton.LeftButton)
        assert w.jobs.busy("train") and not dlg.train_btn.isEnabled()
        assert pool.maxThreadCount() == threads + 1  # the training holds a thread of its own
        assert dlg.cancel_btn.isEnabled()
        assert w.rescore_all() is not None  # rescoring starts at once, beside the training
    rep = sig.args[0]
    qtbot.waitUntil(lambda: not dlg.running, timeout=5000)
    assert pool.maxThreadCount() == threads
    assert rep.seed == 3 and rep.threshold == 0.7 and rep.config["epochs"] == 2
    assert [s.epoch for s in dlg.history] == [1, 2] == [s.epoch for s in rep.history]
    xs, ys = dlg.heldout_curve.getData()  # the live plot: held-out loss per epoch
    np.testing.assert_array_equal(ys, [s.heldout_loss for s in rep.history])
    assert dlg.epoch_label.text().startswith("epoch 2 of at most 2: training loss ")
    assert rep.package.parent == user_models_dir() and (rep.package / "meta.yaml").is_file()

    # the CLI on the same sessions and settings makes the same package and numbers
    out = tmp_path / "cli_pkg"
    rc = main(["train", "--from-sessions", str(current), str(sessions[1]), "--seed", "3",
               "--epochs", "2", "--threads", "1", "--threshold", "0.7", "--out", str(out)])
    assert rc == 0
    assert (out / "checkpoint.pt").read_bytes() == (rep.package / "checkpoint.pt").read_bytes()
    cli = json.loads((out / "metrics.json").read_text())
    assert cli["labels"]["used"] == {"real": rep.used.real, "bogus": rep.used.bogus}
    assert (rep.used.real, rep.used.bogus) == _counts(demos)  # every truth label was used

    # the report shows the core's numbers
    rd = dlg.report_dialog
    assert rd.isVisible() and rd.model_name == package_name(rep.package)
    assert _parentless_menus() == menus  # nor the report's
    cells = _cells(rd.metrics_table)
    rows = [rd.metrics_table.verticalHeaderItem(r).text() for r in range(len(cells))]
    assert rows == ["ROC AUC", "purity at 0.5", "completeness at 0.5", "purity at 0.7",
                    "completeness at 0.7"]
    held = cli["heldout_metrics"]
    for col, when in enumerate(("before", "after")):
        assert float(cells[0][col]) == pytest.approx(held[when]["roc_auc"], abs=5e-4)
        assert cells[0][col] == metric_text(getattr(rep, when).roc_auc)
        for k, t in enumerate(held[when]["thresholds"]):
            for j, key in enumerate(("purity", "completeness")):
                value = t[key]
                shown = cells[1 + 2 * k + j][col]
                assert shown == "n/a" if value is None else float(shown) == pytest.approx(
                    value, abs=5e-4)
            conf = _cells(rd.confusion[(t["threshold"], when)])
            assert conf == [[str(t["tp"]), str(t["fn"])], [str(t["fp"]), str(t["tn"])]]
        fpr, tpr = rd.roc_curves[when].getData()
        np.testing.assert_allclose(fpr, held[when]["roc"]["fpr"], atol=1e-6)
        np.testing.assert_allclose(tpr, held[when]["roc"]["tpr"], atol=1e-6)
    assert f"held out</b> (never trained on): {rep.heldout.real} real, {rep.heldout.bogus} " \
           "bogus" in rd.summary_label.text()

    # the model list has the new package (as `diascan models` lists it), the base still chosen
    name = rd.model_name
    assert name in model_choices()[0] and name in w.model_specs
    assert name in [w.model_combo.itemText(i) for i in range(w.model_combo.count())]
    assert w.state.model_name == rep.base_name

    # use it and rescore all: every source gets the new package's score
    qtbot.waitUntil(lambda: not w.jobs.busy("rescore"), timeout=60000)
    with qtbot.waitSignal(w.rescore_done, timeout=60000) as done:
        qtbot.mouseClick(rd.use_btn, Qt.MouseButton.LeftButton)
    assert done.args[0] is not None and len(done.args[0][0]) == len(w.sources)
    assert w.state.model_name == name and w.model_combo.currentText() == name
    new = score_sources(load_model(rep.package), {"x": w.sources.x, "y": w.sources.y},
                        w.images["difference"], w.images["science"], w.images["template"])
    np.testing.assert_array_equal(w.sources.score, new)
    assert np.abs(new - base_scores).max() > 1e-3  # another model, other scores
    assert link.ctl.session.current.model_name == name  # the session records the new model
    assert rd.use_btn.text() == "Rescored" and not rd.use_btn.isEnabled()

    # the two models' scores: the largest disagreement first (the core's order)
    w.actions["sort_disagree"].trigger()
    ids = np.asarray(w.sources.ids)
    assert w.displayed_source_ids() == list(ids[uncertain_first(new, base_scores)])
    assert f"({rep.base_name} and {name})" in w.statusBar().currentMessage()

    out_dir = Path(os.environ.get("DIASCAN_SCREENSHOTS") or tmp_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    dlg.setObjectName("train-dialog")
    rd.setObjectName("train-report")
    for screen in SCREENS:
        for d in (dlg, rd):
            assert _picture(w, d, screen, out_dir).is_file()
    rd.close()
    dlg.report_btn.click()  # the last report, again
    assert rd.isVisible()
    rd.close()
    dlg.close()


def _parentless_menus() -> int:
    """Top-level menus nobody owns (pyqtgraph's plot menus unless adopted: they would outlive
    the dialogs)."""
    from PyQt6.QtWidgets import QMenu

    return sum(isinstance(x, QMenu) and x.parent() is None for x in QApplication.topLevelWidgets())


def test_cancel_mid_training_writes_nothing(qtbot, tmp_path, sessions):
    w, _link = open_window(qtbot, _copy(sessions[0], tmp_path))
    menus = _parentless_menus()
    _quick(w, epochs=500, patience=500)
    dlg = w.learning.show_dialog()
    assert _parentless_menus() == menus  # the dialog's plot menus die with it
    dlg.add_sessions([sessions[1]])
    assert dlg.epochs_spin.value() == 500
    cancelled = []
    job = dlg.start()
    assert job is not None and job.kind == "train"
    job.cancelled.connect(lambda: cancelled.append(True))
    qtbot.waitUntil(lambda: len(dlg.history) >= 1, timeout=120000)  # training, not gathering
    dlg.close()  # hides it: the training goes on, the menu shows it again
    assert job.running and not dlg.isVisible()
    w.actions["improve_model"].trigger()
    assert w.learning.dialog is dlg and dlg.isVisible() and dlg.running
    with qtbot.waitSignal(job.done, timeout=30000):
        qtbot.mouseClick(dlg.cancel_btn, Qt.MouseButton.LeftButton)
    assert cancelled == [True] and len(dlg.history) < 500
    assert dlg.status_label.text() == "training cancelled; nothing was written"
    assert dlg.report is None and dlg.report_dialog is None
    assert not user_models_dir().exists() or not any(user_models_dir().iterdir())
    assert list(w.model_specs) == list(model_choices()[0])  # the list is as it was
    assert dlg.train_btn.isEnabled() and not dlg.cancel_btn.isEnabled()

    # closing the window stops a training (a background job would outlive it)
    job = dlg.start()
    job.cancelled.connect(lambda: cancelled.append(True))
    qtbot.waitUntil(lambda: len(dlg.history) >= 1, timeout=120000)
    w.close()
    qtbot.waitUntil(lambda: job.finished, timeout=30000)
    assert cancelled == [True, True] and dlg.report is None
    assert not user_models_dir().exists() or not any(user_models_dir().iterdir())


def test_training_error_is_a_dialog_naming_the_file(qtbot, tmp_path, sessions, demos):
    """A labelled visit whose science file moved: the job fails with the core's one line,
    shown in a dialog."""
    w, _link = open_window(qtbot, _copy(sessions[0], tmp_path))
    w.show_errors_as_dialogs = True
    moved = tmp_path / "moved"
    shutil.copytree(demos[1].folder, moved, copy_function=os.link)
    other = write_labelled_session([demo_detections(moved)], tmp_path / "other.json")
    (moved / "science.fits").rename(tmp_path / "science.fits")
    _quick(w, epochs=1)
    dlg = w.learning.show_dialog()
    dlg.add_sessions([other])
    assert dlg.train_btn.isEnabled()  # counting needs no image
    with qtbot.waitSignal(w.error_shown, timeout=60000) as sig:
        dlg.start()
    msg = sig.args[0]
    assert msg.startswith(f"{other.resolve()}: visit 1 (visit ")
    assert f"science {moved / 'science.fits'}: not found (moved or deleted?" in msg
    boxes = [b for b in w.findChildren(QMessageBox) if b.isVisible()]
    assert [b.windowTitle() for b in boxes] == ["Training failed"] and boxes[0].text() == msg
    assert dlg.status_label.text() == f"training failed: {msg}"
    qtbot.waitUntil(lambda: not dlg.running, timeout=5000)
    assert dlg.train_btn.isEnabled()
    for b in boxes:
        b.close()

    # the labels are read from the saved session: a session that cannot be saved is refused
    auto = w.label_controller.autosave
    saved_path = auto.path
    auto.path = tmp_path / "a folder"
    auto.path.mkdir()
    shown: list[str] = []
    w.error_shown.connect(shown.append)
    assert dlg.start() is None
    # the save failure's own dialog (the labels are kept), then the training's refusal
    assert shown[0].startswith(f"{auto.path}: cannot save the session")
    assert shown[-1].startswith("the session could not be saved (")
    assert not w.jobs.busy("train")
    auto.path = saved_path  # saving works again: the window closes without asking
    assert auto.save()
    for b in w.findChildren(QMessageBox):
        b.close()
    dlg.close()


def test_uncertain_first_from_the_menu_and_the_header(qtbot, tmp_path, sessions):
    w, _link = open_window(qtbot, _copy(sessions[0], tmp_path))
    scores = np.array(w.sources.score, dtype=float)
    ids = np.asarray(w.sources.ids)
    header = w.table.horizontalHeader()
    assert w.actions["sort_uncertain"] in header.actions()  # the header's context menu
    w.actions["sort_uncertain"].trigger()
    shown = w.displayed_source_ids()
    assert shown == list(ids[uncertain_first(scores)])
    d = np.abs(scores[[w.sources.index_of(i) for i in shown]] - 0.5)
    assert np.all(np.diff(d) >= 0)  # nearest 0.5 first
    assert not header.isSortIndicatorShown()
    # n walks the table's order: the most uncertain source next
    w.select_source(shown[0])
    w.actions["next"].trigger()
    assert w.selected_id() == shown[1]

    # a column click ends it
    rect = header.sectionViewportPosition(0) + header.sectionSize(0) // 2
    from PyQt6.QtCore import QPoint

    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton,
                     pos=QPoint(rect, header.height() // 2))
    assert w.proxy.row_rank is None and header.isSortIndicatorShown()
    assert w.displayed_source_ids() in (sorted(ids.tolist()), sorted(ids.tolist(), reverse=True))

    # hiding the scores ends it, and refuses it (the order would show the scores)
    w.actions["sort_uncertain"].trigger()
    w.state.hide_scores = True
    assert w.proxy.row_rank is None
    assert not w.learning.sort.apply("sort_uncertain")
    assert "scores are hidden" in w.statusBar().currentMessage()
    w.state.hide_scores = False

    # one model only: the catalog's reliability is the other model's score, if there is one
    original = np.array(w.sources.original, dtype=float)
    ok = w.learning.sort.apply("sort_disagree")
    if np.isfinite(original).any():
        assert ok and w.displayed_source_ids() == list(ids[uncertain_first(scores, original)])
    else:
        assert not ok and "two models" in w.statusBar().currentMessage()
