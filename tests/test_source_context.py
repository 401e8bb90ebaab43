"""Each source's context (diaSourceId of the matched catalog row, visit, detector, pixel flags)
goes from the pipeline's table through the real window into the session file and every export
(issue 14.7): the small demo, the bundled model, the label controller."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import pytest  # noqa: E402
from astropy.table import Table  # noqa: E402
from regions import Regions  # noqa: E402

from diascan.session import export_sources, load_session  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture
def ctl(qtbot, small_demo_result, tmp_path, monkeypatch):
    from diascan.qt.qt_labels import QtLabelController
    from diascan.qt.qt_main_window import QtMainWindow

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    w = QtMainWindow()
    qtbot.addWidget(w)
    w.show_errors_as_dialogs = False
    w.set_result(small_demo_result)
    return QtLabelController(w, session_path=tmp_path / "s.json")


def test_context_reaches_the_session_and_every_export(ctl, small_demo_result, tmp_path):
    det = small_demo_result.detections
    meta = small_demo_result.science.metadata
    flags = [c for c in det.colnames if c.startswith("pixelFlags_")]
    assert flags and meta.get("visit") is not None  # the demo has them
    dia = np.asarray(det["diaSourceId"])
    matched, unmatched = int(np.flatnonzero(dia >= 0)[0]), int(np.flatnonzero(dia < 0)[0])
    flagged = int(np.flatnonzero(np.any([np.asarray(det[f]) for f in flags], axis=0))[0])
    rows = sorted({matched, unmatched, flagged})
    ids = [int(det["id"][r]) for r in rows]
    for sid in ids:
        ctl.window.select_source(sid)
        ctl.trigger("label_real")

    # the session file records them per source
    visit = load_session(ctl.session_path).current
    assert visit.flag_columns == flags
    by_id = {s.id: s for s in visit.sources}
    for r, sid in zip(rows, ids, strict=True):
        src = by_id[sid]
        assert src.diaSourceId == (int(dia[r]) if dia[r] >= 0 else None)
        assert (src.visit, src.detector) == (meta["visit"], meta["detector"])
        assert src.flags == tuple(f for f in flags if det[f][r])

    # and every export of the session (File > Export and `diascan export` write these)
    for ext in (".csv", ".ecsv", ".fits", ".parquet"):
        out = tmp_path / f"labels{ext}"
        assert export_sources(ctl.session, out) == len(ids)
        t = Table(pq.read_table(out).to_pydict()) if ext == ".parquet" else Table.read(out)
        got = {int(i): k for k, i in enumerate(t["id"])}
        for r, sid in zip(rows, ids, strict=True):
            k = got[sid]
            cell = t["diaSourceId"][k]
            if dia[r] >= 0:
                assert int(cell) == int(dia[r])
            else:
                assert cell is None or np.ma.is_masked(cell)
            assert int(t["visit"][k]) == meta["visit"] and int(t["detector"][k]) == meta["detector"]
            for f in flags:  # CSV reads booleans back as text
                assert (str(t[f][k]).lower() in ("true", "1")) == bool(det[f][r])
    assert export_sources(ctl.session, tmp_path / "l.reg") == len(ids)
    regs = Regions.read(tmp_path / "l.reg", format="ds9")
    tags = {str(r.meta["text"]).split()[0]: list(r.meta["tag"]) for r in regs}
    assert f"diaSourceId={int(dia[matched])}" in tags[str(int(det["id"][matched]))]
    assert not any(t.startswith("diaSourceId") for t in tags[str(int(det["id"][unmatched]))])
    assert any(t.startswith("flags=") for t in tags[str(int(det["id"][flagged]))])


def test_every_pipeline_column_is_in_the_table_and_the_filter(ctl, small_demo_result):
    from diascan.filter_expressions import filter_rows

    win = ctl.window
    det = small_demo_result.detections
    model = win.table_model
    headers = [model.headerData(k, _horizontal()) for k in range(model.columnCount())]
    for name in det.colnames:
        if np.asarray(det[name]).ndim == 1 and name not in ("original_reliability", "psfFlux"):
            assert name in headers or name in ("ra", "dec", "snr")  # shown as RA, Dec, SNR
    cols = win.sources.filter_columns()
    unmatched = filter_rows("diaSourceId == none", cols)
    assert unmatched.tolist() == (np.asarray(det["diaSourceId"]) < 0).tolist()
    sat = filter_rows("pixelFlags_sat or PIXELFLAGS_EDGE", cols)
    assert sat.tolist() == (np.asarray(det["pixelFlags_sat"])
                            | np.asarray(det["pixelFlags_edge"])).tolist()


def _horizontal():
    from PyQt6.QtCore import Qt

    return Qt.Orientation.Horizontal
