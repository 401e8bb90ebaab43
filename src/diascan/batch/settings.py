"""What a batch run does to every visit (model, detection and matching settings), and the key
that says whether a finished visit can be kept: its inputs' checksums, the model and settings."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diascan import __version__
from diascan.inputs import VisitFiles

#: Bump when the batch outputs change meaning: every finished visit is then scored again.
BATCH_FORMAT = 1


@dataclass(frozen=True)
class BatchSettings:
    """Settings shared by all visits of a run (``diascan score`` options)."""

    model: str | None = None  #: model package name or path; None: the bundled default
    trust_model_code: bool = False
    score: bool = True  #: False: detect and match only (``--no-score``)
    threshold: float = 5.0
    psf_sigma: float | None = None
    match_radius_arcsec: float = 1.0
    with_missing: bool = False  #: append unmatched catalog rows (status 'missing')
    rescore: bool = False  #: score every visit again, even when finished with the same key
    torch_threads: int = 1  #: torch intra-op threads in each worker (one per worker process)
    #: Set by :meth:`resolved`: the package path (absolute, for the workers) and its checksum.
    model_path: str | None = None
    model_sha256: str | None = None

    def resolved(self) -> BatchSettings:
        """A copy with the model package found and checksummed (once, before the run).

        Raises :class:`~diascan.errors.ModelPackageError` for a model that does not exist.
        """
        if not self.score:
            return dataclasses.replace(self, model_path=None, model_sha256=None)
        from diascan.models.locate import package_files, resolve_package_path

        package = resolve_package_path(self.model).absolute()  # a folder, a .zip or a .h5
        digest = hashlib.sha256()
        for f in package_files(package):
            digest.update(f.name.encode() + b"\0" + file_sha256(f).encode())
        return dataclasses.replace(self, model_path=str(package), model_sha256=digest.hexdigest())

    def identity(self) -> dict[str, Any]:
        """Everything the scored tables depend on besides the input files (the model by the
        checksum of its files: the same package copied elsewhere is the same model)."""
        return {
            "diascan": __version__,
            "batch_format": BATCH_FORMAT,
            "model_sha256": self.model_sha256 if self.score else None,
            "threshold": float(self.threshold),
            "psf_sigma": self.psf_sigma,
            "match_radius_arcsec": float(self.match_radius_arcsec),
            "with_missing": bool(self.with_missing),
        }  # fmt: skip


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes (read in blocks; ~1.3 GB/s here, 0.5 s for a full visit)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def input_checksums(files: VisitFiles) -> dict[str, Any]:
    """sha256 of each input file by role (``template_patches``: a list, in order)."""
    out: dict[str, Any] = {}
    for role in ("science", "difference", "template", "catalog"):
        if files.get(role):
            out[role] = file_sha256(files[role])
    if files.get("template_patches"):
        out["template_patches"] = [file_sha256(p) for p in files["template_patches"]]
    return out


def resume_key(
    checksums: dict[str, Any],
    settings: BatchSettings,
    visit: int | None,
    detector: int | None,
    target: tuple[float, float] | None,
) -> str:
    """Hex sha256 of the input checksums, the ids, the target and the settings' identity."""
    doc = {
        "inputs": checksums,
        "visit": visit,
        "detector": detector,
        "target": list(target) if target is not None else None,
        "settings": settings.identity(),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


__all__ = ["BATCH_FORMAT", "BatchSettings", "file_sha256", "input_checksums", "resume_key"]
