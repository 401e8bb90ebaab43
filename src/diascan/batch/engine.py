"""Scoring many visits as tasks on Dask (``dask.distributed``).

:func:`dask_client` gives a client of a ``LocalCluster`` (N worker processes, one thread each,
a memory limit per worker) or of an existing scheduler; :func:`run_batch` submits one
:func:`~diascan.batch.task.score_visit` task per visit, collects the summary rows as they come
in, reports progress and writes ``summary.parquet``.

Resilience comes from Dask and the task: a worker process that dies (killed, out of memory) has
its tasks rescheduled by the scheduler on another worker (up to
``distributed.scheduler.allowed-failures`` times, then the visit is recorded as failed); every
output is written atomically and a visit whose outputs exist with the same resume key is not
scored again, so a retried or resumed visit is never written twice.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diascan.batch import outputs
from diascan.batch.manifest import VisitJob, one_line
from diascan.batch.settings import BatchSettings
from diascan.batch.task import EVENTS_TOPIC, score_visit, summary_row
from diascan.errors import InputError
from diascan.safety import check_output_folder


@dataclass(frozen=True)
class BatchProgress:
    """A snapshot of a run, for a progress display."""

    total: int
    done: int
    skipped: int
    failed: int
    running: int
    elapsed: float  #: seconds since the tasks were submitted
    scored: int  #: visits run to the end by a worker in this run (done or failed there)
    last: dict[str, Any] | None = None  #: the summary row that just came in, if any

    @property
    def finished(self) -> int:
        return self.done + self.skipped + self.failed

    @property
    def rate(self) -> float:
        """Visits per minute run by the workers (skipped visits left out: they cost ~nothing)."""
        return 60.0 * self.scored / self.elapsed if self.elapsed > 0 else 0.0


ProgressSink = Callable[[BatchProgress], None]


def default_workers() -> int:
    """One worker process per CPU core available to this process."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def check_memory_limit(value: str) -> str:
    """``value`` if Dask understands it as a per-worker memory limit ("4GB", "auto", "0.5")."""
    from dask.utils import parse_bytes

    text = str(value).strip()
    if text.lower() == "auto":
        return "auto"
    try:
        fraction = float(text)
    except ValueError:
        fraction = None
    if fraction is not None:
        if 0 < fraction <= 1:
            return text  # Dask: a fraction of the machine's memory
        raise InputError(None, f"--memory-limit {text}: a fraction must be in (0, 1]")
    try:
        parse_bytes(text)
    except ValueError:
        raise InputError(None, f"--memory-limit {text}: not a size such as 4GB or 'auto'") from None
    return text


@contextlib.contextmanager
def dask_client(
    workers: int | None = None,
    scheduler: str | None = None,
    memory_limit: str = "auto",
    dashboard: bool = False,
) -> Iterator[Any]:
    """A ``distributed.Client``: of an existing ``scheduler`` address, or of a new
    ``LocalCluster`` with ``workers`` processes (default: one per core), one thread each and
    ``memory_limit`` per worker ("auto": the machine's memory shared between them); the local
    dashboard (it needs bokeh) on port 8787 when ``dashboard``. Closed on exit."""
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise InputError(None, f"cannot connect to the Dask scheduler at {scheduler} "
                                   f"({one_line(exc)})") from None
        with client:
            yield client
        return
    n = default_workers() if workers is None else int(workers)
    if n < 1:
        raise InputError(None, f"--workers {n}: must be at least 1")
    limit = check_memory_limit(memory_limit)
    # The scheduler always opens an HTTP port (health, metrics; the dashboard with bokeh): the
    # usual 8787 only when the dashboard is asked for, else any free port.
    with _worker_environment(), LocalCluster(
        n_workers=n,
        threads_per_worker=1,
        processes=True,
        memory_limit=limit,
        dashboard_address=":8787" if dashboard else ":0",
    ) as cluster, Client(cluster) as client:
        yield client


#: Dask's environment for new worker processes, as diascan changes it (see _worker_environment).
WORKER_ENVIRON = {"MALLOC_TRIM_THRESHOLD_": None}


@contextlib.contextmanager
def _worker_environment() -> Iterator[None]:
    """Start the local workers without Dask's ``MALLOC_TRIM_THRESHOLD_=65536`` (its other
    settings, one OpenMP/BLAS thread per worker, are kept), and give this process its own
    environment back afterwards (the nanny writes the workers' into ``os.environ``).

    Why: with that variable glibc gives every freed block above 64 KiB back to the system, so
    each large numpy temporary faults its pages in again: measured on small demo visits, 4x
    the page faults, 3x the system time and 1.4-3x the wall time per visit (a busy machine). The pipeline
    returns memory itself where it matters (:func:`diascan.memory.release_free_memory`).
    """
    import dask

    key = "distributed.nanny.pre-spawn-environ"
    saved = {k: os.environ.get(k) for k in dask.config.get(key)}
    try:
        with dask.config.set({f"{key}.{k}": v for k, v in WORKER_ENVIRON.items()}):
            yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def dashboard_link(client: Any, local: bool) -> str | None:
    """The scheduler's dashboard address; None when it serves none (a ``local`` cluster without
    bokeh, or a scheduler without an HTTP server)."""
    if local and importlib.util.find_spec("bokeh") is None:
        return None  # the port is open, but only for health checks and metrics
    try:
        return client.dashboard_link or None
    except KeyError:
        return None


