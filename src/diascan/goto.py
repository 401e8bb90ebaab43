"""Go-to (Qt-free): find a source by id or by sky position, and say what was found in words.

:func:`locate_source` reads what the user typed in the go-to box: a source id (``12345``), or a
position in decimal degrees or sexagesimal (``53.1 -27.9``, ``03:32:30 -27:54:00``,
``3h32m30s -27d54m00s``; parsed by :func:`diascan.inputs.parse_target`, i.e. astropy) and
answers with the nearest source and its separation, or a plain-words reason why not.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from diascan.errors import InputError
from diascan.inputs import parse_target


@dataclass(frozen=True)
class GotoAnswer:
    """What go-to found: ``row`` (None if nothing) and a sentence for the status bar."""

    row: int | None
    message: str
    separation_arcsec: float | None = None

    @property
    def found(self) -> bool:
        return self.row is not None


def format_separation(arcsec: float) -> str:
    """``0.42"``, ``12.3"``, ``4.5'`` or ``1.20 deg``: the unit a person would say."""
    a = float(arcsec)
    if a < 10:
        return f'{a:.2f}"'
    if a < 60:
        return f'{a:.1f}"'
    if a < 3600:
        return f"{a / 60:.1f}'"
    return f"{a / 3600:.2f} deg"


def locate_source(
    text: str,
    ids: Sequence | np.ndarray,
    ra: np.ndarray | None = None,
    dec: np.ndarray | None = None,
) -> GotoAnswer:
    """The row for a go-to text: an id of ``ids``, or the source nearest a position.

    Never raises for bad text: the answer's message says what was wrong.
    """
    text = (text or "").strip()
    if not text:
        return GotoAnswer(None, "type a source id or a position (RA, Dec)")
    ids_arr = np.asarray(ids)
    if re.fullmatch(r"[+-]?\d+", text):
        match = np.flatnonzero(ids_arr.astype(str) == str(int(text))) if ids_arr.size else []
        if len(match):
            return GotoAnswer(int(match[0]), f"source {text}")
        return GotoAnswer(None, f"no source has the id {text}")
    if ids_arr.dtype.kind in "OUS":  # alert ids may be text
        match = np.flatnonzero(ids_arr.astype(str) == text)
        if len(match):
            return GotoAnswer(int(match[0]), f"source {text}")
    try:
        position = parse_target(text, what="a position")
    except InputError as exc:
        return GotoAnswer(None, f"cannot go to {text!r}: not a source id, and {exc.problem}")
    assert position is not None  # text is not empty
    if ra is None or dec is None or not np.isfinite(np.asarray(ra, dtype=float)).any():
        return GotoAnswer(None, "these sources have no sky positions: go to an id instead")
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    coords = SkyCoord(np.asarray(ra, dtype=float) * u.deg, np.asarray(dec, dtype=float) * u.deg)
    sep = coords.separation(SkyCoord(position[0] * u.deg, position[1] * u.deg)).arcsec
    sep = np.where(np.isfinite(sep), sep, np.inf)
    k = int(np.argmin(sep))
    where = f"{position[0]:.5f} {position[1]:+.5f}"
    return GotoAnswer(
        k, f"source {ids_arr[k]} is the nearest, {format_separation(sep[k])} from {where}",
        float(sep[k]),
    )


__all__ = ["GotoAnswer", "format_separation", "locate_source"]
