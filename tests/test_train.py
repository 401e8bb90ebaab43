"""Stamp simulator and a tiny training smoke run writing a loadable package."""

from __future__ import annotations

import json

import numpy as np
import torch

from diascan.cli.main import main
from diascan.models import load_model
from diascan.models.training import TrainConfig, roc_auc, train
from diascan.models.training_data import BOGUS_KINDS, KIND_NAMES, REAL_KINDS, simulate


def test_simulator_is_deterministic_and_sane():
    a = simulate(300, np.random.default_rng([7, 1]))
    b = simulate(300, np.random.default_rng([7, 1]))
    np.testing.assert_array_equal(a.stamps, b.stamps)
    assert a.stamps.shape == (300, 3, 51, 51) and a.stamps.dtype == np.float32
    assert np.isfinite(a.stamps).all()
    kinds = {KIND_NAMES[k] for k in a.kind}
    assert kinds & set(REAL_KINDS) and kinds & set(BOGUS_KINDS)
    assert set(np.unique(a.label)) == {0.0, 1.0}
    assert np.array_equal(a.label == 1, ~np.isnan(a.snr))
    # Science noise in the Rubin-like range (robust sigma of a corner of the science stamps).
    corner = a.stamps[:, 1, :8, :8]
    sigma = 1.4826 * np.median(np.abs(corner - np.median(corner)))
    assert 5 < sigma < 160


def test_negative_real_sources_are_negative_in_difference():
    s = simulate(400, np.random.default_rng(3), real_fraction=1.0, snr=30.0, kinds=("point_sky",))
    assert s.negative.any() and (~s.negative).any()
    centre = s.stamps[:, 0, 23:28, 23:28].sum(axis=(1, 2))
    assert (centre[s.negative] < 0).mean() > 0.95
    assert (centre[~s.negative] > 0).mean() > 0.95
    # A fading source is in the template, not in the science image.
    tmpl_centre = s.stamps[:, 2, 23:28, 23:28].sum(axis=(1, 2))
    assert np.median(tmpl_centre[s.negative]) > 5 * abs(np.median(tmpl_centre[~s.negative]))


def test_roc_auc():
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == 1.0
    assert roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), np.array([0, 0, 1, 1])) == 0.0
    assert roc_auc(np.array([0.5, 0.5]), np.array([0, 1])) == 0.5


def test_training_is_deterministic():
    cfg = TrainConfig(seed=3, n_train=256, epochs=1, batch_size=64, threads=1)
    a = train(cfg, log=lambda m: None).model.state_dict()
    b = train(cfg, log=lambda m: None).model.state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_train_cli_writes_loadable_package(tmp_path, capsys):
    out = tmp_path / "tiny_model"
    rc = main(["train", "--out", str(out), "--seed", "2", "--n-train", "300", "--epochs", "1",
               "--n-eval", "200", "--card", "--threads", "1"])
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md", "arch.py", "checkpoint.pt", "meta.yaml", "metrics.json"
    ]
    assert (out / "checkpoint.pt").stat().st_size < 1_000_000
    model = load_model(out)
    assert model.architecture == "TACCNN" and model.version == "1.0"
    scores = model.score_stamps(simulate(20, np.random.default_rng(0)).stamps)
    assert scores.shape == (20,) and ((scores >= 0) & (scores <= 1)).all()
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]["tiny_model"]
    assert 0.0 <= metrics["roc_auc"] <= 1.0
    assert "ROC AUC" in (out / "README.md").read_text()
    # Refuses to overwrite without --force.
    assert main(["train", "--out", str(out), "--n-train", "10", "--epochs", "1"]) == 2


def test_train_card_with_compare_has_the_demo_check(tmp_path):
    """``--card --compare PKG`` writes the demo-check section, as the card module computes it."""
    from diascan.models.card import card_demo_section, demo_check_paragraph

    bundled = load_model()
    out = tmp_path / "tiny_cmp"
    rc = main(["train", "--out", str(out), "--seed", "2", "--n-train", "300", "--epochs", "1",
               "--n-eval", "100", "--card", "--threads", "1", "--compare", str(bundled.path)])
    assert rc == 0
    section = card_demo_section((out / "README.md").read_text())
    assert section is not None
    assert section == demo_check_paragraph(load_model(out), bundled).rstrip()
