"""What every fuzz example asserts: the command either succeeds (exit 0) or fails with
exactly one line ``diascan CMD: error: FILE: problem`` naming the file (exit 2); never a
traceback; no input file changed; bounded time and memory.

Commands run in-process (``diascan.cli.main.main``), as the console script runs them, so that
hundreds of examples fit in seconds. Memory is bounded through the process's peak resident
size (``ru_maxrss``), which costs nothing to read: an example that takes more than
:data:`MAX_EXTRA_RSS` above the peak the target started from fails. (A test run that already
peaked higher before the fuzz targets can hide a smaller blow-up; ``make test`` runs
``tests/fuzz`` first.)
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import resource
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from diascan.cli.main import main

MAX_SECONDS = 20.0  #: per example, on a loaded 2-core machine
MAX_EXTRA_RSS = 300 * 2**20  #: bytes above the target's starting peak


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kB


def checksums(paths: Iterable[Path]) -> dict[Path, str]:
    return {Path(p): hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths}


@dataclass
class Outcome:
    rc: int
    out: str
    err: str
    seconds: float

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


def run(args: list[str]) -> Outcome:
    out, err = io.StringIO(), io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(args)
    return Outcome(rc, out.getvalue(), err.getvalue(), time.perf_counter() - t0)


class Bounds:
    """Start of one fuzz target: its memory baseline, taken after ``warm_up`` (a valid run of
    the same command, so that imports and caches are not counted against the first example)."""

    def __init__(self, warm_up: list[str] | None = None) -> None:
        if warm_up is not None:
            outcome = run(warm_up)
            assert outcome.rc == 0, outcome.err
        # the warm-up's background imports (torch, pyarrow: diascan.preload) may still run:
        # their memory is not an example's
        from diascan.preload import wait_all

        wait_all()
        self.start_rss = peak_rss()

    def check(self, outcome: Outcome, command: str, named: Path | str | None,
              inputs: dict[Path, str]) -> None:  # fmt: skip
        """The common assertions; ``named`` is what an error line must mention."""
        text = outcome.out + outcome.err
        assert "Traceback" not in text, text
        assert outcome.rc in (0, 2), (outcome.rc, text)
        if outcome.rc == 2:
            lines = outcome.err_lines
            assert len(lines) == 1, lines
            assert lines[0].startswith(f"diascan {command}: error: "), lines
            if named is not None:
                assert str(named) in lines[0], (named, lines)
            assert "this is a bug in diascan" not in lines[0], lines
        else:  # progress, a summary or warning lines may be there, but no error
            assert not [x for x in outcome.err_lines if ": error: " in x], outcome.err_lines
        assert checksums(inputs) == inputs, "an input file changed"
        assert outcome.seconds < MAX_SECONDS, outcome.seconds
        assert peak_rss() - self.start_rss < MAX_EXTRA_RSS, peak_rss() - self.start_rss
