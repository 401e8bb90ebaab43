"""Export round trips for every format, the DS9 region file, overwrite rules and the CLI."""

import numpy as np
import pyarrow.parquet as pq
import pytest
from astropy.table import Table
from regions import CircleSkyRegion, PointSkyRegion, RectangleSkyRegion, Regions

from diascan.cli.main import main
from diascan.errors import InputError
from diascan.session import Session, SourceRecord, VisitEntry, export_sources, save_session
from diascan.session.export import parse_label_filter


def read_table(path):
    if path.suffix == ".parquet":
        return Table(pq.read_table(path).to_pydict())
    return Table.read(path)


def texts(col):
    """Strings of a column read back; empty strings may come back masked."""
    return ["" if np.ma.is_masked(v) else str(v) for v in col]


@pytest.fixture
def session():
    visits = []
    for k in range(2):
        srcs = [
            SourceRecord(id=9_000_000_000 + 10 * k + i, ra=53.0 + 0.01 * i, dec=-28.0 + 0.01 * k,
                         x=100.0 + i, y=200.0 + k, psfFlux=1000.0 * (i + 1), snr=5.0 + i,
                         score=0.2 * i, original_reliability=None if i == 2 else 0.5,
                         status="matched")
            for i in range(4)
        ]
        visits.append(VisitEntry.create(srcs, visit=100 + k, detector=k))
    a, b = visits
    a.set_scores({9_000_000_001: 0.2}, "tac_cnn", "2025-02-18", "/models/tac_cnn")
    a.labels.set_label(9_000_000_000, "real")
    a.labels.set_note(9_000_000_000, 'looks fine, "star"')
    a.labels.set_label(9_000_000_001, "bogus")
    a.labels.set_label(9_000_000_002, "unsure")
    b.labels.set_label(9_000_000_013, "real")
    return Session(visits=visits)


@pytest.mark.parametrize("ext", [".csv", ".ecsv", ".fits", ".parquet"])
def test_table_round_trip(session, tmp_path, ext):
    out = tmp_path / f"labels{ext}"
    assert export_sources(session, out) == 4
    t = read_table(out)
    assert list(t["id"]) == [9_000_000_000, 9_000_000_001, 9_000_000_002, 9_000_000_013]
    assert t["id"].dtype.kind == "i"
    assert [str(x) for x in t["label"]] == ["real", "bogus", "unsure", "real"]
    assert list(t["visit"]) == [100, 100, 100, 101]
    assert str(t["note"][0]) == 'looks fine, "star"'
    assert t["ra"][1] == pytest.approx(53.01) and t["x"][3] == pytest.approx(103.0)
    assert t["psfFlux"][2] == pytest.approx(3000.0) and t["score"][1] == pytest.approx(0.2)
    missing = t["original_reliability"][2]
    assert np.ma.is_masked(missing) or np.isnan(missing)  # FITS reads NaN back as masked
    assert all(str(s) == "matched" for s in t["status"])
    # the model that computed the scores (visit b was never rescored)
    assert texts(t["model"]) == ["tac_cnn"] * 3 + [""]
    assert texts(t["model_version"]) == ["2025-02-18"] * 3 + [""]
    assert str(t["label_time"][0]).endswith("Z")


def test_label_and_visit_filters(session, tmp_path):
    out = tmp_path / "f.ecsv"
    assert export_sources(session, out, labels=parse_label_filter("real,unsure")) == 3
    assert export_sources(session, out, labels=["real"], visits=[1], overwrite=True) == 1
    assert export_sources(session, out, labels=["none"], overwrite=True) == 4  # unlabelled
    assert set(Table.read(out)["label"].filled("")) <= {""}


def test_region_file_reads_back_in_sky_coordinates(session, tmp_path):
    from diascan.palettes import get_palette, hex_color

    out = tmp_path / "labels.reg"
    assert export_sources(session, out, frame="fk5") == 4
    text = out.read_text()
    assert ("fk5" in text or "j2000" in text) and "image" not in text
    regs = Regions.read(out, format="ds9")
    assert len(regs) == 4
    # labels real, bogus, unsure, real: told apart by shape, text and colour
    assert [type(r) for r in regs] == [CircleSkyRegion, RectangleSkyRegion, RectangleSkyRegion,
                                       CircleSkyRegion]
    assert regs[1].angle.to_value("deg") == pytest.approx(0.0)
    assert regs[2].angle.to_value("deg") == pytest.approx(45.0)  # a diamond
    colours = [r.visual.get("color") or r.visual.get("edgecolor") for r in regs]
    pal = get_palette("classic")
    assert colours == [hex_color(pal.label_color(lab))
                       for lab in ("real", "bogus", "unsure", "real")]
    assert len(set(colours)) == 3
    assert [str(r.meta["text"]) for r in regs] == [
        "9000000000 real", "9000000001 bogus", "9000000002 unsure", "9000000013 real"]
    assert regs[1].center.ra.deg == pytest.approx(53.01)
    assert regs[3].center.dec.deg == pytest.approx(-27.99)
    assert regs[0].radius.to_value("arcsec") == pytest.approx(2.0, abs=1e-4)  # 8 decimals in deg
    assert regs[1].width.to_value("arcsec") == pytest.approx(4.0, abs=1e-3)


def test_region_file_unlabelled_and_colour_blind_palette(session, tmp_path):
    from diascan.palettes import OKABE_ITO, hex_color

    out = tmp_path / "all.reg"
    assert export_sources(session, out, labels=["real", "none"], palette="okabe-ito") == 6
    regs = Regions.read(out, format="ds9")
    points = [r for r in regs if isinstance(r, PointSkyRegion)]
    assert len(points) == 4 and all(p.visual.get("marker") == "x" for p in points)
    assert all(str(p.meta["text"]).isdigit() for p in points)  # the id alone: no label
    circles = [r for r in regs if isinstance(r, CircleSkyRegion)]
    assert {r.visual.get("color") or r.visual.get("edgecolor") for r in circles} == {
        hex_color(OKABE_ITO["bluish green"])}
    with pytest.raises(InputError, match="unknown palette"):
        export_sources(session, tmp_path / "x.reg", palette="rainbow")


