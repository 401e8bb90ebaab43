"""No silent wrong result: inputs that make "0 sources" (or "0 matched") meaningless give a
warning line on the command line and a ``PipelineResult.warnings`` entry, exit code 0."""

from __future__ import annotations

import numpy as np
import pytest

from diascan.cli.main import main
from diascan.io import read_image, read_table, write_exposure
from diascan.io.tables import write_table
from diascan.pipeline import PipelineInputs, run_pipeline
from tests._tiny_visit import score_args, tiny_visit


@pytest.fixture(scope="module")
def visit(tmp_path_factory):
    return tiny_visit(tmp_path_factory.mktemp("visit"))


def variant(visit, tmp_path, image=None, variance=None):
    """A copy of the difference image with its image and/or variance plane replaced."""
    d = read_image(visit["difference"])
    if image is not None:
        d.image = np.full(d.shape, image, dtype=np.float32)
    if variance is not None:
        d.variance = np.full(d.shape, variance, dtype=np.float32)
    path = write_exposure(tmp_path / "difference_variant.fits", d)
    return {**visit, "difference": path}


def warnings_of(capsys, args) -> list[str]:
    assert main(args) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert all(line.startswith("diascan score: warning: ") for line in err), err
    return err


def test_clean_run_has_no_warning(visit, tmp_path, capsys):
    assert warnings_of(capsys, score_args(visit, tmp_path / "s.parquet", "--no-score",
                                          "--quiet")) == []  # fmt: skip


@pytest.mark.parametrize(
    "image, variance, fragment",
    [
        (None, 0.0, "the variance plane is zero everywhere"),
        (None, -4.0, "the variance plane is zero, negative or not finite everywhere"),
        (None, np.nan, "the variance plane is zero, negative or not finite everywhere"),
        (0.0, None, "the difference image is constant (0 everywhere)"),
    ],
)
def test_meaningless_zero_sources_warn(visit, tmp_path, capsys, image, variance, fragment):
    v = variant(visit, tmp_path, image, variance)
    out = tmp_path / "s.parquet"
    lines = warnings_of(capsys, score_args(v, out, "--no-score", "--quiet"))
    assert any(fragment in line and str(v["difference"]) in line for line in lines), lines
    assert len(read_table(out)) == 0
    assert any("no source was detected" in line for line in lines)  # and the catalog says so
    result = run_pipeline(PipelineInputs(science=v["science"], difference=v["difference"],
                                         template=v["template"], catalog=v["catalog"]),
                          score=False)  # fmt: skip
    assert any(fragment in w for w in result.warnings)


def test_catalog_off_the_image_warns(visit, tmp_path, capsys):
    cat = read_table(visit["catalog"])
    cat["ra"] = cat["ra"] + 1.0  # another field, one degree away
    path = tmp_path / "elsewhere.parquet"
    write_table(cat, path)
    lines = warnings_of(capsys, score_args({**visit, "catalog": path}, tmp_path / "s.parquet",
                                           "--no-score", "--quiet"))  # fmt: skip
    assert any(f"{path}: none of its 4 rows lies on the science image" in line for line in lines)


def test_target_off_the_image_warns(visit, tmp_path, capsys):
    lines = warnings_of(capsys, score_args(visit, tmp_path / "s.parquet", "--no-score",
                                           "--quiet", "--target", "10,-30"))  # fmt: skip
    assert any("--target 10.000000,-30.000000: not on the science image" in x for x in lines)


def test_threshold_too_high_warns(visit, tmp_path, capsys):
    lines = warnings_of(capsys, score_args(visit, tmp_path / "s.parquet", "--no-score",
                                           "--quiet", "--threshold", "1e5"))  # fmt: skip
    assert any("4 catalog rows lie on the image but no source was detected" in x for x in lines)


def test_no_finite_pixel_warns():
    """The image reader refuses an all-NaN file; an ImageData built in memory (the viewer's
    own products) is still checked."""
    from diascan.checks import difference_warnings
    from tests._pipeline_synth import make_image, tan_wcs

    img = make_image(np.full((64, 64), np.nan), np.ones((64, 64)), tan_wcs(64, 64))
    assert difference_warnings(img) == [
        "difference image: no finite pixel in the difference image (all NaN or infinite): "
        "0 sources means nothing"]
    masked = make_image(np.ones((64, 64)), np.ones((64, 64)), tan_wcs(64, 64),
                        mask=np.full((64, 64), 1 << img.mask_planes["NO_DATA"]))
    assert "every pixel with a value is masked" in difference_warnings(masked)[0]
    nowcs = make_image(np.random.default_rng(0).normal(size=(64, 64)), np.ones((64, 64)), None)
    assert "no celestial WCS" in difference_warnings(nowcs)[0]
