"""The image API in one place: :class:`ImageData`, :func:`read_image` (and
:func:`read_image_metadata` for the headers alone) and :func:`write_exposure`.

The type, the reader and the writer live in separate modules (:mod:`diascan.io.image_data`,
:mod:`diascan.io.image_reader`, :mod:`diascan.io.image_writer`) that never import this one, so
there is no import cycle; this module only gathers them.
"""

from __future__ import annotations

from diascan.errors import ImageReadError
from diascan.io.header_values import METADATA_KEYS
from diascan.io.image_data import DEFAULT_MASK_PLANES, LAYOUTS, HduUse, ImageData
from diascan.io.image_reader import read_image, read_image_metadata
from diascan.io.image_writer import WRITE_LAYOUTS, write_exposure

__all__ = [
    "DEFAULT_MASK_PLANES",
    "LAYOUTS",
    "METADATA_KEYS",
    "WRITE_LAYOUTS",
    "HduUse",
    "ImageData",
    "ImageReadError",
    "read_image",
    "read_image_metadata",
    "write_exposure",
]
