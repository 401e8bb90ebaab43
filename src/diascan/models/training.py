"""The bundled model's recipe (a fresh TACCNN trained on simulated stamps), writing
meas_transiNet model packages, and the simulated held-out evaluation of the model card.

:func:`train` is :func:`diascan.models.fit.fit` on :class:`SimulatedStamps`; fine-tuning a
package on labelled stamps from sessions or alerts is :mod:`diascan.models.finetune`, the same
loop on other inputs. :func:`train` is deterministic for a given seed (and thread count): every epoch draws fresh
stamps from :func:`diascan.models.training_data.simulate` with ``default_rng([seed, epoch,
chunk])``, flips them horizontally/vertically at random, and trains with BCE + Adam. Inputs are
scaled by ``1 / INPUT_SCALE`` nJy during training; the scale is folded into ``conv1`` when the
package is written, so the shipped network takes raw nJy stamps like the Rubin models (meta.yaml
scale 1).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml

from diascan.models.fit import Batch, FitConfig, fit, flip_batch
from diascan.models.metrics import roc_auc
from diascan.models.taccnn import TACCNN, TACCNNConfig
from diascan.models.training_data import KIND_NAMES, REAL_KINDS, simulate
from diascan.progress import CancelToken, ProgressCallback

#: Training-time input scale (nJy); folded into conv1 on export.
INPUT_SCALE = 30.0
CHUNK = 1024

_ARCH_TEMPLATE = '''"""TACCNN real/bogus network (diascan), standalone for the Rubin meas_transiNet pipeline.

