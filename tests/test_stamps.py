"""Display stamps of a visit (VisitStamps) and how they are rendered (StampDisplay)."""

from __future__ import annotations

import numpy as np
import pytest

from diascan.cutouts import cut_display_stamps, cut_stamps
from diascan.io.images import ImageData
from diascan.stamp_display import (
    BLANK_RGBA,
    FrameDisplay,
    StampDisplay,
    TileGeometry,
    argb32,
    compose_tiles,
    display_settings,
    render_tiles,
    render_triplet,
    render_triplets,
    stamp_levels,
)
from diascan.stamps import FRAME_ORDER, StampSource, StampStackSource, StampTriplet, stack_triplets
from diascan.visit_stamps import VisitStamps


def _coded(ny: int, nx: int, x0: int = 0, y0: int = 0, channel: int = 0) -> ImageData:
    """Pixel value = channel * 1e6 + 1000 * y + x (parent pixels)."""
    yy, xx = np.mgrid[0:ny, 0:nx]
    img = (channel * 1_000_000 + 1000.0 * (yy + y0) + (xx + x0)).astype(np.float32)
    return ImageData(image=img, mask=np.zeros((ny, nx), np.int32),
                     variance=np.ones((ny, nx), np.float32), x0=x0, y0=y0)


@pytest.fixture
def images():
    return {
        "science": _coded(120, 150, channel=1),
        "template": _coded(160, 190, x0=-20, y0=-20, channel=2),
        "difference": _coded(120, 150, channel=3),
    }


def test_visit_stamps_are_a_stamp_source_in_frame_order(images):
    src = VisitStamps(images, [60.2, 75.0], [70.0, 30.0])
    assert isinstance(src, StampSource) and isinstance(src, StampStackSource) and len(src) == 2
    t = src.triplet(0, 41)
    assert isinstance(t, StampTriplet) and list(t.frames()) == list(FRAME_ORDER)
    for channel, name in enumerate(FRAME_ORDER, start=1):
        stamp = getattr(t, name)
        assert stamp.shape == (41, 41) and stamp.dtype == np.float32
        assert stamp[20, 20] == channel * 1_000_000 + 70_000 + 60  # centred, same sky pixel
    stack = src.triplets([1, 0], 31)
    assert stack.shape == (2, 3, 31, 31)
    assert stack[1, 1, 15, 15] == 2_000_000 + 70_000 + 60  # the template's origin honoured


@pytest.mark.parametrize("size", [31, 51, 64, 101])
def test_any_display_size_and_blank_off_the_image(size):
    images = {"science": _coded(300, 300, channel=1),
              "template": _coded(340, 340, x0=-20, y0=-20, channel=2),
              "difference": _coded(300, 300, channel=3)}
    t = VisitStamps(images, [5.0], [150.0]).triplet(0, size)  # 5 px from the left edge
    half = size // 2
    off = half - 5  # stamp columns left of parent x = 0
    sci, tmpl = t.science, t.template
    assert sci.shape == (size, size) and sci[half, half] == 1_000_000 + 150_000 + 5
    assert np.isnan(sci[:, :off]).all() and np.isfinite(sci[:, off:]).all()
    assert np.isnan(t.difference[:, :off]).all()
    # the template is 20 px wider on each side: it has pixels where the science has none
    assert np.isfinite(tmpl[:, max(0, off - 20):]).all()
    assert np.isnan(tmpl[:, : max(0, off - 20)]).all()
    # scoring keeps Rubin's rule: all-zero stamps when the 51 px box leaves the image
    assert not cut_stamps([5.0], [150.0], images["difference"], images["science"],
                          images["template"]).any()


def test_no_data_pixels_are_blank(images):
    tmpl = images["template"]
    tmpl.mask[60:70, 50:60] |= tmpl.bit("NO_DATA")  # parent y 40..49, x 30..39
    stack = cut_display_stamps([35.0], [45.0], [tmpl, images["science"]], 31)
    assert np.isnan(stack[0, 0, 10:20, 10:20]).all()
    assert np.isfinite(stack[0, 0, :10]).all() and np.isfinite(stack[0, 1]).all()
    keep = cut_display_stamps([35.0], [45.0], [tmpl], 31, blank_planes=())
    assert np.isfinite(keep).all()


def test_a_protocol_only_source_stacks_through_triplet():
    class Alerts:  # what an alert-cutout source looks like: __len__ and triplet only
        def __len__(self):
            return 2

        def triplet(self, index, size):
            a = np.full((size, size), float(index), np.float32)
            return StampTriplet(science=a, template=a + 10, difference=a + 20)

    stack = stack_triplets(Alerts(), [1, 0], 33)
    assert stack.shape == (2, 3, 33, 33)
    assert stack[0, :, 0, 0].tolist() == [1.0, 11.0, 21.0]


