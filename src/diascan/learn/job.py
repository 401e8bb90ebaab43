"""The training job: session labels -> fine-tuned model package with honest before/after numbers.

:func:`run_train_job` is what ``diascan train --from-sessions`` runs and what the viewer's
"Improve model from my labels..." will run in a worker: it plans the labels (refusing too few,
with the counts, before any image is read), re-cuts the stamps from the sessions' input files,
fine-tunes the base package (:func:`diascan.models.finetune.finetune`: per-epoch ``on_epoch``
callbacks with the held-out loss, ``cancel`` checked before every batch), writes the new package
(meas_transiNet layout, provenance and held-out metrics in meta.yaml, model card README.md,
metrics.json), and returns a :class:`TrainReport` with the metrics of the base and the new model
on the held-out labels only, ROC curve points included. The written package is loaded back and
must give the very scores the report was computed from.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from diascan import __version__
from diascan.learn.gather import GatheredLabels, LabelPlan, cut_labels, plan_labels
from diascan.models.labelled import MIN_PER_CLASS, check_label_counts
from diascan.models.locate import user_models_dir
from diascan.models.metrics import BinaryMetrics, binary_metrics
from diascan.progress import CancelToken, ProgressCallback, check, report
from diascan.session.model import sha256_file

if TYPE_CHECKING:  # torch is imported when a job runs, not when this module is
    from diascan.models.finetune import FinetuneConfig

#: Threshold of the report besides the user's.
DEFAULT_THRESHOLD = 0.5


@dataclass
class TrainJob:
    """What to train: sessions, base package, where to write, settings."""

    sessions: list[Path]
    base: str | Path | None = None  #: package name or folder; None: the bundled model
    out: Path | None = None  #: None: a new folder under :func:`user_models_dir`
    config: FinetuneConfig | None = None  #: None: the defaults
    threshold: float = DEFAULT_THRESHOLD  #: reported besides 0.5
    min_per_class: int = MIN_PER_CLASS  #: labels of each class needed
    version: str = "1.0"
    description: str | None = None
    command: str | None = None  #: for the card; None: :func:`reproduce_command`
    force: bool = False  #: overwrite a non-empty ``out``


@dataclass(frozen=True)
class ClassCounts:
    real: int
    bogus: int

    def to_json(self) -> dict:
        return {"real": self.real, "bogus": self.bogus}


@dataclass
class TrainReport:
    """Everything the job did and measured (the CLI prints it, the viewer's dialog shows it)."""

    package: Path
    base_name: str
    base_version: str
    base_path: Path
    base_sha256: str
    input_shape: tuple[int, int, int]  #: (H, W, C) of the stamps
    sessions: list[dict]
    used: ClassCounts  #: all labelled stamps used (train + held-out)
    train: ClassCounts
    heldout: ClassCounts
    skipped: dict[str, int]
    n_visits: int
    before: BinaryMetrics  #: the base package on the held-out stamps
    after: BinaryMetrics  #: the written package on the held-out stamps
    history: list = field(default_factory=list)  #: EpochStats per epoch
    best_epoch: int = 0
    stopped_early: bool = False
    threshold: float = DEFAULT_THRESHOLD
    seed: int = 1
    config: dict = field(default_factory=dict)
    command: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    #: ``(session index, visit index, source id)`` of every held-out label (to recheck the
    #: numbers independently).
    heldout_keys: list = field(default_factory=list)

    @property
    def thresholds(self) -> tuple[float, ...]:
        return tuple(dict.fromkeys((DEFAULT_THRESHOLD, self.threshold)))

    def to_json(self) -> dict:
        return {
            "package": str(self.package),
            "base_model": self.base_model_json(),
            "sessions": self.sessions,
            "labels": {
                "used": self.used.to_json(), "train": self.train.to_json(),
                "heldout": self.heldout.to_json(), "skipped": self.skipped,
                "visits": self.n_visits,
            },  # fmt: skip
            "seed": self.seed,
            "config": self.config,
            "command": self.command,
            "threshold": self.threshold,
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
            "history": [s.to_json() for s in self.history],
            "heldout_metrics": {"before": self.before.to_json(), "after": self.after.to_json()},
            "heldout_sources": [list(k) for k in self.heldout_keys],
            "seconds": {k: round(v, 1) for k, v in self.seconds.items()},
            "diascan_version": __version__,
        }

    def base_model_json(self) -> dict:
        return {
            "name": self.base_name, "version": self.base_version, "path": str(self.base_path),
            "checkpoint_sha256": self.base_sha256,
        }  # fmt: skip

    def summary_lines(self) -> list[str]:
        """The report as text lines: counts, then before/after per metric."""
        lines = [
            f"labels used: {self.used.real} real, {self.used.bogus} bogus from {self.n_visits} "
            f"visit(s) of {len(self.sessions)} session(s); held out: {self.heldout.real} real, "
            f"{self.heldout.bogus} bogus"
        ]
        if self.skipped:
            lines.append("left out: " + ", ".join(f"{n} {why}" for why, n in self.skipped.items()))
        lines.append(f"on the held-out labels ({self.base_name} -> {self.package.name}):")
        f = metric_text
        lines.append(f"  ROC AUC {f(self.before.roc_auc)} -> {f(self.after.roc_auc)}")
        for t in self.thresholds:
            b, a = self.before.at(t), self.after.at(t)
            lines.append(
                f"  at {t:g}: purity {f(b.purity)} -> {f(a.purity)}, completeness "
                f"{f(b.completeness)} -> {f(a.completeness)}, confusion [tp fp; fn tn] "
                f"[{b.tp} {b.fp}; {b.fn} {b.tn}] -> [{a.tp} {a.fp}; {a.fn} {a.tn}]"
            )
        return lines


def metric_text(v: float) -> str:
    """A metric as the reports show it: three decimals, ``n/a`` for NaN (no such sources)."""
    return "n/a" if v != v else f"{v:.3f}"


def default_out(base_name: str, now: datetime | None = None) -> Path:
    """A new package folder in the user models folder: ``<base>_ft_<UTC time>``."""
    now = now or datetime.now(UTC)
    return user_models_dir() / f"{base_name}_ft_{now.strftime('%Y%m%dT%H%M%SZ')}"


def reproduce_command(job: TrainJob, cfg: FinetuneConfig, base: Path, out: Path) -> str:
    """The ``diascan train`` command line that makes this package again (every setting)."""
    args = ["diascan", "train", "--from-sessions", *(str(Path(s).resolve()) for s in job.sessions),
            "--base", str(base), "--out", str(out), "--seed", str(cfg.seed),
            "--epochs", str(cfg.epochs), "--patience", str(cfg.patience), "--lr", f"{cfg.lr:g}",
            "--batch-size", str(cfg.batch_size), "--heldout-fraction", f"{cfg.heldout_fraction:g}",
            "--threads", str(cfg.threads), "--threshold", f"{job.threshold:g}",
            "--min-per-class", str(job.min_per_class), "--version", job.version]  # fmt: skip
    return shlex.join(args)


def _check_out(out: Path, force: bool, inputs: list[tuple[str, Path]]) -> None:
    """The package folder may be new, empty or (``force``) replaced, but never hold an input."""
    from diascan.errors import OutputError
    from diascan.safety import check_output_folder

    if out.exists() and not out.is_dir():
        raise OutputError(out, "exists and is not a folder")
    check_output_folder(out, inputs, "--out")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise OutputError(out, "exists and is not empty; use --force to overwrite")


def run_train_job(
    job: TrainJob,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    on_epoch: Callable | None = None,
    log: Callable[[str], None] | None = None,
) -> TrainReport:
    """Run ``job`` (see the module docstring); returns the report. Bad input raises
    :class:`~diascan.errors.InputError` (one line), cancelling :class:`~diascan.errors.Cancelled`.
    """
    from diascan.models import ModelPackage, load_model
    from diascan.models.finetune import FinetuneConfig, finetune

    t0 = time.perf_counter()
    cfg = job.config or FinetuneConfig()
    base = load_model(job.base)
    out = Path(job.out) if job.out is not None else default_out(base.name)
    _check_out(out, job.force, [("base model package", Path(base.path)),
                                *(("session file", Path(p)) for p in job.sessions)])
    where = job.sessions[0] if len(job.sessions) == 1 else None
    plan: LabelPlan = plan_labels(job.sessions)
    check_label_counts(plan.n_real, plan.n_bogus, job.min_per_class, where)  # before reading any image
    check(cancel)
    gathered: GatheredLabels = cut_labels(plan, base.stamp_size, progress, cancel)
    data = gathered.data
    check_label_counts(data.n_real, data.n_bogus, job.min_per_class, where)  # some were off the image
    t_gather = time.perf_counter() - t0
    if log is not None:
        log(f"{len(data)} labelled stamps ({data.n_real} real, {data.n_bogus} bogus) from "
            f"{plan.n_groups} visit(s) in {t_gather:.1f} s")  # fmt: skip

    t1 = time.perf_counter()
    result = finetune(base, data, cfg, progress=progress, cancel=cancel, on_epoch=on_epoch,
                      log=log)  # fmt: skip
    t_train = time.perf_counter() - t1
    check(cancel)

    held = data.subset(result.heldout_index)
    train = data.subset(result.train_index)
    thresholds = tuple(dict.fromkeys((DEFAULT_THRESHOLD, float(job.threshold))))
    before_scores = base.score_stamps(held.stamps)
    tuned = ModelPackage(
        path=out, module=result.model, version=job.version, description="",
        architecture=base.architecture, input_shape=base.input_shape,
        scale_factors=(1.0,) * base.input_shape[2], input_spec=base.input_spec,
    )  # fmt: skip
    after_scores = tuned.score_stamps(held.stamps)
    # the checkpoint file of a package folder, or the Butler zip / Keras file itself
    base_ckpt = base.path if base.path.is_file() else next(iter(sorted(base.path.glob("*.pt"))))
    rep = TrainReport(
        package=out,
        base_name=base.name,
        base_version=base.version,
        base_path=base.path.resolve(),
        base_sha256=sha256_file(base_ckpt),
        input_shape=base.input_shape,
        sessions=[s.to_json() for s in gathered.sessions],
        used=ClassCounts(data.n_real, data.n_bogus),
        train=ClassCounts(train.n_real, train.n_bogus),
        heldout=ClassCounts(held.n_real, held.n_bogus),
        skipped=dict(gathered.skipped),
        n_visits=plan.n_groups,
        before=binary_metrics(before_scores, held.labels, thresholds),
        after=binary_metrics(after_scores, held.labels, thresholds),
        history=result.history,
        best_epoch=result.fit.best_epoch,
        stopped_early=result.fit.stopped_early,
        threshold=float(job.threshold),
        seed=cfg.seed,
        config=asdict(cfg),
        command=job.command or reproduce_command(job, cfg, base.path.resolve(), out.resolve()),
        heldout_keys=list(held.keys),
    )
    description = job.description or (
        f"{base.name} fine-tuned by diascan on {data.n_real} real and {data.n_bogus} bogus "
        "session labels"
    )
    report(progress, "write", 0.0, f"writing {out}")
    result.trainable.write(result.model, out, version=job.version, description=description,
                           epoch=result.fit.best_epoch, provenance=_provenance(rep))  # fmt: skip
    # The package as written must score as the network measured above (what a user gets).
    written = load_model(out).score_stamps(held.stamps)
    if not np.array_equal(written, after_scores):
        raise RuntimeError(f"{out}: the written package does not reproduce the trained scores")
    rep.seconds = {"gather": t_gather, "train": t_train, "total": time.perf_counter() - t0}
    from diascan.models.card import finetune_card

    (out / "metrics.json").write_text(json.dumps(rep.to_json(), indent=2) + "\n")
    (out / "README.md").write_text(finetune_card(rep))
    report(progress, "write", 1.0, f"wrote {out}")
    return rep


def _provenance(rep: TrainReport) -> dict:
    """The meta.yaml provenance block: where the package comes from and its held-out numbers."""
    return {
        "made_by": f"diascan {__version__} train --from-sessions",
        "base_model": rep.base_model_json(),
        "sessions": rep.sessions,
        "labels": {"used": rep.used.to_json(), "train": rep.train.to_json(),
                   "heldout": rep.heldout.to_json()},  # fmt: skip
        "seed": rep.seed,
        "command": rep.command,
        "heldout_metrics": {"before": _metrics_brief(rep.before),
                            "after": _metrics_brief(rep.after)},  # fmt: skip
    }


def _metrics_brief(m: BinaryMetrics) -> dict:
    return {
        "roc_auc": round(m.roc_auc, 4),
        **{
            f"at_{t.threshold:g}": {"purity": _round(t.purity),
                                    "completeness": _round(t.completeness)}  # fmt: skip
            for t in m.thresholds
        },
    }


def _round(v: float) -> float | None:
    return None if v != v else round(v, 4)


__all__ = [
    "ClassCounts",
    "TrainJob",
    "TrainReport",
    "default_out",
    "metric_text",
    "reproduce_command",
    "run_train_job",
]
