"""Matching detections to a DIA source catalog on the sky (step 7 of the DP1 tutorial).

:func:`match_catalog` pairs detections and catalog rows within ``radius_arcsec`` one-to-one:
all pairs within the radius (``SkyCoord.search_around_sky``) are taken in order of increasing
separation, and a pair is accepted when neither side is taken yet (greedy by separation; for the
sparse fields here it equals the optimal assignment except in contrived configurations).

Each detection gets ``status`` ``matched`` (paired with a catalog row), ``unmatched`` (a detection
the catalog does not have: one that later pipeline steps rejected) or ``target`` (the detection
nearest the given target position, when one lies within the radius of it; the target row keeps
its ``catalog_row`` etc. if it matched). Catalog rows no detection matched are returned in
``missing`` with ``status = 'missing'``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table

from diascan.errors import CatalogReadError

MATCHED, UNMATCHED, TARGET, MISSING = "matched", "unmatched", "target", "missing"


@dataclass
class MatchResult:
    """Detections with match columns, catalog rows left over, and summary numbers."""

    detections: Table
    missing: Table
    radius_arcsec: float
    n_catalog: int
    target_row: int | None = None  #: index into ``detections`` of the target, if any
    notes: list[str] = field(default_factory=list)

    @property
    def n_matched(self) -> int:
        """Detections paired with a catalog row (the target included when it matched)."""
        return int(np.sum(self.detections["catalog_row"] >= 0))

    @property
    def n_unmatched(self) -> int:
        return int(np.sum(self.detections["catalog_row"] < 0))

    @property
    def n_missing(self) -> int:
        return len(self.missing)

    @property
    def all_catalog_matched_once(self) -> bool:
        """The tutorial's check: every catalog row matched exactly one detection."""
        rows = np.asarray(self.detections["catalog_row"])
        rows = rows[rows >= 0]
        return len(rows) == self.n_catalog and len(np.unique(rows)) == self.n_catalog


def _radec(table: Table, what: str) -> tuple[np.ndarray, np.ndarray]:
    for ra, dec, unit in (("ra", "dec", u.deg), ("coord_ra", "coord_dec", u.rad)):
        if ra in table.colnames and dec in table.colnames:
            r = np.ma.filled(np.ma.asarray(table[ra], dtype=float), np.nan)
            d = np.ma.filled(np.ma.asarray(table[dec], dtype=float), np.nan)
            return (r * unit).to_value(u.deg), (d * unit).to_value(u.deg)
    raise CatalogReadError(None, f"{what} table has no ra/dec (or coord_ra/coord_dec) columns")


def _column(table: Table, names, n: int, default, dtype, notes: list[str] | None = None):
    """The first of ``names`` as ``dtype``, ``default`` where masked; a column that does not
    convert (text ids, NaN in an integer id) gives ``default`` where it fails, with a note."""
    for name in names:
        if name not in table.colnames:
            continue
        values = np.ma.asarray(table[name])
        masked = np.ma.getmaskarray(values)
        data = np.asarray(values.data)
        out = np.full(n, default, dtype=dtype)
        try:
            if data.dtype.kind == "f" and np.dtype(dtype).kind in "iu":
                good = ~masked & np.isfinite(data) & (np.abs(data) < 2.0**63)
                bad = int(np.count_nonzero(~good & ~masked))
                if notes is not None and bad:
                    notes.append(f"catalog column {name}: {bad} value(s) not an integer, "
                                 f"given {default}")  # fmt: skip
            else:
                good = ~masked
            out[good] = data[good].astype(dtype)
        except (TypeError, ValueError, OverflowError):
            if notes is not None:
                notes.append(f"catalog column {name} is not numeric ({data.dtype}): ignored")
            return np.full(n, default, dtype=dtype)
        return out
    return np.full(n, default, dtype=dtype)


def _valid_sky(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Positions that can take part in matching: finite, dec within [-90, 90]."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90.0)


def match_catalog(
    detections: Table,
    catalog: Table,
    radius_arcsec: float = 1.0,
    target: tuple[float, float] | None = None,
) -> MatchResult:
    """Match ``detections`` to ``catalog`` rows one-to-one within ``radius_arcsec``.

    Adds to a copy of ``detections``: ``status``, ``catalog_row`` (int64, -1 if none),
    ``diaSourceId`` (int64, -1 if none), ``original_reliability`` (float, NaN if none) and
    ``match_sep_arcsec`` (NaN if none). ``target`` is ``(ra, dec)`` in degrees.
    """
    det = detections.copy(copy_data=True)
    nd, nc = len(det), len(catalog)
    d_ra, d_dec = _radec(det, "detection")
    c_ra, c_dec = _radec(catalog, "catalog")
    row = np.full(nd, -1, dtype=np.int64)
    sep = np.full(nd, np.nan)
    taken = np.zeros(nc, dtype=bool)
    # Positions without a valid sky position (no WCS, NaN or out-of-range rows) match nothing.
    d_ok, c_ok = np.flatnonzero(_valid_sky(d_ra, d_dec)), np.flatnonzero(_valid_sky(c_ra, c_dec))
    if d_ok.size and c_ok.size:
        dc = SkyCoord(d_ra[d_ok] * u.deg, d_dec[d_ok] * u.deg)
        cc = SkyCoord(c_ra[c_ok] * u.deg, c_dec[c_ok] * u.deg)
        # search_around_sky returns (index into the argument, index into self, separation, ...).
        i_c, i_d, s2d, _ = dc.search_around_sky(cc, radius_arcsec * u.arcsec)
        i_c, i_d, s = c_ok[i_c], d_ok[i_d], s2d.arcsec
        for k in np.argsort(s, kind="stable"):
            a, b = i_d[k], i_c[k]
            if row[a] < 0 and not taken[b]:
                row[a], sep[a], taken[b] = b, s[k], True
    status = np.where(row >= 0, MATCHED, UNMATCHED).astype("<U9")
    notes: list[str] = []
    target_row = None
    if target is not None and d_ok.size:
        t = SkyCoord(target[0] * u.deg, target[1] * u.deg)
        tsep = np.full(nd, np.inf)
        tsep[d_ok] = SkyCoord(d_ra[d_ok] * u.deg, d_dec[d_ok] * u.deg).separation(t).arcsec
        k = int(np.argmin(tsep))
        if tsep[k] <= radius_arcsec:
            status[k] = TARGET
            target_row = k
        else:
            notes.append(
                f"no detection within {radius_arcsec} arcsec of the target "
                f"(nearest {tsep[k]:.2f} arcsec): no target marked"
            )
    ids = _column(catalog, ("diaSourceId", "id"), nc, -1, np.int64, notes)
    rel = _column(catalog, ("reliability", "original_reliability"), nc, np.nan, np.float64, notes)
    ok = row >= 0
    det["status"] = status
    det["catalog_row"] = row
    det["diaSourceId"] = np.where(ok, ids[np.where(ok, row, 0)] if nc else -1, -1).astype(np.int64)
    det["original_reliability"] = np.where(ok, rel[np.where(ok, row, 0)] if nc else np.nan, np.nan)
    det["match_sep_arcsec"] = sep
    missing = catalog[~taken].copy() if nc else catalog.copy()
    missing["status"] = np.full(len(missing), MISSING, dtype="<U9")
    missing["catalog_row"] = np.flatnonzero(~taken).astype(np.int64)
    return MatchResult(
        detections=det,
        missing=missing,
        radius_arcsec=float(radius_arcsec),
        n_catalog=nc,
        target_row=target_row,
        notes=notes,
    )
