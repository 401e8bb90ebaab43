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


# -- packets made here, with cutouts of our own (no ../shared needed) ---------------------------

#: Side of the synthetic Rubin cutouts (Rubin's are about 30 x 30).
SYNTH_SIZE = 31


def synthetic_cutout(ra: float, dec: float, x: float, y: float, amplitude: float,
                     seed: int, size: int = SYNTH_SIZE) -> bytes:
    """FITS bytes laid out like a Rubin cutout: the image (nJy) in the primary HDU with a TAN
    WCS without CTYPE cards and the CUTMINX/CUTMINY origin, an ``UNCERT`` variance plane and
    a ``PSFIMAGE``; a Gaussian of ``amplitude`` at the source plus noise."""
    import numpy as np
    from astropy.io import fits

    rng = np.random.default_rng(seed)
    x0, y0 = int(x) - size // 2, int(y) - size // 2
    yy, xx = np.mgrid[0:size, 0:size]
    cx, cy = x - x0, y - y0
    image = amplitude * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 1.8**2))
    image = (image + rng.normal(0, 5.0, image.shape)).astype(np.float32)
    hdr = fits.Header()
    for key, value in (("CRPIX1", cx + 1), ("CRPIX2", cy + 1), ("CRVAL1", ra), ("CRVAL2", dec),
                       ("PC1_1", -0.2 / 3600), ("PC2_2", 0.2 / 3600), ("CUTMINX", x0 - 1),
                       ("CUTMINY", y0 - 1), ("BUNIT", "nJy")):
        hdr[key] = value
    psf = np.exp(-((xx - size // 2) ** 2 + (yy - size // 2) ** 2) / (2 * 1.8**2))
    hdul = fits.HDUList([
        fits.PrimaryHDU(image, hdr),
        fits.ImageHDU(np.full(image.shape, 25.0, np.float32), name="UNCERT"),
        fits.ImageHDU((psf / psf.sum()).astype(np.float32), name="PSFIMAGE"),
    ])
    buf = io.BytesIO()
    hdul.writeto(buf)
    return buf.getvalue()


def synthetic_rubin_alerts(n: int, version: str = "9.0", first_id: int = 5000,
                           seed: int = 0) -> list[dict]:
    """``n`` Rubin alerts of schema ``version`` (lsst-alert-packet's sample alert) with cutouts
    made here: every third a bright point source (difference = science - template), the others
    a faint one; ids ``first_id``, ``first_id + 1``, ..., reliability k/n."""
    out = []
    for k in range(n):
        alert = sample_alert(version)
        src = alert["diaSource"]
        sid = first_id + k
        src["diaSourceId"] = sid
        if "diaSourceId" in alert:
            alert["diaSourceId"] = sid
        src["x"], src["y"] = 100.3 + 40 * k, 200.6
        if "reliability" in src:
            src["reliability"] = k / max(n, 1)
        src["snr"] = 50.0 if k % 3 == 0 else 6.0
        amp = 800.0 if k % 3 == 0 else 60.0
        args = (src["ra"], src["dec"], src["x"], src["y"])
        alert["cutoutScience"] = synthetic_cutout(*args, amp + 200.0, seed + 3 * k)
        alert["cutoutTemplate"] = synthetic_cutout(*args, 200.0, seed + 3 * k + 1)
        alert["cutoutDifference"] = synthetic_cutout(*args, amp, seed + 3 * k + 2)
        out.append(alert)
    return out


def write_synthetic_folder(folder: Path, n: int, version: str = "9.0") -> list[Path]:
    """``n`` single-alert Rubin files in ``folder`` (made here), in name order."""
    folder.mkdir(parents=True, exist_ok=True)
    schema = rubin_schema(version)
    return [write_container(folder / f"alert_{k:03d}.avro", schema, [alert])
            for k, alert in enumerate(synthetic_rubin_alerts(n, version))]
