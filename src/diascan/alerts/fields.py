"""The alert table: one row per alert, the same columns for Rubin and ZTF alerts.

Rubin fields come from the ``diaSource`` record (lsst.v3 to v11.1 names: ``midpointMjdTai`` or
``midPointTai``, ``band`` or ``filterName``, ``dec`` or ``decl``), ZTF fields from the
``candidate`` record (schemas 3.x and 4.x, and the 2016 packets). What each column holds for
each survey is in its description (:data:`FIELDS`); a value a survey does not have is NaN, an
empty string or masked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy.table import Column, MaskedColumn, Table

#: ZTF filter ids.
ZTF_BANDS = {1: "g", 2: "r", 3: "i"}

#: ZTF ``jd`` minus this is MJD.
JD_MJD = 2400000.5

#: A ZTF alert matches the known solar-system object ZTF names (``ssnamenr``, the nearest one
#: found) when it is at most this far (``ssdistnr``), the rule of Fink's asteroid module.
ZTF_SS_MATCH_ARCSEC = 5.0


@dataclass(frozen=True)
class Field:
    """One column of the alert table: name, kind (``int``, ``float``, ``str``, ``bool``; bools
    may be masked = unknown), unit and description."""

    name: str
    kind: str
    unit: str | None
    description: str


FIELDS: tuple[Field, ...] = (
    Field("survey", "str", None, "rubin or ztf"),
    Field("schema", "str", None, "alert schema (Rubin lsst.vM_m, ZTF 'ztf 4.02')"),
    Field("id", "int", None, "alert source id: Rubin diaSourceId, ZTF candid"),
    Field("object_id", "str", None, "Rubin diaObjectId, ZTF objectId"),
    Field("time", "float", "d", "MJD of the exposure (Rubin midpointMjdTai; ZTF jd - 2400000.5)"),
    Field("band", "str", None, "band (Rubin band; ZTF fid 1, 2, 3 = g, r, i)"),
    Field("ra", "float", "deg", "right ascension"),
    Field("dec", "float", "deg", "declination"),
    Field("x", "float", "pix", "source x on its detector, 0-based (Rubin x; ZTF xpos - 1)"),
    Field("y", "float", "pix", "source y on its detector, 0-based (Rubin y; ZTF ypos - 1)"),
    Field("flux", "float", "nJy", "difference-image PSF flux (Rubin psfFlux)"),
    Field("flux_err", "float", "nJy", "its uncertainty (Rubin psfFluxErr)"),
    Field("mag", "float", "mag", "difference-image PSF magnitude (ZTF magpsf)"),
    Field("mag_err", "float", "mag", "its uncertainty (ZTF sigmapsf)"),
    Field("snr", "float", None, "detection S/N (Rubin snr; ZTF scorr, the peak S/N of the "
          "matched-filter image)"),
    Field("flags", "str", None, "flags set, comma-separated (Rubin boolean *flag*, pixelFlags* "
          "and glint_trail fields; ZTF nbad=N bad pixels within 5x5)"),
    Field("is_negative", "bool", None, "negative difference (Rubin isNegative; ZTF isdiffpos "
          "'f' or '0')"),
    Field("dipole", "bool", None, "dipole (Rubin isDipole; unknown for ZTF)"),
    Field("ss_match", "bool", None, "a known solar-system object is associated (Rubin ssObjectId "
          "!= 0; ZTF ssnamenr within 5 arcsec)"),
    Field("ss_object", "str", None, "the nearest known solar-system object (Rubin ssObjectId; "
          "ZTF ssnamenr)"),
    Field("ss_distance", "float", "arcsec", "distance to it (ZTF ssdistnr)"),
    Field("reliability", "float", None, "Rubin's production reliability score"),
    Field("rb", "float", None, "ZTF's production rb score (random forest)"),
    Field("drb", "float", None, "ZTF's production drb score (braai CNN)"),
    Field("drb_version", "str", None, "ZTF drbversion (the braai model, e.g. d6_m7)"),
    Field("file", "str", None, "file the alert was read from"),
    Field("record", "int", None, "record number in that file (0-based)"),
)

FIELD_NAMES = tuple(f.name for f in FIELDS)


def _get(rec: Mapping, *names: str) -> Any:
    for n in names:
        v = rec.get(n)
        if v is not None:
            return v
    return None


def _float(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def rubin_row(top: Mapping, src: Mapping, version: str = "") -> dict[str, Any]:
    """Table fields of a Rubin alert: ``top`` = its top-level fields, ``src`` = its diaSource."""
    flags = [
        k
        for k, v in src.items()
        if v is True and ("flag" in k.lower() or k.startswith("pixelFlags") or k == "glint_trail")
    ]
    ss_id = src.get("ssObjectId")
    ss_match = None if ss_id is None else bool(ss_id)
    obj = src.get("diaObjectId")
    return {
        "survey": "rubin",
        "schema": version or str(top.get("lsst_schema_version") or top.get("lsst_schema") or ""),
        "id": _get(src, "diaSourceId") or _get(top, "diaSourceId", "alertId"),
        "object_id": "" if obj is None else str(obj),
        "time": _float(_get(src, "midpointMjdTai", "midPointTai")),
        "band": str(_get(src, "band", "filterName") or ""),
        "ra": _float(src.get("ra")),
        "dec": _float(_get(src, "dec", "decl")),
        "x": _float(src.get("x")),
        "y": _float(src.get("y")),
        "flux": _float(src.get("psfFlux")),
        "flux_err": _float(src.get("psfFluxErr")),
        "snr": _float(src.get("snr")),
        "flags": ",".join(flags),
        "is_negative": src.get("isNegative"),
        "dipole": src.get("isDipole"),
        "ss_match": ss_match,
        "ss_object": str(ss_id) if ss_id else "",
        "reliability": _float(src.get("reliability")),
    }


def _no_name(v: Any) -> bool:
    return v is None or str(v).strip().lower() in ("", "null", "none")


def ztf_row(top: Mapping, cand: Mapping, version: str = "") -> dict[str, Any]:
    """Table fields of a ZTF alert: ``top`` = its top-level fields, ``cand`` = its candidate."""
    jd = _float(cand.get("jd"))
    diffpos = cand.get("isdiffpos")
    xpos, ypos = _float(cand.get("xpos")), _float(cand.get("ypos"))
    nbad = cand.get("nbad")
    ss_name = cand.get("ssnamenr")
    ss_dist = _float(cand.get("ssdistnr"))
    ss_dist = None if ss_dist is None or ss_dist < 0 else ss_dist
    vsn = top.get("schemavsn")
    return {
        "survey": "ztf",
        "schema": f"ztf {vsn}" if vsn else (version or "ztf (no schemavsn)"),
        "id": _get(cand, "candid") or top.get("candid"),
        "object_id": str(_get(top, "objectId") or cand.get("objectId") or ""),
        "time": None if jd is None else jd - JD_MJD,
        "band": ZTF_BANDS.get(cand.get("fid"), str(cand.get("fid") or "")),
        "ra": _float(cand.get("ra")),
        "dec": _float(cand.get("dec")),
        "x": None if xpos is None else xpos - 1.0,
        "y": None if ypos is None else ypos - 1.0,
        "mag": _float(cand.get("magpsf")),
        "mag_err": _float(cand.get("sigmapsf")),
        "snr": _float(cand.get("scorr")),
        "flags": f"nbad={nbad}" if isinstance(nbad, int) and nbad > 0 else "",
        "is_negative": None if diffpos is None else str(diffpos).lower() in ("f", "0"),
        "ss_match": (not _no_name(ss_name) and ss_dist is not None
                     and ss_dist <= ZTF_SS_MATCH_ARCSEC),
        "ss_object": "" if _no_name(ss_name) else str(ss_name),
        "ss_distance": ss_dist if not _no_name(ss_name) else None,
        "rb": _float(cand.get("rb")),
        "drb": _float(cand.get("drb")),
        "drb_version": str(cand.get("drbversion") or ""),
    }


ROW_BUILDERS = {"rubin": rubin_row, "ztf": ztf_row}


class FieldColumns:
    """The alert table's columns for ``n`` rows, filled row by row in any order (rows not yet
    filled are missing values), made into an astropy Table on demand."""

    def __init__(self, n: int = 0) -> None:
        self.n = n
        self._cols: dict[str, list] = {f.name: [None] * n for f in FIELDS}

    def update(self, index: int, row: Mapping[str, Any]) -> None:
        """Set the fields of row ``index`` that ``row`` has."""
        for name, value in row.items():
            col = self._cols.get(name)
            if col is not None:
                col[index] = value

    def get(self, index: int) -> dict[str, Any]:
        """Row ``index`` as a dict (None = missing)."""
        return {name: col[index] for name, col in self._cols.items()}

    def column(self, name: str) -> list:
        return self._cols[name]

    def table(self) -> Table:
        cols = []
        for f in FIELDS:
            values = self._cols[f.name]
            if f.kind == "float":
                data = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
                col = Column(data, name=f.name)
            elif f.kind == "int":
                data = np.array([0 if v is None else int(v) for v in values], dtype=np.int64)
                col = Column(data, name=f.name)
            elif f.kind == "bool":
                mask = np.array([v is None for v in values], dtype=bool)
                data = np.array([bool(v) for v in values], dtype=bool)
                col = MaskedColumn(data, name=f.name, mask=mask)
            else:
                col = Column(np.array(["" if v is None else str(v) for v in values], dtype=str),
                             name=f.name)
            col.unit = f.unit
            col.description = f.description
            cols.append(col)
        return Table(cols)


__all__ = ["FIELDS", "FIELD_NAMES", "Field", "ROW_BUILDERS", "FieldColumns", "rubin_row", "ztf_row"]
