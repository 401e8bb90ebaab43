"""A template already on the science grid is copied, never resampled: DP1 scores through
``diascan score --template`` equal an independent cut + forward pass (issue 11 point 5), NaN
rows next to sources included; and a difference image on another grid is refused (issue 12)."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import torch.nn.functional as F
from astropy.io import fits

from diascan.cli.main import main
from diascan.demo.generate import PATCH_NAMES
from diascan.errors import InputError
from diascan.io import read_image, write_exposure
from diascan.pipeline import PipelineInputs, load_inputs
from diascan.template import build_template, shift_wcs

CROP = (7, 31, 15, 4)  # template box cropped by (left, bottom, right, top) pixels


@pytest.fixture(scope="module")
def on_grid_template(small_demo, tmp_path_factory):
    """The demo's warped template, cropped (another bbox, integer offset) with NaN rows."""
    sci = read_image(small_demo / "science.fits")
    warped = build_template(sci, [read_image(small_demo / n) for n in PATCH_NAMES])
    left, bottom, right, top = CROP
    img = warped.image[bottom:-top, left:-right].copy()
    var = warped.variance[bottom:-top, left:-right].copy()
    mask = warped.mask[bottom:-top, left:-right].copy()
    warped.x0 += left
    warped.y0 += bottom
    # NaN rows 4 px above known sources (the catalog's), inside their stamps
    ys = pq.read_table(small_demo / "dia_source.parquet").column("y").to_numpy()
    ys = ys[(ys > 60) & (ys < 960)][:8]
    rows = sorted({int(round(y)) + 4 - warped.y0 for y in ys})
    img[rows, :] = np.nan
    warped.image, warped.variance, warped.mask = img, var, mask
    warped.wcs = shift_wcs(warped.wcs, -left, -bottom)
    path = tmp_path_factory.mktemp("tmpl") / "template_on_grid.fits"
    write_exposure(path, warped, compress=True)
    return path, [r + warped.y0 for r in rows]


def _fits_plane(path):
    """Image plane and origin straight from the file (astropy only: LTV gives the origin)."""
    with fits.open(path) as hdul:
        hdu = hdul["IMAGE"]
        return hdu.data.astype(np.float64), -int(hdu.header["LTV1"]), -int(hdu.header["LTV2"])


def _cut(plane, x0, y0, cx, cy):
    """51 x 51 at parent corner (cx, cy); pixels outside the plane are 0; NaN -> 0."""
    out = np.zeros((51, 51))
    ny, nx = plane.shape
    for j in range(51):
        for i in range(51):
            r, c = cy + j - y0, cx + i - x0
            if 0 <= r < ny and 0 <= c < nx:
                out[j, i] = plane[r, c]
    return np.nan_to_num(out, nan=0.0)


def _dp1_forward(state, x):
    """The DP1 network written out with torch.nn.functional (rubin-facts.md section 6)."""
    x = torch.from_numpy(x).double()
    for conv in ("conv1", "conv2", "conv3"):
        x = F.conv2d(x, state[f"{conv}.weight"].double(), state[f"{conv}.bias"].double())
        x = F.max_pool2d(F.relu(x), 2)
    x = F.relu(F.linear(x.flatten(1), state["fc1.weight"].double(), state["fc1.bias"].double()))
    return torch.sigmoid(F.linear(x, state["fc2.weight"].double(), state["fc2.bias"].double()))


def test_dp1_scores_with_an_on_grid_template_match_an_independent_cut(
    small_demo, on_grid_template, dp1_model_dir, tmp_path
):
    tmpl_path, nan_rows = on_grid_template
    out = tmp_path / "scores.parquet"
    rc = main(["score", "--science", str(small_demo / "science.fits"),
               "--difference", str(small_demo / "difference.fits"), "--template", str(tmpl_path),
               "--model", str(dp1_model_dir), "--out", str(out), "--quiet"])  # fmt: skip
    assert rc == 0
    table = pq.read_table(out).to_pydict()
    planes = [_fits_plane(small_demo / n) for n in ("difference.fits", "science.fits")]
    planes.append(_fits_plane(tmpl_path))
    sci_plane, sx0, sy0 = planes[1]
    sny, snx = sci_plane.shape
    state = torch.load(dp1_model_dir / "checkpoint.pt", weights_only=True, map_location="cpu")[
        "model_state_dict"
    ]
    stamps, near_nan = [], 0
    for x, y in zip(table["x"], table["y"], strict=True):
        cx, cy = int(np.floor(x + 0.5)) - 25, int(np.floor(y + 0.5)) - 25
        inside = sx0 <= cx and sy0 <= cy and cx + 50 < sx0 + snx and cy + 50 < sy0 + sny
        stamp = np.zeros((3, 51, 51))
        if inside:
            stamp = np.stack([_cut(p, x0, y0, cx, cy) for p, x0, y0 in planes])
            near_nan += any(cy <= r <= cy + 50 for r in nan_rows)
        stamps.append(stamp)
    with torch.no_grad():
        expected = _dp1_forward(state, np.stack(stamps)).numpy().ravel()
    assert len(table["x"]) > 20 and near_nan >= 5  # NaN rows run through several scored stamps
    np.testing.assert_allclose(table["score"], expected, atol=1e-6, rtol=0)


def test_the_copied_template_is_the_files_pixels(small_demo, on_grid_template):
    tmpl_path, _ = on_grid_template
    loaded = load_inputs(PipelineInputs(small_demo / "science.fits",
                                        small_demo / "difference.fits", template=tmpl_path))  # fmt: skip
    t = loaded.templates[0]
    out = build_template(loaded.science, [t])
    assert (out.x0, out.y0) == (-20, -20) and out.shape == (1064, 1064)
    assert "copied" in out.notes[0]
    left, bottom, right, top = CROP
    inner = (slice(bottom, 1064 - top), slice(left, 1064 - right))
    np.testing.assert_array_equal(out.image[inner], t.image)  # bit-identical, NaN included
    np.testing.assert_array_equal(out.variance[inner], t.variance)
    np.testing.assert_array_equal(out.mask[inner], t.mask)
    outside = np.ones(out.shape, bool)
    outside[inner] = False
    assert np.all(out.image[outside] == 0) and np.all(out.variance[outside] == 0)
    assert out.plane("NO_DATA")[outside].all()


def test_difference_on_another_pixel_grid_is_an_error(small_demo, tmp_path):
    diff = read_image(small_demo / "difference.fits")
    diff.wcs = shift_wcs(diff.wcs, 0.3, 0.0)  # 0.3 px: pixels no longer line up
    path = write_exposure(tmp_path / "moved.fits", diff)
    inputs = PipelineInputs(small_demo / "science.fits", path, template=small_demo / PATCH_NAMES[0])
    with pytest.raises(InputError, match="not on the science image's pixel grid") as info:
        load_inputs(inputs)
    assert str(path) in str(info.value) and "0.3 px" in str(info.value)
    diff.wcs = shift_wcs(diff.wcs, -0.25, 0.0)  # 0.05 px: accepted
    write_exposure(path, diff, overwrite=True)
    load_inputs(inputs, read_templates=False)