Input (N, {c}, {h}, {w}) float32 stamps [difference, science, template] in nJy; output (N, 1) scores
in [0, 1] (ends in a sigmoid).{same}
"""

import torch
from torch import nn

# meas_transiNet imports the one class named in __all__ (a direct nn.Module subclass).
__all__ = ["TACCNN"]


class TACCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d({c}, {c1}, {k})
        self.conv2 = nn.Conv2d({c1}, {c2}, {k})
        self.conv3 = nn.Conv2d({c2}, {c3}, {k})
        self.pool = nn.MaxPool2d(2)
        self.drop = nn.Dropout({dropout})
        self.fc1 = nn.Linear({c3} * {fh} * {fw}, {hidden})
        self.fc2 = nn.Linear({hidden}, 1)

    def forward(self, x):
        x = self.drop(self.pool(torch.relu(self.conv1(x))))
        x = self.drop(self.pool(torch.relu(self.conv2(x))))
        x = self.drop(self.pool(torch.relu(self.conv3(x))))
        x = torch.flatten(x, 1)
        return torch.sigmoid(self.fc2(torch.relu(self.fc1(x))))
'''


def arch_py(config: TACCNNConfig | None = None) -> str:
    """The standalone ``arch.py`` of a TACCNN with ``config`` (default: the DP1 shapes)."""
    cfg = config or TACCNNConfig()
    c1, c2, c3 = cfg.channels
    fh, fw = cfg.flat_hw
    same = (
        " Same layer names and shapes as tac_cnn_comcam_2025-02-18."
        if cfg == TACCNNConfig()
        else " Same layer names as tac_cnn_comcam_2025-02-18."
    )
    return _ARCH_TEMPLATE.format(
        c=cfg.in_channels, h=cfg.input_hw[0], w=cfg.input_hw[1], c1=c1, c2=c2, c3=c3,
        k=cfg.kernel, dropout=cfg.dropout, fh=fh, fw=fw, hidden=cfg.hidden, same=same,
    )  # fmt: skip


#: The ``arch.py`` of the bundled model (and of every package with the DP1 shapes).
ARCH_PY = arch_py()


@dataclass
class TrainConfig:
    """Settings of training on simulated stamps (defaults: the shipped model)."""

    seed: int = 1
    n_train: int = 30_000  # fresh stamps per epoch
    epochs: int = 12
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    threads: int = 2
    n_eval: int = 4_000


@dataclass
class TrainResult:
    model: TACCNN
    config: TrainConfig
    seconds: float
    history: list[dict] = field(default_factory=list)


class SimulatedStamps:
    """Fresh simulated stamps every epoch, ``CHUNK`` at a time, flipped at random (the recipe of
    the bundled model: chunk ``c`` of epoch ``e`` is ``simulate(.., default_rng([seed, e, c]))``).
    """

    def __init__(self, n_train: int, seed: int, batch_size: int, input_scale: float) -> None:
        self.n_train, self.seed, self.batch_size = n_train, seed, batch_size
        self.input_scale = input_scale
        self.chunks = max(1, math.ceil(n_train / CHUNK))
        self.steps_per_epoch = self.chunks * math.ceil(CHUNK / batch_size)

    def batches(self, epoch: int, gen: torch.Generator) -> Iterator[Batch]:
        for chunk in range(self.chunks):
            n = min(CHUNK, self.n_train - chunk * CHUNK)
            data = simulate(n, np.random.default_rng([self.seed, epoch, chunk]))
            x = torch.from_numpy(data.stamps) / self.input_scale
            y = torch.from_numpy(data.label)
            for start in range(0, n, self.batch_size):
                yield flip_batch(x[start : start + self.batch_size], gen), \
                    y[start : start + self.batch_size], None


def train(
    config: TrainConfig,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    log=print,
) -> TrainResult:
    """Train a fresh TACCNN on simulated stamps; returns the model with the input scale folded in.

    :func:`fit` on :class:`SimulatedStamps` (one-cycle schedule); fine-tuning a model package on
    labelled stamps is :func:`diascan.models.finetune.finetune`.
    """
    torch.set_num_threads(max(1, config.threads))
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    model = TACCNN(TACCNNConfig())
    source = SimulatedStamps(config.n_train, config.seed, config.batch_size, INPUT_SCALE)
    fitted = fit(
        model, source, FitConfig(config.epochs, config.lr, config.weight_decay), gen=gen,
        progress=progress, cancel=cancel, log=log,
    )  # fmt: skip
    fold_input_scale(model, INPUT_SCALE)
    history = [s.to_json() for s in fitted.history]
    return TrainResult(model, config, fitted.seconds, history)


def fold_input_scale(model: TACCNN, scale: float) -> None:
    """Make ``model(x)`` equal the trained ``model(x / scale)``: conv1 is linear in its input."""
    with torch.no_grad():
        model.conv1.weight /= scale


# --------------------------------------------------------------------------------------------
# Package writing
# --------------------------------------------------------------------------------------------


def write_package(
    model: TACCNN,
    out: Path,
    *,
    version: str,
    description: str,
    epoch: int = 0,
    provenance: dict | None = None,
) -> Path:
    """Write a meas_transiNet package (arch.py, checkpoint.pt, meta.yaml) into ``out``.

    The network takes raw nJy stamps (input scale factors 1: any scale is folded into ``conv1``
    before). ``provenance`` (base model, training data, metrics...) goes into meta.yaml under
    ``provenance:``; the Rubin pipeline reads only the keys it knows.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = model.config
    (out / "arch.py").write_text(arch_py(cfg))
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    torch.save({"epoch": epoch, "model_state_dict": state}, out / "checkpoint.pt")
    meta = {
        "version": version,
        "description": description,
        "input_shape": [*cfg.input_hw, cfg.in_channels],
        "input_scale_factor": [1.0] * cfg.in_channels,
    }
    # Lists in flow style, as in the Rubin packages: input_shape: [51, 51, 3].
    text = "".join(
        f"{k}: {yaml.safe_dump(v, default_flow_style=True, width=1000).strip()}\n"
        if isinstance(v, list)
        else yaml.safe_dump({k: v}, width=1000)
        for k, v in meta.items()
    )
    if provenance:
        text += yaml.safe_dump({"provenance": provenance}, sort_keys=False, width=100)
    (out / "meta.yaml").write_text("# diascan model package (meas_transiNet layout)\n" + text)
    return out


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def heldout_sets(seed: int = 12345, n: int = 4_000, n_snr6: int = 2_000):
    """The held-out simulated sets: a mixed set and a set of real sources at SNR 6."""
    mixed = simulate(n, np.random.default_rng([seed, 999_001]))
    snr6 = simulate(n_snr6, np.random.default_rng([seed, 999_002]), real_fraction=1.0, snr=6.0)
    return mixed, snr6


