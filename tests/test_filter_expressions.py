"""Filter expressions over the table's columns: what they keep, and what they refuse."""

from __future__ import annotations

import numpy as np
import pytest

from diascan.filter_expressions import FilterError, compile_filter, filter_rows

COLS = {
    "id": np.array([10, 11, 12, 13, 14]),
    "SNR": np.array([5.0, 12.0, 30.0, np.nan, 10.0]),
    "status": np.array(["matched", "unmatched", "target", "matched", "missing"], dtype=object),
    "label": np.array([None, "real", "bogus", None, "unsure"], dtype=object),
    "score": np.array([0.1, np.nan, 0.9, 0.3, 0.5]),
    "RA": np.array([150.0, 150.1, 150.2, 150.3, 150.4]),
}


def rows(text: str) -> list[int]:
    return [int(i) for i in COLS["id"][filter_rows(text, COLS)]]


@pytest.mark.parametrize(("text", "expect"), [
    ("snr > 10", [11, 12]),
    ("snr >= 10", [11, 12, 14]),
    ('status == "matched"', [10, 13]),
    ("status == 'matched'", [10, 13]),
    ("status = matched", [10, 13]),  # one = and a bare word
    ("score < 0.5 and label == none", [10, 13]),
    ("label != none", [11, 12, 14]),
    ("score == none", [11]),
    ("not snr > 10", [10, 13, 14]),  # NaN compares false, so "not" keeps it
    ("snr > 10 or status == target", [11, 12]),
    ("(snr > 20 or score < 0.2) and not status == 'matched'", [12]),
    ('status in ("matched", "target")', [10, 12, 13]),
    ("status not in [matched, missing]", [11, 12]),
    ("0.2 < score <= 0.9", [12, 13, 14]),
    ("10 < snr", [11, 12]),
    ("SNR > 10 AND Status == MATCHED", []),
    ("snr > 1e1", [11, 12]),
    ("ra > -1 && score > 0.4", [12, 14]),
    ("id == 12 || id == 14", [12, 14]),
    ("score > -0.5", [10, 12, 13, 14]),
    ("true", [10, 11, 12, 13, 14]),
    ("", [10, 11, 12, 13, 14]),
])
def test_expressions(text, expect):
    assert rows(text) == expect


@pytest.mark.parametrize(("text", "expect"), [
    ("matched", [10, 13]),  # exactly the status, never "unmatched"
    ("unmatched", [11]),
    ("Real", [11]),
    ("target", [12]),
    ("12", [12]),  # a number alone: that id
])
def test_plain_words_when_unambiguous(text, expect):
    assert rows(text) == expect


@pytest.mark.parametrize(("text", "message"), [
    ("snrr > 10", "no column 'snrr' (did you mean snr?)"),
    ("status > 3", "status holds text: compare it with a quoted word"),
    ("status < 'b'", "status holds text: use == or != (or in), not <"),
    ('snr == "x"', "snr holds numbers: compare it with a number"),
    ("snr", "'snr' alone is not a condition"),
    ("status", "status == \"matched\""),
    ("snr > 10 and", "cannot read the filter"),
    ("foo", "no column holds 'foo'"),
    ("1.5", "a number alone is not a filter"),
    ("score < none", "none is a missing value"),
    ("snr + 1 > 3", "'snr + 1' is not a column, a number or a quoted text"),
    ("__import__('os').system('true')", "is not allowed"),
    ("lambda: 1", "is not allowed"),
    ("snr > 10 if 1 else 0", "is not allowed"),
    ("[c for c in 'a']", "is not allowed"),
    ("snr.real > 1", "is not a column"),
    ("1 < 2", "both values"),
    ("snr == status", "snr holds numbers and status text"),
    ("snr is none", "cannot compare values"),
])
def test_errors_in_plain_words(text, message):
    with pytest.raises(FilterError) as err:
        filter_rows(text, COLS)
    assert message in str(err.value)
    assert "Traceback" not in str(err.value) and "\n" not in str(err.value)


def test_ambiguous_word_asks_which_column():
    cols = {**COLS, "kind": np.array(["real", "x", "y", "z", "w"], dtype=object)}
    with pytest.raises(FilterError, match="is a value of label and of kind"):
        filter_rows("real", cols)


def test_compiled_filter_reruns_on_new_columns_and_names_what_it_reads():
    flt = compile_filter("snr > 10 and label == none", COLS)
    assert flt.columns == {"snr", "label"}
    changed = {**COLS, "label": np.array([None] * 5, dtype=object)}
    assert flt(changed).tolist() == [False, True, True, False, False]
    assert compile_filter("  ", COLS) is None


def test_vectorised_over_large_columns():
    n = 200_000
    rng = np.random.default_rng(0)
    cols = {"snr": rng.uniform(0, 50, n), "status": np.where(rng.random(n) > 0.5, "matched",
                                                           "unmatched").astype(object)}
    mask = filter_rows("snr > 10 and status == matched", cols)
    assert mask.dtype == bool and mask.sum() == np.sum((cols["snr"] > 10)
                                                      & (cols["status"] == "matched"))


# -- the pipeline's other columns: 64-bit ids, masked cells, pixel flags ------------------------
BIG = 170_000_000_000_000_001  # beyond float64's integers: its neighbours are the same float
TABLE = {
    "id": np.array([1, 2, 3, 4]),
    "diaSourceId": np.ma.array([BIG, BIG + 1, 0, BIG - 1], mask=[False, False, True, False]),
    "visit": np.ma.array([7, 7, 7, 7], mask=[False] * 4),
    "pixelFlags_sat": np.array([True, False, True, False]),
    "pixelFlags_edgeCenter": np.array([False, False, True, True]),
    "snr": np.array([6.0, 8.0, 12.0, 20.0]),
}


def table_rows(text: str) -> list[int]:
    return [int(i) for i in TABLE["id"][filter_rows(text, TABLE)]]


@pytest.mark.parametrize(("text", "expect"), [
    (f"diaSourceId == {BIG}", [1]),  # exactly, not its float neighbours
    (f"diasourceid > {BIG}", [2]),  # names in any case
    (f"diaSourceId in ({BIG - 1}, {BIG + 1})", [2, 4]),
    ("diaSourceId == none", [3]),  # an unmatched detection: masked, not 0
    ("diaSourceId != none", [1, 2, 4]),
    ("diaSourceId > -1", [1, 2, 4]),  # a masked cell passes no comparison
    ("visit == 7", [1, 2, 3, 4]),
    ("pixelFlags_sat", [1, 3]),  # a flag is a condition by itself
    ("PIXELFLAGS_SAT and not pixelFlags_edgeCenter", [1]),
    ("pixelFlags_sat == false", [2, 4]),
    ("pixelflags_edgecenter or snr < 7", [1, 3, 4]),
])
def test_pipeline_columns(text, expect):
    assert table_rows(text) == expect
