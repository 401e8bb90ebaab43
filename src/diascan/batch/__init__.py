"""Batch scoring of many visits on Dask (Qt-free): ``diascan score --visits MANIFEST``.

* :mod:`~diascan.batch.manifest`: the visits to score (CSV/Parquet manifest or visit folders);
* :mod:`~diascan.batch.settings`: the run's settings and the resume key;
* :mod:`~diascan.batch.task`: one visit as a task (paths in, a summary row out);
* :mod:`~diascan.batch.outputs`: the output folder (per-visit tables, dataset, summary);
* :mod:`~diascan.batch.engine`: the Dask client and the run.

Dask is imported only when a run starts, so importing this package is cheap.
"""

from diascan.batch.engine import (
    BatchProgress,
    check_out_dir,
    dashboard_link,
    dask_client,
    run_batch,
)
from diascan.batch.manifest import VisitJob, read_manifest
from diascan.batch.outputs import read_dataset, read_summary
from diascan.batch.settings import BatchSettings
from diascan.batch.task import score_visit

__all__ = [
    "BatchProgress",
    "BatchSettings",
    "VisitJob",
    "check_out_dir",
    "dashboard_link",
    "dask_client",
    "read_dataset",
    "read_manifest",
    "read_summary",
    "run_batch",
    "score_visit",
]