def test_render_per_tile_and_following_the_frames():
    rng = np.random.default_rng(0)
    stack = rng.normal(0, 1, (4, 3, 31, 31)).astype(np.float32)
    stack[:, 0] += 100.0  # science on a sky level
    stack[1, 2, :5] = np.nan
    per_tile = StampDisplay.per_tile()
    assert not per_tile.follows_frames and per_tile.difference.symmetric
    lv = stamp_levels(stack, per_tile)
    assert lv.shape == (4, 3, 2) and np.all(lv[:, 2, 0] == -lv[:, 2, 1])
    assert np.all(lv[:, 0, 0] > 90)  # the science limits follow the science sky
    rgba = render_triplets(stack, per_tile)
    assert rgba.shape == (4, 3, 31, 31, 4) and rgba.dtype == np.uint8
    assert (rgba[1, 2, :5] == BLANK_RGBA).all()
    assert not (rgba[1, 2, 5:] == BLANK_RGBA).all(axis=-1).any()

    class Frame:
        def __init__(self, levels, stretch="linear", colormap="grey"):
            self.levels, self.stretch, self.colormap = levels, stretch, colormap

    frames = {"science": Frame((0.0, 200.0)), "template": Frame((-5.0, 5.0), "asinh"),
              "difference": Frame((-3.0, 3.0), colormap="viridis")}
    follow = display_settings(True, frames)
    assert follow.follows_frames and follow == StampDisplay.from_frames(frames)
    assert display_settings(False, frames) == per_tile and display_settings(True, None) == per_tile
    lv = stamp_levels(stack, follow)
    assert np.all(lv[:, 0] == (0.0, 200.0))  # every tile the same limits
    rgba = render_triplets(stack, follow)
    grey = rgba[:, 0, ..., 0]
    assert 120 < grey.mean() < 136  # 100 of 0..200: mid-grey
    assert len({tuple(v) for v in rgba[0, 2, :, :, :3].reshape(-1, 3)}) > 10  # viridis colours
    hashable = {follow, per_tile}
    assert len(hashable) == 2
    # the gallery's one-pass tiles are the triplets laid side by side
    tiles = render_tiles(stack, follow, gap=2)
    assert tiles.shape == (4, 31, 3 * 31 + 4, 4) and tiles.flags.c_contiguous
    for c in range(3):
        np.testing.assert_array_equal(tiles[:, :, c * 33 : c * 33 + 31], rgba[:, c, ::-1])
    assert not tiles[:, :, 31:33].any()  # transparent gaps


def test_tiles_are_top_down():
    stack = np.zeros((1, 3, 4, 5), np.float32)
    stack[0, :, 0] = 1.0  # the lowest row (y smallest) of each stamp is bright
    fixed = FrameDisplay(levels=(0.0, 1.0))
    tile = render_tiles(stack, StampDisplay(fixed, fixed, fixed), gap=1)[0]
    assert tile.shape == (4, 17, 4)
    assert tile[-1, [0, 6, 12], 0].tolist() == [255, 255, 255]  # drawn at the bottom
    assert tile[0, [0, 6, 12], 0].tolist() == [0, 0, 0]
    assert tile[0, 5, 3] == 0  # the gap is transparent
    one = render_triplet(np.zeros((3, 8, 8), np.float32), StampDisplay(
        FrameDisplay(), FrameDisplay(), FrameDisplay(levels=(-1.0, 1.0))))
    assert one.shape == (3, 8, 8, 4) and tuple(one[2, 0, 0, :3]) == (128, 128, 128)


def test_compose_tiles_places_scaled_stamps_on_the_tile_background():
    """The gallery's cells: a one-pixel frame, the tile colour, and each rendered stamp scaled
    (nearest neighbour) into its square, in order, as ARGB32 words."""
    rng = np.random.default_rng(2)
    stack = rng.normal(0, 1, (2, 3, 5, 5)).astype(np.float32)
    stack[1, 1, 0, 0] = np.nan
    display = StampDisplay.per_tile()
    words = render_tiles(stack, display, gap=1, words=True)
    rgba = render_tiles(stack, display, gap=1)
    assert words.dtype == np.uint32 and words.shape == rgba.shape[:3]
    np.testing.assert_array_equal(words, argb32(rgba))  # the same pixels, Qt's byte order
    assert argb32((1, 2, 3, 255)) == 0xFF010203
    geo = TileGeometry(cell_w=3 * 10 + 2 * 2 + 2 * 3, cell_h=10 + 12 + 2 * 3, stamp_px=10,
                       margin=3, gap=2, frame_color=7, tile_color=9)
    cells = compose_tiles(words, 5, geo)
    assert cells.shape == (2, geo.cell_h, geo.cell_w)
    for cell in cells:
        assert np.all(cell[[0, -1]] == 7) and np.all(cell[:, [0, -1]] == 7)
        assert np.all(cell[1:3, 1:-1] == 9) and np.all(cell[13:-1, 1:-1] == 9)  # texts' place
        assert np.all(cell[3:13, 13:15] == 9)  # the gap between two stamps
    for k in range(2):
        for c in range(3):
            square = cells[k, 3:13, 3 + c * 12 : 13 + c * 12]
            expect = np.repeat(np.repeat(words[k, :, c * 6 : c * 6 + 5], 2, 0), 2, 1)
            np.testing.assert_array_equal(square, expect)
    assert cells[1, 11, 15] == argb32(BLANK_RGBA)  # the NaN pixel (bottom row: y = 0), blank
    out = np.zeros_like(cells)
    assert compose_tiles(words, 5, geo, out=out) is out and np.array_equal(out, cells)
