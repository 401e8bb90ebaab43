"""Demo sessions labelled from the demo's truth table, as a perfect scanner would label them.

For trying out (and testing, and benchmarking) fine-tuning without a human: every demo folder
(:func:`diascan.demo.generate_demo`) becomes one visit of a session file, its sources are the
pipeline's detections on it, and each detection gets the label of the nearest injected truth
source within :data:`MATCH_RADIUS_PX` (``is_real``), or bogus when nothing was injected there (a
noise peak or a fragment of an artefact). The session is written through the session API
(:func:`diascan.session.save_session`), with the files' sizes and sha256, exactly as the viewer
writes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from diascan.inputs import folder_files, pipeline_inputs
from diascan.io import read_table
from diascan.pipeline import detect, load_inputs
from diascan.session import Label, Session, VisitEntry, save_session, sources_from_table
from diascan.session.model import flag_columns

#: A detection takes the label of the nearest truth source within this distance (pixels).
MATCH_RADIUS_PX = 5.0
#: What a detection with no truth source nearby is (the demo's truth lists every real source).
UNMATCHED = "unmatched"


@dataclass
class DemoDetections:
    """The detections of one demo folder with their truth kind and label."""

    folder: Path
    detections: object  #: astropy Table from :func:`diascan.pipeline.detect`
    kind: np.ndarray  #: truth kind of each detection (``UNMATCHED`` when none is near)
    real: np.ndarray  #: bool
    metadata: dict  #: the science image's (visit, detector, band)


def truth_of(x, y, truth) -> tuple[np.ndarray, np.ndarray]:
    """``(kind, is_real)`` of positions ``x, y`` from the nearest truth row within the radius."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    tx, ty = np.asarray(truth["x"], np.float64), np.asarray(truth["y"], np.float64)
    kinds = np.asarray(truth["kind"]).astype(str)
    is_real = np.asarray(truth["is_real"], dtype=bool)
    if tx.size == 0 or x.size == 0:
        return np.full(x.size, UNMATCHED), np.zeros(x.size, bool)
    d = np.hypot(x[:, None] - tx[None], y[:, None] - ty[None])
    j = d.argmin(axis=1)
    near = d[np.arange(x.size), j] <= MATCH_RADIUS_PX
    return np.where(near, kinds[j], UNMATCHED), near & is_real[j]


def demo_detections(folder: Path) -> DemoDetections:
    """Detect the sources of a demo folder (the pipeline's detection) and look up their truth."""
    loaded = load_inputs(pipeline_inputs(folder_files(folder)), read_templates=False)
    det = detect(loaded.difference, loaded.science)
    kind, real = truth_of(det["x"], det["y"], read_table(Path(folder) / "truth.parquet"))
    return DemoDetections(Path(folder), det, kind, real, dict(loaded.science.metadata))


def write_labelled_session(
    visits: Sequence[DemoDetections],
    path: Path,
    n_labels: int | None = None,
    n_unsure: int = 0,
) -> Path:
    """A session file with one visit per demo folder; the first ``n_labels`` detections (over
    all visits in order; None: all) labelled real/bogus from the truth, the next ``n_unsure``
    labelled unsure, the rest unlabelled."""
    session = Session()
    left, unsure = (np.inf if n_labels is None else n_labels), n_unsure
    for v in visits:
        files = folder_files(v.folder)
        entry = VisitEntry.create(
            sources_from_table(v.detections), flag_columns=flag_columns(v.detections),
            science=files["science"], difference=files["difference"],
            template=files.get("template"), template_patches=files.get("template_patches", []),
            catalog=files.get("catalog"), visit=v.metadata.get("visit"),
            detector=v.metadata.get("detector"), band=v.metadata.get("band"),
        )  # fmt: skip
        for src, real in zip(entry.sources, v.real, strict=True):
            if left > 0:
                entry.labels.set_label(src.id, Label.REAL if real else Label.BOGUS)
                left -= 1
            elif unsure > 0:
                entry.labels.set_label(src.id, Label.UNSURE)
                unsure -= 1
        session.visits.append(entry)
    return save_session(session, path)


__all__ = [
    "MATCH_RADIUS_PX",
    "UNMATCHED",
    "DemoDetections",
    "demo_detections",
    "truth_of",
    "write_labelled_session",
]
