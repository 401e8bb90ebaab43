"""Sessions are validated on load: every field's type and range, a nesting limit, strict JSON,
a size cap, so that the viewer and ``diascan export`` never meet a bad value. Every failure is
one SessionError line naming the file and the field; old fixtures keep loading."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import pytest

from diascan.cli.main import main
from diascan.errors import SessionError
from diascan.session import Session, SourceRecord, VisitEntry, load_session, save_session
from diascan.session import store as store_mod
from diascan.session.store import dumps_session, session_to_json

FIXTURES = Path(__file__).parent / "fixtures" / "sessions"


@pytest.fixture
def doc() -> dict:
    srcs = [SourceRecord(id=10 + i, ra=53.0, dec=-28.0, x=1.0, y=2.0, psfFlux=5.0, snr=6.0,
                         score=0.5, original_reliability=0.7, status="matched", extra={"k": [1]},
                         diaSourceId=170_000_000_000_000_001 + i, visit=5, detector=1,
                         flags=("pixelFlags_sat",) if i else ())
            for i in range(3)]  # fmt: skip
    v = VisitEntry.create(srcs, science="/data/s.fits", visit=5, detector=1, band="r",
                          model_name="m", model_version="1", view={"single": True},
                          flag_columns=["pixelFlags_sat", "pixelFlags_edgeCenter"])
    v.labels.set_label(10, "real")
    v.labels.set_note(11, "a note")
    s = Session(visits=[v], view_settings={"hide_scores": True})
    s.created = s.modified = "2026-12-01T10:00:00.000Z"
    return session_to_json(s)


def write(tmp_path: Path, doc) -> Path:
    p = tmp_path / "s.json"
    p.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return p


def test_valid_document_loads(tmp_path, doc):
    s = load_session(write(tmp_path, doc))
    assert s.current.labels.label(10).value == "real" and s.current.source(12).extra == {"k": [1]}


def _set(doc: dict, path: tuple, value) -> dict:
    d = copy.deepcopy(doc)
    node = d
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return d


_DELETE = object()
S0 = ("visits", 0, "sources", 0)

BAD = [
    (("current_visit",), 3, "current_visit: must be an integer in [0, 0]"),
    (("current_visit",), "0", "current_visit"),
    (("current_visit",), True, "current_visit"),
    (("created",), "yesterday", "created: must be an ISO 8601 time"),
    (("view_settings",), [1], "view_settings: must be an object"),
    (("view_settings", "hide_scores"), "yes", "view_settings.hide_scores: must be true or false"),
    (("visits",), {"a": 1}, "visits: must be an array"),
    (("visits", 0), 5, "visits[0]: must be an object"),
    (("visits", 0, "visit"), 2**70, "visits[0].visit: must be an integer"),
    (("visits", 0, "visit"), 1.5, "visits[0].visit"),
    (("visits", 0, "detector"), "4", "visits[0].detector"),
    (("visits", 0, "band"), 7, "visits[0].band: must be a string"),
    (("visits", 0, "files"), "x", "visits[0].files: must be an object"),
    (("visits", 0, "files", "science"), 5, "visits[0].files.science"),
    (("visits", 0, "files", "science"), {"path": ""}, "files.science.path"),
    (("visits", 0, "files", "science"), {"path": "/a", "sha256": "zz"}, "sha256"),
    (("visits", 0, "files", "science"), {"path": "/a", "size": -1}, "files.science.size"),
    (("visits", 0, "files", "template_patches"), "p.fits", "template_patches: must be an array"),
    (("visits", 0, "files", "template_patches"), [3], "template_patches[0]"),
    (("visits", 0, "model"), [], "visits[0].model: must be an object"),
    (("visits", 0, "model", "version"), 2.0, "visits[0].model.version: must be a string"),
    (("visits", 0, "view"), "zoom", "visits[0].view: must be an object"),
    (("visits", 0, "current_source"), 1.5, "visits[0].current_source"),
    (("visits", 0, "sources"), None, "visits[0].sources: must be an array"),
    (("visits", 0, "sources", 0), "x", "sources[0]: must be an object"),
    ((*S0, "id"), _DELETE, "sources[0]: has no id"),
    ((*S0, "id"), 1.0, "sources[0].id"),
    ((*S0, "id"), True, "sources[0].id"),
    ((*S0, "id"), 11, "sources[1].id: duplicate source id 11"),
    ((*S0, "ra"), "53", "sources[0].ra: must be a finite number"),
    ((*S0, "ra"), 1e300, "sources[0].ra: must be a finite number in [-360, 360]"),
    ((*S0, "dec"), 95.0, "sources[0].dec"),
    ((*S0, "x"), 1e12, "sources[0].x"),
    ((*S0, "snr"), 10**400, "sources[0].snr"),
    ((*S0, "score"), 1.5, "sources[0].score: must be a finite number in [0, 1]"),
    ((*S0, "score"), -0.1, "sources[0].score"),
    ((*S0, "status"), 3, "sources[0].status: must be a string"),
    ((*S0, "label"), "maybe", "unknown label"),
    ((*S0, "label"), 1, "sources[0].label"),
    ((*S0, "label_time"), "noon", "sources[0].label_time"),
    ((*S0, "label_time"), 5, "sources[0].label_time"),
    ((*S0, "note"), ["x"], "sources[0].note: must be a string"),
    ((*S0, "extra"), 5, "sources[0].extra: must be an object"),
    # schema 1.1
    (("schema_minor",), "1", "schema_minor: must be an integer"),
    (("visits", 0, "flag_columns"), "pixelFlags_sat", "visits[0].flag_columns: must be an array"),
    (("visits", 0, "flag_columns"), [""], "visits[0].flag_columns"),
    ((*S0, "diaSourceId"), -1, "sources[0].diaSourceId: must be an integer in [0, "),
    ((*S0, "diaSourceId"), 1.7e17, "sources[0].diaSourceId"),  # a float loses the id's digits
    ((*S0, "diaSourceId"), 2**64, "sources[0].diaSourceId"),
    ((*S0, "visit"), "2024", "sources[0].visit: must be an integer"),
    ((*S0, "detector"), True, "sources[0].detector"),
    ((*S0, "flags"), "pixelFlags_sat", "sources[0].flags: must be an array of non-empty strings"),
    ((*S0, "flags"), [3], "sources[0].flags"),
    ((*S0, "flags"), ["pixelFlags_streak"], "sources[0].flags: 'pixelFlags_streak' is not one of "
                                            "the visit's flag_columns"),
]


@pytest.mark.parametrize("path, value, message", BAD, ids=[m for *_, m in BAD])
def test_bad_fields_are_one_line_naming_the_field(tmp_path, doc, path, value, message):
    p = write(tmp_path, _set(doc, path, value))
    with pytest.raises(SessionError) as info:
        load_session(p)
    text = str(info.value)
    assert info.value.path == p and message in text and "\n" not in text


@pytest.mark.parametrize("depth", [100_000, 1000, 40])
def test_deep_nesting_fails_fast_with_one_line(tmp_path, doc, depth, capsys):
    inner = "[" * depth + "]" * depth
    text = dumps_session(doc).replace('"extra": {"k": [1]}', f'"extra": {{"k": {inner}}}', 1)
    p = write(tmp_path, text)
    t0 = time.perf_counter()
    with pytest.raises(SessionError, match="nested"):
        load_session(p)
    assert time.perf_counter() - t0 < 1.0
    assert main(["export", str(p), "--out", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(p) in err[0] and "nested" in err[0]


def test_nesting_within_the_limit_is_fine(tmp_path, doc):
    inner = "[" * 20 + "]" * 20
    text = dumps_session(doc).replace('"extra": {"k": [1]}', f'"extra": {{"k": {inner}}}', 1)
    assert load_session(write(tmp_path, text)).current.sources


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"format": "diascan-session", "schema_version": 1, "visits": [], "x": NaN}',
         "NaN is not a JSON number"),
        ('{"format": "diascan-session", "schema_version": 1, "visits": [], "x": Infinity}',
         "Infinity"),
        ('{"format": "diascan-session", "schema_version": 1, "visits": [], "x": '
         + "9" * 5000 + "}", "invalid JSON"),
        ('{"format": "diascan-session", "schema_version": true, "visits": []}',
         "bad schema_version"),
        ("[1, 2]", "not a diascan session file"),
        ("\xff\xfe{", "not a session file (not UTF-8"),
    ],
)
def test_strict_json(tmp_path, text, message):
    p = tmp_path / "s.json"
    p.write_bytes(text.encode("latin-1") if text.startswith("\xff") else text.encode())
    with pytest.raises(SessionError, match=message.replace("(", r"\(")):
        load_session(p)


def test_bom_is_accepted(tmp_path, doc):
    p = tmp_path / "s.json"
    p.write_bytes(b"\xef\xbb\xbf" + json.dumps(doc).encode())
    assert load_session(p).current.labels.label(10).value == "real"


def test_size_cap(tmp_path, doc, monkeypatch):
    p = write(tmp_path, doc)
    monkeypatch.setattr(store_mod, "MAX_SESSION_BYTES", 100)
    with pytest.raises(SessionError, match="more than the 0 MB diascan reads"):
        load_session(p)


def test_folder_given_as_session(tmp_path):
    with pytest.raises(SessionError, match="is a folder"):
        load_session(tmp_path)


def test_what_diascan_writes_always_validates(tmp_path):
    """Non-finite numbers, numpy scalars and odd strings are written in a form the reader
    accepts: a file diascan wrote never becomes unreadable."""
    import numpy as np

    srcs = [SourceRecord(id=np.int64(7), ra=float("nan"), dec=np.float32(-3.5), x=np.inf,
                         y=-np.inf, psfFlux=np.float64(1e308), snr=None, score=np.float32(1.0),
                         original_reliability=float("inf"), status="", extra={"a": np.nan})]
    s = Session(visits=[VisitEntry.create(srcs), VisitEntry.create([])])
    s.visits[0].labels.set_note(7, "line\nbreak \u2603 \0 nul")
    back = load_session(save_session(s, tmp_path / "w.json"))
    src = back.visits[0].source(7)
    assert src.ra is None and src.x is None and src.score == 1.0
    assert back.visits[0].labels.note(7) == "line\nbreak \u2603 \0 nul"


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("session_v*.json")))
def test_fixtures_still_load_and_export(tmp_path, name, capsys):
    assert load_session(FIXTURES / name).visits
    out = tmp_path / "all.reg"
    assert main(["export", str(FIXTURES / name), "--out", str(out), "--labels",
                 "real,bogus,unsure,none"]) == 0  # fmt: skip
    assert out.stat().st_size > 0