def test_refuses_overwrite_and_unknown_format(session, tmp_path):
    out = tmp_path / "x.csv"
    out.write_text("keep me")
    with pytest.raises(InputError, match="exists"):
        export_sources(session, out)
    assert out.read_text() == "keep me"
    assert export_sources(session, out, overwrite=True) == 4
    with pytest.raises(InputError, match="unknown export format"):
        export_sources(session, tmp_path / "x.txt")
    with pytest.raises(ValueError, match="unknown label"):
        parse_label_filter("real,maybe")


def test_cli_export(session, tmp_path, capsys):
    sess = save_session(session, tmp_path / "s.json")
    out = tmp_path / "out.parquet"
    assert main(["export", str(sess), "--out", str(out), "--labels", "real"]) == 0
    assert list(read_table(out)["id"]) == [9_000_000_000, 9_000_000_013]
    capsys.readouterr()
    # existing file without --overwrite: exit 2 and one line
    assert main(["export", str(sess), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "exists" in err[0] and "--overwrite" in err[0]
    assert main(["export", str(sess), "--out", str(out), "--overwrite", "--visit", "2"]) == 0
    assert len(read_table(out)) == 1
    capsys.readouterr()
    for bad in (["--labels", "maybe"], ["--visit", "3"]):
        assert main(["export", str(sess), "--out", str(tmp_path / "o.csv"), *bad]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "error" in err[0]
    assert main(["export", str(tmp_path / "missing.json"), "--out", str(tmp_path / "o.csv")]) == 2
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


# -- the context of each source: diaSourceId, visit, detector, pixel flags -----------------------
BIG = 170_000_000_000_000_001


@pytest.fixture
def context_session():
    """Two visits: one with pixel flags, diaSourceIds and an alert-like source of another
    visit; one from before sources had them (schema 1.0)."""
    flags = ["pixelFlags_sat", "pixelFlags_edgeCenter"]
    a = VisitEntry.create([
        SourceRecord(id=1, ra=53.0, dec=-28.0, diaSourceId=BIG, visit=11, detector=2,
                     flags=("pixelFlags_sat",), status="matched"),
        SourceRecord(id=2, ra=53.1, dec=-28.0, visit=11, detector=2, status="unmatched"),
        SourceRecord(id=3, ra=53.2, dec=-28.0, diaSourceId=5, visit=99, detector=7,
                     flags=("pixelFlags_sat", "pixelFlags_edgeCenter"), status="matched"),
    ], visit=11, detector=2, flag_columns=flags)  # fmt: skip
    b = VisitEntry.create([SourceRecord(id=4, ra=53.3, dec=-28.0, status="matched")], visit=12)
    for v in (a, b):
        for s in v.sources:
            v.labels.set_label(s.id, "real")
    return Session(visits=[a, b])


def _cells(col):
    """Values read back, None for an empty (masked or null) cell."""
    return [None if np.ma.is_masked(v) or v is None else v for v in col]


@pytest.mark.parametrize("ext", [".csv", ".ecsv", ".fits", ".parquet", ".pq", ".fts"])
def test_exports_carry_dia_source_id_visit_detector_and_flags(context_session, tmp_path, ext):
    out = tmp_path / f"ctx{ext}"
    assert export_sources(context_session, out) == 4
    t = read_table(out) if ext not in (".pq", ".fts") else (
        Table(pq.read_table(out).to_pydict()) if ext == ".pq" else Table.read(out, format="fits"))
    cols = t.colnames
    assert cols[:4] == ["visit", "detector", "id", "diaSourceId"]
    assert cols[-2:] == ["pixelFlags_sat", "pixelFlags_edgeCenter"]
    assert [int(v) for v in _cells(t["diaSourceId"]) if v is not None] == [BIG, 5]
    assert _cells(t["diaSourceId"])[1] is None and _cells(t["diaSourceId"])[3] is None
    assert [int(v) for v in t["visit"]] == [11, 11, 99, 12]  # the alert-like source's own
    assert [None if v is None else int(v) for v in _cells(t["detector"])] == [2, 2, 7, None]

    def flag(v):
        return None if v is None else str(v).lower() in ("true", "1")

    sat = [flag(v) for v in _cells(t["pixelFlags_sat"])]
    edge = [flag(v) for v in _cells(t["pixelFlags_edgeCenter"])]
    # the visit without flag columns: unknown (empty), except in FITS (no empty logical)
    unknown = False if ext in (".fits", ".fts") else None
    assert sat == [True, False, True, unknown] and edge == [False, False, True, unknown]


def test_region_tags_carry_the_context(context_session, tmp_path):
    out = tmp_path / "ctx.reg"
    assert export_sources(context_session, out) == 4
    regs = Regions.read(out, format="ds9")
    tags = [list(r.meta.get("tag", [])) for r in regs]
    assert tags[0] == [f"diaSourceId={BIG}", "visit=11", "detector=2", "flags=pixelFlags_sat"]
    assert tags[1] == ["visit=11", "detector=2"]  # unmatched, no flag set
    assert tags[2][-1] == "flags=pixelFlags_sat,pixelFlags_edgeCenter" and "visit=99" in tags[2]
    assert tags[3] == ["visit=12"]
    assert [str(r.meta["text"]) for r in regs] == ["1 real", "2 real", "3 real", "4 real"]
