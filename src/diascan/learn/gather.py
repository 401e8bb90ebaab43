"""Labelled stamps from session files, re-cut from the visits' own input files.

Every source labelled real or bogus (unsure and unlabelled ones are left out) in every visit of
the given sessions is cut again from the visit's science, difference and template files through
the scorer's own path: :func:`diascan.pipeline.load_inputs`, :func:`diascan.pipeline.make_template`
and :func:`diascan.cutouts.cut_stamps`, so the network is trained on exactly what it will score.
The input files are checked first (size and sha256 as recorded in the session): a file that moved
or changed is reported naming the session, the visit and the file, never guessed.

:func:`plan_labels` reads the sessions and counts the labels (cheap: no image is read);
:func:`cut_labels` reads the images and cuts the stamps. A source labelled in several sessions
(same science file, same id) is used once, with its most recent label.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from diascan.cutouts import DEFAULT_SIZE, cut_stamps, stamp_inside
from diascan.errors import InputError
from diascan.inputs import pipeline_inputs
from diascan.models.labelled import LabelledStamps
from diascan.pipeline import PipelineInputs, load_inputs, make_template
from diascan.progress import CancelToken, ProgressCallback, check, report
from diascan.session import FileRef, Label, VisitEntry, load_session
from diascan.session.labels import SourceId
from diascan.session.model import sha256_file
from diascan.session.verify import MISSING, check_file

#: Skip reasons reported in :attr:`LabelPlan.skipped` and :attr:`GatheredLabels.skipped`.
SKIP_UNSURE = "unsure"
SKIP_NO_POSITION = "no position"
SKIP_DUPLICATE = "labelled twice (the most recent label is used)"
SKIP_OUTSIDE = "stamp outside the science image"


@dataclass(frozen=True)
class SessionRef:
    """A session file used for training, with its sha256 (provenance)."""

    path: Path
    sha256: str

    def to_json(self) -> dict:
        return {"path": str(self.path), "sha256": self.sha256}


@dataclass
class _Labelled:
    sid: SourceId
    x: float
    y: float
    real: bool
    time: datetime | None


@dataclass
class VisitLabels:
    """The labelled sources of one visit and where its files are."""

    session: int  #: index into :attr:`LabelPlan.sessions`
    index: int  #: index of the visit in its session
    visit: VisitEntry
    group: int  #: one number per distinct visit (science file) across all sessions
    sources: list[_Labelled] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.visit.name


@dataclass
class LabelPlan:
    """What :func:`plan_labels` found: the labelled sources per visit, not cut yet."""

    sessions: list[SessionRef]
    visits: list[VisitLabels]
    skipped: Counter = field(default_factory=Counter)

    @property
    def n_real(self) -> int:
        return sum(s.real for v in self.visits for s in v.sources)

    @property
    def n_bogus(self) -> int:
        return sum(not s.real for v in self.visits for s in v.sources)

    @property
    def n_groups(self) -> int:
        return len({v.group for v in self.visits})


@dataclass
class GatheredLabels:
    """Labelled stamps (``data.keys``: ``(session index, visit index, source id)``) and where
    they came from."""

    data: LabelledStamps
    sessions: list[SessionRef]
    skipped: Counter


def _visit_key(visit: VisitEntry) -> str:
    ref = visit.science or visit.difference
    if ref is None:
        return f"visit {visit.visit}/{visit.detector}"
    return ref.sha256 or ref.path


def _when(t: datetime | None) -> float:
    return -math.inf if t is None else t.timestamp()


def plan_labels(paths: list[str | Path]) -> LabelPlan:
    """Read the sessions and collect their real/bogus labels (no image is read).

    Raises :class:`~diascan.errors.SessionError` for an unreadable session file.
    """
    sessions: list[SessionRef] = []
    best: dict[tuple[str, SourceId], tuple[VisitLabels, _Labelled]] = {}
    visits: list[VisitLabels] = []
    groups: dict[str, int] = {}
    skipped: Counter = Counter()
    for si, path in enumerate(paths):
        path = Path(path)
        session = load_session(path)
        sessions.append(SessionRef(path.resolve(), sha256_file(path)))
        for vi, visit in enumerate(session.visits):
            key = _visit_key(visit)
            entry = VisitLabels(si, vi, visit, groups.setdefault(key, len(groups)))
            by_id = {s.id: s for s in visit.sources}
            for sid, rec in visit.labels.records().items():
                if rec.label is None:
                    continue
                if rec.label == Label.UNSURE:
                    skipped[SKIP_UNSURE] += 1
                    continue
                src = by_id[sid]
                if src.x is None or src.y is None:
                    skipped[SKIP_NO_POSITION] += 1
                    continue
                item = _Labelled(sid, src.x, src.y, rec.label == Label.REAL, rec.time)
                prev = best.get((key, sid))
                if prev is not None:
                    skipped[SKIP_DUPLICATE] += 1
                    if _when(prev[1].time) > _when(item.time):
                        continue
                    prev[0].sources.remove(prev[1])
                entry.sources.append(item)
                best[(key, sid)] = (entry, item)
            visits.append(entry)
    return LabelPlan(sessions, [v for v in visits if v.sources], skipped)


def _needed_files(visit: VisitEntry) -> list[tuple[str, FileRef]]:
    """The files a visit's stamps are cut from (the catalog is not needed)."""
    return [(role, ref) for role, ref in visit.files() if role != "catalog"]


