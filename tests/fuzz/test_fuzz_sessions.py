"""Fuzzed session files through ``diascan export``: a valid session with one field replaced by
any JSON value (wrong types, NaN, huge numbers, deep nesting), a key removed, or the text
damaged (truncated, a BOM, garbage). Each example is exit 0 with a readable export or exit 2
with one line naming the session file (see ``_harness``)."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from diascan.io import read_table
from diascan.session import Session, SourceRecord, VisitEntry
from diascan.session.store import dumps_session, session_to_json
from tests.fuzz._harness import Bounds, checksums, run
from tests.fuzz.conftest import EXAMPLES

EXTENSIONS = (".csv", ".parquet", ".ecsv", ".fits", ".reg")


def base_document() -> dict:
    visits = []
    for k in range(2):
        srcs = [SourceRecord(id=1000 * k + i, ra=53.0 + i * 1e-3, dec=-28.0, x=10.0 * i, y=5.0,
                             psfFlux=100.0, snr=6.0, score=0.1 * i, original_reliability=0.5,
                             status="matched", extra={"flag": True}) for i in range(4)]
        v = VisitEntry.create(srcs, science=f"/data/v{k}/science.fits", visit=10 + k,
                              detector=k, band="r", model_name="m", model_version="1",
                              view={"single": False, "threshold": 0.5})  # fmt: skip
        v.labels.set_label(1000 * k, "real")
        v.labels.set_label(1000 * k + 1, "bogus")
        v.labels.set_note(1000 * k + 2, "note")
        visits.append(v)
    s = Session(visits=visits, view_settings={"hide_scores": False})
    s.created = s.modified = "2026-12-01T10:00:00.000Z"
    return session_to_json(s)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                 max_size=3),
    max_leaves=8,
)


def _paths(doc, prefix=()):
    """Every (path, container) in the document, for choosing what to change."""
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


BASE = base_document()
PATHS = _paths(BASE)


@st.composite
def session_texts(draw):
    doc = json.loads(json.dumps(BASE))
    how = draw(st.sampled_from(["replace"] * 5 + ["delete", "deep", "text"]))
    path = draw(st.sampled_from(PATHS))
    node = doc
    for key in path[:-1]:
        node = node[key]
    if how == "replace":
        node[path[-1]] = draw(json_values)
    elif how == "delete" and isinstance(node, dict):
        del node[path[-1]]
    elif how == "deep":
        depth = draw(st.sampled_from([10, 31, 33, 500, 5000, 100_000]))
        return json.dumps(doc).replace('{"flag": true}', "[" * depth + "]" * depth, 1)
    try:
        text = dumps_session(doc) if how != "replace" else json.dumps(doc, allow_nan=True)
    except (TypeError, ValueError, KeyError, AttributeError):
        text = json.dumps(doc, allow_nan=True)
    if how == "text":
        cut = draw(st.integers(0, len(text)))
        text = draw(st.sampled_from([text[:cut], "\ufeff" + text, text[:cut] + "\x00\xff" +
                                     text[cut:], text.replace('"', "'", 1)]))  # fmt: skip
    return text


def test_fuzz_sessions(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz_sessions")
    good = folder / "good.json"
    good.write_text(dumps_session(json.loads(json.dumps(BASE))))
    bounds = Bounds(["export", str(good), "--out", str(folder / "warm.csv")])
    counter = iter(range(10**9))
    outcomes: Counter = Counter()

    @given(session_texts(), st.sampled_from(EXTENSIONS), st.sampled_from([None, "1", "2", "3"]))
    def example(text, ext, visit):
        k = next(counter)
        session = folder / f"s_{k}.json"
        session.write_text(text, encoding="utf-8", errors="surrogatepass")
        out = folder / f"out_{k}{ext}"
        args = ["export", str(session), "--out", str(out), "--labels", "real,bogus,unsure,none"]
        outcome = run(args + (["--visit", visit] if visit else []))
        bounds.check(outcome, "export", session, checksums([session]))
        outcomes[outcome.rc] += 1
        if outcome.rc == 2:
            assert not out.exists()
        elif ext == ".reg":
            from regions import Regions

            assert len(Regions.read(str(out), format="ds9")) <= 8
        else:
            table = read_table(out)
            assert {"visit", "id", "label", "score"} <= set(table.colnames)
            assert len(table) <= 8
        session.unlink()
        out.unlink(missing_ok=True)

    example()
    print(f"session fuzz outcomes: {dict(outcomes)}")
    if EXAMPLES >= 100:
        assert min(outcomes[0], outcomes[2]) > EXAMPLES // 10, outcomes


@pytest.mark.parametrize("ext", EXTENSIONS)
def test_base_document_exports(tmp_path, ext):
    """The unmutated document is a valid session in every export format (the fuzz baseline)."""
    p = tmp_path / "s.json"
    p.write_text(dumps_session(json.loads(json.dumps(BASE))))
    assert run(["export", str(p), "--out", str(tmp_path / f"o{ext}")]).rc == 0
