"""Table formats by file extension, without importing the readers (pyarrow, astropy.table):
``diascan score`` checks ``--out`` before anything heavy is imported."""

from __future__ import annotations

from pathlib import Path

#: Extension -> format name (names as accepted by :func:`write_table` / :func:`read_table`).
EXTENSIONS: dict[str, str] = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".ecsv": "ecsv",
    ".fits": "fits",
    ".fit": "fits",
    ".fits.gz": "fits",
    ".csv": "csv",
    ".vot": "votable",
    ".votable": "votable",
    ".xml": "votable",
}


def table_format(path: str | Path) -> str | None:
    """Format name from the file extension (case-insensitive), None when unknown."""
    name = Path(path).name.lower()
    for ext in sorted(EXTENSIONS, key=len, reverse=True):
        if name.endswith(ext):
            return EXTENSIONS[ext]
    return None