def evaluate(score_fn, mixed, snr6, threshold: float = 0.5) -> dict:
    """Metrics of ``score_fn(stamps) -> scores`` on the held-out sets.

    Purity at SNR 6 is for a balanced sample: as many bogus (the mixed set's bogus population)
    as real SNR-6 sources.
    """
    s = np.asarray(score_fn(mixed.stamps), dtype=np.float64)
    s6 = np.asarray(score_fn(snr6.stamps), dtype=np.float64)
    lab = mixed.label.astype(bool)
    pred = s >= threshold
    tp, fp = int((pred & lab).sum()), int((pred & ~lab).sum())
    fpr = fp / max(1, int((~lab).sum()))
    comp6 = float((s6 >= threshold).mean())
    tp6 = comp6 * len(s6)
    purity6 = tp6 / (tp6 + fpr * len(s6)) if tp6 > 0 else 0.0
    neg = mixed.negative
    per_kind = {}
    for k, name in enumerate(KIND_NAMES):
        sel = mixed.kind == k
        if sel.any():
            key = "tpr" if name in REAL_KINDS else "fpr"
            per_kind[name] = {key: float(pred[sel].mean()) if key == "tpr" else float(pred[sel].mean()),
                              "n": int(sel.sum())}
    return {
        "n_mixed": len(s),
        "n_snr6": len(s6),
        "roc_auc": roc_auc(s, lab),
        "purity": tp / max(1, tp + fp),
        "completeness": tp / max(1, int(lab.sum())),
        "completeness_snr6": comp6,
        "purity_snr6": purity6,
        "tpr_negative": float(pred[neg].mean()) if neg.any() else float("nan"),
        "tpr_negative_snr6": float((s6[snr6.negative] >= threshold).mean()),
        "tpr_positive_snr6": float((s6[~snr6.negative] >= threshold).mean()),
        "per_kind": per_kind,
    }


def save_metrics(path: Path, metrics: dict, config: TrainConfig | None = None, **extra) -> None:
    """Write metrics (and the training config) as JSON."""
    payload = {"metrics": metrics, **extra}
    if config is not None:
        payload["config"] = asdict(config)
    Path(path).write_text(json.dumps(payload, indent=2))


__all__ = [
    "ARCH_PY",
    "INPUT_SCALE",
    "SimulatedStamps",
    "TrainConfig",
    "TrainResult",
    "arch_py",
    "evaluate",
    "fold_input_scale",
    "heldout_sets",
    "roc_auc",
    "save_metrics",
    "train",
    "write_package",
]


def _row(name: str, m: dict) -> str:
    pct = lambda v: f"{100 * v:.1f}%"  # noqa: E731
    return (
        f"| {name} | {m['roc_auc']:.4f} | {pct(m['purity'])} | {pct(m['completeness'])} | "
        f"{pct(m['purity_snr6'])} | {pct(m['completeness_snr6'])} | {pct(m['tpr_negative'])} |"
    )


