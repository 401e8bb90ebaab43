"""The mask overlay on real frames (small demo): the image's extent, every plane, every frame."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import dataclasses  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from diascan.palettes import MASK_COLORS  # noqa: E402

pytestmark = pytest.mark.gui

FRAMES = ("science", "template", "difference")


@pytest.fixture(scope="module")
def images(small_demo_result):
    """The demo's three images, with DETECTED and SUSPECT pixels added to the science mask
    (the demo sets none) and the difference's mask widened to int64 with a plane at bit 40
    (a DP2 file with more than 31 planes)."""
    res = small_demo_result
    sci = dataclasses.replace(res.science, mask=res.science.mask.copy())
    sci.mask[400:420, 300:330] |= sci.bit("DETECTED")
    sci.mask[600:610, 700:705] |= sci.bit("SUSPECT")
    diff = res.difference
    mask64 = diff.mask.astype(np.int64)
    mask64[200:230, 800:840] |= np.int64(1) << 40
    diff = dataclasses.replace(diff, mask=mask64,
                               mask_planes={**diff.mask_planes, "PLANE40": 40})
    return {"science": sci, "template": res.template, "difference": diff}


@pytest.fixture
def frames(qtbot, images):
    from diascan import viewstate as vs
    from diascan.qt.qt_frames import QtFrames

    state = vs.ViewerState()
    w = QtFrames(state)
    qtbot.addWidget(w)
    w.resize(1500, 500)
    w.show()
    qtbot.waitExposed(w)
    w.set_images(images)
    state.mask_alpha = 1.0  # opaque: a masked pixel shows exactly its plane's colour
    return w


def _pixel(view, x: float, y: float) -> tuple[int, int, int]:
    """The colour the view shows at parent pixel (x, y)."""
    from PyQt6.QtCore import QPointF

    p = view.mapFromScene(view.vb.mapViewToScene(QPointF(x, y)))
    img = view.grab().toImage()
    c = img.pixelColor(p.x(), p.y())
    return c.red(), c.green(), c.blue()


def _planes_with_pixels(img) -> list[str]:
    return [p for p in img.mask_planes if np.any(img.plane(p))]


def _overlay_rect(ov):
    r = ov.mapRectToView(ov.boundingRect())
    return (r.x(), r.y(), r.width(), r.height())


def test_every_plane_covers_the_image_exactly_and_colours_its_pixels(frames, images, qtbot):
    from PyQt6.QtWidgets import QApplication

    state = frames.state
    seen = set()
    for name in FRAMES:
        img = images[name]
        ny, nx = img.shape
        extent = (img.x0 - 0.5, img.y0 - 0.5, float(nx), float(ny))
        view = frames.views[name]
        for plane in _planes_with_pixels(img):
            state.mask_planes_on = frozenset({plane})
            ov = view.overlays[0]
            assert ov.isVisible() and ov.image.shape[:2] == (ny, nx)
            assert _overlay_rect(ov) == pytest.approx(extent), (name, plane)
            rows, cols = np.nonzero(img.plane(plane))
            # a masked pixel well inside its masked area
            k = len(rows) // 2
            x, y = img.x0 + int(cols[k]), img.y0 + int(rows[k])
            frames.center_on(x, y, half_width=3)
            QApplication.processEvents()
            assert _pixel(view, x, y) == MASK_COLORS.get(plane, (255, 0, 255)), (name, plane)
            state.mask_planes_on = frozenset()
            QApplication.processEvents()
            assert _pixel(view, x, y) != MASK_COLORS.get(plane, (255, 0, 255)), (name, plane)
            seen.add((name, plane))
    # what the issue saw broken: EDGE, BAD, DETECTED, SUSPECT, and the template's own origin
    assert {("science", "EDGE"), ("science", "BAD"), ("science", "DETECTED"),
            ("science", "SUSPECT"), ("template", "NO_DATA"),
            ("difference", "PLANE40")} <= seen


def test_unmasked_pixels_stay_clear_and_blink_view_matches(frames, images):
    from PyQt6.QtWidgets import QApplication

    state = frames.state
    img = images["template"]  # origin -20, a larger grid than the science image
    state.mask_planes_on = frozenset({"NO_DATA"})
    nodata = img.plane("NO_DATA")
    rows, cols = np.nonzero(~nodata)
    x, y = img.x0 + int(cols[len(cols) // 2]), img.y0 + int(rows[len(rows) // 2])
    frames.center_on(x, y, half_width=3)
    QApplication.processEvents()
    view = frames.views["template"]
    on = _pixel(view, x, y)
    state.mask_planes_on = frozenset()
    QApplication.processEvents()
    assert _pixel(view, x, y) == on  # a pixel without the plane looks the same either way
    # the single-frame (blink) view's overlay has the same geometry
    state.mask_planes_on = frozenset({"NO_DATA"})
    state.blink_index = 1
    state.single = True
    QApplication.processEvents()
    ov = frames.blink_view.overlays[1]
    assert ov.isVisible()
    ny, nx = img.shape
    assert _overlay_rect(ov) == pytest.approx((img.x0 - 0.5, img.y0 - 0.5, nx, ny))
    r, c = np.nonzero(nodata)
    x, y = img.x0 + int(c[len(c) // 2]), img.y0 + int(r[len(r) // 2])
    frames.center_on(x, y, half_width=3)
    QApplication.processEvents()
    assert _pixel(frames.blink_view, x, y) == MASK_COLORS["NO_DATA"]
