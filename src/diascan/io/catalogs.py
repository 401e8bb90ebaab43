"""Source catalogs (e.g. the DP1 ``dia_source`` table) with sky positions in degrees.

Formats: whatever :func:`diascan.io.tables.read_table` reads (Parquet, FITS table, ECSV, CSV,
VOTable). DP1 column names (``diaSourceId``, ``ra``, ``dec``, ``visit``, ``detector``,
``reliability``, ``x``, ``y``, ``psfFlux``, ``psfFluxErr``, ``snr``, ``band``,
``midpointMjdTai``, ``isDipole``, ``pixelFlags_*`` ...) are kept as they are.
"""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.table import Table

from diascan.errors import CatalogReadError
from diascan.io.tables import read_table

#: Accepted (RA, Dec) column pairs in order of preference, matched case-insensitively, and the
#: unit assumed when the column carries none. A column WITH a unit (e.g. ``rad`` in an LSST FITS
#: table) is converted from that unit instead.
POSITION_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("ra", "dec", "deg"),
    ("coord_ra", "coord_dec", "rad"),  # LSST afw source tables: radians
    ("raj2000", "dej2000", "deg"),
    ("raj2000", "decj2000", "deg"),
    ("ra_icrs", "de_icrs", "deg"),
    ("ra_deg", "dec_deg", "deg"),
    ("alpha_j2000", "delta_j2000", "deg"),  # SExtractor
)


def read_catalog(path: str | Path, visit: int | None = None, detector: int | None = None) -> Table:
    """Read a source catalog and return it with ``ra`` and ``dec`` columns in degrees.

    Sky position columns accepted (case-insensitive, first pair found wins): ``ra``/``dec``
    (degrees; so also ``RA``/``DEC``), ``coord_ra``/``coord_dec`` (radians), ``raj2000``/
    ``dej2000`` or ``decj2000``, ``ra_icrs``/``de_icrs``, ``ra_deg``/``dec_deg``,
    ``alpha_j2000``/``delta_j2000`` (all degrees). A column with an angular unit is converted
    from that unit. When the pair found is not literally ``ra``/``dec`` the converted columns
    are added as ``ra``/``dec`` (float64, unit deg) and the originals kept.

    With ``visit`` and/or ``detector`` only those rows are kept, when the table has a ``visit``/
    ``detector`` column; if it has not, the filter is skipped with a line in
    ``table.meta['notes']``. Raises :class:`~diascan.errors.CatalogReadError` for a missing,
    empty or unreadable file, missing position columns, or no rows left after the selection.
    """
    path = Path(path)
    where, skipped = {}, []
    for name, value in (("visit", visit), ("detector", detector)):
        if value is None:
            continue
        try:
            where[name] = _int64(value)
        except (TypeError, ValueError, OverflowError):
            skipped.append(f"{name} {value!r} is not an integer: {name} selection not applied")
    table = read_table(path, where=where or None)
    notes: list[str] = [*skipped, *table.meta.get("notes", [])]
    for name in where:
        if name not in table.colnames:
            notes.append(f"no '{name}' column: {name} selection ({where[name]}) not applied")
    if len(table) == 0:
        if any(name in table.colnames for name in where):
            asked = ", ".join(f"{k} {v}" for k, v in where.items() if k in table.colnames)
            raise CatalogReadError(path, f"no rows for {asked}{_present(path, where)}")
        raise CatalogReadError(path, "catalog has no rows")
    _sky_columns(path, table, notes)
    table = _drop_bad_positions(path, table, notes)
    table.meta["notes"] = notes
    table.meta["source_path"] = str(path)
    return table


def _int64(value) -> int:
    """An integer selection value (a float such as 4.0 is accepted; NaN, 4.5 or text are not)."""
    if isinstance(value, bool):
        raise TypeError("a boolean")
    number = float(value) if not isinstance(value, int | np.integer) else int(value)
    if number != int(number) or not -(2**63) <= int(number) < 2**63:
        raise ValueError(f"{value!r}")
    return int(number)


