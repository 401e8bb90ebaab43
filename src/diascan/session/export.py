"""Export labelled sources of a session: tables (CSV, ECSV, FITS, Parquet) and DS9 regions.

The format follows the file extension. Tables have one row per source with visit, detector, id,
diaSourceId, RA/Dec, x/y, flux, SNR, scores (and the model that computed them), status, label,
label time, note and the pixel flags; a value nobody knows (no diaSourceId: a detection the
catalog lacks; a flag of a visit whose table had no such column) is an empty cell (masked;
FITS has no empty logical: an unknown flag reads false there). Region files hold one sky
region per source (ICRS or FK5; the label shown by shape, text and colour; diaSourceId, visit,
detector and flags as DS9 tags), written with astropy-regions.
An existing file is never replaced unless ``overwrite=True``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import MaskedColumn, Table

from diascan.atomic import atomic_write
from diascan.errors import OutputError, describe_os_error
from diascan.io.tables import WRITABLE, table_format, write_table
from diascan.palettes import get_palette, hex_color
from diascan.safety import check_output_path
from diascan.session.labels import Label, format_time, parse_label
from diascan.session.model import Session, SourceRecord, VisitEntry

#: Extension -> astropy table format.
TABLE_FORMATS = {
    ".csv": "ascii.csv",
    ".ecsv": "ascii.ecsv",
    ".fits": "fits",
    ".fit": "fits",
    ".fts": "fits",
    ".parquet": "parquet",
    ".pq": "parquet",
}
REGION_EXTENSIONS = (".reg",)
EXPORT_EXTENSIONS = tuple(TABLE_FORMATS) + REGION_EXTENSIONS

#: Colour of unlabelled sources in region files.
UNLABELLED_COLOR = "cyan"


class ExportError(OutputError):
    """An export that cannot be written (unknown format, file exists, nothing to export)."""


def parse_label_filter(text: str | Sequence[str] | None) -> set[Label | None] | None:
    """``"real,unsure"`` -> ``{Label.REAL, Label.UNSURE}``; ``"none"`` selects unlabelled
    sources; ``None``/empty -> ``None`` (all labelled). Raises ``ValueError`` on unknown names."""
    if text is None:
        return None
    items = text.split(",") if isinstance(text, str) else list(text)
    items = [i.strip() for i in items if i.strip()]
    if not items:
        return None
    return {parse_label(i) for i in items}


def _selected(session: Session, labels, visits):
    wanted = set(Label) if labels is None else {parse_label(x) for x in labels}
    indices = range(len(session.visits)) if visits is None else visits
    for vi in indices:
        if not 0 <= vi < len(session.visits):
            raise ExportError(None, f"no visit {vi + 1} (session has {len(session.visits)})")
        visit = session.visits[vi]
        for src in visit.sources:
            rec = visit.labels.record(src.id)
            if rec.label in wanted:
                yield visit, src, rec


def export_table(
    session: Session,
    labels: Iterable[Label | str | None] | None = None,
    visits: Sequence[int] | None = None,
) -> Table:
    """Table of the selected sources (default: every labelled source of every visit)."""
    rows = list(_selected(session, labels, visits))

    def fnum(v):
        return np.nan if v is None else float(v)

    ids = [src.id for _, src, _ in rows]
    all_int = all(isinstance(i, int) for i in ids)
    t = Table()
    t["visit"] = _int_column([_own(s.visit, v.visit) for v, s, _ in rows])
    t["detector"] = _int_column([_own(s.detector, v.detector) for v, s, _ in rows])
    t["id"] = np.array(ids, dtype=np.int64) if all_int else np.array([str(i) for i in ids])
    t["diaSourceId"] = _int_column([s.diaSourceId for _, s, _ in rows])
    for name, unit in (("ra", u.deg), ("dec", u.deg), ("x", u.pix), ("y", u.pix),
                       ("psfFlux", None), ("snr", None), ("score", None),
                       ("original_reliability", None)):
        t[name] = np.array([fnum(getattr(s, name)) for _, s, _ in rows], dtype=np.float64)
        if unit is not None:
            t[name].unit = unit
    t["model"] = np.array([v.model_name or "" for v, _, _ in rows], dtype=str)
    t["model_version"] = np.array(
        ["" if v.model_version is None else str(v.model_version) for v, _, _ in rows], dtype=str)
    t["status"] = np.array([s.status or "" for _, s, _ in rows], dtype=str)
    t["label"] = np.array(["" if r.label is None else r.label.value for *_, r in rows], dtype=str)
    t["label_time"] = np.array([format_time(r.time) or "" for *_, r in rows], dtype=str)
    t["note"] = np.array([r.note for *_, r in rows], dtype=str)
    # an alert entry's fields (band, time, mag...); free ``extra`` of visits stays unexported
    for name in dict.fromkeys(k for v, s, _ in rows if v.alerts for k in s.extra):
        t[name] = _extra_column([s.extra.get(name) if v.alerts else None for v, s, _ in rows])
    for name in _flag_names(rows):
        known = [name in v.flag_columns for v, _, _ in rows]
        values = np.array([k and name in s.flags for k, (_, s, _) in zip(known, rows,
                                                                          strict=True)])
        # fill_value: what FITS (no empty logical) writes for an unknown flag; astropy's
        # default for bool is True, which would claim the flag is set
        t[name] = values if all(known) else MaskedColumn(values, mask=np.logical_not(known),
                                                         fill_value=False)
    return t


def _extra_column(values: list) -> np.ndarray:
    """Per-source ``extra`` values as one column: numbers (NaN where missing), else text."""
    if all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in values):
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    return np.array(["" if v is None else str(v) for v in values], dtype=str)


def _own(value: int | None, default: int | None) -> int | None:
    """A source's own visit/detector (an alert's), else its visit entry's."""
    return default if value is None else value


