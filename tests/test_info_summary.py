"""The Qt-free parts of what the viewer says about its files: the status bar's layout summary,
File info's texts, and the mask plane list that merges the two spellings of a plane (real
files written in the afw and the DP2 layouts, read back by the reader)."""

from __future__ import annotations

import numpy as np

from diascan.display import plane_color, plane_is_on, plane_list
from diascan.io.image_reader import read_image
from diascan.io.images import write_exposure
from diascan.io.info import describe_images, layout_summary
from diascan.io.mask_planes import LEGACY_TO_DP2
from diascan.palettes import MASK_COLORS
from tests._pipeline_synth import make_image, tan_wcs


def _files(tmp_path):
    rng = np.random.default_rng(0)
    mask = np.zeros((40, 50), np.int32)
    mask[3, 4] = 1 << 1  # SAT
    data = make_image(rng.normal(size=(40, 50)), np.ones((40, 50)), tan_wcs(50, 40), mask=mask)
    afw = write_exposure(tmp_path / "afw.fits", data)
    data.mask_planes = {LEGACY_TO_DP2.get(k, k): v for k, v in data.mask_planes.items()}
    dp2 = write_exposure(tmp_path / "dp2.fits", data, layout="dp2")
    return read_image(afw), read_image(dp2)


def test_layout_summary_and_file_texts(tmp_path):
    afw, dp2 = _files(tmp_path)
    dp2.notes = ["one note"]
    assert layout_summary({"science": dp2, "difference": dp2}) == "DP2 (lsst.images); 2 notes"
    afw.notes = []
    assert layout_summary({"difference": afw}) == "afw; no notes"
    assert layout_summary({"science": dp2, "template": None, "difference": afw}).startswith(
        "DP2 (lsst.images) (science), afw (difference); ")
    assert layout_summary({}) == "no image"
    texts = describe_images({"science": dp2, "difference": afw, "template": None})
    assert set(texts) == {"science", "difference"}
    assert texts["science"].startswith(str(tmp_path / "dp2.fits"))
    assert "bit  1  SATURATED" in texts["science"] and "bit  1  SAT " in texts["difference"]
    warped = make_image(np.zeros((4, 4)), np.ones((4, 4)), tan_wcs(4, 4))
    text = describe_images({"template": warped},
                           {"template_patches": [tmp_path / "p1.fits", tmp_path / "p2.fits"]})
    assert text["template"].endswith(f"made from  {tmp_path / 'p1.fits'}\n"
                                     f"             {tmp_path / 'p2.fits'}")


def test_plane_list_merges_the_two_spellings(tmp_path):
    afw, dp2 = _files(tmp_path)
    names = [n for n, _ in plane_list([dp2, None, afw])]
    assert names.count("SATURATED") == 1 and "SAT" not in names
    assert "DETECTION_EDGE" in names and "EDGE" not in names
    assert len(names) == len(afw.mask_planes)
    assert dict(plane_list([afw]))["SAT"].startswith("Saturated")
    assert plane_color("SATURATED", MASK_COLORS) == MASK_COLORS["SAT"]
    assert plane_is_on("SATURATED", {"SAT"}) and not plane_is_on("CR", {"SAT"})
