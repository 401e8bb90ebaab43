"""Finding a visit's input files (Qt-free): file roles, visit folders and lists, targets.

One module used by ``diascan view``, ``diascan score`` (and ``score --visits``), dropped files
and File > Open: which file is the science, difference, template (or template patches) and
catalog of a visit is guessed from the names; ``--visits`` is a folder of visit folders or a
text file listing them; a target is "RA,DEC" in degrees or sexagesimal.
A visit's files are a plain ``dict`` (role -> path; ``template_patches`` a list; ``target``
an ``(ra, dec)`` tuple), which :func:`pipeline_inputs` turns into
:class:`~diascan.pipeline.PipelineInputs`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from diascan.errors import InputError

#: A visit's files: role -> path (``template_patches``: list of paths; ``target``: (ra, dec)).
VisitFiles = dict[str, Any]

_IMAGE_SUFFIXES = (".fits", ".fz", ".fits.gz", ".fit")
_TABLE_SUFFIXES = (".parquet", ".csv", ".ecsv")


def parse_target(text: str | None, what: str = "--target") -> tuple[float, float] | None:
    """``(ra, dec)`` degrees from ``"RA,DEC"``: decimal degrees, or sexagesimal RA (hours) and Dec.

    Accepted: ``"53.1,-27.9"``, ``"53.1 -27.9"``, ``"03:32:30 -27:54:00"``,
    ``"3h32m30s, -27d54m00s"``. Empty text gives None; anything else raises
    :class:`~diascan.errors.InputError` saying what was expected. RA is wrapped to [0, 360).
    """
    if text is None or not str(text).strip():
        return None
    raw = str(text).strip()
    parts = [p for p in re.split(r"[,\s]+", raw) if p]
    decimal: tuple[float, float] | None = None
    if len(parts) == 2:
        try:
            decimal = float(parts[0]), float(parts[1])
        except ValueError:
            decimal = None
    ra, dec = decimal if decimal is not None else _sexagesimal(raw, parts, what)
    if not (ra == ra and dec == dec) or abs(ra) == float("inf") or abs(dec) == float("inf"):
        raise InputError(None, f"{what} must be finite, got {raw!r}")
    if not -90.0 <= dec <= 90.0:
        raise InputError(None, f"{what} declination {dec:g} is outside [-90, 90]")
    return ra % 360.0, dec


def _sexagesimal(raw: str, parts: list[str], what: str) -> tuple[float, float]:
    """RA (hours) and Dec from sexagesimal text with astropy's parser."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    if len(parts) == 6:  # "03 32 30 -27 54 00"
        text = f"{':'.join(parts[:3])} {':'.join(parts[3:])}"
    elif len(parts) == 2:
        text = f"{parts[0]} {parts[1]}"
    else:
        raise InputError(None, f"{what} must be RA,DEC (degrees or hh:mm:ss dd:mm:ss), got {raw!r}")
    try:
        c = SkyCoord(text, unit=(u.hourangle, u.deg))
    except (ValueError, TypeError):
        raise InputError(
            None, f"{what} must be RA,DEC (degrees or hh:mm:ss dd:mm:ss), got {raw!r}"
        ) from None
    return float(c.ra.deg), float(c.dec.deg)