def check_out_dir(
    out_dir: str | Path,
    jobs: list[VisitJob],
    settings: BatchSettings,
    manifest: str | Path | None = None,
) -> None:
    """Refuse an output folder that holds a file the run reads (a visit's file, the model
    package's, the manifest): the run replaces and deletes files there. Raises
    :class:`~diascan.errors.OutputError` (see :func:`diascan.safety.check_output_folder`)."""
    pairs: list[tuple[str, Path]] = [] if manifest is None else [("manifest", Path(manifest))]
    for job in jobs:
        for role in ("science", "difference", "template", "catalog"):
            if job.files.get(role):
                pairs.append((f"{role} of visit {job.name}", Path(job.files[role])))
        pairs += [(f"template patch of visit {job.name}", Path(p))
                  for p in job.files.get("template_patches") or []]  # fmt: skip
    if settings.model_path:
        from diascan.models.locate import package_files

        pairs += [("model package file", f) for f in package_files(settings.model_path)]
    check_output_folder(out_dir, pairs, "--out-dir")


def run_batch(
    jobs: list[VisitJob],
    out_dir: str | Path,
    settings: BatchSettings,
    client: Any,
    progress: ProgressSink | None = None,
    poll: float = 0.2,
) -> list[dict[str, Any]]:
    """Score ``jobs`` on ``client``'s cluster into ``out_dir``; return the summary rows.

    Jobs with an ``error`` (bad manifest rows) are recorded as failed without running. The
    summary is written when the run ends, also when it is interrupted (unfinished visits are
    then ``not run``); the workers must see ``out_dir`` and the input files at the same paths.
    """
    out_dir = Path(out_dir).absolute()
    if settings.score and settings.model_sha256 is None:
        settings = settings.resolved()
    check_out_dir(out_dir, jobs, settings)
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs.remove_leftovers(out_dir)
    rows: dict[int, dict[str, Any]] = {}
    counts = {"done": 0, "skipped": 0, "failed": 0, "scored": 0}
    runnable = [job for job in jobs if job.error is None]
    scored_ids = {(job.visit, job.detector) for job in runnable}
    for job in jobs:
        if job.error is not None:
            if (job.visit, job.detector) not in scored_ids:  # not a repeated row of a good one
                outputs.remove_visit(out_dir, job)
            rows[job.row] = summary_row(job, "failed", error=job.error)
            counts["failed"] += 1

    token = uuid.uuid4().hex[:10]
    running: set[str] = set()  # keys of the tasks that said they started and have not ended
    ended: set[str] = set()  # (a late "started" message must not count an ended task again)
    lock = threading.Lock()

    def on_event(event) -> None:  # in the client's event-loop thread
        msg = event[1] if isinstance(event, tuple | list) and len(event) == 2 else event
        key = msg.get("key", "") if isinstance(msg, dict) else ""
        if key.endswith(token):
            with lock:
                if key not in ended:
                    running.add(key)

    from distributed import as_completed

    futures: dict[Any, VisitJob] = {}
    t0 = time.perf_counter()

    def report(last: dict[str, Any] | None = None) -> None:
        if progress is None:
            return
        with lock:
            n_running = len(running)
        progress(BatchProgress(
            total=len(jobs), done=counts["done"], skipped=counts["skipped"],
            failed=counts["failed"], running=n_running, elapsed=time.perf_counter() - t0,
            scored=counts["scored"], last=last,
        ))  # fmt: skip

    client.subscribe_topic(EVENTS_TOPIC, on_event)
    try:
        for job in runnable:
            fut = client.submit(score_visit, job, str(out_dir), settings,
                                key=f"diascan-visit-{job.name}-{token}", pure=False)
            futures[fut] = job
        pending = set(futures)
        done_iter = as_completed(list(futures))
        report()
        last_report = time.perf_counter()
        while pending:
            batch = done_iter.next_batch(block=False)
            for fut in batch:
                pending.discard(fut)
                job = futures[fut]
                row = _collect(fut, job)
                rows[job.row] = row
                counts[row["status"]] += 1
                counts["scored"] += row["status"] != "skipped"
                with lock:
                    running.discard(fut.key)
                    ended.add(fut.key)
                report(row)
            if not batch:
                if time.perf_counter() - last_report > 1.0:
                    report()  # the rate and the running count move between completions
                    last_report = time.perf_counter()
                time.sleep(poll)
    finally:
        with contextlib.suppress(Exception):
            client.unsubscribe_topic(EVENTS_TOPIC)
        unfinished = [job for job in runnable if job.row not in rows]
        if unfinished:
            with contextlib.suppress(Exception):
                client.cancel([f for f, j in futures.items() if j.row not in rows])
            for job in unfinished:
                rows[job.row] = summary_row(job, "not run")
        outputs.write_summary(out_dir, [rows[r] for r in sorted(rows)])
        if not unfinished:
            outputs.remove_leftovers(out_dir)
    return [rows[r] for r in sorted(rows)]


def _collect(fut: Any, job: VisitJob) -> dict[str, Any]:
    """The summary row of a finished future (an exception there: the visit failed)."""
    if fut.status == "finished":
        return fut.result()
    try:
        exc = fut.exception()
    except Exception as err:  # noqa: BLE001 - a cancelled future raises here
        exc = err
    from distributed import KilledWorker

    if isinstance(exc, KilledWorker):
        error = ("every worker that ran it died (killed, or over its memory limit); "
                 "see the Dask workers' logs")
    else:
        error = one_line(exc)
    return summary_row(job, "failed", error=error)


__all__ = [
    "BatchProgress",
    "ProgressSink",
    "check_memory_limit",
    "check_out_dir",
    "dashboard_link",
    "dask_client",
    "default_workers",
    "run_batch",
]
