"""Alert packets for the tests, written with fastavro from Rubin's own schemas and sample alerts
(lsst-alert-packet) and the real cutouts of the Rubin packets in ../shared."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import fastavro
from lsst.alert.packet import Schema, get_schema_path

#: The Rubin packet in ../shared whose cutouts and position the written packets carry.
RUBIN_PACKET = "data/rubin_alerts/packets/fink-broker_lsst_v9_0_LSSTCam_169298433328283716.avro"

CUTOUTS = ("cutoutDifference", "cutoutScience", "cutoutTemplate")


def rubin_schema(version: str) -> Schema:
    """lsst-alert-packet's schema ``"M.m"`` (e.g. ``"11.1"``)."""
    major, minor = version.split(".")
    path = Path(get_schema_path(int(major), int(minor))) / f"lsst.v{major}_{minor}.alert.avsc"
    return Schema.from_file(str(path))


def sample_alert(version: str) -> dict:
    """lsst-alert-packet's sample alert of schema ``version`` (no cutouts)."""
    major, minor = version.split(".")
    path = Path(get_schema_path(int(major), int(minor))) / "sample_data" / "alert.json"
    return json.loads(path.read_text())


def real_rubin(shared_dir: Path) -> dict:
    """The record of the real LSSTCam packet in ../shared."""
    with open(shared_dir / RUBIN_PACKET, "rb") as fh:
        return next(fastavro.reader(fh))


def rubin_alerts(version: str, shared_dir: Path, n: int, first_id: int = 1000) -> list[dict]:
    """``n`` alerts of schema ``version``: the sample alert with the real packet's cutouts and
    position, ids ``first_id``, ``first_id + 1``, ..."""
    real = real_rubin(shared_dir)
    out = []
    for k in range(n):
        alert = sample_alert(version)
        src = alert["diaSource"]
        for key in ("x", "y", "ra", "dec"):
            if key in src:
                src[key] = real["diaSource"][key]
        src["diaSourceId"] = first_id + k
        if "diaSourceId" in alert:
            alert["diaSourceId"] = first_id + k
        for c in CUTOUTS:
            alert[c] = real[c]
        out.append(alert)
    return out


def write_container(path: Path, schema: Schema, records: list[dict], codec: str = "null",
                    sync_interval: int = 16000) -> Path:
    """An object container file (fastavro writer; ``sync_interval`` bytes per block)."""
    with open(path, "wb") as fh:
        fastavro.writer(fh, schema.definition, records, codec=codec, sync_interval=sync_interval)
    return path


def wire_message(schema: Schema, record: dict) -> bytes:
    """One Confluent wire-format message: byte 0, the 4-byte schema id, the schemaless record."""
    buf = io.BytesIO()
    buf.write(struct.pack(">bI", 0, schema.get_schema_id()))
    fastavro.schemaless_writer(buf, schema.definition, record)
    return buf.getvalue()
