"""Reading alert files: Rubin (lsst-alert-packet's samples and schemas, every codec, Confluent
wire format), ZTF packets, broker Parquet tables, and broken input."""

from __future__ import annotations

import glob
import io
import os
import shutil

import fastavro
import numpy as np
import pyarrow.parquet as pq
import pytest
from astropy.io import fits
from lsst.alert.packet import get_schema_root

from diascan.alerts import FIELDS, open_alerts
from diascan.errors import InputError
from diascan.stamps import StampSource
from tests._alert_packets import (
    real_rubin,
    rubin_alerts,
    rubin_schema,
    sample_alert,
    wire_message,
    write_container,
)

#: Every Rubin schema lsst-alert-packet ships from lsst.v7_0 to the latest.
VERSIONS = sorted(
    {
        f"{os.path.basename(os.path.dirname(d))}.{os.path.basename(d)}"
        for d in glob.glob(os.path.join(str(get_schema_root()), "*", "*"))
        if os.path.isdir(d) and os.path.basename(os.path.dirname(d)).isdigit()
    },
    key=lambda v: tuple(int(p) for p in v.split(".")),
)
VERSIONS = [v for v in VERSIONS if int(v.split(".")[0]) >= 7]


def test_the_schemas_run_from_v7_to_v11_1():
    assert VERSIONS[0] == "7.0" and "11.1" in VERSIONS and "9.0" in VERSIONS


@pytest.mark.parametrize("version", VERSIONS)
def test_lsst_alert_packet_sample_packets(version):
    """The sample packet lsst-alert-packet ships for each schema: one alert, no cutouts."""
    major, minor = version.split(".")
    path = os.path.join(str(get_schema_root()), major, minor, "sample_data", "fakeAlert.avro")
    alerts = open_alerts(path)
    assert len(alerts) == 1 and not alerts.notes
    row = alerts.row(0)
    expected = sample_alert(version)["diaSource"]
    assert row["survey"] == "rubin" and row["schema"] == f"lsst.v{major}_{minor}"
    assert row["id"] == expected["diaSourceId"]
    assert row["ra"] == pytest.approx(expected["ra"]) and row["band"] == expected["band"]
    assert row["time"] == pytest.approx(expected["midpointMjdTai"])
    triplet = alerts.triplet(0, 30)
    assert all(np.isnan(s).all() for s in triplet.frames().values())
    assert alerts.alert_notes(0) == ["science, template, difference: no cutout in the alert"]


@pytest.mark.parametrize("codec", ["null", "deflate", "snappy", "bzip2", "xz"])
@pytest.mark.parametrize("version", ["7.0", "9.0", "11.1"])
def test_rubin_containers_in_every_codec(tmp_path, shared_dir, version, codec):
    """Many records per file and per block (and one per block) read back, cutouts included."""
    schema = rubin_schema(version)
    records = rubin_alerts(version, shared_dir, 5)
    real = real_rubin(shared_dir)
    for interval, name in ((1 << 22, "big_blocks"), (1000, "small_blocks")):
        path = write_container(tmp_path / f"{name}.avro", schema, records, codec, interval)
        alerts = open_alerts(path)
        assert len(alerts) == 5 and not alerts.notes
        assert [alerts.row(i)["id"] for i in range(5)] == [1000, 1001, 1002, 1003, 1004]
        assert alerts.row(4)["record"] == 4
        st = alerts.stamps(3)
        with fits.open(io.BytesIO(real["cutoutScience"])) as hdul:
            np.testing.assert_array_equal(st.cutouts["science"].image, hdul[0].data)
            np.testing.assert_array_equal(st.cutouts["science"].variance, hdul["UNCERT"].data)
        assert not alerts.alert_notes(3)


def test_confluent_wire_format_messages(tmp_path, shared_dir):
    """One message per file and several in one file; schema looked up from the id."""
    records = rubin_alerts("11.1", shared_dir, 3)
    schema = rubin_schema("11.1")
    one = tmp_path / "one.bin"
    one.write_bytes(wire_message(schema, records[0]))
    many = tmp_path / "many.bin"
    old = rubin_schema("7.0")
    many.write_bytes(
        b"".join(wire_message(schema, r) for r in records)
        + wire_message(old, rubin_alerts("7.0", shared_dir, 1, first_id=7)[0])
    )
    alerts = open_alerts([one, many])
    assert not alerts.notes
    assert [alerts.row(i)["id"] for i in range(len(alerts))] == [1000, 1000, 1001, 1002, 7]
    assert [alerts.row(i)["schema"] for i in (0, 4)] == ["lsst.v11_1", "lsst.v7_0"]
    assert alerts.stamps(3).cutouts["difference"].shape == (30, 30)
    unknown = tmp_path / "unknown.bin"
    unknown.write_bytes(b"\x00\x00\x00\x30\x39" + wire_message(schema, records[0])[5:])
    alerts = open_alerts(unknown)
    assert len(alerts) == 0 and "with schema id 12345, which is not a Rubin alert schema" in (
        alerts.notes[0].problem
    )


