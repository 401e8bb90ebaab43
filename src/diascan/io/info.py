"""What diascan read from an image file, as data and as text (``diascan info``; the viewer can
show :meth:`FileInfo.text` as is): layout, HDUs used, shape, origin, units, mask planes (bit,
name, description, pixels set), WCS type and centre, metadata and the reader's notes."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.wcs.utils import proj_plane_pixel_scales

from diascan.io.image_data import LAYOUTS, ImageData
from diascan.io.image_reader import read_image


@dataclass(frozen=True)
class PlaneInfo:
    bit: int
    name: str
    description: str
    pixels: int


@dataclass
class FileInfo:
    """A summary of one image as read (see :func:`describe_image`)."""

    path: str
    layout: str
    hdus: list[str]
    shape: tuple[int, int]
    origin: tuple[int, int]
    image_unit: str | None
    variance: str
    mask_dtype: str
    planes: list[PlaneInfo]
    wcs: str
    centre: tuple[float, float] | None
    pixel_scale: float | None  #: arcsec per pixel
    metadata: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        """The block ``diascan info`` prints (one item per line, indented)."""
        ny, nx = self.shape
        x0, y0 = self.origin
        lines = [
            self.path,
            f"  layout     {self.layout}: {LAYOUTS.get(self.layout, self.layout)}",
            *(f"  {'HDUs' if i == 0 else '':<10} {h}" for i, h in enumerate(self.hdus)),
            f"  shape      {nx} x {ny} pixels (x by y)",
            f"  origin     x0 = {x0}, y0 = {y0} (parent bbox x {x0}..{x0 + nx - 1}, "
            f"y {y0}..{y0 + ny - 1})",
            f"  units      image {self.image_unit or 'unknown'}; variance {self.variance}",
        ]
        if self.planes:
            lines.append(f"  mask       {self.mask_dtype}, {len(self.planes)} planes:")
            for p in self.planes:
                desc = f"  {p.description}" if p.description else ""
                lines.append(f"    bit {p.bit:2d}  {p.name:<18} {p.pixels:>10} px{desc}")
        else:
            lines.append(f"  mask       {self.mask_dtype}, no planes defined")
        wcs = self.wcs
        if self.centre is not None:
            wcs += f", centre RA {self.centre[0]:.6f}, Dec {self.centre[1]:.6f} deg"
        if self.pixel_scale is not None:
            wcs += f", {self.pixel_scale:.4f}\"/px"
        lines.append(f"  WCS        {wcs}")
        if self.metadata:
            items = ", ".join(f"{k} = {v!r}" for k, v in self.metadata.items())
            lines.append(f"  metadata   {items}")
        lines += [f"  note       {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``diascan info --json``)."""
        return {
            "path": self.path, "layout": self.layout, "hdus": self.hdus,
            "shape": list(self.shape), "origin": list(self.origin),
            "image_unit": self.image_unit, "variance": self.variance,
            "mask_dtype": self.mask_dtype,
            "planes": [p.__dict__ for p in self.planes], "wcs": self.wcs,
            "centre": list(self.centre) if self.centre else None,
            "pixel_scale": self.pixel_scale,
            "metadata": {k: v if isinstance(v, str | int | float | bool) or v is None else str(v)
                         for k, v in self.metadata.items()},
            "notes": self.notes,
        }  # fmt: skip


def describe_image(img: ImageData) -> FileInfo:
    """The :class:`FileInfo` of an image already read (no file access)."""
    mask = np.asarray(img.mask)
    planes = [
        PlaneInfo(int(bit), name, img.description(name), int(np.count_nonzero(mask & (1 << bit))))
        for name, bit in sorted(img.mask_planes.items(), key=lambda kv: kv[1])
    ]
    unit = img.bunit
    variance = "estimated from the image" if img.variance_estimated else (
        f"({unit})^2" if unit else "unknown unit")  # fmt: skip
    wcs_text, centre, scale = "none (no sky coordinates)", None, None
    if img.has_sky:
        cel = img.wcs.celestial
        ctype = "/".join(str(c) for c in cel.wcs.ctype)
        wcs_text = ctype + (" with SIP distortion" if cel.sip is not None else "")
        ny, nx = img.shape
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ra, dec = cel.pixel_to_world_values((nx - 1) / 2.0, (ny - 1) / 2.0)
            try:
                scales = proj_plane_pixel_scales(cel) * 3600.0
                scale = float(np.sqrt(abs(scales[0] * scales[1])))
            except (ValueError, TypeError):
                scale = None
        centre = (float(ra) % 360.0, float(dec))
    return FileInfo(
        path=str(img.path) if img.path is not None else "(in memory)",
        layout=img.layout,
        hdus=[h.text() for h in img.hdus],
        shape=img.shape,
        origin=(img.x0, img.y0),
        image_unit=unit,
        variance=variance,
        mask_dtype=str(mask.dtype),
        planes=planes,
        wcs=wcs_text,
        centre=centre,
        pixel_scale=scale if scale is not None and np.isfinite(scale) else None,
        metadata=dict(img.metadata),
        notes=list(img.notes),
    )


#: Short names of the layouts, for one-line summaries (the viewer's status bar).
SHORT_LAYOUTS: dict[str, str] = {
    "afw": "afw",
    "afw-exttype": "afw (pre-2021, by EXTTYPE)",
    "afw-position": "afw (HDUs by position)",
    "dp2": "DP2 (lsst.images)",
    "plain": "plain FITS",
    "memory": "in memory",
}


def layout_summary(images: Mapping[str, ImageData | None]) -> str:
    """One line on what was read: ``"DP2 (lsst.images); 2 notes"`` when every image has one
    layout, else ``"afw (science, difference), in memory (template); 1 note"``."""
    roles: dict[str, list[str]] = {}
    n_notes = 0
    for role, img in images.items():
        if img is not None:
            roles.setdefault(img.layout, []).append(role)
            n_notes += len(img.notes)
    names = {lay: SHORT_LAYOUTS.get(lay, lay) for lay in roles}
    if len(roles) == 1:
        parts = list(names.values())
    else:
        parts = [f"{names[lay]} ({', '.join(r)})" for lay, r in roles.items()]
    notes = "no notes" if n_notes == 0 else f"{n_notes} note{'s' if n_notes > 1 else ''}"
    return f"{', '.join(parts)}; {notes}" if parts else "no image"


def describe_images(images: Mapping[str, ImageData | None],
                    input_files: Mapping[str, Any] | None = None) -> dict[str, str]:
    """role -> :meth:`FileInfo.text` of each image (the viewer's File info dialog). An image
    made in memory (a template warped onto the science grid) says which files it came from."""
    files = input_files or {}
    out = {}
    for role, img in images.items():
        if img is None:
            continue
        text = describe_image(img).text()
        if img.path is None:
            made_from = files.get(role) or files.get(f"{role}_patches")
            if made_from:
                paths = made_from if isinstance(made_from, list | tuple) else [made_from]
                text += "\n  made from  " + "\n             ".join(str(p) for p in paths)
        out[role] = text
    return out


def describe(path: str | Path, mask_path: str | Path | None = None) -> FileInfo:
    """Read ``path`` (raises :class:`~diascan.errors.ImageReadError`) and describe it."""
    return describe_image(read_image(path, mask_path=mask_path))


__all__ = ["SHORT_LAYOUTS", "FileInfo", "PlaneInfo", "describe", "describe_image",
           "describe_images", "layout_summary"]
