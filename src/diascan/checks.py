"""Warnings for inputs that make a pipeline result meaningless though nothing failed.

"0 sources" is a fine answer for a quiet difference image, and a silently wrong one when the
variance plane is all zero, the difference has no finite pixel, or the catalog lies elsewhere
on the sky. :func:`run_warnings` looks for those cases after a run and returns one line per
problem, ``FILE: problem``; ``diascan score`` prints each as a warning line and the viewer can
show them as a banner (``PipelineResult.warnings``).

The pixel checks look at every 4th row and column (a 4k x 4k detector costs ~10 ms): they ask
"everywhere" and "most" questions that a 1/16 sample answers as well as the full image.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from diascan.io.images import ImageData

#: Sample step of the pixel checks (rows and columns).
STEP = 4
#: Warn when the variance is unusable on more than this fraction of the usable pixels.
BAD_VARIANCE_FRACTION = 0.5
#: Planes that exclude a difference pixel from detection (as :mod:`diascan.detection` does).
EXCLUDED_PLANES = ("BAD", "NO_DATA", "EDGE")


def _name(image: ImageData, role: str) -> str:
    return str(image.path) if image.path is not None else role


def difference_warnings(difference: ImageData) -> list[str]:
    """Why no source could be detected on ``difference`` at all, if that is the case."""
    name = _name(difference, "difference image")
    img = np.asarray(difference.image[::STEP, ::STEP])
    var = np.asarray(difference.variance[::STEP, ::STEP])
    mask = np.asarray(difference.mask[::STEP, ::STEP])
    finite = np.isfinite(img)
    if not finite.any():
        return [f"{name}: no finite pixel in the difference image (all NaN or infinite): "
                "0 sources means nothing"]  # fmt: skip
    unmasked = finite & ((mask & difference.bits(*EXCLUDED_PLANES)) == 0)
    if not unmasked.any():
        return [f"{name}: every pixel with a value is masked "
                f"({'/'.join(EXCLUDED_PLANES)}): no source can be detected"]  # fmt: skip
    with np.errstate(invalid="ignore"):
        good_var = unmasked & np.isfinite(var) & (var > 0)
    out = []
    n_good, n_unmasked = int(good_var.sum()), int(unmasked.sum())
    if n_good == 0:
        what = "zero" if np.all(var[unmasked] == 0) else "zero, negative or not finite"
        out.append(f"{name}: the variance plane is {what} everywhere: no S/N can be computed, "
                   "so no source can be detected (0 sources means nothing)")  # fmt: skip
    elif n_good < (1 - BAD_VARIANCE_FRACTION) * n_unmasked:
        pct = 100.0 * (1 - n_good / n_unmasked)
        out.append(f"{name}: the variance is zero, negative or not finite on {pct:.0f}% of the "
                   "pixels; no source can be detected there")  # fmt: skip
    values = img[good_var] if n_good else img[unmasked]
    if values.size > 1 and np.all(values == values[0]):
        out.append(f"{name}: the difference image is constant ({float(values[0]):g} "
                   "everywhere): there is nothing to detect")  # fmt: skip
    if not difference.has_sky:
        out.append(f"{name}: no celestial WCS: sources have no sky position, so nothing can be "
                   "matched to the catalog or the target")  # fmt: skip
    return out


def catalog_warnings(science: ImageData, catalog, n_detections: int) -> list[str]:
    """Catalog rows that cannot be compared with the detections: none on the image."""
    if catalog is None or len(catalog) == 0 or not science.has_sky:
        return []
    name = str(catalog.meta.get("source_path") or "catalog")
    ra = np.asarray(catalog["ra"], dtype=float)
    dec = np.asarray(catalog["dec"], dtype=float)
    ok = np.isfinite(ra) & np.isfinite(dec)
    if not ok.any():
        return []
    inside = _on_image(science, ra[ok], dec[ok])
    if inside == 0:
        return [f"{name}: none of its {int(ok.sum())} rows lies on the science image (another "
                "visit or detector, or a wrong WCS?): every match is missing"]  # fmt: skip
    if n_detections == 0:
        return [f"{name}: {inside} catalog rows lie on the image but no source was detected "
                "(check the threshold and the difference image)"]  # fmt: skip
    return []


def target_warnings(science: ImageData, target: tuple[float, float] | None) -> list[str]:
    """The target position when it is not on the science image."""
    if target is None or not science.has_sky:
        return []
    if _on_image(science, np.array([target[0]]), np.array([target[1]])) == 0:
        return [f"--target {target[0]:.6f},{target[1]:.6f}: not on the science image "
                f"{_name(science, '')}".rstrip()]
    return []


def _on_image(image: ImageData, ra: np.ndarray, dec: np.ndarray) -> int:
    """How many of the sky positions fall on ``image`` (its array, any pixel)."""
    with np.errstate(invalid="ignore"):
        try:
            col, row = image.wcs.celestial.world_to_pixel_values(ra, dec)
        except Exception:  # noqa: BLE001 - a WCS that cannot invert: do not guess
            return len(ra)
    ny, nx = image.shape
    col, row = np.asarray(col, float), np.asarray(row, float)
    inside = (col > -0.5) & (col < nx - 0.5) & (row > -0.5) & (row < ny - 0.5)
    return int(np.count_nonzero(inside))


def run_warnings(
    science: ImageData,
    difference: ImageData,
    catalog,
    detections: Sequence | None,
    target: tuple[float, float] | None = None,
) -> list[str]:
    """Every warning of one pipeline run (see the module docstring), in a stable order."""
    n = 0 if detections is None else len(detections)
    return (difference_warnings(difference) + catalog_warnings(science, catalog, n)
            + target_warnings(science, target))  # fmt: skip


__all__ = ["catalog_warnings", "difference_warnings", "run_warnings", "target_warnings"]