def check_plan_files(plan: LabelPlan) -> None:
    """Raise :class:`InputError` naming the session, visit and file of the first input file
    that is missing or changed (size, then sha256) among the visits with labels."""
    for v in plan.visits:
        session = plan.sessions[v.session].path
        if v.visit.science is None or v.visit.difference is None:
            raise InputError(session, f"visit {v.index + 1} ({v.name}) has no science or "
                                      "difference file to cut the labelled sources from")  # fmt: skip
        if v.visit.template is None and not v.visit.template_patches:
            raise InputError(session, f"visit {v.index + 1} ({v.name}) has no template file")
        for role, ref in _needed_files(v.visit):
            why = check_file(ref)
            if why is None:
                continue
            what = (
                "not found (moved or deleted? open the session in diascan view to locate it)"
                if why == MISSING
                else "changed since it was labelled (size or sha256 differ from the session)"
            )
            raise InputError(session, f"visit {v.index + 1} ({v.name}) {role} {ref.path}: {what}")


def _inputs(visit: VisitEntry) -> PipelineInputs:
    """The pipeline inputs that cut a visit's stamps (no catalog: it is not needed)."""
    files = {role: Path(ref.path) for role, ref in _needed_files(visit) if "[" not in role}
    files["template_patches"] = [Path(r.path) for r in visit.template_patches]
    return pipeline_inputs(files)


def cut_labels(
    plan: LabelPlan,
    stamp_size: int = DEFAULT_SIZE,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> GatheredLabels:
    """Check the files, then read every visit with labels and cut its labelled sources.

    Sources whose stamp is not entirely inside the science image (all-zero stamps, per the Rubin
    rule) are left out: their score carries no information.
    """
    check_plan_files(plan)
    skipped = Counter(plan.skipped)
    stamps, labels, groups, keys = [], [], [], []
    for i, v in enumerate(plan.visits):
        check(cancel)
        report(progress, "gather", i / len(plan.visits), f"visit {i + 1}/{len(plan.visits)}: "
                                                         f"{v.name}")  # fmt: skip
        loaded = load_inputs(_inputs(v.visit), cancel=cancel)
        template = make_template(loaded.science, loaded.templates, cancel=cancel)
        x = np.array([s.x for s in v.sources], dtype=np.float64)
        y = np.array([s.y for s in v.sources], dtype=np.float64)
        inside = stamp_inside(x, y, loaded.science, stamp_size)
        if not inside.all():  # (no "0 stamps outside" line in the reports)
            skipped[SKIP_OUTSIDE] += int((~inside).sum())
        stamps.append(cut_stamps(x[inside], y[inside], loaded.difference, loaded.science,
                                 template, size=stamp_size))  # fmt: skip
        kept = [s for s, ok in zip(v.sources, inside, strict=True) if ok]
        labels.extend(1.0 if s.real else 0.0 for s in kept)
        groups.extend(v.group for _ in kept)
        keys.extend((v.session, v.index, s.sid) for s in kept)
    report(progress, "gather", 1.0, f"{len(labels)} labelled stamps")
    data = LabelledStamps(
        np.concatenate(stamps) if stamps else np.zeros((0, 3, stamp_size, stamp_size), np.float32),
        np.asarray(labels, dtype=np.float32),
        np.asarray(groups, dtype=np.int64),
        keys,
    )
    return GatheredLabels(data, plan.sessions, skipped)


__all__ = [
    "GatheredLabels",
    "LabelPlan",
    "SessionRef",
    "VisitLabels",
    "check_plan_files",
    "cut_labels",
    "plan_labels",
]
