"""Same pixels, same answer: the small demo in the afw, DP2 and pre-2021 afw layouts gives
identical detections, flags, matches and scores (issue 11)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from diascan.demo import generate_demo
from diascan.demo.generate import PATCH_NAMES
from diascan.io import read_image
from diascan.pipeline import PipelineInputs, read_target, run_pipeline


def _run(folder):
    return run_pipeline(
        PipelineInputs(
            science=folder / "science.fits",
            difference=folder / "difference.fits",
            template_patches=[folder / n for n in PATCH_NAMES],
            catalog=folder / "dia_source.parquet",
            target=read_target(folder / "target.json"),
        )
    )


@pytest.fixture(scope="module")
def layouts(small_demo, tmp_path_factory):
    out = {"afw": small_demo}
    for layout in ("dp2", "afw-exttype"):
        out[layout] = generate_demo(tmp_path_factory.mktemp(layout), small=True, layout=layout)
    return out


def test_files_are_in_their_layouts(layouts):
    with fits.open(layouts["dp2"] / "difference.fits") as hdul:
        assert "FMTVER" in hdul[0].header and hdul["MASK"].header["MSKN0001"] == "SATURATED"
        assert "MP_SAT" not in hdul["MASK"].header
    with fits.open(layouts["afw-exttype"] / "difference.fits") as hdul:
        assert "EXTNAME" not in hdul[1].header and hdul[2].header["EXTTYPE"] == "MASK"
    for layout, folder in layouts.items():
        img = read_image(folder / "difference.fits")
        assert img.layout == layout
        assert img.metadata["psf_sigma"] > 0 and img.metadata["visit"] > 0


def test_same_detections_flags_matches_and_scores(layouts):
    results = {layout: _run(folder) for layout, folder in layouts.items()}
    ref = results["afw"]
    assert len(ref.detections) > 20 and ref.match.n_matched > 10
    # a flag from a renamed plane (CR -> COSMIC_RAY in DP2) and the unphysical rule (EDGE ->
    # DETECTION_EDGE, NO_DATA) are really compared
    assert ref.detections["pixelFlags_cr"].any()
    assert ref.detections.meta["n_unphysical"] > 0
    for layout, res in results.items():
        det = res.detections
        assert det.colnames == ref.detections.colnames, layout
        for col in det.colnames:
            a, b = np.asarray(det[col]), np.asarray(ref.detections[col])
            if a.dtype.kind == "f":
                np.testing.assert_array_equal(a, b, err_msg=f"{layout}: {col}")
            else:
                assert (a == b).all(), f"{layout}: {col}"
        assert det.meta["psf_sigma_source"] == ref.detections.meta["psf_sigma_source"]
        assert det.meta["n_unphysical"] == ref.detections.meta["n_unphysical"]
        assert (res.match.n_matched, res.match.n_missing) == (ref.match.n_matched,
                                                              ref.match.n_missing)  # fmt: skip
        np.testing.assert_array_equal(res.template.image, ref.template.image)


def test_a_mask_beyond_31_planes_detects_the_same(small_demo, tmp_path):
    """40 planes (two DP2 MASK HDUs, an int64 mask): detection, flags and the results-cache
    round trip (afw layout, 64-bit MASK HDU) are unchanged by the extra planes."""
    from diascan.detection import detect_and_measure
    from diascan.io import write_exposure

    diff = read_image(small_demo / "difference.fits")
    sci = read_image(small_demo / "science.fits")
    ref = detect_and_measure(diff, sci)
    wide = read_image(small_demo / "difference.fits")
    wide.mask = wide.mask.astype(np.int64) | ((wide.mask != 0) * (np.int64(1) << 39))
    wide.mask_planes = {**wide.mask_planes, **{f"EXTRA_{i}": i for i in range(11, 40)}}
    for layout in ("dp2", "afw"):
        back = read_image(write_exposure(tmp_path / f"{layout}.fits", wide, layout=layout))
        assert back.mask.dtype == np.int64 and back.mask_planes == wide.mask_planes
        np.testing.assert_array_equal(back.mask, wide.mask)
        det = detect_and_measure(back, sci)
        for col in ref.colnames:
            np.testing.assert_array_equal(np.asarray(det[col]), np.asarray(ref[col]), err_msg=col)