def guess_roles(paths: list[Path]) -> VisitFiles | None:
    """Assign files to roles by name; None when the science or difference image is missing.

    A single folder stands for its files. Catalog: a Parquet/CSV/ECSV file, or one named
    ``*source*``/``*catalog*`` (preferred over other tables such as the demo's truth table).
    Images: ``*diff*`` -> difference, ``*coadd*``/``*patch*`` -> template patches,
    ``*template*`` -> template, ``*sci*``/``*calexp*``/``*visit*`` -> science.
    """
    paths = [Path(p) for p in paths]
    if len(paths) == 1 and paths[0].is_dir():
        paths = sorted(paths[0].iterdir())
    files: VisitFiles = {}
    patches: list[Path] = []
    cats = [p for p in paths if p.name.lower().endswith(_TABLE_SUFFIXES)
            or "source" in p.name.lower() or "catalog" in p.name.lower()]
    cats.sort(key=lambda p: ("source" not in p.name.lower() and "catalog" not in p.name.lower()))
    if cats:
        files["catalog"] = cats[0]
    for p in paths:
        n = p.name.lower()
        if p in cats or not n.endswith(_IMAGE_SUFFIXES):
            continue
        if "diff" in n:
            files.setdefault("difference", p)
        elif "coadd" in n or "patch" in n:
            patches.append(p)
        elif "template" in n:
            files.setdefault("template", p)
        elif "sci" in n or "calexp" in n or "visit" in n:
            files.setdefault("science", p)
    if patches and "template" not in files:
        files["template_patches"] = patches
    if "science" not in files or "difference" not in files:
        return None
    return files


def folder_files(folder: str | Path) -> VisitFiles:
    """The files of one visit folder by role (:func:`guess_roles`); ``{}`` when it is not one."""
    return guess_roles(sorted(Path(folder).iterdir())) or {}


def is_visit_folder(path: str | Path) -> bool:
    """True when ``path`` is a folder holding a visit's science and difference images."""
    path = Path(path)
    return path.is_dir() and bool(folder_files(path))


