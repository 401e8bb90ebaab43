"""The stamp dock on the small demo: the stamp source, the gallery's settings, frame order."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from diascan import viewstate as vs  # noqa: E402
from diascan.stamp_display import StampDisplay, render_triplet  # noqa: E402
from diascan.stamps import FRAME_ORDER  # noqa: E402
from diascan.visit_stamps import VisitStamps  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture
def dock(qtbot, small_demo_result):
    from diascan.qt.qt_cutouts import QtCutouts

    w = QtCutouts()
    qtbot.addWidget(w)
    w.resize(600, 260)
    w.show()
    res = small_demo_result
    sources = vs.SourceSet.from_table(res.detections)
    images = {n: getattr(res, n) for n in FRAME_ORDER}
    return w, sources, images


def test_dock_shows_science_template_difference_from_the_stamp_source(dock):
    w, sources, images = dock
    w.show_source(sources, 3, images)
    expect = VisitStamps(images, sources.x, sources.y).triplets([3], 51)[0]
    np.testing.assert_array_equal(w.stamps, expect)
    painted = [item.image for item in w.items]
    rgba = render_triplet(expect, StampDisplay.per_tile())
    for k in range(3):
        np.testing.assert_array_equal(painted[k], rgba[k])
    titles = [lab.text() for lab in w.findChildren(type(w.info)) if lab is not w.info]
    assert titles == list(FRAME_ORDER)
    assert f"id {sources.ids[3]}" in w.info.text() and "all-zero" not in w.info.text()


def test_dock_follows_the_display_settings_and_size(dock):
    w, sources, images = dock
    w.show_source(sources, 3, images)
    before = [item.image.copy() for item in w.items]
    frames = vs.ViewerState().frames
    for fs in frames.values():
        fs.levels, fs.stretch = (-200.0, 2000.0), "asinh"
    follow = StampDisplay.from_frames(frames)
    w.set_display(follow)
    after = [item.image for item in w.items]
    assert all(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    np.testing.assert_array_equal(after[0], render_triplet(w.stamps, follow)[0])
    w.set_stamp_size(75)
    assert w.stamps.shape == (3, 75, 75) and w.items[2].image.shape == (75, 75, 4)


def test_dock_says_when_the_model_sees_all_zero_stamps(dock):
    w, sources, images = dock
    sci = images["science"]
    sources.x[0], sources.y[0] = sci.x0 + 8.0, sci.y0 + 500.0  # near the left edge
    w.show_source(sources, 0, images, size=51)
    assert "the model sees all-zero stamps" in w.info.text()
    assert np.isnan(w.stamps[0][:, :10]).all()  # blank off the image, pixels beyond
    assert np.isfinite(w.stamps[0][:, 20:]).all()
