"""Fuzzed numeric options of ``diascan score`` (--threshold, --radius, --visit, --detector):
numbers of every size and sign, NaN and infinities in every spelling, text. Each example is
exit 0 with a valid table, or exit 2 with one line naming the option (or, for a selection no
catalog row has, the catalog); see ``_harness``."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from diascan.io import read_table
from tests._tiny_visit import score_args, tiny_visit
from tests.fuzz._harness import Bounds, checksums, run
from tests.fuzz.conftest import EXAMPLES


def spelled(numbers):
    """Numbers as a user might type them: repr, %g, %e, with blanks or a plus sign."""
    return st.tuples(numbers, st.sampled_from(["{!r}", "{:g}", "{:e}", " {!r} ", "+{!r}"])).map(
        lambda t: t[1].format(t[0]))


wild_floats = spelled(st.floats(allow_nan=True, allow_infinity=True))
wild_ints = spelled(st.integers(-(2**80), 2**80))
junk = st.text(st.sampled_from("0123456789.-+eExXnaifNI_ ,"), max_size=8) | st.sampled_from(
    ["nan", "-nan", "inf", "Infinity", "1e400", "-0", "0x10", "1_0", "", "five", "1,5"])
def mostly(plausible, *others, weight: int = 8):
    """``plausible`` in ``weight`` of 10 draws, else one of ``others`` (``one_of`` alone would
    make valid runs too rare to test what a valid run gives)."""
    return st.integers(0, 9).flatmap(lambda k: plausible if k < weight else st.one_of(*others))


thresholds = mostly(spelled(st.floats(0.5, 50.0)), wild_floats, junk)
radii = mostly(spelled(st.floats(0.01, 10.0)), wild_floats, junk)
idents = mostly(st.none(), st.sampled_from(["7", "3", "8"]), wild_ints, wild_floats, junk)


@pytest.fixture(scope="module")
def visit(tmp_path_factory):
    return tiny_visit(tmp_path_factory.mktemp("fuzz_options_visit"))


def test_fuzz_score_options(visit, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz_options")
    bounds = Bounds(score_args(visit, folder / "warm.parquet", "--no-score", "--quiet",
                               "--cache"))  # fmt: skip
    inputs = checksums(visit.values())
    counter = iter(range(10**9))
    outcomes: Counter = Counter()

    @given(thresholds, radii, idents, idents)
    def example(threshold, radius, visit_id, detector):
        out = folder / f"o_{next(counter)}.parquet"
        options = [f"--threshold={threshold}", f"--radius={radius}"]
        options += [f"--visit={visit_id}"] if visit_id is not None else []
        options += [f"--detector={detector}"] if detector is not None else []
        outcome = run(score_args(visit, out, "--no-score", "--quiet", "--cache", *options))
        bounds.check(outcome, "score", None, inputs)
        outcomes[outcome.rc] += 1
        if outcome.rc == 2:
            line = outcome.err_lines[0]
            assert "argument --" in line or str(visit["catalog"]) in line, line
            assert not out.exists()
            return
        t = float(threshold)
        assert np.isfinite(t) and 0 < t <= 1e6 and 0 < float(radius) <= 3600
        result = read_table(out)
        assert set(np.unique(np.asarray(result["status"]))) <= {"matched", "unmatched"}
        assert np.all(np.asarray(result["match_sep_arcsec"])[result["status"] == "matched"]
                      <= float(radius) + 1e-9)  # fmt: skip
        out.unlink()

    example()
    print(f"option fuzz outcomes: {dict(outcomes)}")
    if EXAMPLES >= 100:
        assert min(outcomes[0], outcomes[2]) > EXAMPLES // 10, outcomes
