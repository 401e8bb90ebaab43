"""Command-line options shared by the commands: the data flags of ``diascan score`` and
``diascan view``, and checked numbers (:func:`number`) for every numeric option."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

#: Largest value of an integer id option (int64, as the catalogs store visit and detector).
INT64_MAX = 2**63 - 1


def number(
    kind: type = float,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
) -> Callable[[str], float | int]:
    """An argparse ``type=`` that accepts only a finite ``kind`` (float or int) in range.

    ``low``/``high`` are inclusive bounds (``low_open=True``: the value must be above ``low``).
    NaN, infinities, text and values out of range give argparse's one-line error, e.g.
    ``argument --radius: must be a finite number > 0, got '-1'``.
    """
    if low_open and low is None:
        raise ValueError("low_open needs low")

    def shown(v: float) -> str:
        return f"{v:g}" if kind is float else str(int(v))

    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {shown(low)}")
    if high is not None:
        parts.append(f"<= {shown(high)}")
    what = "a finite number" if kind is float else "an integer"
    wanted = f"{what} {' and '.join(parts)}".strip()

    def parse(text: str) -> float | int:
        try:
            value = float(text) if kind is float else int(str(text).strip(), 10)
        except (TypeError, ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}") from None
        ok = math.isfinite(value)
        if ok and low is not None:
            ok = value > low if low_open else value >= low
        if ok and high is not None:
            ok = value <= high
        if not ok:
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in some messages
    return parse


def add_data_options(parser: argparse.ArgumentParser, title: str) -> argparse._ArgumentGroup:
    """Add the input flags of one visit/detector (demo, images, template, catalog, target)."""
    src = parser.add_argument_group(title)
    src.add_argument("--demo", action="store_true", help="the built-in demo data (cached)")
    src.add_argument("--small-demo", action="store_true", help="the small 1024x1024 demo")
    src.add_argument("--science", metavar="FITS", help="science (visit) image")
    src.add_argument("--difference", metavar="FITS", help="difference image")
    src.add_argument(
        "--template", metavar="FITS",
        help="one template image (warped if it is not on the science grid)",
    )  # fmt: skip
    src.add_argument(
        "--template-patches", metavar="FITS", nargs="+", default=[],
        help="template coadd patches to warp and mosaic onto the science grid",
    )  # fmt: skip
    src.add_argument("--catalog", metavar="FILE", help="dia_source catalog (Parquet/CSV/FITS)")
    src.add_argument("--target", metavar="RA,DEC", help="known transient position in degrees")
    return src