def _drop_bad_positions(path: Path, table: Table, notes: list[str]) -> Table:
    """Rows with a NaN, infinite, masked or out-of-range ra (outside [0, 360]) or dec (outside
    [-90, 90]) are dropped with a note; the rest are kept. None left is an error."""
    ra = np.ma.filled(np.ma.asarray(table["ra"], dtype=np.float64), np.nan)
    dec = np.ma.filled(np.ma.asarray(table["dec"], dtype=np.float64), np.nan)
    if ra.ndim != 1 or dec.ndim != 1:
        raise CatalogReadError(path, "ra/dec columns must hold one number per row")
    with np.errstate(invalid="ignore"):
        good = np.isfinite(ra) & np.isfinite(dec) & (ra >= 0) & (ra <= 360) & (np.abs(dec) <= 90)
    n_bad = int(np.count_nonzero(~good))
    if n_bad == 0:
        return table
    if n_bad == len(table):
        raise CatalogReadError(
            path, f"no row has a usable sky position: all {n_bad} ra/dec values are NaN, "
            "infinite or out of range (ra in [0, 360], dec in [-90, 90] degrees)",
        )  # fmt: skip
    notes.append(f"dropped {n_bad} of {len(table)} catalog rows with NaN, infinite or "
                 "out-of-range ra/dec (ra in [0, 360], dec in [-90, 90] degrees)")  # fmt: skip
    kept = table[good]
    kept.meta = table.meta
    return kept


def _present(path: Path, where: dict[str, int]) -> str:
    """' (visits present: ...)' listing the values the file does have (for the error)."""
    try:
        full = read_table(path)
    except CatalogReadError:
        return ""
    parts = []
    for name in where:
        if name in full.colnames and len(full):
            values = np.unique(np.asarray(full[name]))
            shown = ", ".join(str(v) for v in values[:10]) + (" ..." if len(values) > 10 else "")
            parts.append(f"{name}s present: {shown}")
    return f" ({'; '.join(parts)})" if parts else ""


def _find_column(table: Table, name: str) -> str | None:
    if name in table.colnames:
        return name
    lower = {c.lower(): c for c in table.colnames}
    return lower.get(name.lower())


def _to_degrees(table: Table, name: str, default_unit: str) -> np.ndarray:
    col = table[name]
    values = np.ma.filled(np.ma.asarray(col, dtype=np.float64), np.nan)
    unit = col.unit if col.unit is not None else u.Unit(default_unit)
    return (values * unit).to_value(u.deg)


def _sky_columns(path: Path, table: Table, notes: list[str]) -> None:
    for ra_name, dec_name, default_unit in POSITION_COLUMNS:
        ra_col, dec_col = _find_column(table, ra_name), _find_column(table, dec_name)
        if ra_col is None or dec_col is None:
            continue
        try:
            ra = _to_degrees(table, ra_col, default_unit)
            dec = _to_degrees(table, dec_col, default_unit)
        except (u.UnitConversionError, ValueError, TypeError) as exc:
            raise CatalogReadError(
                path, f"columns {ra_col}/{dec_col} are not angles in a known unit ({exc})"
            ) from exc
        plain = (ra_col, dec_col) == ("ra", "dec") and all(
            table[c].unit in (None, u.deg) and table[c].dtype == np.float64 for c in ("ra", "dec")
        )
        if plain:
            table["ra"].unit = table["dec"].unit = u.deg
            return
        if (ra_col, dec_col) != ("ra", "dec") or table[ra_col].unit not in (None, u.deg):
            for src, dst in ((ra_col, "ra"), (dec_col, "dec")):
                if src == dst:
                    table.remove_column(dst)
                elif dst in table.colnames:
                    table.rename_column(dst, f"{dst}_orig")
            notes.append(f"sky position from columns {ra_col}/{dec_col}, converted to degrees")
        table["ra"] = ra
        table["dec"] = dec
        table["ra"].unit = u.deg
        table["dec"].unit = u.deg
        return
    ra_missing = not any(_find_column(table, r) for r, _, _ in POSITION_COLUMNS)
    dec_missing = not any(_find_column(table, d) for _, d, _ in POSITION_COLUMNS)
    missing = [n for n, gone in (("ra", ra_missing), ("dec", dec_missing)) if gone] or ["ra", "dec"]
    shown = ", ".join(table.colnames[:30]) + (" ..." if len(table.colnames) > 30 else "")
    raise CatalogReadError(
        path,
        f"missing column(s) {', '.join(missing)}: need ra/dec in degrees (or coord_ra/coord_dec "
        f"in radians, RA/DEC, raj2000/dej2000, ra_icrs/de_icrs, ra_deg/dec_deg, "
        f"alpha_j2000/delta_j2000); columns present: {shown}",
    )


__all__ = ["POSITION_COLUMNS", "read_catalog"]
