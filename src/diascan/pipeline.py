"""The headless DIA pipeline for one visit/detector: load -> template -> detect -> score -> match.

Each stage is a function of its own so the Qt viewer can run them in a worker one by one and
rescore without redoing the rest; :func:`run_pipeline` chains them and records per-stage timings.
Scoring plugs in through the models API (``diascan.models.load_model`` and
``diascan.models.scoring.score_sources``).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from diascan.errors import InputError
from diascan.io.image_reader import read_image
from diascan.memory import release_free_memory
from diascan.preload import preload, require
from diascan.progress import CancelToken, ProgressCallback, check, report
from diascan.stage_graph import StageGraph, StageRun

if TYPE_CHECKING:  # heavy modules: imported where used (in the background during a run)
    from astropy.table import Table

    from diascan.io.image_data import ImageData
    from diascan.matching import MatchResult
    from diascan.results_cache import CachedProducts

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
    #: ``stage -> (start, end)`` seconds since the run started (stages overlap; see
    #: :class:`PipelineRun` for the stage names).
    stage_times: dict[str, tuple[float, float]] = field(default_factory=dict)


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
    from diascan.pixel_grid import max_pixel_offset

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
    _check_same_image(inputs.difference, science, difference)
    templates = []
    for i, p in enumerate(paths):
        check(cancel)
        report(progress, "load", (2 + i) / n, f"template {p.name}")
        templates.append(read_image(p))
    catalog = None
    if inputs.catalog is not None:
        check(cancel)
        report(progress, "load", (n - 1) / n, "catalog")
        catalog = _read_catalog(inputs, science)
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


def _read_catalog(inputs: PipelineInputs, science: ImageData) -> Table:
    """The catalog rows of this visit/detector (default: the science header's)."""
    from diascan.io.catalogs import read_catalog

    visit = inputs.visit if inputs.visit is not None else science.metadata.get("visit")
    detector = inputs.detector if inputs.detector is not None else science.metadata.get("detector")
    return read_catalog(inputs.catalog, visit=visit, detector=detector)  # type: ignore[arg-type]


def _cache_key(inputs: PipelineInputs) -> str | None:
    """Results-cache key of the files the template and detections depend on; None if unstat-able."""
    files = [inputs.science, inputs.difference]
    if inputs.template is not None:
        files.append(inputs.template)
    files.extend(inputs.template_patches)
    from diascan.results_cache import cache_key

    try:
        return cache_key(files, inputs.threshold, inputs.psf_sigma)
    except OSError:
        return None  # a missing file: load_inputs reports it


def make_template(
    science: ImageData,
    templates: Sequence[ImageData],
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> ImageData:
    """The template on the science grid grown by 20 px (see :func:`diascan.template.build_template`)."""
    from diascan.template import build_template

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
    from diascan.detection import detect_and_measure

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
    from astropy.table import Table

    from diascan.matching import match_catalog

    if catalog is None:
        catalog = Table({"ra": np.zeros(0), "dec": np.zeros(0)})
    return match_catalog(detections, catalog, radius_arcsec=radius_arcsec, target=target)




# --------------------------------------------------------------------------------------------
# Running the stages: concurrently, one future per product


#: Public products of a run, in the order a viewer can show them: the names of the futures of
#: :class:`PipelineRun` (``run.future(name)``, ``run.on(name, callback)``).
PRODUCTS = ("science", "difference", "catalog", "template", "detections", "scored", "result")

#: Threads of a run: the template and detection chains, the readers, and a stage that may be
#: waiting for an import (which holds a thread but no core).
WORKERS = 4


@dataclass
class PipelineRun:
    """A started pipeline run (:func:`start_pipeline`): one future per stage product.

    The stages run in a small thread pool, each as soon as what it needs is there: the four
    input files are read at once; detection starts when science and difference are read and
    checked, while the template patches are warped; scoring starts when both are done; matching
    when the scores and the catalog are. Heavy modules (scipy, astropy.table, torch) are
    imported meanwhile by :mod:`diascan.preload`.

    Products (:data:`PRODUCTS`; ``run.future(name)`` is a :class:`concurrent.futures.Future`,
    all created when the run starts):

    ==============  =====================================================================
    ``science``     the science :class:`~diascan.io.ImageData`, as soon as it is read
    ``difference``  the difference image, as soon as it is read (checked against the
                    science grid by the later stages: a mismatch fails the run)
    ``catalog``     the catalog rows of this visit/detector (astropy Table) or None
    ``template``    the template on the science grid grown by 20 px (ImageData)
    ``detections``  the detection table before scoring and matching
    ``scored``      ``(table, model_name, model_version)``: detections with ``score``
                    (NaN and names None when not scoring)
    ``result``      the :class:`PipelineResult`, the same as :func:`run_pipeline` returns
    ==============  =====================================================================

    A failing stage fails its own future and every product that needs it, with the same
    exception, and stops the rest of the run. Callbacks (:meth:`on`) run in the worker thread
    that finished the product (a Qt layer re-emits them as signals); ``progress`` is called
    from those threads too, possibly for two stages at once.
    """

    stages: StageRun
    inputs: PipelineInputs

    def future(self, product: str) -> Future:
        """The future of one of :data:`PRODUCTS`."""
        if product not in PRODUCTS:
            raise KeyError(f"no product {product!r}; products: {', '.join(PRODUCTS)}")
        return self.stages[product]

    def on(self, product: str, callback: Callable[[Future], Any]) -> None:
        """``callback(future)`` when ``product`` is ready or failed (at once if it is done)."""
        self.future(product).add_done_callback(callback)

    def result(self, timeout: float | None = None) -> PipelineResult:
        """Wait for the whole run; re-raises the first failure (InputError, Cancelled, ...)."""
        return self.stages.result("result", timeout)

    def cancel(self) -> None:
        """Stop the run at the stages' next safe points."""
        self.stages.cancel()

    def done(self) -> bool:
        return self.stages["result"].done()


class _LoadProgress:
    """``load`` progress over the files read by several stages: fraction = files started / files
    when a read starts (so 0 once), 1 when the last one is read."""

    def __init__(self, progress: ProgressCallback | None, n: int) -> None:
        self.progress, self.n, self.started, self.finished = progress, max(n, 1), 0, 0
        self.lock = threading.Lock()

    def reading(self, what: str) -> None:
        with self.lock:
            report(self.progress, "load", min(self.started / self.n, 0.99), what)
            self.started += 1

    def read(self) -> None:
        with self.lock:
            self.finished += 1
            if self.finished >= self.n:
                report(self.progress, "load", 1.0, "inputs read")


def start_pipeline(
    inputs: PipelineInputs,
    *,
    score: bool = True,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    workers: int = WORKERS,
) -> PipelineRun:
    """Start all stages for one visit/detector and return at once (see :class:`PipelineRun`).

    ``workers=0`` runs the stages one after the other in this thread before returning (the
    sequential reference: the products are the same bit for bit). Raises InputError at once
    when no template is given; every other failure is raised by ``run.result()``.
    """
    paths = _template_paths(inputs)
    key = _cache_key(inputs) if inputs.use_cache else None
    hit = False
    if key is not None:
        from diascan import results_cache

        hit = results_cache.has_entry(key)
    # Imported in the background in the order the stages need them (diascan.preload): the
    # image reader makes its first WCS at the end of the first read.
    modules = ["astropy.wcs"]
    if not hit:
        modules += ["diascan.detection", "torch", "diascan.template"]
    if score:
        modules += ["torch", "diascan.models.package", "diascan.models.scoring"]
    if inputs.catalog is not None:
        modules.append("diascan.io.catalogs")
    preload(*modules, "diascan.matching")

    graph = StageGraph(cancel=cancel)
    token = graph.cancel_token
    load = _LoadProgress(progress, 2 + (0 if hit else len(paths)) + (inputs.catalog is not None))

    def read(path: Path, what: str) -> ImageData:
        load.reading(what)
        image = read_image(path)
        load.read()
        return image

    cache_needs: tuple[str, ...] = ()
    if hit:

        def load_cached() -> CachedProducts | None:
            from diascan import results_cache

            return results_cache.load(key)  # type: ignore[arg-type]  # hit implies a key

        graph.add("cache", load_cached)
        cache_needs = ("cache",)

    graph.add("science", lambda: read(Path(inputs.science), "science image"))
    graph.add("difference", lambda: read(Path(inputs.difference), "difference image"))

    def checked(science: ImageData, difference: ImageData) -> tuple[ImageData, ImageData]:
        _check_same_image(inputs.difference, science, difference)
        return science, difference

    graph.add("images", checked, ("science", "difference"))

    def read_templates(cache: CachedProducts | None = None) -> list[ImageData]:
        if hit and cache is not None:
            return []
        if hit:  # corrupt entry (now removed): read the templates after all
            return _read_templates(inputs, progress, token)
        out = []
        for p in paths:
            token.check()
            out.append(read(p, f"template {p.name}"))
        return out

    graph.add("templates", read_templates, cache_needs)

    def read_cat(science: ImageData) -> Table | None:
        if inputs.catalog is None:
            return None
        load.reading("catalog")
        require("diascan.io.catalogs")
        catalog = _read_catalog(inputs, science)
        load.read()
        return catalog

    graph.add("catalog", read_cat, ("science",))

    def candidates(images, cache: CachedProducts | None = None):
        if cache is not None:
            return None
        require("diascan.detection")
        from diascan.detection import find_candidates

        science, difference = images
        found = find_candidates(
            difference, science, inputs.threshold, inputs.psf_sigma, progress, token
        )
        release_free_memory()  # the ~250 MB of full-frame buffers just freed (see the warp)
        return found

    graph.add("candidates", candidates, ("images", *cache_needs))

    def warp(
        science: ImageData,
        templates: list[ImageData],
        candidates,
        cache: CachedProducts | None = None,
    ) -> ImageData:
        if cache is not None:
            report(progress, "template", 0.0, "read from the results cache")
            report(progress, "template", 1.0, "from cache")
            return cache.template
        require("diascan.template")
        require("torch")
        template = make_template(science, templates, progress, token)
        templates.clear()  # the patches are no longer needed: free them (the detection runs)
        release_free_memory()  # and the warp threads' freed blocks (keeps the peak down)
        return template

    # The warp waits for the detection's full-frame stages (``candidates``): both at once
    # held ~250 MB more than diascan score's 1.5 GB budget allows. Those stages keep both
    # cores busy (two smoothing threads) while torch is imported; the warp then overlaps
    # the detection's photometry and the reading of the catalog.
    graph.add("template", warp, ("science", "templates", "candidates", *cache_needs))

    def find(images, candidates, cache: CachedProducts | None = None, template=None) -> Table:
        if cache is not None:
            report(progress, "detect", 0.0, "from cache")
            det = cache.detections
            report(progress, "detect", 1.0, f"{len(det)} sources (from cache)")
            return det
        from diascan.detection import measure_candidates

        frame, cand = candidates
        return measure_candidates(frame, cand, images[0], inputs.threshold, progress, token)

    # On a cache hit both are at hand: the template first keeps the progress in stage order.
    hit_order = ("template",) if hit else ()
    graph.add("detections", find, ("images", "candidates", *cache_needs, *hit_order))

    result_needs = ["scored", "catalog", "images", "template"]
    if key is not None:

        def store(template: ImageData, detections: Table, cache: CachedProducts | None = None):
            from diascan import results_cache

            if cache is None:  # before scoring adds columns; never raises; refuses a cache
                # folder holding an input
                results_cache.store(key, template, detections, inputs=[
                    inputs.science, inputs.difference, inputs.catalog, *paths])

        graph.add("stored", store, ("template", "detections", *cache_needs))
        result_needs.append("stored")

    score_needs = ["detections", "template", "images"]
    if score:

        def model():
            from diascan.models import load_model

            report(progress, "score", 0.0, "loading model")
            require("diascan.models.package")
            return load_model(inputs.model, trust_model_code=inputs.trust_model_code)

        graph.add("model", model)
        score_needs.append("model")

    def scores(detections: Table, template: ImageData, images, model=None):
        science, difference = images
        require("diascan.models.scoring")
        if model is None:
            out = detections.copy(copy_data=False)  # the cached/stored table stays unscored
            out["score"] = np.full(len(out), np.nan, dtype=np.float32)
            return out, None, None
        return score_detections(
            detections, difference, science, template, model, progress=progress, cancel=token,
            trust_model_code=inputs.trust_model_code,
        )  # fmt: skip

    graph.add("scored", scores, score_needs)

    def finish(scored, catalog: Table | None, images, template: ImageData, stored=None):
        det, name, version = scored
        science, difference = images
        notes: list[str] = []
        if hit and stages["cache"].result() is not None:
            notes.append("template and detections from the results cache")
        if not score:
            notes.append("not scored")
        report(progress, "match", 0.0, "matching to the catalog")
        require("diascan.matching")
        t0 = time.perf_counter()
        result = match(det, catalog, inputs.target, inputs.match_radius_arcsec)
        match_s = time.perf_counter() - t0
        report(progress, "match", 1.0, f"{result.n_matched} matched, {result.n_missing} missing")
        notes.extend(result.notes)
        if catalog is None:
            notes.append("no catalog: nothing matched")
        else:  # the catalog's own notes, e.g. rows dropped for a bad position
            notes.extend(str(n) for n in catalog.meta.get("notes", []))
        from diascan.checks import run_warnings

        warnings = run_warnings(science, difference, catalog, det, inputs.target)
        return PipelineResult(
            science=science,
            difference=difference,
            template=template,
            detections=result.detections,
            missing=result.missing,
            catalog=catalog,
            model_name=name,
            model_version=version,
            match=result,
            timings=_stage_timings(stages, match_s),
            notes=notes,
            warnings=warnings,
            input_files=input_files_of(inputs),
            stage_times=dict(stages.times),
        )

    graph.add("result", finish, result_needs)
    stages = StageRun(graph)  # before it starts: ``finish`` reads its times
    return PipelineRun(stages.start(workers), inputs)


def _check_same_image(path: Path | str, science: ImageData, difference: ImageData) -> None:
    """Raise InputError (naming the difference file) unless it has the science bbox and grid."""
    if difference.shape != science.shape or (difference.x0, difference.y0) != (
        science.x0,
        science.y0,
    ):
        raise InputError(
            path,
            f"difference bbox {difference.bbox} differs from the science bbox {science.bbox}",
        )
    _check_same_grid(Path(path), science, difference)


def _stage_timings(stages: StageRun, match_s: float) -> dict[str, float]:
    """Seconds per stage (:data:`STAGES`) of a run whose stages overlapped.

    ``load`` is the span from the first read's start to the last read's end; the others are
    each stage's own duration (``detect`` both detection stages, ``score`` includes loading
    the model), so they add up to more than the run's wall time when stages overlapped
    (``PipelineResult.stage_times`` has when each stage ran).
    """
    t = stages.times

    def took(*names: str) -> float:
        return sum(t[n][1] - t[n][0] for n in names if n in t)

    reads = [t[n] for n in ("science", "difference", "templates", "catalog") if n in t]
    return {
        "load": max(e for _, e in reads) - min(s for s, _ in reads),
        "template": took("template"),
        "detect": took("candidates", "detections"),
        "score": took("model", "scored"),
        "match": match_s,
    }


def run_pipeline(
    inputs: PipelineInputs,
    *,
    score: bool = True,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    workers: int = WORKERS,
) -> PipelineResult:
    """Run all stages for one visit/detector and return the images, tables and timings.

    The stages run concurrently (:func:`start_pipeline`); ``workers=0`` runs them one after
    the other in this thread, with the same results.
    """
    run = start_pipeline(inputs, score=score, progress=progress, cancel=cancel, workers=workers)
    try:
        return run.result()
    except BaseException:
        run.cancel()  # an error or Ctrl-C here: stop the stages still running
        raise