def model_card(
    name: str,
    command: str,
    config: TrainConfig,
    seconds: float,
    metrics: dict[str, dict],
    eval_seed: int,
    demo_section: str | None = None,
) -> str:
    """Markdown model card: training data, command, held-out metrics of each model.

    ``demo_section``: the "Check on the diascan demo" section computed by
    :func:`diascan.models.card.demo_check_paragraph`, put before the caveats; without it the card
    has none (``python -m diascan.models.card --write`` adds it to a written card).
    """
    rows = "\n".join(_row(k, v) for k, v in metrics.items())
    kinds = sorted({k for m in metrics.values() for k in m["per_kind"]}, key=KIND_NAMES.index)
    head = " | ".join(metrics)
    kind_rows = "\n".join(
        f"| {k} | {'real (TPR)' if k in REAL_KINDS else 'bogus (FPR)'} | "
        + " | ".join(
            f"{100 * next(iter(m['per_kind'][k].values())):.1f}%" if k in m["per_kind"] else "-"
            for m in metrics.values()
        )
        + " |"
        for k in kinds
    )
    first = next(iter(metrics.values()))
    return f"""# {name}

TACCNN real/bogus classifier (same architecture and state-dict layout as the Rubin DP1 model
`tac_cnn_comcam_2025-02-18`, 73,569 parameters), trained by diascan on simulated stamps. Package
in the meas_transiNet layout: `arch.py` (standalone, importable by the Rubin pipeline),
`checkpoint.pt` (`model_state_dict`), `meta.yaml` (input 51 x 51 x 3, scale factors 1: raw nJy
stamps [difference, science, template] exactly as cut by the Rubin rule).

## Training data

Simulated by `diascan.models.training_data.simulate`, fresh stamps every epoch
(`{config.n_train}` per epoch, {config.epochs} epochs, half real, half bogus):
sky-subtracted science with noise 6-150 nJy/pixel (log-uniform), PSF sigma 1.5-4.5 px
(double Gaussian),
template 0.3-0.6 times as noisy with a 0.65-1.0 times narrower PSF, difference = science -
PSF-matched template (correlated noise), field stars and galaxies, Poisson noise of bright objects.

- real: PSF point sources on empty sky, on galaxies and on stars (variable stars), 40% of them
  with NEGATIVE flux (present in the template, gone now); trailed asteroids (0-12 px).
  SNR log-uniform 4-300 with a 10% tail to 3000.
- bogus: bright-star subtraction residuals (0.5-100% of the star left with a 5-30% PSF-width
  mismatch), dipoles from
  misregistration (0.03-1.2 px) of stars and galaxies, cosmic rays, hot pixels, bad columns/rows,
  no-data edges in science or template, NaN rows/columns (zeros after NaN -> 0), noise peaks.
- augmentation: random horizontal and vertical flips. Loss BCE, Adam (lr {config.lr}, one-cycle,
  weight decay {config.weight_decay}), batch {config.batch_size}, seed {config.seed}.

Command (wall time {seconds / 60:.1f} min on {config.threads} CPU threads, shared machine):

    {command}

## Metrics on a held-out simulated set

Held-out set: `diascan.models.training.heldout_sets(seed={eval_seed})`, never used for training:
{first['n_mixed']} mixed stamps (half real, half bogus) and {first['n_snr6']} real sources at SNR
exactly 6 (purity at SNR 6 is for as many bogus stamps as real ones, from the mixed set's bogus
population). Threshold 0.5. The figures are in `metrics.json`; `tests/test_models_card.py`
re-simulates the held-out sets from the seed, re-scores them with both checkpoints (~10 s) and
checks that it gets these figures.

| model | ROC AUC | purity | completeness | purity SNR 6 | completeness SNR 6 | TPR negative |
|---|---|---|---|---|---|---|
{rows}

Rubin requirement OSS-REQ-0353: completeness >= 90% with purity >= 95% at SNR 6.

Per kind (true-positive rate for real kinds, false-positive rate for bogus kinds):

| kind | class | {head} |
|---|---|{'---|' * len(metrics)}
{kind_rows}

{demo_section.rstrip() + chr(10) + chr(10) if demo_section else ""}## Caveats

Simulated data only: the numbers say how well each model separates OUR simulated populations,
not how it does on real Rubin detections. All-zero stamps (sources near the border, per the Rubin
cutout rule) were not part of training; their score carries no information.
"""


__all__ += ["model_card"]
