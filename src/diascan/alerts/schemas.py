"""Alert schemas: which survey a writer schema is, parsed once; Rubin's from lsst-alert-packet.

A writer schema is recognised by its fields, not its name (brokers rewrite names: Fink's Rubin
files are ``topLevelRecord``): a ``diaSource`` record field makes a Rubin alert, a ``candidate``
record field a ZTF alert. Each distinct schema is parsed by fastavro once (:func:`alert_schema`,
cached), with a second "prefix" schema of the leading fields up to and including that main
record: decoding only the prefix gives every field the alert table needs without walking the
history arrays or copying the cutouts, which come after it in every Rubin (lsst.v3 to v11.1) and
ZTF (3.x, 4.x) schema.

Rubin schemas for Confluent wire-format messages come from the schema registry that
``lsst-alert-packet`` builds from the schemas it ships (ids such as 1101 for lsst.v11_1).
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any

import fastavro

#: Survey -> the top-level field holding the alert's main record.
MAIN_RECORD = {"rubin": "diaSource", "ztf": "candidate"}

_RUBIN_NAME = re.compile(r"lsst\.v(\d+)_(\d+)")


@dataclass(frozen=True)
class AlertSchema:
    """A writer schema, parsed: its survey (None: not an alert schema we know) and decoders."""

    name: str
    survey: str | None
    #: Version from the schema name (``lsst.v9_0``), "" when the name does not say.
    version: str
    fields: tuple[str, ...]
    parsed: Any
    prefix: Any | None

    def describe(self) -> str:
        """The schema in a note: name and first fields."""
        shown = ", ".join(self.fields[:6]) + (", ..." if len(self.fields) > 6 else "")
        return f"'{self.name}' (fields {shown})"


def _record_type(ftype: Any) -> dict | None:
    """The record definition of a field type (a record or a union with null), else None."""
    options = ftype if isinstance(ftype, list) else [ftype]
    for t in options:
        if isinstance(t, dict) and t.get("type") == "record":
            return t
    return None


def _survey(schema: dict) -> str | None:
    types = {f.get("name"): f.get("type") for f in schema.get("fields", [])}
    if "diaSource" in types:
        return "rubin"
    cand = _record_type(types.get("candidate"))
    if cand is not None and {"candid", "jd"} <= {f.get("name") for f in cand.get("fields", [])}:
        return "ztf"
    return None


def _strip_parsed(obj: Any) -> Any:
    """A copy of a schema without fastavro's bookkeeping keys (so a prefix can be re-parsed)."""
    if isinstance(obj, dict):
        return {k: _strip_parsed(v) for k, v in obj.items() if not k.startswith("__")}
    if isinstance(obj, list):
        return [_strip_parsed(v) for v in obj]
    return obj


def schema_from_dict(schema: dict) -> AlertSchema:
    """Parse a writer schema (a dict) and recognise its survey. Raises ValueError when fastavro
    cannot parse it."""
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise ValueError("the writer schema is not a record")
    clean = _strip_parsed(schema)
    try:
        parsed = fastavro.parse_schema(clean)
    except Exception as exc:  # fastavro raises SchemaParseException, KeyError, TypeError ...
        raise ValueError(f"cannot parse the writer schema: {exc}") from exc
    name = str(clean.get("name", ""))
    if clean.get("namespace") and "." not in name:
        name = f"{clean['namespace']}.{name}"
    fields = tuple(str(f.get("name")) for f in clean.get("fields", []))
    survey = _survey(clean)
    prefix = None
    if survey is not None:
        # Named types are defined where first used, so the leading fields are self-contained.
        upto = fields.index(MAIN_RECORD[survey]) + 1
        prefix = fastavro.parse_schema({**clean, "fields": clean["fields"][:upto]})
    m = _RUBIN_NAME.search(name)
    version = f"lsst.v{m.group(1)}_{m.group(2)}" if m else ""
    return AlertSchema(name, survey, version, fields, parsed, prefix)


@functools.lru_cache(maxsize=64)
def alert_schema(schema_json: bytes) -> AlertSchema:
    """:func:`schema_from_dict` of a container file's ``avro.schema`` JSON, cached by its bytes
    (a folder of 10,000 single-alert files usually holds a handful of schemas)."""
    try:
        schema = json.loads(schema_json)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"the writer schema is not valid JSON: {exc}") from exc
    return schema_from_dict(schema)


@functools.cache
def _rubin_registry():
    from lsst.alert.packet import SchemaRegistry

    return SchemaRegistry.all_schemas_from_filesystem()


def rubin_schema_ids() -> list[int]:
    """The Confluent schema ids of the Rubin alert schemas lsst-alert-packet ships."""
    return sorted(_rubin_registry().known_ids)


@functools.lru_cache(maxsize=32)
def rubin_schema_for_id(schema_id: int) -> AlertSchema | None:
    """The Rubin alert schema registered under ``schema_id`` (lsst-alert-packet), else None."""
    registry = _rubin_registry()
    if schema_id not in registry.known_ids:
        return None
    return schema_from_dict(registry.get_by_id(schema_id).definition)


__all__ = [
    "AlertSchema",
    "MAIN_RECORD",
    "alert_schema",
    "rubin_schema_for_id",
    "rubin_schema_ids",
    "schema_from_dict",
]
