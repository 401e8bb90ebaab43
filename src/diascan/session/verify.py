"""Check that a session's input files are still there and unchanged; help locate moved ones."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from diascan.session.model import FileRef, Session, sha256_file

MISSING = "missing"
CHANGED = "changed"


@dataclass
class FileProblem:
    """One input file that moved (``missing``) or whose content differs (``changed``)."""

    visit_index: int
    role: str
    ref: FileRef
    problem: str
    detail: str = ""

    def __str__(self) -> str:
        return f"visit {self.visit_index + 1} {self.role}: {self.ref.path}: {self.problem}" + (
            f" ({self.detail})" if self.detail else ""
        )


def check_file(ref: FileRef, path: str | Path | None = None, checksum: bool = True) -> str | None:
    """``None`` when the file at ``path`` (default ``ref.path``) matches ``ref``, else a reason."""
    p = Path(path if path is not None else ref.path)
    if not p.is_file():
        return MISSING
    if ref.size is not None and p.stat().st_size != ref.size:
        return CHANGED
    if checksum and ref.sha256 and sha256_file(p) != ref.sha256:
        return CHANGED
    return None


def verify_inputs(session: Session, checksum: bool = True) -> list[FileProblem]:
    """Every input file of every visit that is missing or changed (size, then sha256)."""
    problems: list[FileProblem] = []
    cache: dict[str, str | None] = {}
    for i, visit in enumerate(session.visits):
        for role, ref in visit.files():
            key = f"{ref.path}|{ref.sha256}|{ref.size}"
            if key not in cache:
                cache[key] = check_file(ref, checksum=checksum)
            why = cache[key]
            if why is not None:
                detail = "size or checksum differ" if why == CHANGED else "file not found"
                problems.append(FileProblem(i, role, ref, why, detail))
    return problems


def relocate(session: Session, old_path: str, new_path: str | Path, checksum: bool = True) -> int:
    """Point every reference to ``old_path`` at ``new_path`` after checking it matches.

    Returns the number of references changed; raises ``ValueError`` when the new file differs
    from the recorded one.
    """
    new = str(Path(new_path).expanduser().resolve())
    refs = [r for v in session.visits for _, r in v.files() if r.path == old_path]
    for r in refs:
        why = check_file(r, new, checksum)
        if why is not None:
            raise ValueError(f"{new}: {why} (does not match the recorded {Path(old_path).name})")
    for r in refs:
        r.path = new
    return len(refs)


def locate_in_folder(
    session: Session, folder: str | Path, checksum: bool = True, recursive: bool = True
) -> int:
    """Find missing input files by name under ``folder`` (matching size/checksum); fix them.

    Returns how many references were fixed. Useful after a whole data folder moved.
    """
    folder = Path(folder)
    pattern = "**/*" if recursive else "*"
    by_name: dict[str, list[Path]] = {}
    for p in folder.glob(pattern):
        if p.is_file():
            by_name.setdefault(p.name, []).append(p)
    fixed = 0
    for problem in verify_inputs(session, checksum=False):
        if problem.problem != MISSING:
            continue
        for cand in by_name.get(Path(problem.ref.path).name, []):
            if check_file(problem.ref, cand, checksum) is None:
                fixed += relocate(session, problem.ref.path, cand, checksum=False)
                break
    return fixed