def _int_column(values: list[int | None]) -> np.ndarray:
    """int64, masked where None (an empty cell in every format)."""
    data = np.array([0 if v is None else v for v in values], dtype=np.int64)
    mask = np.array([v is None for v in values], dtype=bool)
    return MaskedColumn(data, mask=mask) if mask.any() else data


def _flag_names(rows: list[tuple[VisitEntry, SourceRecord, object]]) -> list[str]:
    """Every pixel flag column of the exported sources' visits (first seen first)."""
    names: dict[str, None] = {}
    for v, _, _ in rows:
        names.update(dict.fromkeys(v.flag_columns))
    return list(names)


#: Region shape per label, so labels differ by shape and text as well as by colour (DS9 shows
#: all three): real = circle, bogus = box, unsure = diamond (a box turned 45 deg), no label = a
#: cross point.
LABEL_SHAPES: dict[Label | None, str] = {
    Label.REAL: "circle",
    Label.BOGUS: "box",
    Label.UNSURE: "diamond",
    None: "cross",
}


def _region(shape: str, centre: SkyCoord, radius, meta: dict, visual: dict):
    from regions import CircleSkyRegion, PointSkyRegion, RectangleSkyRegion

    if shape == "circle":
        return CircleSkyRegion(centre, radius, meta=meta, visual=visual)
    if shape in ("box", "diamond"):
        angle = (45 if shape == "diamond" else 0) * u.deg
        return RectangleSkyRegion(centre, 2 * radius, 2 * radius, angle=angle, meta=meta,
                                  visual=visual)
    return PointSkyRegion(centre, meta=meta, visual={**visual, "marker": "x"})


