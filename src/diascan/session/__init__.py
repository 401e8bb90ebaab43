"""Inspection sessions (Qt-free): labels, key bindings, the session model and file, export.

See ``docs/session-schema.md`` for the session file format.
"""

from diascan.session.export import export_sources, export_table, parse_label_filter
from diascan.session.keymap import KeyMap
from diascan.session.labels import Label, LabelRecord, LabelStats, LabelStore, parse_label
from diascan.session.model import (
    SCHEMA_VERSION,
    FileRef,
    Session,
    SourceRecord,
    VisitEntry,
    sources_from_table,
)
from diascan.session.store import Autosave, atomic_write_text, load_session, save_session
from diascan.session.triage import Triage
from diascan.session.verify import FileProblem, locate_in_folder, relocate, verify_inputs

__all__ = [
    "SCHEMA_VERSION", "Autosave", "FileProblem", "FileRef", "KeyMap", "Label",
    "LabelRecord", "LabelStats", "LabelStore", "Session", "SourceRecord", "Triage", "VisitEntry",
    "atomic_write_text", "export_sources", "export_table", "load_session", "locate_in_folder",
    "parse_label", "parse_label_filter", "relocate", "save_session", "sources_from_table",
    "verify_inputs",
]
