"""Widgets bound to the evented state (qt_bind): both ways, refused values, retargeting, and the
real window's controls following a restored view with one emission per changed field."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from types import SimpleNamespace  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from astropy.table import Table  # noqa: E402
from astropy.wcs import WCS  # noqa: E402

from diascan import viewstate as vs  # noqa: E402
from diascan.io.images import ImageData  # noqa: E402

pytestmark = pytest.mark.gui


def _emissions(obj, name):
    seen = []
    obj.events[name].connect(seen.append)
    return seen


def test_combo_and_check_follow_the_field_both_ways(qtbot):
    from PyQt6.QtWidgets import QCheckBox, QComboBox

    from diascan.qt.qt_bind import bind_check, bind_combo

    combo = QComboBox()
    combo.addItems(vs.STRETCHES)
    check = QCheckBox()
    qtbot.addWidget(combo)
    qtbot.addWidget(check)
    a, b = vs.FrameState(stretch="log"), vs.FrameState(stretch="asinh", symmetric=True)
    stretch = bind_combo(combo, a, "stretch")
    sym = bind_check(check, a, "symmetric")
    assert combo.currentText() == "log" and not check.isChecked()  # shows the field at once
    seen = _emissions(a, "stretch")
    combo.setCurrentText("sqrt")  # the user picks
    assert a.stretch == "sqrt" and seen == ["sqrt"]
    a.stretch = "linear"  # the state changes (a restore, a script)
    assert combo.currentText() == "linear" and seen == ["sqrt", "linear"]
    # retarget: the widgets show b's values and write nothing into a or b
    seen_b = _emissions(b, "stretch")
    stretch.retarget(b)
    sym.retarget(b)
    assert combo.currentText() == "asinh" and check.isChecked()
    assert a.stretch == "linear" and not a.symmetric and seen_b == []
    combo.setCurrentText("log")
    assert b.stretch == "log" and a.stretch == "linear"
    a.stretch = "sqrt"  # no longer bound to a
    assert combo.currentText() == "log"


def test_a_refused_value_puts_the_widget_back(qtbot):
    from PyQt6.QtWidgets import QComboBox

    from diascan.qt.qt_bind import bind_combo

    combo = QComboBox()
    combo.addItems([*vs.STRETCHES, "not-a-stretch"])
    qtbot.addWidget(combo)
    frame = vs.FrameState()
    bind_combo(combo, frame, "stretch")
    combo.setCurrentText("not-a-stretch")
    assert frame.stretch == "linear" and combo.currentText() == "linear"


def test_slider_and_member_bindings(qtbot):
    from PyQt6.QtCore import Qt
    from PyQt6.QtWidgets import QCheckBox, QSlider

    from diascan.qt.qt_bind import bind_plane, bind_slider

    st = vs.ViewerState()
    slider = QSlider(Qt.Orientation.Horizontal)
    slider.setRange(0, 100)
    sat, bad = QCheckBox("SAT"), QCheckBox("BAD")
    for w in (slider, sat, bad):
        qtbot.addWidget(w)
    keep = bind_slider(slider, st, "mask_alpha", 100)
    bind_plane(sat, st, "mask_planes_on", "SAT")
    bind_plane(bad, st, "mask_planes_on", "BAD")
    alphas = _emissions(st, "mask_alpha")
    st.mask_alpha = 0.333  # the slider shows 33 and does not round the state to 0.33
    assert slider.value() == 33 and st.mask_alpha == 0.333 and alphas == [0.333]
    slider.setValue(80)
    assert st.mask_alpha == 0.8
    sat.setChecked(True)
    bad.setChecked(True)
    sat.setChecked(False)
    assert st.mask_planes_on == frozenset({"BAD"})
    st.mask_planes_on = frozenset({"SAT"})
    assert sat.isChecked() and not bad.isChecked()
    assert keep.target is st


def test_a_deleted_widget_stops_listening(qtbot):
    from PyQt6 import sip
    from PyQt6.QtWidgets import QCheckBox

    from diascan.qt.qt_bind import bind_plane

    st = vs.ViewerState()
    box = QCheckBox("EDGE")
    bind_plane(box, st, "mask_planes_on", "EDGE")
    assert len(st.events.mask_planes_on) == 1
    sip.delete(box)  # the C++ widget goes (as a visit's mask boxes do)
    assert len(st.events.mask_planes_on) == 0
    st.mask_planes_on = frozenset({"EDGE"})  # no call into the deleted box


# -- the real window ----------------------------------------------------------------------


def _image(n, seed):
    rng = np.random.default_rng(seed)
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [n / 2, n / 2]
    w.wcs.cdelt = [-0.2 / 3600, 0.2 / 3600]
    mask = np.zeros((n, n), np.int32)
    mask[:4] = 1 << 4
    return ImageData(image=rng.normal(0.0, 1.0, (n, n)).astype(np.float32), mask=mask,
                     variance=np.ones((n, n), np.float32), wcs=w,
                     mask_planes={"BAD": 0, "SAT": 1, "EDGE": 4})


@pytest.fixture
def win(qtbot):
    from diascan.qt.qt_main_window import QtMainWindow

    n = 96
    sci = _image(n, 1)
    x, y = np.array([20.0, 50.0, 70.0]), np.array([30.0, 40.0, 60.0])
    ra, dec = sci.wcs.pixel_to_world_values(x, y)
    det = Table({"id": [1, 2, 3], "x": x, "y": y, "ra": ra, "dec": dec,
                 "snr": [9.0, 8.0, 7.0], "psfFlux": [1e3, 2e3, 3e3],
                 "original_reliability": [0.2, 0.6, 0.9], "score": [np.nan] * 3,
                 "status": ["matched", "unmatched", "matched"]})
    result = SimpleNamespace(science=sci, template=_image(n, 2), difference=_image(n, 3),
                             detections=det, missing=Table({"x": [], "y": []}))
    w = QtMainWindow()
    qtbot.addWidget(w)
    w.show_errors_as_dialogs = False
    w.set_result(result)
    return w


def test_restored_view_reaches_every_control_once(win):
    st = win.state
    counts = {name: 0 for name in st.events}

    def counter(name):
        def count():
            counts[name] += 1
        return count

    for name in st.events:
        st.events[name].connect(counter(name))
    win.frame_combo.setCurrentText("difference")
    view = {
        "frames": {"difference": {"stretch": "asinh", "limits": "minmax", "colormap": "viridis",
                                  "symmetric": False}},
        "single": True, "mask_planes_on": ["SAT", "EDGE"], "mask_alpha": 0.35, "threshold": 0.5,
    }  # fmt: skip
    assert st.update_from_dict(view) == []
    assert (win.stretch_combo.currentText(), win.limits_combo.currentText(),
            win.cmap_combo.currentText()) == ("asinh", "minmax", "viridis")
    assert not win.symmetric_check.isChecked()
    assert win.single_check.isChecked() and win.threshold_check.isChecked()
    assert win.alpha_slider.value() == 35
    assert {p for p, cb in win.mask_checks.items() if cb.isChecked()} == {"SAT", "EDGE"}
    assert win.plots.line.isVisible() and win.plots.line.value() == pytest.approx(0.5)
    # the widgets wrote nothing back: each restored field changed once, to its saved value
    assert {k: v for k, v in counts.items() if v} == {
        "single": 1, "mask_planes_on": 1, "mask_alpha": 1, "threshold": 1}
    assert (st.mask_alpha, st.threshold) == (0.35, 0.5)
    # choosing another frame in the toolbar shows its settings and changes no state
    before = st.to_dict()
    win.frame_combo.setCurrentText("science")
    assert win.stretch_combo.currentText() == "linear" and st.to_dict() == before
    win.stretch_combo.setCurrentText("sqrt")
    assert st.frames["science"].stretch == "sqrt" and st.frames["difference"].stretch == "asinh"
    # the mask boxes of a new visit show the state's planes, and write them
    win.threshold_check.setChecked(False)
    assert st.threshold is None and not win.plots.line.isVisible()
    win.mask_checks["BAD"].setChecked(True)
    assert st.mask_planes_on == frozenset({"SAT", "EDGE", "BAD"})


def test_mask_boxes_made_again_before_the_event_loop_never_become_windows(win, qtbot):
    """A progressive load shows a visit twice in one go (its detections, then its result,
    ``qt_loading``): the first call's mask boxes, replaced before Qt showed them, must not pop
    up as top-level windows (offscreen and on most desktops such a window takes the activation,
    and the window's label keys then go nowhere)."""
    from PyQt6.QtWidgets import QApplication, QCheckBox

    win.show()
    win.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is win, timeout=3000)
    result = win.result
    win.set_result(result)
    win.set_result(result)
    qtbot.wait(50)  # the boxes' queued show runs
    popped = [w for w in QApplication.topLevelWidgets() if isinstance(w, QCheckBox)
              and w.isVisible()]
    assert popped == []
    assert QApplication.activeWindow() is win
    assert sorted(win.mask_checks) == ["BAD", "EDGE", "SAT"]
    assert all(cb.isVisible() for cb in win.mask_checks.values())
