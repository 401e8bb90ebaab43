"""YAML from untrusted files, kept small: a size cap and no aliases.

``yaml.safe_load`` runs no code but expands aliases: a 1 kB "billion laughs" file (nine
anchors, each a list of nine aliases to the previous one) becomes 9**9 references, which cost
85 s and 8.5 GB the moment diascan printed the model description (measured on a model
package's meta.yaml). Model packages and ECSV headers never need aliases, so
:func:`load_yaml` refuses them outright, and refuses files larger than :data:`MAX_YAML_BYTES`
before parsing; the work and memory are then linear in a few kB. Errors are one line with the
position: ``meta.yaml: YAML aliases are not accepted (line 3, column 12)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from diascan.errors import one_line

#: Largest YAML file read (a model package's meta.yaml is a few hundred bytes).
MAX_YAML_BYTES = 64 * 1024


class UnsafeYAMLError(ValueError):
    """YAML that is too large, uses aliases, nests too deeply or does not parse (one line)."""


class _NoAliasLoader(yaml.SafeLoader):
    """``SafeLoader`` that stops at the first alias (``*name``) instead of expanding it."""

    def compose_node(self, parent, index):  # noqa: D401 - PyYAML's hook
        if self.check_event(yaml.events.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases (*name) are not accepted", event.start_mark
            )
        return super().compose_node(parent, index)


def _describe(exc: yaml.YAMLError) -> str:
    """``problem (line L, column C)`` for PyYAML's multi-line messages."""
    if isinstance(exc, yaml.MarkedYAMLError):
        problem = exc.problem or exc.context or "invalid YAML"
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        return one_line(f"{problem}{where}")
    return one_line(str(exc) or type(exc).__name__)


def load_yaml(text: str) -> Any:
    """Parse ``text`` (one document) without aliases; raises :class:`UnsafeYAMLError`."""
    if len(text) > MAX_YAML_BYTES:
        raise UnsafeYAMLError(f"YAML text is larger than {MAX_YAML_BYTES // 1024} kB")
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise UnsafeYAMLError(_describe(exc)) from None
    except RecursionError:
        raise UnsafeYAMLError("YAML nested too deeply") from None


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


def check_no_aliases(text: str) -> None:
    """Raise :class:`UnsafeYAMLError` when the YAML ``text`` uses an alias (only scans tokens:
    for YAML that another library parses, such as astropy's ECSV header). Text that does not
    scan is left to that library to report."""
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if isinstance(token, yaml.AliasToken):
                line = token.start_mark.line + 1
                raise UnsafeYAMLError(f"YAML aliases (*name) are not accepted (line {line})")
    except yaml.YAMLError:
        return


__all__ = ["MAX_YAML_BYTES", "UnsafeYAMLError", "check_no_aliases", "load_yaml", "load_yaml_file"]
