"""Expected values computed WITHOUT the code under test (the seam tests, tests/test_seams*.py).

* :func:`stamps` cuts the model's input straight from rubin-facts.md section 5 (a loop over
  sources, plain slicing; not ``diascan.cutouts``);
* :func:`taccnn_scores` runs a TACCNN checkpoint through ``torch.nn.functional`` in float64
  (not ``diascan.models.taccnn`` nor ``ModelPackage.score_stamps``); on the five DP1 reference
  inputs it gives the DP1 reference scores to 1e-6 (tests/test_models_reference.py checks it);
* :func:`separation_arcsec` is the haversine formula in numpy (not astropy's SkyCoord).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: rubin-facts.md section 6: the DP1 model's scores on :func:`reference_inputs` (double
#: precision; agree to 1e-6).
DP1_REFERENCE = [0.4863438, 0.7466753, 0.4382546, 0.0575457, 0.0251055]


def reference_inputs() -> np.ndarray:
    """(5, 3, 51, 51) float32, channels [difference, science, template]: all zeros; (g, g, 0);
    (0, g, g); (-g, 0, g); (c + 1) * 10 * sin(0.3 i + 0.2 j) (rubin-facts.md section 6)."""
    i, j = np.mgrid[0:51, 0:51]
    g = 100.0 * np.exp(-((i - 25.0) ** 2 + (j - 25.0) ** 2) / (2 * 2.0**2))
    z = np.zeros_like(g)
    c = np.arange(3)[:, None, None]
    wave = (c + 1) * 10.0 * np.sin(0.3 * i + 0.2 * j)
    return np.stack(
        [np.stack([z, z, z]), np.stack([g, g, z]), np.stack([z, g, g]), np.stack([-g, z, g]), wave]
    ).astype(np.float32)


def stamps(x, y, difference, science, template, size: int = 51) -> np.ndarray:
    """(N, 3, size, size) float32 in channel order [difference, science, template].

    Corner = round_half_up(v) - size // 2 in parent pixels; all three stamps zero unless the box
    lies entirely inside the science image; NaN -> 0.
    """
    half = size // 2
    out = np.zeros((len(x), 3, size, size), dtype=np.float32)
    sy, sx = science.image.shape
    for k, (xv, yv) in enumerate(zip(np.asarray(x, float), np.asarray(y, float), strict=True)):
        cx, cy = int(np.floor(xv + 0.5)) - half, int(np.floor(yv + 0.5)) - half
        inside = (cx >= science.x0 and cy >= science.y0
                  and cx + size <= science.x0 + sx and cy + size <= science.y0 + sy)
        if not inside:
            continue
        for c, img in enumerate((difference, science, template)):
            r0, c0 = cy - img.y0, cx - img.x0
            out[k, c] = np.asarray(img.image)[r0 : r0 + size, c0 : c0 + size]
    return np.nan_to_num(out, nan=0.0)


def checkpoint_state(package_dir: Path) -> dict:
    """The state dict of a package's one ``*.pt`` (read with torch only)."""
    import torch

    (ckpt,) = sorted(Path(package_dir).glob("*.pt"))
    obj = torch.load(ckpt, weights_only=True, map_location="cpu")
    return obj.get("model_state_dict", obj)


def taccnn_scores(state: dict, x: np.ndarray) -> np.ndarray:
    """Scores (N,) float64 of stamps ``x`` (N, 3, H, W): conv5 -> ReLU -> maxpool2 three times,
    flatten, fc1 -> ReLU -> fc2 -> sigmoid (rubin-facts.md section 6), in double precision."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    t = {k: v.double() for k, v in state.items()}
    h = torch.from_numpy(np.asarray(x, dtype=np.float64))
    with torch.no_grad():
        for i in (1, 2, 3):
            h = F.max_pool2d(F.relu(F.conv2d(h, t[f"conv{i}.weight"], t[f"conv{i}.bias"])), 2)
        h = F.relu(F.linear(h.flatten(1), t["fc1.weight"], t["fc1.bias"]))
        return torch.sigmoid(F.linear(h, t["fc2.weight"], t["fc2.bias"])).reshape(-1).numpy()


def separation_arcsec(ra1, dec1, ra2, dec2) -> np.ndarray:
    """Great-circle separation (haversine), degrees in, arcsec out; broadcasts."""
    r1, d1, r2, d2 = (np.deg2rad(np.asarray(v, dtype=float)) for v in (ra1, dec1, ra2, dec2))
    a = np.sin((d2 - d1) / 2) ** 2 + np.cos(d1) * np.cos(d2) * np.sin((r2 - r1) / 2) ** 2
    return np.rad2deg(2 * np.arcsin(np.sqrt(np.clip(a, 0, 1)))) * 3600.0


def offset_by(ra, dec, east_arcsec: float, north_arcsec: float) -> tuple[float, float]:
    """A position ``east``/``north`` arcsec from (ra, dec) in the local tangent plane."""
    dec2 = dec + north_arcsec / 3600.0
    ra2 = ra + east_arcsec / 3600.0 / np.cos(np.deg2rad(dec))
    return float(ra2), float(dec2)
