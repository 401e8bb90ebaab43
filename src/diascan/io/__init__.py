"""Reading and writing images and source catalogs (Qt-free)."""

from diascan.io.images import ImageData, read_image, write_exposure

__all__ = ["ImageData", "read_image", "write_exposure"]
