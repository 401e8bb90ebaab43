"""Session schema 2: alert entries (their alert files, no images), and every older file
(1.0 hand-made and app-written, 1.1 written by the 1.1 code) migrated on load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diascan.session.model import SCHEMA_VERSION, Session, SourceRecord, VisitEntry
from diascan.session.store import load_session, save_session
from diascan.session.validate import validate_document
from diascan.session.visits import visit_files

FIXTURES = Path(__file__).parent / "fixtures" / "sessions"
OLD_FILES = ("session_v1_2026-11-25.json", "session_v1_app_2026-11-29.json",
             "session_v1.1_2026-12-02.json")


def test_schema_version_is_2():
    assert SCHEMA_VERSION == 2


@pytest.mark.parametrize("name", OLD_FILES)
def test_version_1_files_migrate_and_keep_labels(tmp_path, name):
    raw = json.loads((FIXTURES / name).read_text())
    assert raw["schema_version"] == 1
    old = load_session(FIXTURES / name)
    labels = {(i, sid): rec for i, v in enumerate(old.visits) for sid, rec in v.labels.records().items()}
    assert labels, "the fixture has labels"
    assert all(v.alerts == [] for v in old.visits)  # a version-1 entry is a visit
    assert visit_files(old.visits[0]).get("alerts") is None
    again_path = save_session(old, tmp_path / name)
    doc = json.loads(again_path.read_text())
    assert doc["schema_version"] == 2
    assert all(v["files"]["alerts"] == [] for v in doc["visits"])
    again = load_session(again_path)
    assert {(i, sid): rec for i, v in enumerate(again.visits)
            for sid, rec in v.labels.records().items()} == labels
    assert [v.sources for v in again.visits] == [v.sources for v in old.visits]


def test_1_1_fixture_keeps_its_source_context():
    s = load_session(FIXTURES / "session_v1.1_2026-12-02.json")
    src = s.visits[0].source(1)
    assert src.diaSourceId == 170000000000000001 and src.flags == ("pixelFlags_edge",)
    assert s.visits[0].labels.label(1) == "real" and not s.visits[1].is_loaded


def test_alert_entry_round_trips(tmp_path):
    a = tmp_path / "a.avro"
    a.write_bytes(b"Obj\x01not really")
    srcs = [SourceRecord(id=1, diaSourceId=1095578116115010004, ra=10.0, dec=-5.0, status="ztf",
                         original_reliability=0.93),
            SourceRecord(id=2, diaSourceId=396950876717152, status="rubin")]
    v = VisitEntry.create(srcs, alerts=[a])
    v.labels.set_label(2, "bogus")
    path = save_session(Session(visits=[v]), tmp_path / "s.json")
    doc = json.loads(path.read_text())
    assert doc["visits"][0]["files"]["alerts"][0]["path"] == str(a)
    assert doc["visits"][0]["files"]["alerts"][0]["size"] == a.stat().st_size
    back = load_session(path).current
    assert [r.path for r in back.alerts] == [str(a)] and back.name == "a.avro"
    assert visit_files(back) == {"alerts": [a]}
    assert back.sources == srcs and back.labels.label(2) == "bogus"
    assert ("alert[0]", back.alerts[0]) in back.files()


def test_update_sources_keeps_labels():
    v = VisitEntry.create([SourceRecord(id=1), SourceRecord(id=2)], alerts=["/x.avro"],
                          checksum=False)
    v.labels.set_label(1, "real")
    assert v.update_sources([SourceRecord(id=1, ra=3.0), SourceRecord(id=9)]) == 1
    assert v.source(1).ra == 3.0 and v.labels.label(1) == "real"


def test_bad_alert_refs_are_named():
    doc = json.loads((FIXTURES / "session_v1.1_2026-12-02.json").read_text())
    doc["schema_version"] = 2
    doc["visits"][0]["files"]["alerts"] = "a.avro"
    with pytest.raises(Exception, match=r"visits\[0\]\.files\.alerts: must be an array"):
        validate_document(doc, "s.json")
    doc["visits"][0]["files"]["alerts"] = [{"path": 3}]
    with pytest.raises(Exception, match=r"visits\[0\]\.files\.alerts\[0\]"):
        validate_document(doc, "s.json")
