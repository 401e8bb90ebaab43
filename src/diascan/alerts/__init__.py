"""Alerts (Qt-free): Rubin and ZTF alert packets read, their stamps decoded, rescored.

- :func:`open_alerts` (:mod:`diascan.alerts.collection`): files and folders of Rubin alerts
  (Avro, lsst.v3 to v11.1, containers in any codec or Confluent wire-format messages) and ZTF
  alerts (Avro, schemas 3.x and 4.x), and broker Parquet tables, as an :class:`AlertCollection`:
  a table of fields (:data:`~diascan.alerts.fields.FIELDS`), notes on what could not be read,
  and stamps decoded on demand (a :class:`~diascan.stamps.StampSource`).
- :func:`score_alerts` (:mod:`diascan.alerts.scoring`): the alerts rescored with model packages
  whose input spec fits their stamps (ZTF's braai for ZTF alerts).
"""

from diascan.alerts.collection import (
    AlertCollection,
    AlertNote,
    AlertStamps,
    alert_files,
    open_alerts,
)
from diascan.alerts.cutouts import Cutout, CutoutError, decode_cutout
from diascan.alerts.fields import FIELDS

__all__ = [
    "FIELDS",
    "AlertCollection",
    "AlertNote",
    "AlertStamps",
    "Cutout",
    "CutoutError",
    "alert_files",
    "decode_cutout",
    "open_alerts",
]
