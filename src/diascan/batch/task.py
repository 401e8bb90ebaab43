"""One visit of a batch run, as a task: file paths in, one summary row out.

:func:`score_visit` runs in a Dask worker (or in a plain loop): it checksums the inputs, skips
the visit when its outputs were made from the same inputs, model and settings, else runs the
pipeline (:func:`diascan.pipeline.run_pipeline`) and writes the outputs
(:mod:`diascan.batch.outputs`). Images are read in the worker and never leave it; the task
returns a small dict (a row of the summary). Any failure of the visit is caught and returned as
a one-line ``error``, so the other visits go on.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np

from diascan.batch import outputs
from diascan.batch.manifest import VisitJob, one_line
from diascan.batch.settings import BatchSettings, input_checksums, resume_key

#: Dask event topic of the tasks' "started" messages (the live progress counts running visits).
EVENTS_TOPIC = "diascan-batch"


def summary_row(job: VisitJob, status: str, **values: Any) -> dict[str, Any]:
    """A summary row of ``job`` (see :data:`diascan.batch.outputs.SUMMARY_SCHEMA`)."""
    row: dict[str, Any] = {
        "row": job.row,
        "visit": job.visit,
        "detector": job.detector,
        "status": status,
        "science": str(job.files["science"]) if job.files.get("science") else None,
    }
    row.update(values)
    return row


def score_visit(job: VisitJob, out_dir: str | Path, settings: BatchSettings) -> dict[str, Any]:
    """Score one visit into ``out_dir`` (or skip it when finished); return its summary row.

    ``settings`` must be :meth:`~diascan.batch.settings.BatchSettings.resolved`.
    """
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    worker = _announce_start()
    try:
        checksums = input_checksums(job.files)
        key = resume_key(checksums, settings, job.visit, job.detector, job.files.get("target"))
        record = None if settings.rescore else outputs.finished_record(out_dir, job)
        if record is not None and record.get("key") == key:
            return summary_row(
                job, "skipped", sources=record.get("sources"), matched=record.get("matched"),
                seconds=record.get("seconds"), worker=record.get("worker"),
                output=str(outputs.visit_file(out_dir, job)),
            )  # fmt: skip
        table, sources, matched = _run(job, settings)
        seconds = time.perf_counter() - t0
        record = {
            "key": key,
            "visit": job.visit,
            "detector": job.detector,
            "sources": sources,
            "matched": matched,
            "seconds": round(seconds, 3),
            "worker": worker,
            "inputs": {role: _as_text(p) for role, p in job.files.items() if role != "target"},
            "input_sha256": checksums,
            "target": list(job.files["target"]) if job.files.get("target") else None,
            "settings": settings.identity(),
            "model": settings.model_path,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        path = outputs.write_visit(out_dir, job, table, record)
        return summary_row(job, "done", sources=record["sources"], matched=matched,
                           seconds=record["seconds"], worker=worker, output=str(path))
    except Exception as exc:  # noqa: BLE001 - one visit's failure must not stop the others
        outputs.remove_visit(out_dir, job)  # results of older inputs/settings are not valid now
        return summary_row(job, "failed", error=one_line(exc), worker=worker,
                           seconds=round(time.perf_counter() - t0, 3))


def _run(job: VisitJob, settings: BatchSettings):
    """The pipeline on the visit's files: (output table, detections, matched detections)."""
    from astropy.table import vstack

    from diascan.inputs import pipeline_inputs
    from diascan.models.package import configure_threads
    from diascan.pipeline import run_pipeline

    configure_threads(settings.torch_threads)  # one process per core: no oversubscription
    inputs = pipeline_inputs(
        job.files, model=settings.model_path, trust_model_code=settings.trust_model_code,
        visit=job.visit, detector=job.detector, threshold=settings.threshold,
        psf_sigma=settings.psf_sigma, match_radius_arcsec=settings.match_radius_arcsec,
    )  # fmt: skip
    result = run_pipeline(inputs, score=settings.score)
    table = result.detections
    if settings.with_missing and len(result.missing):
        table = vstack([table, result.missing], join_type="outer", metadata_conflicts="silent")
    table.meta["timings"] = {k: round(v, 4) for k, v in result.timings.items()}
    table.meta["notes"] = list(result.notes)
    # The ids as columns (first), so the per-visit tables stack into one table.
    table.add_column(np.full(len(table), job.visit, dtype=np.int64), name="visit", index=0)
    if job.detector is not None:
        table.add_column(np.full(len(table), job.detector, dtype=np.int64), name="detector",
                         index=1)
    matched = int(result.match.n_matched) if result.match is not None else 0
    return table, len(result.detections), matched


def _as_text(value: Any) -> Any:
    return [str(p) for p in value] if isinstance(value, list) else str(value)


def _announce_start() -> str:
    """Tell the client this visit started (for the running count); returns the worker's name."""
    try:
        from distributed import get_worker

        w = get_worker()
    except (ImportError, ValueError):  # not in a Dask worker: a plain loop
        return f"{socket.gethostname()}:{os.getpid()}"
    key = w.get_current_task()
    w.log_event(EVENTS_TOPIC, {"key": str(key), "worker": w.address, "pid": os.getpid()})
    return str(w.address)


__all__ = ["EVENTS_TOPIC", "score_visit", "summary_row"]
