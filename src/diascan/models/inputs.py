"""What a model package takes as input: stamp size, channel order and preprocessing (no torch).

Every model package (a Rubin TACCNN, ZTF's braai) carries an :class:`InputSpec`, and scoring
cuts and prepares stamps from it, so one scoring path serves every package:

- ``preprocessing="raw"`` (the Rubin rule, rubin-facts.md section 5): a ``size`` x ``size`` box
  centred on the source (corner ``round_half_up(centre) - size // 2``), raw pixel values with
  NaN -> 0 and +-inf -> +-float32 max. A box that does not fit inside the stamp it is cut from is
  refused (:class:`StampMismatch`): padding it would be a guess passed off as a score.
- ``preprocessing="row_l2"`` (ZTF's braai, rubin-facts.md section 7): the survey's stamp whole,
  NaN -> 0, then every ROW divided by its L2 norm as ``tf.keras.utils.normalize`` does (rows of
  norm 0 left alone), then padded at the end (bottom and right) to ``size`` with ``pad_value``
  (1e-9), as ZTF does for stamps clipped at a chip edge.

``channels`` names the frames in the model's channel order (``"science"``, ``"template"``,
``"difference"``); ``stamps`` says which survey's stamps the model was trained on (``"any"``,
``"ztf"``, ``"rubin"``), so alerts of another survey are not scored with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from diascan.stamps import FRAME_ORDER

#: Channel order of the Rubin models (RBTransiNetTask).
RUBIN_CHANNELS = ("difference", "science", "template")

#: Channel order of ZTF's braai.
ZTF_CHANNELS = FRAME_ORDER

PREPROCESSING = ("raw", "row_l2")
STAMP_KINDS = ("any", "ztf", "rubin")

_F32_MAX = float(np.finfo(np.float32).max)


class StampMismatch(ValueError):
    """The stamps of a source cannot be given to a model as its input spec requires."""


@dataclass(frozen=True)
class InputSpec:
    """A model's input: ``size`` x ``size`` stamps, channels in ``channels`` order, preprocessed."""

    size: int
    channels: tuple[str, ...] = RUBIN_CHANNELS
    preprocessing: str = "raw"
    stamps: str = "any"
    pad_value: float | None = None

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"stamp size must be positive, got {self.size}")
        if self.preprocessing not in PREPROCESSING:
            raise ValueError(f"unknown preprocessing {self.preprocessing!r}")
        if self.stamps not in STAMP_KINDS:
            raise ValueError(f"unknown stamp kind {self.stamps!r}")
        unknown = [c for c in self.channels if c not in FRAME_ORDER]
        if unknown:
            raise ValueError(f"unknown channel names {unknown}")

    def describe(self) -> str:
        """One line for ``diascan models``: size, stamps, channel order and preprocessing."""
        kind = {"any": "any stamps", "ztf": "ZTF stamps", "rubin": "Rubin stamps"}[self.stamps]
        prep = (
            "raw pixels (NaN -> 0)"
            if self.preprocessing == "raw"
            else "rows L2-normalised (NaN -> 0)"
        )
        if self.pad_value is not None:
            prep += f", smaller stamps padded with {self.pad_value:g}"
        return f"{self.size}x{self.size}, {kind}, channels {'/'.join(self.channels)}, {prep}"

    def suits(self, survey: str) -> bool:
        """True when the model is meant for stamps of ``survey`` (``"ztf"``, ``"rubin"``)."""
        return self.stamps in ("any", survey)

    # ---------------------------------------------------------------- alert stamps

    def _centre_cut(self, plane: np.ndarray, centre: tuple[float, float] | None) -> np.ndarray:
        """The ``size`` box around ``centre`` (array ``(x, y)``; None: the middle) of ``plane``."""
        ny, nx = plane.shape
        s = self.size
        if ny < s or nx < s:
            raise StampMismatch(
                f"stamps {nx}x{ny} are smaller than the {s}x{s} model input: not scored "
                "(a padded stamp would be a guess)"
            )
        cx, cy = ((nx - 1) / 2.0, (ny - 1) / 2.0) if centre is None else centre
        if not (np.isfinite(cx) and np.isfinite(cy)):
            raise StampMismatch("the source position in the stamp is unknown")
        x0 = int(np.floor(cx + 0.5)) - s // 2
        y0 = int(np.floor(cy + 0.5)) - s // 2
        if x0 < 0 or y0 < 0 or x0 + s > nx or y0 + s > ny:
            raise StampMismatch(
                f"the {s}x{s} box around the source leaves the {nx}x{ny} stamps: not scored"
            )
        return plane[y0 : y0 + s, x0 : x0 + s]

    def prepare(
        self,
        planes: Mapping[str, np.ndarray | None],
        centres: Mapping[str, tuple[float, float] | None] | None = None,
    ) -> np.ndarray:
        """Model input ``(C, size, size)`` float32 from one source's survey stamps by frame name.

        ``centres`` gives the source position ``(x, y)`` in each stamp's array pixels (None: the
        middle; only the centred cut uses it). Raises :class:`StampMismatch` when the stamps
        cannot give the input without guessing pixels.
        """
        missing = [c for c in self.channels if planes.get(c) is None]
        if missing:
            raise StampMismatch(f"no {' or '.join(missing)} stamp")
        centres = centres or {}
        s = self.size
        out = np.empty((len(self.channels), s, s), dtype=np.float32)
        for i, name in enumerate(self.channels):
            plane = np.asarray(planes[name], dtype=np.float32)
            if self.pad_value is None:
                out[i] = self._centre_cut(plane, centres.get(name))
                continue
            # ZTF's order: the stamp as delivered is normalised, then padded at the end.
            ny, nx = plane.shape
            if ny > s or nx > s:
                raise StampMismatch(
                    f"stamps {nx}x{ny} are larger than the {s}x{s} input this model takes whole"
                )
            out[i] = self.pad_value
            out[i, :ny, :nx] = self.normalise(plane)
        return self.normalise(out) if self.pad_value is None else out

    # ---------------------------------------------------------------- normalisation

    def normalise(self, stamps: np.ndarray) -> np.ndarray:
        """Apply the spec's preprocessing to stamps ``(..., H, W)`` (float32, new array)."""
        x = np.nan_to_num(
            np.asarray(stamps, dtype=np.float32), nan=0.0, posinf=_F32_MAX, neginf=-_F32_MAX
        )
        if self.preprocessing == "row_l2":
            # tf.keras.utils.normalize(x, axis=-1, order=2): x / ||row||, rows of norm 0 kept.
            norm = np.linalg.norm(x.astype(np.float64), axis=-1, keepdims=True)
            norm[norm == 0] = 1.0
            x = (x / norm).astype(np.float32)
        return x

    # ---------------------------------------------------------------- visit stamps

    def visit_stamps(self, x, y, difference, science, template) -> np.ndarray:
        """Model input ``(N, C, size, size)`` for sources at parent pixels ``(x, y)`` of a visit
        (:func:`diascan.cutouts.cut_stamps`: the Rubin cut, all-zero outside the science image),
        in this spec's channel order and preprocessing."""
        from diascan.cutouts import cut_stamps

        stamps = cut_stamps(x, y, difference, science, template, size=self.size)
        if self.channels != RUBIN_CHANNELS:
            stamps = stamps[:, [RUBIN_CHANNELS.index(c) for c in self.channels]]
        return stamps if self.preprocessing == "raw" else self.normalise(stamps)


def rubin_spec(input_shape: tuple[int, int, int]) -> InputSpec:
    """The input spec of a meas_transiNet package with meta.yaml ``input_shape`` (H, W, C)."""
    return InputSpec(size=int(input_shape[0]), channels=RUBIN_CHANNELS, preprocessing="raw")


#: ZTF's braai preprocessing (input 63 x 63 x 3).
BRAAI_SPEC = InputSpec(
    size=63, channels=ZTF_CHANNELS, preprocessing="row_l2", stamps="ztf", pad_value=1e-9
)


__all__ = [
    "BRAAI_SPEC",
    "InputSpec",
    "RUBIN_CHANNELS",
    "StampMismatch",
    "ZTF_CHANNELS",
    "rubin_spec",
]
