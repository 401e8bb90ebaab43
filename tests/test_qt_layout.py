"""The window fits the screen: at most 90 % of it, and usable at 1366 x 768 as at 1920 x 1080
(frames, gallery, table, docks, toolbar buttons and status bar inside the window). Writes the
pictures (``DIASCAN_SCREENSHOTS=DIR`` keeps them in DIR: look at them)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from PyQt6.QtCore import QRect  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402

from diascan.qt.qt_main_window import window_size  # noqa: E402

pytestmark = pytest.mark.gui

SCREENS = {"1920x1080": (1920, 1080), "1366x768": (1366, 768)}


def test_window_size_is_at_most_90_percent_of_the_screen():
    assert window_size((1366, 768)) == (1229, 691)
    assert window_size((1920, 1080)) == (1500, 950)  # room for the preferred size
    assert window_size((3840, 2160)) == (1500, 950)
    assert window_size((1024, 600)) == (921, 540)


def test_a_new_window_takes_the_screen_into_account(qtbot):
    from diascan.qt.qt_main_window import QtMainWindow

    w = QtMainWindow()
    qtbot.addWidget(w)
    area = w.screen().availableGeometry()
    assert (w.width(), w.height()) == window_size((area.width(), area.height()))
    assert area.contains(w.frameGeometry()) or area.contains(w.geometry())


def _inside(win, widget) -> bool:
    """``widget`` is shown, and all of it lies inside the window."""
    if not widget.isVisible():
        return False
    top_left = widget.mapTo(win, widget.rect().topLeft())
    return win.rect().contains(QRect(top_left, widget.size()))


@pytest.fixture(params=list(SCREENS))
def laid_out(request, qtbot, small_demo_result, tmp_path, monkeypatch):
    """The window at the size it opens with on that screen, with the Labels dock."""
    from diascan.models import DEFAULT_MODEL_NAME
    from diascan.models.package import resolve_package_path
    from diascan.qt.qt_labels import QtLabelController
    from diascan.qt.qt_main_window import QtMainWindow

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    name = request.param
    w = QtMainWindow()
    qtbot.addWidget(w)
    w.show_errors_as_dialogs = False
    w.resize(*window_size(SCREENS[name]))
    w.set_models({DEFAULT_MODEL_NAME: resolve_package_path(DEFAULT_MODEL_NAME)},
                 DEFAULT_MODEL_NAME)
    w.show()
    with qtbot.waitSignal(w.data_loaded, timeout=5000):
        w.set_result(small_demo_result)
    w.ctl = QtLabelController(w, session_path=tmp_path / "s.json")
    for _ in range(3):
        QApplication.processEvents()
    yield name, w
    w.close()


def test_layout_is_usable_and_pictured(laid_out, qtbot, tmp_path):
    name, win = laid_out
    want = window_size(SCREENS[name])
    assert (win.width(), win.height()) == want, "the layout forced the window larger"
    out = Path(os.environ.get("DIASCAN_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    for widget in (win.statusBar(), win.rescore_sel_btn, win.rescore_all_btn, win.model_combo,
                   win.stretch_combo, win.limits_combo, win.filter_edit, win.goto_edit,
                   win.table, win.cutouts, *win.frames.views.values()):
        assert _inside(win, widget), f"{type(widget).__name__} is not in the window at {name}"
    # the table shows rows, the frames have room, the labelling buttons are on screen
    assert win.table.viewport().height() >= 6 * win.table.verticalHeader().defaultSectionSize()
    assert min(v.width() for v in win.frames.views.values()) >= 220
    assert min(v.height() for v in win.frames.views.values()) >= 250
    for _text, button in win.ctl.label_buttons.values():
        assert _inside(win, button), f"{button.text()} is not on screen at {name}"
    assert win.grab().save(str(out / f"window-frames-{name}.png"))
    win.show_gallery(True)
    QApplication.processEvents()
    st = win.gallery_state
    assert _inside(win, win.gallery) and (st.columns, st.rows) >= (3, 3)
    assert win.gallery.grid.stamp_px >= 51  # the stamps at least at the image's own scale
    assert win.grab().save(str(out / f"window-gallery-{name}.png"))
