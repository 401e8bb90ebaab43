"""Seams between the parts, pinned before code moves (issue 13, point 9).

Each test fails when one wiring breaks while the unit tests of the parts stay green: the stamps
reach the model in the wrong channel order; the catalog is not narrowed to the science image's
visit and detector; a matching radius other than the default is ignored; ``--target`` or
``--with-missing`` change nothing. Expected values come from tests/_independent.py (a plain
stamp cutter, a float64 TACCNN forward pass, the haversine formula), never from the code under
test. The bundled model's reference scores are pinned in tests/test_models_reference.py, the
table's re-sort after a rescore in tests/test_qt_viewer.py, the arch.py canary in
tests/test_models_package.py.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.io import fits

from diascan.cli.main import main
from diascan.io import read_table
from diascan.pipeline import PipelineInputs, run_pipeline
from tests import _independent as ind


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory, request):
    """A private results cache: the runs after the first skip warping and detection."""
    path = tmp_path_factory.mktemp("seams_cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("DIASCAN_RESULTS_CACHE", str(path))
    request.addfinalizer(mp.undo)
    return path


def _inputs(demo, **kw) -> PipelineInputs:
    kw.setdefault("catalog", demo / "dia_source.parquet")
    return PipelineInputs(
        science=demo / "science.fits",
        difference=demo / "difference.fits",
        template_patches=sorted(demo.glob("template_coadd_*.fits")),
        use_cache=True,
        **kw,
    )


@pytest.fixture(scope="module")
def unscored(small_demo, cache_dir):
    """The small demo through the pipeline, not scored (fills the private results cache)."""
    return run_pipeline(_inputs(small_demo), score=False)


def _cli(demo, out, *extra) -> list[str]:
    return [
        "score", "--science", str(demo / "science.fits"),
        "--difference", str(demo / "difference.fits"),
        "--template-patches", *map(str, sorted(demo.glob("template_coadd_*.fits"))),
        "--out", str(out), "--quiet", "--cache", *extra,
    ]  # fmt: skip


# --- channel order: the pipeline's scores against the DP1 reference path ---------------------


def test_pipeline_hands_the_model_difference_science_template(small_demo, cache_dir,
                                                              dp1_model_dir):
    res = run_pipeline(_inputs(small_demo, model=str(dp1_model_dir)), score=True)
    det = res.detections
    assert res.model_name == "tac_cnn_comcam_2025-02-18"
    x, y = np.asarray(det["x"], float), np.asarray(det["y"], float)
    state = ind.checkpoint_state(dp1_model_dir)
    x_in = ind.stamps(x, y, res.difference, res.science, res.template)
    expect = ind.taccnn_scores(state, x_in)
    np.testing.assert_allclose(np.asarray(det["score"], float), expect, atol=2e-5, rtol=0)
    # The check can fail: any other channel order gives other scores on these sources.
    for order in ([1, 0, 2], [0, 2, 1], [2, 1, 0]):
        other = ind.taccnn_scores(state, x_in[:, order])
        assert np.max(np.abs(other - expect)) > 0.05, order


# --- the catalog is narrowed to the science image's visit and detector ------------------------


def _science_visit_detector(demo) -> tuple[int, int]:
    header = fits.getheader(demo / "science.fits", 0)
    return int(header["VISIT"]), int(header["DETECTOR"])


def _two_visit_catalog(demo, path):
    """The demo catalog, plus the same sky positions seen in another visit and on another
    detector of this visit (other diaSourceIds): what a tract-wide dia_source table holds."""
    base = pq.read_table(demo / "dia_source.parquet")
    visit, detector = _science_visit_detector(demo)
    ids = np.asarray(base["diaSourceId"])
    parts = [base]
    for k, (v, d) in enumerate(((visit + 1, detector), (visit, detector + 1)), start=1):
        other = base.set_column(base.schema.get_field_index("visit"), "visit",
                                pa.array(np.full(len(ids), v), type=base.schema.field("visit").type))
        other = other.set_column(other.schema.get_field_index("detector"), "detector",
                                 pa.array(np.full(len(ids), d),
                                          type=base.schema.field("detector").type))
        other = other.set_column(other.schema.get_field_index("diaSourceId"), "diaSourceId",
                                 pa.array(ids + k * 10**6, type=base.schema.field("diaSourceId").type))
        parts.append(other)
    pq.write_table(pa.concat_tables(parts), path)
    return set(ids.tolist())


def test_catalog_narrowed_to_the_science_visit_and_detector(small_demo, unscored, tmp_path):
    from diascan.inputs import files_loader, folder_files

    cat = tmp_path / "dia_source_tract.parquet"
    own = _two_visit_catalog(small_demo, cat)
    assert len(read_table(cat)) == 3 * len(own)
    # the viewer's loader (no --visit/--detector: the science header's)
    files = {**folder_files(small_demo), "catalog": cat}
    res = files_loader(files)()
    assert set(np.asarray(res.catalog["diaSourceId"]).tolist()) == own
    matched = np.asarray(res.detections["diaSourceId"])
    assert set(matched[matched >= 0].tolist()) == own and len(res.missing) == 0
    # the command line, with the missing rows: none, every row of this visit matched once
    out = tmp_path / "s.ecsv"
    assert main([*_cli(small_demo, out, "--catalog", str(cat), "--no-score",
                       "--with-missing")]) == 0
    t = read_table(out)
    assert "missing" not in set(np.asarray(t["status"]).tolist())
    got = np.asarray(t["diaSourceId"])
    assert set(got[got >= 0].tolist()) == own
    # --visit / --detector pick the other rows: the same positions, the other ids
    visit, detector = _science_visit_detector(small_demo)
    out2 = tmp_path / "other.ecsv"
    assert main([*_cli(small_demo, out2, "--catalog", str(cat), "--no-score",
                       "--visit", str(visit + 1))]) == 0
    got = np.asarray(read_table(out2)["diaSourceId"])
    assert set(got[got >= 0].tolist()) == {i + 10**6 for i in own}


# --- the matching radius, --target and --with-missing reach the output ----------------------


OFFSETS = {"near": 0.1, "mid": 0.5, "far": 2.0}  # arcsec from a detection
#: which offset classes match at each radius (arcsec)
EXPECTED = {0.2: {"near"}, 1.0: {"near", "mid"}, 3.0: {"near", "mid", "far"}}


@pytest.fixture(scope="module")
def offset_catalog(unscored, small_demo, tmp_path_factory):
    """A catalog made from isolated detections, each row moved 0.1", 0.5" or 2" away.

    Returns (path, {diaSourceId: class}, {diaSourceId: (ra, dec)}).
    """
    det = unscored.detections
    ra, dec = np.asarray(det["ra"], float), np.asarray(det["dec"], float)
    sep = ind.separation_arcsec(ra[:, None], dec[:, None], ra[None, :], dec[None, :])
    np.fill_diagonal(sep, np.inf)
    isolated = np.flatnonzero(sep.min(axis=1) > 12.0)[:12]
    assert len(isolated) >= 9, "the demo must have isolated detections to move rows from"
    visit, detector = _science_visit_detector(small_demo)
    classes = list(OFFSETS)
    rows, kind, where = [], {}, {}
    for n, k in enumerate(isolated):
        c = classes[n % 3]
        angle = 0.7 * n  # directions vary
        r, d = ind.offset_by(ra[k], dec[k], OFFSETS[c] * np.cos(angle), OFFSETS[c] * np.sin(angle))
        sid = 9_000_000 + n
        rows.append((sid, r, d))
        kind[sid], where[sid] = c, (r, d)
    path = tmp_path_factory.mktemp("offset_cat") / "dia_source.parquet"
    ids, r, d = (np.array(v) for v in zip(*rows, strict=True))
    pq.write_table(pa.table({"diaSourceId": ids, "ra": r, "dec": d,
                             "visit": np.full(len(ids), visit),
                             "detector": np.full(len(ids), detector),
                             "reliability": np.full(len(ids), 0.5)}), path)
    return path, kind, where


@pytest.mark.parametrize("radius", [0.2, 1.0, 3.0])
def test_match_radius_and_with_missing_reach_the_table(small_demo, offset_catalog, tmp_path,
                                                       radius):
    path, kind, _ = offset_catalog
    want = {sid for sid, c in kind.items() if c in EXPECTED[radius]}
    args = [*_cli(small_demo, tmp_path / "a.ecsv", "--catalog", str(path), "--no-score")]
    if radius != 1.0:
        args += ["--radius", str(radius)]
    assert main(args) == 0
    t = read_table(tmp_path / "a.ecsv")
    got = np.asarray(t["diaSourceId"])
    assert set(got[got >= 0].tolist()) == want
    sep = np.asarray(t["match_sep_arcsec"], float)
    assert np.nanmax(sep) <= radius
    assert "missing" not in set(np.asarray(t["status"]).tolist())  # not asked for
    # --with-missing appends exactly the catalog rows left unmatched
    out = tmp_path / "b.ecsv"
    args[args.index("--out") + 1] = str(out)
    assert main([*args, "--with-missing"]) == 0
    t2 = read_table(out)
    miss = t2[np.asarray(t2["status"]) == "missing"]
    assert set(np.asarray(miss["diaSourceId"]).tolist()) == set(kind) - want
    assert len(t2) == len(t) + len(set(kind) - want)


def test_target_marks_the_nearest_detection(small_demo, unscored, offset_catalog, tmp_path):
    path, kind, where = offset_catalog
    det = unscored.detections
    # the target: a catalog row 0.5" from its detection (inside the default 1" radius)
    sid = next(s for s, c in kind.items() if c == "mid")
    ra_t, dec_t = where[sid]
    sep = ind.separation_arcsec(np.asarray(det["ra"], float), np.asarray(det["dec"], float),
                                ra_t, dec_t)
    nearest = int(np.asarray(det["id"])[np.argmin(sep)])
    base = [*_cli(small_demo, tmp_path / "none.ecsv", "--catalog", str(path), "--no-score")]
    assert main(base) == 0
    assert "target" not in set(np.asarray(read_table(tmp_path / "none.ecsv")["status"]).tolist())
    out = tmp_path / "t.ecsv"
    base[base.index("--out") + 1] = str(out)
    assert main([*base, "--target", f"{ra_t},{dec_t}"]) == 0
    t = read_table(out)
    status = np.asarray(t["status"])
    assert (status == "target").sum() == 1
    assert int(np.asarray(t["id"])[status == "target"][0]) == nearest
    assert int(np.asarray(t["diaSourceId"])[status == "target"][0]) == sid
