"""The headless DIA pipeline for one visit/detector: load -> template -> detect -> score -> match.

Each stage is a function of its own so the Qt viewer can run them in a worker one by one and
rescore without redoing the rest; :func:`run_pipeline` chains them and records per-stage timings.
Scoring plugs in through the models API (``diascan.models.load_model`` and
``diascan.models.scoring.score_sources``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table

from diascan import results_cache
from diascan.checks import run_warnings
from diascan.detection import detect_and_measure
from diascan.errors import InputError
from diascan.io import ImageData, read_catalog, read_image
from diascan.matching import MatchResult, match_catalog
from diascan.memory import release_free_memory
from diascan.pixel_grid import max_pixel_offset
from diascan.preload import preload_torch
from diascan.progress import CancelToken, ProgressCallback, check, report
from diascan.template import build_template

#: Stages in order (names used in progress reports and ``PipelineResult.timings``).
STAGES = ("load", "template", "detect", "score", "match")


@dataclass
class PipelineInputs:
    """What one pipeline run reads. Paths may be ``str`` or ``Path``."""

    science: Path
    difference: Path
    template: Path | None = None
    template_patches: list[Path] = field(default_factory=list)
    catalog: Path | None = None
    model: str | None = None  #: model package name or path; None = bundled default
    trust_model_code: bool = False  #: allow importing an unrecognised package's arch*.py
    target: tuple[float, float] | None = None  #: (ra, dec) degrees
    visit: int | None = None  #: catalog selection; default: the science header's visit
    detector: int | None = None
    threshold: float = 5.0
    psf_sigma: float | None = None
    match_radius_arcsec: float = 1.0
    #: Reuse (and store) the warped template and detections in the results cache
    #: (:mod:`diascan.results_cache`); off by default so ``diascan score`` measures everything.
    use_cache: bool = False


@dataclass
class LoadedInputs:
    """Images and catalog read by :func:`load_inputs`."""

    science: ImageData
    difference: ImageData
    templates: list[ImageData]
    catalog: Table | None


@dataclass
class PipelineResult:
    """Everything a run produced; ``detections`` has all detection columns + score + status."""

    science: ImageData
    difference: ImageData
    template: ImageData
    detections: Table
    missing: Table
    catalog: Table | None
    model_name: str | None = None
    model_version: str | None = None
    match: MatchResult | None = None
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: Problems that make the result meaningless though nothing failed (all-zero variance, no
    #: finite pixel, a catalog off the image...): one ``FILE: problem`` line each
    #: (:mod:`diascan.checks`); the CLI prints them, the viewer shows them as a banner.
    warnings: list[str] = field(default_factory=list)
    #: The files read, by role (science, difference, template, template_patches, catalog,
    #: target); sessions record and reload them.
    input_files: dict[str, Any] = field(default_factory=dict)


def input_files_of(inputs: PipelineInputs) -> dict[str, Any]:
    """The files of ``inputs`` by role, as recorded by sessions (absent roles left out)."""
    files: dict[str, Any] = {"science": Path(inputs.science), "difference": Path(inputs.difference)}
    if inputs.template is not None:
        files["template"] = Path(inputs.template)
    if inputs.template_patches:
        files["template_patches"] = [Path(p) for p in inputs.template_patches]
    if inputs.catalog is not None:
        files["catalog"] = Path(inputs.catalog)
    if inputs.target is not None:
        files["target"] = inputs.target
    return files


def read_target(path: str | Path) -> tuple[float, float]:
    """``(ra, dec)`` degrees from a JSON file with ``ra`` and ``dec`` keys (the demo's target.json)."""
    path = Path(path)
    try:
        d = json.loads(path.read_text())
        return float(d["ra"]), float(d["dec"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(path, f"not a target file with 'ra' and 'dec': {exc}") from exc


def _template_paths(inputs: PipelineInputs) -> list[Path]:
    paths: list[Path] = []
    if inputs.template is not None:
        paths.append(Path(inputs.template))
    paths.extend(Path(p) for p in inputs.template_patches)
    if not paths:
        raise InputError(None, "no template given (a template image or template patches)")
    return paths


#: Science and difference WCSs must agree to this many pixels everywhere on the image.
MAX_GRID_OFFSET = 0.1


def _check_same_grid(path: Path, science: ImageData, difference: ImageData) -> None:
    """Raise InputError (naming the difference file) when its WCS puts the science pixels
    elsewhere: detections would be matched and cut at the wrong sky positions."""
    if not (science.has_sky and difference.has_sky):
        return
    off = max_pixel_offset(science.wcs, difference.wcs, science.shape)
    if off > MAX_GRID_OFFSET:
        how = f"up to {off:.3g} px" if np.isfinite(off) else "somewhere that cannot be computed"
        raise InputError(
            path,
            f"not on the science image's pixel grid: its WCS maps the science pixels {how} "
            f"away (more than {MAX_GRID_OFFSET} px)",
        )


def load_inputs(
    inputs: PipelineInputs,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    *,
    read_templates: bool = True,
) -> LoadedInputs:
    """Read science, difference, template(s) and the catalog rows of this visit/detector.

    With ``read_templates=False`` the template files are checked to be given but not read
    (``templates`` is empty): a results-cache hit does not need them.
    """
    paths = _template_paths(inputs)
    if not read_templates:
        paths = []
    n = 2 + len(paths) + (inputs.catalog is not None)
    report(progress, "load", 0.0, "science image")
    science = read_image(inputs.science)
    check(cancel)
    report(progress, "load", 1 / n, "difference image")
    difference = read_image(inputs.difference)
    if difference.shape != science.shape or (difference.x0, difference.y0) != (
        science.x0,
        science.y0,
    ):
        raise InputError(
            inputs.difference,
            f"difference bbox {difference.bbox} differs from the science bbox {science.bbox}",
        )
    _check_same_grid(inputs.difference, science, difference)
    templates = []
    for i, p in enumerate(paths):
        check(cancel)
        report(progress, "load", (2 + i) / n, f"template {p.name}")
        templates.append(read_image(p))
    catalog = None
    if inputs.catalog is not None:
        check(cancel)
        report(progress, "load", (n - 1) / n, "catalog")
        visit = inputs.visit if inputs.visit is not None else science.metadata.get("visit")
        detector = (
            inputs.detector if inputs.detector is not None else science.metadata.get("detector")
        )
        catalog = read_catalog(inputs.catalog, visit=visit, detector=detector)
    report(progress, "load", 1.0, "inputs read")
    return LoadedInputs(science, difference, templates, catalog)


def _read_templates(
    inputs: PipelineInputs,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> list[ImageData]:
    """Read only the template file(s) (after a results-cache entry turned out unusable)."""
    out = []
    for p in _template_paths(inputs):
        check(cancel)
        report(progress, "template", 0.0, f"reading template {p.name}")
        out.append(read_image(p))
    return out


def _cache_key(inputs: PipelineInputs) -> str | None:
    """Results-cache key of the files the template and detections depend on; None if unstat-able."""
    files = [inputs.science, inputs.difference]
    if inputs.template is not None:
        files.append(inputs.template)
    files.extend(inputs.template_patches)
    try:
        return results_cache.cache_key(files, inputs.threshold, inputs.psf_sigma)
    except OSError:
        return None  # a missing file: load_inputs reports it


def make_template(
    science: ImageData,
    templates: Sequence[ImageData],
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> ImageData:
    """The template on the science grid grown by 20 px (see :func:`diascan.template.build_template`)."""
    return build_template(science, templates, grow=20, progress=progress, cancel=cancel)


def detect(
    difference: ImageData,
    science: ImageData | None,
    threshold: float = 5.0,
    psf_sigma: float | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Table:
    """Detections and measurements on the difference image (see :mod:`diascan.detection`)."""
    return detect_and_measure(
        difference, science, threshold=threshold, psf_sigma=psf_sigma, progress=progress,
        cancel=cancel,
    )  # fmt: skip


def score_detections(
    detections: Table,
    difference: ImageData,
    science: ImageData,
    template: ImageData,
    model=None,
    batch_size: int = 64,
    trust_model_code: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> tuple[Table, str, str]:
    """Copy of ``detections`` with a float32 ``score`` column; returns ``(table, name, version)``.

    ``model`` is a loaded model package, a package name or path, or None (the bundled default).
    """
    from diascan.models import load_model
    from diascan.models.scoring import score_sources

    if model is None or isinstance(model, (str, Path)):
        report(progress, "score", 0.0, "loading model")
        model = load_model(model, trust_model_code=trust_model_code)
    check(cancel)
    scores = score_sources(
        model, detections, difference, science, template, batch_size=batch_size,
        progress=progress, cancel=cancel,
    )  # fmt: skip
    out = detections.copy(copy_data=False)
    out["score"] = np.asarray(scores, dtype=np.float32)
    out["model_name"] = np.full(len(out), str(model.name))
    out["model_version"] = np.full(len(out), str(model.version))
    out.meta.update(model_name=str(model.name), model_version=str(model.version))
    return out, str(model.name), str(model.version)


def match(
    detections: Table,
    catalog: Table | None,
    target: tuple[float, float] | None = None,
    radius_arcsec: float = 1.0,
) -> MatchResult:
    """Match to the catalog (an empty catalog when None: all detections ``unmatched``)."""
    if catalog is None:
        catalog = Table({"ra": np.zeros(0), "dec": np.zeros(0)})
    return match_catalog(detections, catalog, radius_arcsec=radius_arcsec, target=target)


def run_pipeline(
    inputs: PipelineInputs,
    *,
    score: bool = True,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> PipelineResult:
    """Run all stages for one visit/detector and return the images, tables and timings."""
    timings: dict[str, float] = {}
    notes: list[str] = []
    key = _cache_key(inputs) if inputs.use_cache else None
    cached: results_cache.CachedProducts | None = None

    hit = key is not None and results_cache.has_entry(key)
    if score or not hit:  # torch warps the template and scores (not needed on a cache hit)
        preload_torch()
    t0 = time.perf_counter()
    loaded = load_inputs(inputs, progress, cancel, read_templates=not hit)
    timings["load"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    if hit:
        report(progress, "template", 0.0, "reading the results cache")
        cached = results_cache.load(key)  # type: ignore[arg-type]  # hit implies a key
        if cached is None:  # corrupt entry (now removed): read the templates after all
            loaded.templates.extend(_read_templates(inputs, progress, cancel))
    if cached is not None:
        template = cached.template
        report(progress, "template", 1.0, "from cache")
    else:
        template = make_template(loaded.science, loaded.templates, progress, cancel)
    loaded.templates.clear()  # the patches are no longer needed: free them before detection
    release_free_memory()  # and the warp threads' freed blocks (keeps the peak down)
    timings["template"] = time.perf_counter() - t0

    check(cancel)
    t0 = time.perf_counter()
    if cached is not None:
        report(progress, "detect", 0.0, "from cache")
        det = cached.detections
        report(progress, "detect", 1.0, f"{len(det)} sources (from cache)")
        notes.append("template and detections from the results cache")
    else:
        det = detect(
            loaded.difference, loaded.science, inputs.threshold, inputs.psf_sigma, progress,
            cancel,
        )  # fmt: skip
    timings["detect"] = time.perf_counter() - t0
    if key is not None and cached is None:
        # before scoring adds columns; never raises; refuses a cache folder holding an input
        results_cache.store(key, template, det, inputs=[
            inputs.science, inputs.difference, inputs.catalog, *_template_paths(inputs)])

    name = version = None
    t0 = time.perf_counter()
    if score:
        det, name, version = score_detections(
            det, loaded.difference, loaded.science, template, inputs.model, progress=progress,
            cancel=cancel, trust_model_code=inputs.trust_model_code,
        )  # fmt: skip
    else:
        det["score"] = np.full(len(det), np.nan, dtype=np.float32)
        notes.append("not scored")
    timings["score"] = time.perf_counter() - t0

    check(cancel)
    t0 = time.perf_counter()
    report(progress, "match", 0.0, "matching to the catalog")
    result = match(det, loaded.catalog, inputs.target, inputs.match_radius_arcsec)
    timings["match"] = time.perf_counter() - t0
    report(progress, "match", 1.0, f"{result.n_matched} matched, {result.n_missing} missing")
    notes.extend(result.notes)
    if loaded.catalog is None:
        notes.append("no catalog: nothing matched")
    else:  # the catalog's own notes, e.g. rows dropped for a bad position
        notes.extend(str(n) for n in loaded.catalog.meta.get("notes", []))
    warnings = run_warnings(loaded.science, loaded.difference, loaded.catalog, det, inputs.target)
    return PipelineResult(
        science=loaded.science,
        difference=loaded.difference,
        template=template,
        detections=result.detections,
        missing=result.missing,
        catalog=loaded.catalog,
        model_name=name,
        model_version=version,
        match=result,
        timings=timings,
        notes=notes,
        warnings=warnings,
        input_files=input_files_of(inputs),
    )
