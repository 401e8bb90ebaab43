"""Bit-for-bit comparisons of tables and images (shared by the tests that require them)."""

from __future__ import annotations

import numpy as np


def assert_tables_identical(got, want) -> None:
    """Same columns in the same order, dtypes, units, meta and bytes (NaN included)."""
    assert got.colnames == want.colnames
    assert dict(got.meta) == dict(want.meta)
    for name in want.colnames:
        a, b = np.asarray(got[name]), np.asarray(want[name])
        assert a.dtype == b.dtype and a.shape == b.shape, name
        assert a.tobytes() == b.tobytes(), f"column {name} differs"
        assert got[name].unit == want[name].unit, name


def assert_images_identical(got, want) -> None:
    """Same planes bit for bit, same origin, mask planes, WCS and notes."""
    for plane in ("image", "mask", "variance"):
        a, b = getattr(got, plane), getattr(want, plane)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), plane
    assert (got.x0, got.y0) == (want.x0, want.y0)
    assert got.mask_planes == want.mask_planes
    assert got.notes == want.notes
    assert (got.wcs is None) == (want.wcs is None)
    if got.wcs is not None:
        assert got.wcs.to_header_string(relax=True) == want.wcs.to_header_string(relax=True)
