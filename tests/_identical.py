"""Bit-for-bit comparisons of tables and images (shared by the tests that require them)."""

from __future__ import annotations

import numpy as np


def assert_tables_identical(got, want, float_rtol: float = 0.0) -> None:
    """Same columns in the same order, dtypes, units, meta and bytes (NaN included).

    ``float_rtol`` > 0 compares floating-point columns to that relative tolerance instead (NaN
    in the same places), for a reference written on another machine: numpy and scipy take
    other SIMD paths on another CPU (e.g. AVX-512), which changes the last bits of sums.
    """
    assert got.colnames == want.colnames
    assert dict(got.meta) == dict(want.meta)
    for name in want.colnames:
        a, b = np.asarray(got[name]), np.asarray(want[name])
        assert a.dtype == b.dtype and a.shape == b.shape, name
        if float_rtol > 0 and a.dtype.kind == "f":
            # equal_nan also fails a NaN in one column that the other does not have
            np.testing.assert_allclose(a, b, rtol=float_rtol, equal_nan=True,
                                       err_msg=f"column {name} differs")
        else:
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