def test_ztf_packets(shared_dir):
    folder = shared_dir / "data" / "ztf_alerts" / "packets"
    alerts = open_alerts(folder)
    assert len(alerts) == 9 and not alerts.notes
    rows = {alerts.row(i)["id"]: alerts.row(i) for i in range(len(alerts))}
    for path in sorted(folder.glob("*.avro")):
        with open(path, "rb") as fh:
            rec = next(fastavro.reader(fh))
        row, cand = rows[rec["candid"]], rec["candidate"]
        assert row["survey"] == "ztf" and row["mag"] == pytest.approx(cand["magpsf"])
        assert row["time"] == pytest.approx(cand["jd"] - 2400000.5)
        assert row["band"] == {1: "g", 2: "r", 3: "i"}[cand["fid"]]
        assert row["is_negative"] == (cand["isdiffpos"] in ("f", "0"))
        assert (row["drb"] is None) == (cand.get("drb") is None)
    schemas = {r["schema"] for r in rows.values()}
    assert {"ztf 3.2", "ztf 3.3", "ztf 4.01"} <= schemas
    jpeg = next(i for i in range(len(alerts)) if "JPEG" in alerts.row(i)["file"])
    triplet = alerts.triplet(jpeg, 63)
    assert all(np.isnan(s).all() for s in triplet.frames().values())
    assert "JPEG" in alerts.alert_notes(jpeg)[0]
    others = [i for i in range(len(alerts)) if i != jpeg]
    assert all(not alerts.alert_notes(i) for i in others if alerts.stamps(i))


def test_broker_parquet_tables(shared_dir):
    ztf = shared_dir / "data" / "ztf_alerts" / "ztf_alerts_sample.parquet"
    rubin = shared_dir / "data" / "rubin_alerts" / "rubin_alerts_sample.parquet"
    alerts = open_alerts([ztf, rubin])
    assert len(alerts) == 223 and not alerts.notes
    table = alerts.table
    assert table.colnames == [f.name for f in FIELDS]
    z = pq.read_table(ztf).to_pydict()
    r = pq.read_table(rubin).to_pydict()
    np.testing.assert_array_equal(table["id"][:123], z["candid"])
    np.testing.assert_array_equal(table["id"][123:], r["diaSourceId"])
    np.testing.assert_allclose(table["reliability"][123:], r["reliability"])
    np.testing.assert_allclose(table["drb"][:123], [np.nan if v is None else v for v in z["drb"]])
    assert list(table["is_negative"][123:]) == r["isNegative"]
    assert list(table["ss_match"][:123]) == z["label_known_sso"]
    for i in (0, 97, 123, 199):  # clipped ZTF stamps, Rubin stamps of several sizes
        st = alerts.stamps(i)
        src = z if i < 123 else r
        k = i if i < 123 else i - 123
        assert st.cutouts["science"].shape == (src["stamp_ny"][k], src["stamp_nx"][k])


def test_fields_are_decoded_lazily(tmp_path, shared_dir):
    """Opening indexes only; a row's fields are decoded when asked for, block by block."""
    schema = rubin_schema("11.1")
    write_container(tmp_path / "a.avro", schema, rubin_alerts("11.1", shared_dir, 4), "deflate",
                    sync_interval=1000)
    alerts = open_alerts(tmp_path)
    assert alerts.column("id") == [None] * 4 and alerts.column("survey") == ["rubin"] * 4
    assert alerts.row(2)["id"] == 1002
    assert alerts.column("id") == [None, None, 1002, None]
    assert list(alerts.table["id"]) == [1000, 1001, 1002, 1003]


