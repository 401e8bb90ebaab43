"""Reading one demo image in every layout the reader knows (issue 11): the difference image of
the demo detector written as an afw Exposure (plain and tile-compressed), a pre-2021 afw file
(EXTTYPE only) and a DP2 ``lsst.images`` file (lossless GZIP_2 tiles, JSON tree), and a DP2 file
whose 40-plane mask is split over two MASK HDUs (merged into an int64 mask on read).

Run: ``.venv/bin/python -m pytest benchmarks/bench_formats.py --benchmark-only -s``.
"""

from __future__ import annotations

import numpy as np
import pytest
from benchutil import bench

LAYOUTS = [("afw", False), ("afw", True), ("afw-exttype", False), ("dp2", True), ("dp2-40", True)]


@pytest.fixture(scope="module")
def written(full_demo, tmp_path_factory):
    from diascan.io import read_image, write_exposure

    src = read_image(full_demo / "difference.fits")
    folder = tmp_path_factory.mktemp("layouts")
    out = {}
    for layout, compress in LAYOUTS:
        data = src
        if layout == "dp2-40":
            data = read_image(full_demo / "difference.fits")
            data.mask = data.mask.astype(np.int64) | (np.int64(1) << 39) * (data.mask > 0)
            data.mask_planes = {**data.mask_planes,
                                **{f"EXTRA_{i}": i for i in range(11, 40)}}  # fmt: skip
        path = folder / f"{layout}-{compress}.fits"
        write_exposure(path, data, layout=layout.split("-40")[0], compress=compress)
        out[(layout, compress)] = path
    return out


@pytest.mark.parametrize(("layout", "compress"), LAYOUTS)
def test_read_layout(benchmark, record, written, layout, compress):
    from diascan.io import read_image

    path = written[(layout, compress)]
    t, img = bench(benchmark, lambda: read_image(path), rounds=3)
    nbytes = int(sum(a.nbytes for a in (img.image, img.mask, img.variance)))
    kind = "tile-compressed" if compress else "uncompressed"
    record(f"read the difference image: {layout} ({kind})", t, nbytes,
           note=f"{path.stat().st_size / 1e6:.0f} MB file, mask {img.mask.dtype}")  # fmt: skip
