"""The headless pipeline on the small demo (diascan.pipeline)."""

from __future__ import annotations

import numpy as np
import pytest

from diascan.errors import Cancelled, InputError
from diascan.io import read_table
from diascan.pipeline import PipelineInputs, read_target, run_pipeline
from diascan.progress import CancelToken


def _inputs(demo, **kw) -> PipelineInputs:
    return PipelineInputs(
        science=demo / "science.fits",
        difference=demo / "difference.fits",
        template_patches=sorted(demo.glob("template_coadd_*.fits")),
        catalog=demo / "dia_source.parquet",
        target=read_target(demo / "target.json"),
        **kw,
    )


@pytest.fixture(scope="module")
def result(small_demo):
    stages = []
    res = run_pipeline(_inputs(small_demo), score=True, progress=lambda s, f, m: stages.append(s))
    res.stages_seen = stages
    return res


def test_template_on_science_grid_with_nodata(result):
    sci, tmpl = result.science, result.template
    assert (tmpl.x0, tmpl.y0) == (sci.x0 - 20, sci.y0 - 20)
    assert tmpl.shape == (sci.shape[0] + 40, sci.shape[1] + 40)
    nd = tmpl.plane("NO_DATA")
    assert 0 < nd.mean() < 0.2  # the demo's patches leave a thin uncovered sliver
    assert (tmpl.image[nd & (tmpl.variance == 0)] == 0).all()


def test_demo_truth_completeness_and_positions(result, small_demo):
    det = result.detections
    truth = read_table(small_demo / "truth.parquet")
    real = truth[np.asarray(truth["is_real"], bool) & (np.abs(truth["snr"]) >= 6)]
    assert len(real) >= 10
    offs = np.array([np.min(np.hypot(det["x"] - r["x"], det["y"] - r["y"])) for r in real])
    assert np.mean(offs < 2) >= 0.95
    assert np.median(offs[offs < 2]) < 0.3


def test_no_source_on_nodata_or_edge(result):
    det, diff = result.detections, result.difference
    ix = np.rint(det["x"] - diff.x0).astype(int)
    iy = np.rint(det["y"] - diff.y0).astype(int)
    assert not (diff.mask[iy, ix] & diff.bits("NO_DATA", "EDGE")).any()
    assert not det["pixelFlags_offimage"].any()


def test_matching_target_and_scores(result, small_demo):
    det = result.detections
    target_id = int(
        __import__("json").loads((small_demo / "target.json").read_text())["diaSourceId"]
    )
    tgt = det[det["status"] == "target"]
    assert len(tgt) == 1 and tgt["diaSourceId"][0] == target_id
    rows = np.asarray(det["catalog_row"])
    rows = rows[rows >= 0]
    assert len(np.unique(rows)) == len(rows)  # one-to-one
    # The tutorial's check: every catalog row is matched exactly once, none is missing.
    assert result.match.all_catalog_matched_once
    assert len(result.missing) == 0 and result.match.n_matched == len(result.catalog)
    assert set(np.unique(det["status"])) <= {"matched", "unmatched", "target"}
    assert det["score"].dtype == np.float32
    assert np.all((det["score"] >= 0) & (det["score"] <= 1))
    assert result.model_name and result.model_version
    assert set(result.timings) == {"load", "template", "detect", "score", "match"}
    assert result.stages_seen[0] == "load" and "score" in result.stages_seen


def test_no_score_cancel_and_bad_inputs(small_demo, tmp_path):
    res = run_pipeline(_inputs(small_demo), score=False)
    assert np.isnan(res.detections["score"]).all() and res.model_name is None
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        run_pipeline(_inputs(small_demo), score=False, cancel=token)
    inp = _inputs(small_demo)
    inp.template_patches = []
    with pytest.raises(InputError, match="template"):
        run_pipeline(inp, score=False)


def test_release_free_memory_trims_the_heap_on_glibc():
    import platform

    from diascan.memory import release_free_memory

    expected = platform.libc_ver()[0] == "glibc"
    assert release_free_memory() is expected