def test_folders_are_read_recursively_in_order(tmp_path, shared_dir):
    packets = sorted((shared_dir / "data" / "ztf_alerts" / "packets").glob("*.avro"))
    (tmp_path / "b" / "c").mkdir(parents=True)
    shutil.copy(packets[0], tmp_path / "b" / "c" / "z.avro")
    shutil.copy(packets[1], tmp_path / "a.AVRO")
    (tmp_path / "notes.txt").write_text("not an alert")
    alerts = open_alerts(tmp_path)
    assert [os.path.basename(alerts.row(i)["file"]) for i in range(2)] == ["a.AVRO", "z.avro"]
    assert not alerts.notes
    assert isinstance(alerts, StampSource)


def test_broken_input_gives_notes_and_the_rest_opens(tmp_path, shared_dir):
    schema = rubin_schema("11.1")
    records = rubin_alerts("11.1", shared_dir, 3)
    good = write_container(tmp_path / "good.avro", schema, records, "deflate", 1000)
    data = good.read_bytes()
    blocks = [b.offset for b in fastavro.block_reader(io.BytesIO(data))]
    assert len(blocks) == 3
    # corrupt the compressed bytes of the second block; break its size in a copy (the index
    # must resume at the next sync marker); truncate a copy inside the third block
    corrupt = bytearray(data)
    corrupt[blocks[1] + 40 : blocks[1] + 60] = b"\xff" * 20
    (tmp_path / "corrupt.avro").write_bytes(bytes(corrupt))
    resync = bytearray(data)
    resync[blocks[1] + 1] ^= 0x10
    (tmp_path / "resync.avro").write_bytes(bytes(resync))
    (tmp_path / "truncated.avro").write_bytes(data[: blocks[2] + 100])
    (tmp_path / "junk.avro").write_bytes(b"this is not avro")
    unknown = {"type": "record", "name": "other.alert",
               "fields": [{"name": "id", "type": "long"}]}
    with open(tmp_path / "unknown.avro", "wb") as fh:
        fastavro.writer(fh, unknown, [{"id": 1}, {"id": 2}])
    good.unlink()
    alerts = open_alerts(tmp_path)
    by_file = {}
    for i in range(len(alerts)):
        by_file.setdefault(os.path.basename(alerts.row(i)["file"]), []).append(i)
    # truncated: the third block is lost (a note), the first two alerts open
    assert len(by_file["truncated.avro"]) == 2
    notes = {n.path.name: n.problem for n in alerts.notes}
    assert "truncated" in notes["truncated.avro"]
    assert "not an alert file" in notes["junk.avro"]
    assert "2 record(s)" in notes["unknown.avro"] and "neither a Rubin nor a ZTF" in notes["unknown.avro"]
    assert f"block at byte {blocks[1]}" in notes["resync.avro"]
    assert [alerts.row(i)["id"] for i in by_file["resync.avro"]] == [1000, 1002]
    # corrupt: the block's bytes decode to garbage or fail; blocks 1 and 3 are intact
    rows = by_file["corrupt.avro"]
    ids = [alerts.row(i)["id"] for i in rows]
    assert ids[0] == 1000 and ids[-1] == 1002
    for i in rows:
        alerts.stamps(i)
    bad = [i for i in rows if alerts.alert_notes(i)]
    assert bad == [rows[1]] and "record cannot be decoded" in alerts.alert_notes(rows[1])[0]
    assert not np.isnan(alerts.triplet(rows[2], 30).difference).all()
    with pytest.raises(InputError, match="no such file"):
        open_alerts(tmp_path / "missing")


def test_files_sharing_a_header_keep_their_own_sync_markers(tmp_path, shared_dir):
    """A header already seen is not parsed again (avro._KNOWN); each file still gets its own
    sync marker: a copy of a packet with another marker indexes and decodes the same."""
    from diascan.alerts.avro import index_container

    packet = sorted((shared_dir / "data" / "ztf_alerts" / "packets").glob("*.avro"))[0]
    data = packet.read_bytes()
    first = index_container(packet)
    sync = first.header.sync
    other = bytes(255 - b for b in sync)
    assert data.count(sync) == len(first.blocks) + 1  # after the header and after each block
    (tmp_path / "a.avro").write_bytes(data)
    (tmp_path / "b.avro").write_bytes(data.replace(sync, other))
    for name, marker in (("a.avro", sync), ("b.avro", other)):
        index = index_container(tmp_path / name)
        assert index.header.sync == marker and not index.problems
        assert index.blocks == first.blocks
    alerts = open_alerts(tmp_path)
    assert not alerts.notes and len(alerts) == 2
    assert alerts.row(0)["id"] == alerts.row(1)["id"]
    np.testing.assert_array_equal(alerts.stamps(0).cutouts["science"].image,
                                  alerts.stamps(1).cutouts["science"].image)
