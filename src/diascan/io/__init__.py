"""Reading and writing images and source catalogs (Qt-free)."""

from diascan.io.catalogs import read_catalog
from diascan.io.images import ImageData, read_image, read_image_metadata, write_exposure
from diascan.io.tables import read_table, write_table

__all__ = [
    "ImageData",
    "read_catalog",
    "read_image",
    "read_image_metadata",
    "read_table",
    "write_exposure",
    "write_table",
]