def export_regions(
    session: Session,
    labels: Iterable[Label | str | None] | None = None,
    visits: Sequence[int] | None = None,
    frame: str = "icrs",
    radius_arcsec: float = 2.0,
    palette: str | None = None,
):
    """A :class:`regions.Regions` with one region per selected source that has RA/Dec.

    The label shows three ways: the shape (:data:`LABEL_SHAPES`), the text (``"<id> <label>"``)
    and the colour of ``palette`` (:mod:`diascan.palettes`; unlabelled sources are cyan).
    """
    from regions import Regions

    if frame not in ("icrs", "fk5"):
        raise ExportError(None, f"region frame must be icrs or fk5, not {frame!r}")
    try:
        pal = get_palette(palette)
    except ValueError as exc:
        raise ExportError(None, str(exc)) from None
    radius = radius_arcsec * u.arcsec
    regs = []
    for visit, src, rec in _selected(session, labels, visits):
        if src.ra is None or src.dec is None:
            continue
        centre = SkyCoord(src.ra * u.deg, src.dec * u.deg, frame=frame)
        label = rec.label
        rgb = None if label is None else pal.label_color(label.value)
        color = UNLABELLED_COLOR if rgb is None else hex_color(rgb)
        text = str(src.id) if label is None else f"{src.id} {label.value}"
        meta = {"text": text, "tag": _region_tags(visit, src)}
        regs.append(_region(LABEL_SHAPES[label], centre, radius, meta, {"color": color}))
    return Regions(regs)


def _region_tags(visit: VisitEntry, src: SourceRecord) -> list[str]:
    """DS9 tags of a source: ``diaSourceId=...`` (when matched), ``visit=...``,
    ``detector=...`` (when known) and ``flags=a,b`` (the set ones, when any)."""
    tags = [] if src.diaSourceId is None else [f"diaSourceId={src.diaSourceId}"]
    for key, value in (("visit", _own(src.visit, visit.visit)),
                       ("detector", _own(src.detector, visit.detector))):
        if value is not None:
            tags.append(f"{key}={value}")
    if src.flags:
        tags.append("flags=" + ",".join(src.flags))
    return tags


def export_sources(
    session: Session,
    out: str | Path,
    labels: Iterable[Label | str | None] | None = None,
    visits: Sequence[int] | None = None,
    overwrite: bool = False,
    frame: str = "icrs",
    palette: str | None = None,
    session_path: str | Path | None = None,
) -> int:
    """Write the selected sources to ``out`` (format by extension); returns how many.

    Raises :class:`ExportError` for an unknown extension, an existing file without
    ``overwrite``, or an ``out`` that is one of the session's input files or the session file
    ``session_path`` itself (never, :mod:`diascan.safety`). The file is written atomically.
    """
    out = Path(out)
    ext = out.suffix.lower()
    if ext not in EXPORT_EXTENSIONS:
        raise ExportError(
            out, f"unknown export format {ext or '(none)'}; use one of {', '.join(EXPORT_EXTENSIONS)}"
        )
    check_output_path(out, [("session file", session_path), *session.input_files()], "export")
    if out.is_dir():
        raise ExportError(out, "is a folder; give a file name")
    if out.exists() and not overwrite:
        raise ExportError(out, "file exists; use --overwrite to replace it")
    if not out.parent.is_dir():
        raise ExportError(out, "folder does not exist")
    if ext in REGION_EXTENSIONS:
        regions = export_regions(session, labels, visits, frame=frame, palette=palette)
        n = len(regions)
        _write_atomic(out, lambda tmp: regions.write(str(tmp), format="ds9", overwrite=True))
    else:
        table = export_table(session, labels, visits)
        n = len(table)
        if table_format(out) in WRITABLE:  # masks as empty cells / nulls, atomically
            write_table(table, out, overwrite=overwrite)
        else:  # .fts: FITS under a name diascan.io.tables does not know
            fmt = TABLE_FORMATS[ext]
            _write_atomic(out, lambda tmp: table.write(str(tmp), format=fmt, overwrite=True))
    return n


def _write_atomic(out: Path, write) -> None:
    try:
        atomic_write(out, write)
    except OSError as exc:
        raise ExportError(out, f"cannot write: {describe_os_error(exc)}") from None

