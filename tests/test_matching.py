"""One-to-one sky matching of detections to the DIA source catalog (diascan.matching)."""

from __future__ import annotations

import numpy as np
from astropy.table import Table

from diascan.matching import match_catalog

ARCSEC = 1 / 3600.0


def _tables():
    rng = np.random.default_rng(1)
    ra = 150 + rng.uniform(0, 0.05, 30)
    dec = 2 + rng.uniform(0, 0.05, 30)
    cat = Table(
        {
            "diaSourceId": np.arange(1000, 1020, dtype=np.int64),
            "ra": ra[:20] + 0.3 * ARCSEC,
            "dec": dec[:20],
            "reliability": np.linspace(0, 1, 20),
        }
    )
    det = Table({"id": np.arange(1, 31, dtype=np.int64), "ra": ra, "dec": dec})
    return det, cat


def test_matched_unmatched_missing_and_target():
    det, cat = _tables()
    # Catalog row 5 moved 3 arcsec away: it is missing; detection 5 is unmatched.
    cat["dec"][5] += 3 * ARCSEC
    res = match_catalog(det, cat, target=(det["ra"][7] + 0.2 * ARCSEC, det["dec"][7]))
    d = res.detections
    assert d["status"][7] == "target" and d["catalog_row"][7] == 7
    assert list(d["status"][20:]) == ["unmatched"] * 10 and d["status"][5] == "unmatched"
    matched = [i for i in range(20) if i not in (5, 7)]
    assert all(d["status"][i] == "matched" for i in matched)
    assert list(d["catalog_row"][matched]) == matched
    assert list(d["diaSourceId"][matched]) == [1000 + i for i in matched]
    np.testing.assert_allclose(d["original_reliability"][matched], cat["reliability"][matched])
    np.testing.assert_allclose(d["match_sep_arcsec"][matched], 0.3, atol=1e-3)
    assert d["diaSourceId"][25] == -1 and np.isnan(d["original_reliability"][25])
    assert len(res.missing) == 1 and res.missing["diaSourceId"][0] == 1005
    assert res.missing["status"][0] == "missing"
    assert res.n_matched == 19 and res.n_missing == 1 and not res.all_catalog_matched_once
    assert "status" not in det.colnames  # input untouched


def test_one_to_one_greedy_by_separation():
    # Two detections 0.4" and 0.6" from one catalog row: only the nearer one matches.
    cat = Table({"ra": [150.0], "dec": [2.0], "diaSourceId": [7]})
    det = Table({"ra": [150.0, 150.0], "dec": [2.0 + 0.6 * ARCSEC, 2.0 - 0.4 * ARCSEC]})
    res = match_catalog(det, cat)
    assert list(res.detections["status"]) == ["unmatched", "matched"]
    assert res.all_catalog_matched_once


def test_radians_target_outside_radius_and_empty():
    det, cat = _tables()
    rad = Table({"coord_ra": np.deg2rad(det["ra"]), "coord_dec": np.deg2rad(det["dec"])})
    res = match_catalog(rad, cat, radius_arcsec=1.0, target=(10.0, -10.0))
    assert res.all_catalog_matched_once and res.n_matched == 20
    assert res.target_row is None and "no target" in res.notes[0]
    empty = match_catalog(det[:0], cat)
    assert len(empty.detections) == 0 and len(empty.missing) == 20
