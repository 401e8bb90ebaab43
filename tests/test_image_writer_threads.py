"""Writing an image never changes its pixels, not even for a moment: the pipeline scores a
template in one thread while the results cache writes the same arrays in another."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from diascan.io import write_exposure
from tests._pipeline_synth import make_image, tan_wcs


@pytest.mark.parametrize("layout", ["afw", "afw-exttype", "dp2"])
def test_pixels_unchanged_while_another_thread_writes_them(tmp_path, layout):
    n = 1500
    rng = np.random.default_rng(5)
    data = make_image(rng.normal(100.0, 5.0, (n, n)), np.full((n, n), 25.0), tan_wcs(n, n),
                      mask=rng.integers(0, 8, (n, n)))  # fmt: skip
    planes = {"image": data.image, "variance": data.variance, "mask": data.mask}
    first = {name: arr[:, 0].copy() for name, arr in planes.items()}
    seen_changed: list[str] = []
    done = threading.Event()

    def watch() -> None:
        # Reads a column of every plane as often as it can (a byteswapped float reads as a
        # different number), as the scoring stage reads template pixels.
        while not done.is_set():
            for name, arr in planes.items():
                if not np.array_equal(arr[:, 0], first[name]):
                    seen_changed.append(name)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for k in range(4):
            write_exposure(tmp_path / f"w{k}.fits", data, layout=layout, compress=False)
    finally:
        done.set()
        watcher.join()
    assert not seen_changed, f"pixels of {sorted(set(seen_changed))} changed during the write"
    for name, arr in planes.items():
        assert arr.flags.writeable, name  # the caller's arrays stay the caller's
