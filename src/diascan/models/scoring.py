"""Score a table of sources: cut stamps at (x, y) and run the model, chunk by chunk."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from diascan.errors import CatalogReadError
from diascan.io.images import ImageData
from diascan.models.package import ModelPackage
from diascan.progress import CancelToken, ProgressCallback, check, report

#: Sources cut at once (bounds memory: 1024 stamps of 3 x 51 x 51 float32 = 32 MB).
CHUNK = 1024


def _column(table, name: str) -> np.ndarray:
    try:
        col = table[name]
    except (KeyError, ValueError, IndexError, TypeError) as exc:
        raise CatalogReadError(None, f"source table has no column '{name}'") from exc
    if hasattr(col, "to_numpy"):
        try:
            col = col.to_numpy()
        except TypeError:  # pyarrow ChunkedArray with nulls needs zero_copy_only=False
            col = col.to_numpy(zero_copy_only=False)
    return np.asarray(col, dtype=np.float64).ravel()


def chunk_size(model: ModelPackage) -> int:
    """Sources cut at once for ``model``: :data:`CHUNK` 51 x 51 x 3 stamps' worth of memory
    (fewer for a model that asks for larger stamps)."""
    h, w, c = model.input_shape
    return max(1, min(CHUNK, CHUNK * 3 * 51 * 51 // max(1, h * w * c)))


def _in_chunk(
    progress: ProgressCallback | None, start: int, n: int, size: int = CHUNK
) -> ProgressCallback | None:
    """Map the per-batch progress of a chunk starting at source ``start`` onto all ``n``."""
    if progress is None:
        return None

    def forward(stage: str, fraction: float, message: str) -> None:
        chunk = min(size, n - start)
        done = start + int(round(fraction * chunk))
        progress(stage, min(1.0, done / n), f"{done}/{n}")

    return forward


def score_sources(
    model: ModelPackage,
    table,
    difference: ImageData,
    science: ImageData,
    template: ImageData,
    batch_size: int = 64,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    on_batch: Callable[[np.ndarray, np.ndarray], None] | None = None,
) -> np.ndarray:
    """Scores (N,) float32 for the rows of ``table`` (columns ``x``, ``y`` in parent pixels).

    ``table`` may be anything indexable by column name (pyarrow/astropy table, DataFrame, dict,
    structured array). Sources whose stamp leaves the science image are scored on all-zero
    stamps, exactly as the Rubin pipeline does. ``progress("score", fraction, "done/n")`` is
    called once per batch of ``batch_size`` stamps, ``fraction`` over all ``N`` sources;
    ``on_batch(rows, scores)`` after each batch with the row numbers it scored (the one scoring
    loop of diascan: the CLI, the pipeline and the viewer's streaming rescore all use it).
    """
    x = _column(table, "x")
    y = _column(table, "y")
    n = x.size
    out = np.empty(n, dtype=np.float32)
    spec = model.input_spec  # stamp size, channel order and preprocessing of this package
    chunk = chunk_size(model)
    for start in range(0, n, chunk):
        check(cancel)
        sl = slice(start, start + chunk)
        stamps = spec.visit_stamps(x[sl], y[sl], difference, science, template)
        batch = None if on_batch is None else (
            lambda first, scores, start=start: on_batch(
                np.arange(start + first, start + first + len(scores)), scores))
        out[sl] = model.score_stamps(
            stamps, batch_size=batch_size, progress=_in_chunk(progress, start, n, chunk),
            cancel=cancel, on_batch=batch,
        )
    if n == 0:
        report(progress, "score", 1.0, "0/0")
    return out


__all__ = ["score_sources"]
