"""YAML from untrusted files, kept small: a size cap, a nesting limit and no aliases.

``yaml.safe_load`` runs no code but expands aliases: a 1 kB "billion laughs" file (nine
anchors, each a list of nine aliases to the previous one) becomes 9**9 references, which cost
85 s and 8.5 GB the moment diascan printed the model description (measured on a model
package's meta.yaml). And PyYAML's pure-Python scanner is quadratic in the nesting depth of
flow collections: 4000 ``[`` (4 kB) took 13 s to scan. So :func:`load_yaml` first walks the
document's events with libyaml's C parser (linear, fast) and refuses any alias, a nesting
deeper than :data:`MAX_DEPTH` and files larger than :data:`MAX_YAML_BYTES`; only then is it
composed, by libyaml too. Model packages and ECSV headers never need aliases. Errors are one
line with the position: ``YAML aliases (*name) are not accepted (line 3, column 12)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from diascan.errors import one_line

#: Largest YAML file read (a model package's meta.yaml is a few hundred bytes).
MAX_YAML_BYTES = 64 * 1024
#: Deepest nesting of sequences and mappings accepted (meta.yaml needs 2).
MAX_DEPTH = 32

#: libyaml's loader and parser where PyYAML was built with it (the PyPI wheels are).
_C_LOADER = getattr(yaml, "CSafeLoader", None)
_OPEN = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
_CLOSE = (yaml.SequenceEndEvent, yaml.MappingEndEvent)


class UnsafeYAMLError(ValueError):
    """YAML that is too large, uses aliases, nests too deeply or does not parse (one line)."""


def _where(mark) -> str:
    return f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""


def _describe(exc: yaml.YAMLError) -> str:
    """``problem (line L, column C)`` for PyYAML's multi-line messages."""
    if isinstance(exc, yaml.MarkedYAMLError):
        problem = exc.problem or exc.context or "invalid YAML"
        return one_line(f"{problem}{_where(exc.problem_mark or exc.context_mark)}")
    return one_line(str(exc) or type(exc).__name__)


def _flow_depth(text: str) -> int:
    """Upper bound of the flow-collection depth (brackets, quotes ignored): the pure-Python
    scanner must not see a deep one."""
    depth = deepest = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth = max(0, depth - 1)
    return deepest


def check_yaml(text: str, max_bytes: int = MAX_YAML_BYTES) -> None:
    """Raise :class:`UnsafeYAMLError` for YAML ``text`` that is larger than ``max_bytes``, does
    not parse, uses an alias or nests deeper than :data:`MAX_DEPTH` (a walk over its parse
    events; for YAML that another library then parses, such as astropy's ECSV header)."""
    if len(text) > max_bytes:
        raise UnsafeYAMLError(f"YAML text is larger than {max_bytes // 1024} kB")
    if _C_LOADER is None and _flow_depth(text) > MAX_DEPTH:
        raise UnsafeYAMLError(f"YAML nested more than {MAX_DEPTH} levels deep")
    depth = 0
    try:
        for event in yaml.parse(text, Loader=_C_LOADER or yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                raise UnsafeYAMLError(
                    f"YAML aliases (*name) are not accepted{_where(event.start_mark)}")
            if isinstance(event, _OPEN):
                depth += 1
                if depth > MAX_DEPTH:
                    raise UnsafeYAMLError(f"YAML nested more than {MAX_DEPTH} levels deep"
                                          f"{_where(event.start_mark)}")  # fmt: skip
            elif isinstance(event, _CLOSE):
                depth -= 1
    except yaml.YAMLError as exc:
        raise UnsafeYAMLError(_describe(exc)) from None


def load_yaml(text: str) -> Any:
    """Parse ``text`` (one document) after :func:`check_yaml`; raises :class:`UnsafeYAMLError`."""
    check_yaml(text)
    try:
        return yaml.load(text, Loader=_C_LOADER or yaml.SafeLoader)  # noqa: S506 - safe loaders
    except yaml.YAMLError as exc:
        raise UnsafeYAMLError(_describe(exc)) from None
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. an integer of 5000 digits
        raise UnsafeYAMLError(f"a value cannot be read ({one_line(exc, 120)})") from None


def load_yaml_file(path: str | Path) -> Any:
    """Read and parse a YAML file (size checked before reading); :class:`UnsafeYAMLError` for
    bad YAML, ``OSError`` when it cannot be read."""
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_YAML_BYTES:
        raise UnsafeYAMLError(
            f"{size} bytes, more than the {MAX_YAML_BYTES // 1024} kB a YAML file may have here"
        )
    raw = path.read_bytes()[: MAX_YAML_BYTES + 1]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnsafeYAMLError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return load_yaml(text)


__all__ = ["MAX_DEPTH", "MAX_YAML_BYTES", "UnsafeYAMLError", "check_yaml", "load_yaml",
           "load_yaml_file"]
