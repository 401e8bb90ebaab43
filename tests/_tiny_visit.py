"""A tiny visit on disk (128 x 128 science, difference and on-grid template, real FITS files):
fast enough to run ``diascan score`` hundreds of times (the fuzz and bad-input tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.table import Table

from diascan.io.images import write_exposure
from tests._pipeline_synth import make_image, render_stars, tan_wcs

SIZE = 128
SIGMA = 1.8  # PSF sigma, pixels


def tiny_visit(folder: Path, seed: int = 3, variance: float = 25.0) -> dict[str, Path]:
    """Write science.fits, difference.fits, template.fits and dia_source.parquet into
    ``folder`` (5 stars on the science image, 4 transients on the difference, a catalog of
    the transients) and return their paths by role."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    wcs = tan_wcs(SIZE, SIZE)
    shape = (SIZE, SIZE)
    noise = np.sqrt(variance)
    sx, sy = rng.uniform(15, SIZE - 15, 6), rng.uniform(15, SIZE - 15, 6)
    stars = render_stars(shape, sx, sy, rng.uniform(2e4, 5e4, 6), SIGMA)
    tx, ty = np.array([30.0, 90.0, 60.0, 100.0]), np.array([30.0, 40.0, 95.0, 100.0])
    trans = render_stars(shape, tx, ty, np.full(4, 3000.0), SIGMA)
    var = np.full(shape, variance)
    meta = {"visit": 7, "detector": 3, "psf_sigma": SIGMA}
    paths = {}
    for role, img in (
        ("science", stars + trans + rng.normal(0, noise, shape)),
        ("template", stars + rng.normal(0, noise, shape)),
        ("difference", trans + rng.normal(0, noise * np.sqrt(2), shape)),
    ):
        v = var * (2 if role == "difference" else 1)
        paths[role] = write_exposure(folder / f"{role}.fits", make_image(img, v, wcs, **meta),
                                     overwrite=True)  # fmt: skip
    ra, dec = wcs.pixel_to_world_values(tx, ty)
    cat = Table({"diaSourceId": np.arange(100, 104, dtype=np.int64), "ra": ra, "dec": dec,
                 "visit": np.full(4, 7), "detector": np.full(4, 3),
                 "reliability": np.array([0.9, 0.8, 0.2, 0.7])})  # fmt: skip
    paths["catalog"] = folder / "dia_source.parquet"
    from diascan.io.tables import write_table

    write_table(cat, paths["catalog"], overwrite=True)
    return paths


def score_args(paths: dict[str, Path], out: Path, *extra: str) -> list[str]:
    """``diascan score`` arguments for the tiny visit (``--no-score --quiet`` by default)."""
    return [
        "score", "--science", str(paths["science"]), "--difference", str(paths["difference"]),
        "--template", str(paths["template"]), "--catalog", str(paths["catalog"]),
        "--out", str(out), *extra,
    ]  # fmt: skip
