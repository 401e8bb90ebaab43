"""Command-line options shared by ``diascan score`` and ``diascan view`` (the same data flags)."""

from __future__ import annotations

import argparse


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
