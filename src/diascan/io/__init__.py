"""Reading and writing images and source catalogs (Qt-free).

The names below are imported from their modules on first use (PEP 562 ``__getattr__``):
``from diascan.io.image_reader import read_image`` then costs astropy.io.fits and astropy.wcs
only, not pyarrow and astropy.table, which ``diascan score`` needs later (it imports them in
the background while the images are read).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from diascan.io.catalogs import read_catalog
    from diascan.io.images import ImageData, read_image, read_image_metadata, write_exposure
    from diascan.io.tables import read_table, write_table

#: Public name -> the module that defines it.
_WHERE = {
    "read_catalog": "diascan.io.catalogs",
    "ImageData": "diascan.io.images",
    "read_image": "diascan.io.images",
    "read_image_metadata": "diascan.io.images",
    "write_exposure": "diascan.io.images",
    "read_table": "diascan.io.tables",
    "write_table": "diascan.io.tables",
}

__all__ = [
    "ImageData",
    "read_catalog",
    "read_image",
    "read_image_metadata",
    "read_table",
    "write_exposure",
    "write_table",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'diascan.io' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
