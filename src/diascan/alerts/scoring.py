"""Rescoring alerts with model packages, each alert with a model whose input spec fits it.

Each alert gets the first model (in the order given) that is meant for its survey's stamps and
whose input its stamps can give (:meth:`~diascan.models.inputs.InputSpec.prepare`): ZTF's braai
takes a ZTF triplet whole; a Rubin TACCNN needs its 51 x 51 box inside the stamps, so a 30 x 30
Rubin alert is not scored with it and its note says the stamps are too small for that model. A
score is never made from padded guesses. Alerts are prepared and scored in chunks, so memory
stays bounded for any number of alerts.

:func:`available_models` picks the models for alerts when the user names none: for ZTF alerts a
braai package found on the model search path (bundled, ``$MEAS_TRANSINET_DIR``,
``$DIASCAN_MODEL_PATH``), for Rubin alerts the packages found there that are meant for Rubin or
any stamps, smallest input first (the first that fits the stamps is used).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from diascan.alerts.collection import AlertCollection
from diascan.models.inputs import StampMismatch
from diascan.progress import CancelToken, ProgressCallback, check, report

#: Alerts prepared at once (bounds memory: 256 braai inputs of 3 x 63 x 63 float32 = 12 MB).
CHUNK = 256


@dataclass
class AlertScores:
    """Recomputed scores of a collection's alerts: ``score`` (NaN: not scored), the ``model``
    name that gave it ("" when none) and a ``note`` saying why an alert was not scored."""

    score: np.ndarray
    model: list[str]
    note: list[str]

    @property
    def n_scored(self) -> int:
        return int(np.isfinite(self.score).sum())


def _why_not(survey: str, models: Sequence, reasons: list[tuple[str, str]]) -> str:
    if not models:
        return f"no model for {survey.upper()} stamps found"
    return "; ".join(f"{name}: {reason}" for name, reason in reasons)


def score_alerts(
    collection: AlertCollection,
    models: Sequence,
    indices: Iterable[int] | None = None,
    batch_size: int = 64,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> AlertScores:
    """Score alerts ``indices`` (default: all) of ``collection`` with ``models`` (loaded
    :class:`~diascan.models.package.ModelPackage` objects, in order of preference).

    ``progress("score", fraction, "done/n")`` after each chunk; ``cancel`` is checked between
    chunks. Alerts no model fits get NaN and a note naming each model and why.
    """
    n_all = len(collection)
    idx = np.arange(n_all) if indices is None else np.asarray(list(indices), dtype=np.int64)
    score = np.full(n_all, np.nan, dtype=np.float32)
    model_names = [""] * n_all
    notes = [""] * n_all
    n = idx.size
    report(progress, "score", 0.0, f"0/{n}")
    for start in range(0, n, CHUNK):
        check(cancel)
        chunk = idx[start : start + CHUNK]
        batches: dict[int, tuple[list[int], list[np.ndarray]]] = {}
        for i in chunk:
            survey = collection.survey(i)
            reasons: list[tuple[str, str]] = []
            for m, model in enumerate(models):
                try:
                    x = collection.model_input(int(i), model.input_spec)
                except StampMismatch as exc:
                    reasons.append((model.name, str(exc)))
                    continue
                rows, inputs = batches.setdefault(m, ([], []))
                rows.append(int(i))
                inputs.append(x)
                break
            else:
                notes[i] = _why_not(survey, models, reasons)
        for m, (rows, inputs) in batches.items():
            model = models[m]
            out = model.score_stamps(np.stack(inputs), batch_size=batch_size, cancel=cancel)
            score[rows] = out
            for i in rows:
                model_names[i] = model.name
        done = min(n, start + CHUNK)
        report(progress, "score", done / max(n, 1), f"{done}/{n}")
    return AlertScores(score, model_names, notes)


def available_models(surveys: Iterable[str], trust_model_code: bool = False) -> tuple[list, list[str]]:
    """Models to rescore alerts of ``surveys`` when the user names none, and notes on what was
    not found. See the module docstring for the choice."""
    from diascan.models import find_model_packages, load_model

    infos = [i for i in find_model_packages() if i.error is None and i.input_spec is not None]
    chosen, notes = [], []
    surveys = set(surveys)
    if "ztf" in surveys:
        ztf = [i for i in infos if i.input_spec.stamps == "ztf"]
        if ztf:
            chosen.append(ztf[0])
        else:
            notes.append(
                "no ZTF model found: point --model or $DIASCAN_MODEL_PATH at the braai d6_m7 "
                "files (a folder holding d6_m7.h5) to rescore ZTF alerts"
            )
    if "rubin" in surveys:
        rubin = sorted(
            (i for i in infos if i.input_spec.stamps in ("rubin", "any")),
            key=lambda i: i.input_spec.size,
        )
        chosen.extend(rubin)
        if not rubin:
            notes.append("no model for Rubin stamps found")
    return [load_model(i.path, trust_model_code=trust_model_code) for i in chosen], notes


__all__ = ["AlertScores", "CHUNK", "available_models", "score_alerts"]