def visits_from_arg(path: str | Path) -> list[VisitFiles]:
    """``--visits``: a folder of visit folders, or a text file listing visit folders.

    Each visit folder holds science / difference / template* / catalog files (roles from
    :func:`guess_roles`). A folder that is itself a visit gives one visit. Lines of a list file
    are folder paths (relative to the list's folder); blank lines and ``#`` comments are
    skipped. Raises :class:`~diascan.errors.InputError` naming the bad entry.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file or folder")
    out: list[VisitFiles] = []
    if path.is_dir():
        subs = sorted(p for p in path.iterdir() if p.is_dir())
        out = [f for f in (folder_files(p) for p in subs) if f]
        if not out:
            own = folder_files(path)
            out = [own] if own else []
        if not out:
            raise InputError(path, "no visit folders with science and difference images")
        return out
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read the visit list ({exc})") from None
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        folder = Path(line).expanduser()
        if not folder.is_absolute():
            folder = path.parent / folder
        files = folder_files(folder) if folder.is_dir() else None
        if not files:
            raise InputError(path, f"line {n}: {line} is not a folder with science and "
                                   "difference images")
        out.append(files)
    if not out:
        raise InputError(path, "the visit list is empty")
    return out


def dropped_visits(paths: list[Path]) -> Path | None:
    """The folder of visit folders or visit list file among dropped ``paths``, else ``None``
    (one visit's files or folder are opened as that visit)."""
    if len(paths) != 1 or guess_roles(list(paths)) is not None:
        return None
    p = Path(paths[0])
    if not (p.is_dir() or (p.is_file() and p.stat().st_size < 1 << 20)):  # not an image
        return None
    try:
        visits_from_arg(p)
    except InputError:
        return None
    return p


def files_from_args(args: Any) -> VisitFiles | None:
    """A visit's files from ``diascan view`` arguments (None when no image was given);
    raises :class:`~diascan.errors.InputError` for a missing flag or file."""
    if not args.science and not args.difference:
        return None
    for flag in ("science", "difference"):
        if not getattr(args, flag):
            raise InputError(None, f"--{flag} is required with --science/--difference")
    if not args.template and not args.template_patches:
        raise InputError(None, "give --template or --template-patches")
    files: VisitFiles = {
        "science": args.science,
        "difference": args.difference,
        "template": args.template,
        "template_patches": args.template_patches,
        "catalog": args.catalog,
        "target": parse_target(args.target),
    }
    check_files_exist(files)
    return files


def demo_files(
    small: bool = False, progress: Callable[[str, float, str], None] | None = None
) -> VisitFiles:
    """The cached demo folder's files (generated once, then cached), with its target."""
    from diascan.demo import cached_demo

    folder = Path(cached_demo(small=small, progress=progress))
    files = folder_files(folder)
    target = folder_target(folder)
    if target is not None:
        files["target"] = target
    return files


def folder_target(folder: str | Path) -> tuple[float, float] | None:
    """The target of a visit folder from its ``target.json`` (as the demo writes); None without.

    Raises :class:`~diascan.errors.InputError` for a ``target.json`` without ``ra``/``dec``.
    """
    from diascan.pipeline import read_target

    path = Path(folder) / "target.json"
    return read_target(path) if path.is_file() else None


def check_files_exist(files: VisitFiles) -> None:
    """Raise :class:`~diascan.errors.InputError` naming the first given file that is missing."""
    for key in ("science", "difference", "template", "catalog"):
        if files.get(key) and not Path(files[key]).exists():
            raise InputError(files[key], "no such file")
    for p in files.get("template_patches") or []:
        if not Path(p).exists():
            raise InputError(p, "no such file")


def pipeline_inputs(files: VisitFiles, **settings: Any):
    """:class:`~diascan.pipeline.PipelineInputs` for a visit's files; ``settings`` are passed on
    (``use_cache``, ``model``, ``threshold``, ...)."""
    from diascan.pipeline import PipelineInputs

    kwargs: dict[str, Any] = {
        "science": Path(files["science"]),
        "difference": Path(files["difference"]),
        "catalog": Path(files["catalog"]) if files.get("catalog") else None,
    }
    if files.get("template"):
        kwargs["template"] = Path(files["template"])
    if files.get("template_patches"):
        kwargs["template_patches"] = [Path(p) for p in files["template_patches"]]
    if files.get("target") is not None:
        kwargs["target"] = tuple(files["target"])
    kwargs.update(settings)
    return PipelineInputs(**kwargs)


def inputs_from_files(files: VisitFiles):
    """``PipelineInputs`` for the viewer: the user's files with the results cache on."""
    # The viewer reuses the cached warped template and detections (fast start on a re-open).
    return pipeline_inputs(files, use_cache=True)


def files_loader(files: VisitFiles) -> Callable[..., Any]:
    """A loader (run in the viewer's load job) running the pipeline on a visit's files, unscored.

    Scoring is left to the viewer's rescoring job (results stream into the table); the
    result's ``input_files`` is what a session records (and reloads) for this visit.
    """

    def load(progress=None, cancel=None):
        from diascan.pipeline import run_pipeline

        return run_pipeline(inputs_from_files(files), score=False, progress=progress,
                            cancel=cancel)

    return load


def files_starter(files: VisitFiles) -> Callable[..., Any]:
    """A starter for the viewer's progressive load: ``start(progress=, cancel=)`` starts the
    pipeline on a visit's files, unscored, and returns the
    :class:`~diascan.pipeline.PipelineRun` at once (one future per product)."""

    def start(progress=None, cancel=None):
        from diascan.pipeline import start_pipeline

        return start_pipeline(inputs_from_files(files), score=False, progress=progress,
                              cancel=cancel)

    return start


def demo_starter(small: bool = False) -> Callable[..., Any]:
    """:func:`files_starter` for the built-in demo data (generated and cached on first use)."""

    def start(progress=None, cancel=None):
        return files_starter(demo_files(small, progress))(progress=progress, cancel=cancel)

    return start


def demo_loader(small: bool = False) -> Callable[..., Any]:
    """A loader for the built-in demo data (generated and cached on first use)."""

    def load(progress=None, cancel=None):
        from diascan.pipeline import run_pipeline

        files = demo_files(small, progress)
        return run_pipeline(inputs_from_files(files), score=False, progress=progress,
                            cancel=cancel)

    return load


__all__ = [
    "VisitFiles",
    "check_files_exist",
    "demo_files",
    "demo_loader",
    "demo_starter",
    "dropped_visits",
    "files_from_args",
    "files_loader",
    "files_starter",
    "folder_files",
    "folder_target",
    "guess_roles",
    "inputs_from_files",
    "is_visit_folder",
    "parse_target",
    "pipeline_inputs",
    "visits_from_arg",
]
