"""The training loop as a function of its inputs: the simulator recipe stays bit-identical,
training improves a held-out metric, metrics and the fine-tuning pieces do what they say."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

from diascan.learn.order import uncertain_first, uncertainty
from diascan.models import load_model
from diascan.models.finetune import FinetuneConfig, dihedral_batch, finetune
from diascan.models.labelled import (
    LabelledStamps,
    balanced_weights,
    check_label_counts,
    stratified_split,
)
from diascan.models.metrics import binary_metrics, counts_at, roc_auc, roc_curve
from diascan.models.taccnn import TACCNN, TACCNNConfig
from diascan.models.training import (
    INPUT_SCALE,
    TrainConfig,
    fold_input_scale,
    train,
    write_package,
)
from diascan.models.training_data import simulate

# --------------------------------------------------------------------------------------------
# The bundled model's recipe, unchanged
# --------------------------------------------------------------------------------------------


def _reference_train(cfg: TrainConfig, chunk: int) -> TACCNN:
    """The simulator training loop as it was before training became ``fit`` + a batch source
    (``diascan.models.training.train`` at commit 60cfbc4, which made the bundled
    checkpoint), kept verbatim here as the reference the new code must reproduce bit for bit."""
    torch.set_num_threads(max(1, cfg.threads))
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = TACCNN(TACCNNConfig())
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    chunks = max(1, math.ceil(cfg.n_train / chunk))
    total_steps = cfg.epochs * chunks
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=total_steps * math.ceil(chunk / cfg.batch_size) + 1
    )
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def flip(x):
        n = x.shape[0]
        h = torch.rand(n, generator=gen) < 0.5
        v = torch.rand(n, generator=gen) < 0.5
        x = x.clone()
        x[h] = torch.flip(x[h], dims=[3])
        x[v] = torch.flip(x[v], dims=[2])
        return x

    for epoch in range(cfg.epochs):
        model.train()
        for c in range(chunks):
            n = min(chunk, cfg.n_train - c * chunk)
            data = simulate(n, np.random.default_rng([cfg.seed, epoch, c]))
            x = torch.from_numpy(data.stamps) / INPUT_SCALE
            y = torch.from_numpy(data.label)
            for start in range(0, n, cfg.batch_size):
                xb = flip(x[start : start + cfg.batch_size])
                yb = y[start : start + cfg.batch_size]
                opt.zero_grad()
                loss = loss_fn(model.logits(xb).squeeze(1), yb)
                loss.backward()
                opt.step()
                sched.step()
    model.eval()
    with torch.no_grad():
        model.conv1.weight /= INPUT_SCALE
    return model


def _checkpoint_bytes(model: TACCNN) -> bytes:
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    buf = io.BytesIO()
    torch.save({"epoch": 2, "model_state_dict": state}, buf)
    return buf.getvalue()


def test_simulator_training_is_bit_identical_to_the_original_loop(monkeypatch):
    """``train`` (now ``fit`` on ``SimulatedStamps``) gives the checkpoint bytes of the loop that
    made the bundled model: 3 chunks of 128 stamps (one short), 2 epochs, one-cycle schedule."""
    import diascan.models.training as training

    monkeypatch.setattr(training, "CHUNK", 128)
    cfg = TrainConfig(seed=5, n_train=300, epochs=2, batch_size=64, threads=1)
    ours = train(cfg, log=lambda m: None).model
    ref = _reference_train(cfg, chunk=128)
    assert _checkpoint_bytes(ours) == _checkpoint_bytes(ref)


def _pairwise_auc(scores, labels) -> float:
    """ROC AUC by counting ordered (real, bogus) pairs: a second implementation, independent of
    the rank formula in ``diascan.models.metrics``."""
    s, y = np.asarray(scores, np.float64), np.asarray(labels).astype(bool)
    real, bogus = s[y][:, None], s[~y][None, :]
    return float(((real > bogus).sum() + 0.5 * (real == bogus).sum()) / (real.size * bogus.size))


def test_training_improves_heldout_auc_over_the_untrained_network(tmp_path):
    """Fine-tuning (the entry point that takes stamps, labels and a base package) must separate
    a held-out simulated set (other seeds) far better than the untrained network it starts
    from: a fresh TACCNN (seeded), packaged as ``train`` would ship it."""
    torch.manual_seed(4)
    fresh = TACCNN(TACCNNConfig()).eval()
    fold_input_scale(fresh, INPUT_SCALE)
    base = load_model(write_package(fresh, tmp_path / "untrained", version="0", description="-"))
    kinds = ("point_sky", "point_galaxy", "hot_pixel", "cosmic_ray", "bad_column", "dipole")
    labelled = simulate(300, np.random.default_rng([11, 1]), kinds=kinds)
    held = simulate(200, np.random.default_rng([11, 2]), kinds=kinds)
    data = LabelledStamps(labelled.stamps, labelled.label, np.zeros(len(labelled)))
    cfg = FinetuneConfig(seed=2, lr=2e-3, epochs=10, patience=10, threads=1)
    tuned = finetune(base, data, cfg).model
    before = base.score_stamps(held.stamps)
    with torch.no_grad():
        after = tuned(torch.from_numpy(held.stamps)).numpy().ravel()
    auc_before, auc_after = _pairwise_auc(before, held.label), _pairwise_auc(after, held.label)
    assert auc_after > 0.75, (auc_before, auc_after)
    assert auc_after > auc_before + 0.2, (auc_before, auc_after)


# --------------------------------------------------------------------------------------------
# Metrics, checked against values worked out by hand
# --------------------------------------------------------------------------------------------


def test_roc_auc_and_curve_by_hand():
    scores = np.array([0.9, 0.8, 0.8, 0.6, 0.3, 0.1])
    labels = np.array([1, 1, 0, 1, 0, 0])
    # Pairs (real, bogus): 3 x 3 = 9; real 0.9 beats all 3, 0.8 beats 2 and ties 1, 0.6 beats 2.
    assert roc_auc(scores, labels) == pytest.approx((3 + 2.5 + 2) / 9)
    assert roc_auc(scores, labels) == pytest.approx(_pairwise_auc(scores, labels))
    fpr, tpr = roc_curve(scores, labels)
    # Thresholds 0.9, 0.8 (one real and one bogus cross together), 0.6, 0.3, 0.1.
    np.testing.assert_allclose(fpr, [0, 0, 1 / 3, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(tpr, [0, 1 / 3, 2 / 3, 1, 1, 1])
    # The area under the curve's points (trapezoids) is the AUC.
    assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc(scores, labels))


def test_counts_and_binary_metrics_by_hand():
    scores = np.array([0.95, 0.7, 0.5, 0.4, 0.2, 0.55])
    labels = np.array([1, 1, 1, 0, 0, 0])
    c = counts_at(scores, labels, 0.5)  # called real: 0.95, 0.7, 0.5 (>=), 0.55
    assert (c.tp, c.fp, c.tn, c.fn) == (3, 1, 2, 0)
    assert c.purity == 0.75 and c.completeness == 1.0
    m = binary_metrics(scores, labels, thresholds=(0.5, 0.8, 0.5))
    assert [t.threshold for t in m.thresholds] == [0.5, 0.8]
    hi = m.at(0.8)
    assert (hi.tp, hi.fp, hi.tn, hi.fn) == (1, 0, 3, 2) and hi.purity == 1.0
    assert hi.completeness == pytest.approx(1 / 3)
    assert math.isnan(counts_at(scores, labels, 0.99).purity)  # nothing called real
    js = m.to_json()
    assert js["n_real"] == 3 and js["n_bogus"] == 3 and js["thresholds"][1]["fn"] == 2
    assert js["roc"]["fpr"][0] == 0 and js["roc"]["tpr"][-1] == 1


# --------------------------------------------------------------------------------------------
# Fine-tuning pieces
# --------------------------------------------------------------------------------------------


def test_stratified_split_holds_out_every_visit_and_class():
    rng = np.random.default_rng(0)
    groups = np.repeat([0, 1, 2], [40, 60, 20])
    labels = (rng.random(groups.size) < 0.4).astype(np.float32)
    train_idx, held = stratified_split(labels, groups, 0.25, seed=3)
    assert np.intersect1d(train_idx, held).size == 0
    assert np.array_equal(np.sort(np.r_[train_idx, held]), np.arange(groups.size))
    for g in range(3):
        for lab in (0, 1):
            cell = np.flatnonzero((groups == g) & (labels == lab))
            n_held = np.isin(cell, held).sum()
            assert n_held == max(1, round(0.25 * cell.size)), (g, lab)
            assert n_held < cell.size
    again = stratified_split(labels, groups, 0.25, seed=3)
    assert np.array_equal(again[1], held)
    assert not np.array_equal(stratified_split(labels, groups, 0.25, seed=4)[1], held)


def test_balanced_weights_give_each_class_the_same_weight():
    labels = np.array([1, 0, 0, 0, 0, 0, 1, 0])
    w = balanced_weights(labels)
    assert w[labels == 1].sum() == pytest.approx(w[labels == 0].sum())
    assert w.mean() == pytest.approx(1.0)


def test_dihedral_augmentation_draws_the_eight_symmetries():
    base = torch.arange(2 * 5 * 5, dtype=torch.float32).reshape(1, 2, 5, 5)
    symmetries = []
    for k in range(4):
        r = torch.rot90(base, k, dims=(2, 3))
        symmetries += [r, torch.flip(r, dims=[3])]
    x = base.repeat(400, 1, 1, 1)
    out = dihedral_batch(x, torch.Generator().manual_seed(0))
    seen = [next(i for i, s in enumerate(symmetries) if torch.equal(o[None], s)) for o in out]
    assert set(seen) == set(range(8))  # every symmetry, nothing else (next() would raise)
    assert torch.equal(x, base.repeat(400, 1, 1, 1))  # the input is left alone


def test_too_few_labels_are_refused_with_the_counts():
    check_label_counts(30, 30)
    with pytest.raises(Exception, match="29 real and 40 bogus.*at least 30"):
        check_label_counts(29, 40)
    data = LabelledStamps(np.zeros((3, 3, 51, 51), np.float32), [1, 0, 1], [0, 0, 1])
    assert (data.n_real, data.n_bogus) == (2, 1)
    with pytest.raises(ValueError):
        LabelledStamps(np.zeros((3, 3, 51, 51), np.float32), [1, 0], [0, 0])


def test_uncertain_first():
    scores = [0.9, 0.52, None, 0.1, 0.45, 0.5]
    assert list(uncertain_first(scores)) == [5, 1, 4, 0, 3, 2]  # ties (0.9, 0.1) keep order
    other = [0.2, 0.5, 0.3, 0.15, float("nan"), 0.9]
    # Disagreement |a - b|: 0.7, 0.02, nan, 0.05, nan, 0.4 -> unscored last, in their order.
    assert list(uncertain_first(scores, other)) == [0, 5, 3, 1, 2, 4]
    np.testing.assert_allclose(uncertainty([0.0, 0.25, 1.0]), [0.0, 0.25, 0.0])
    with pytest.raises(ValueError):
        uncertain_first([0.1, 0.2], [0.3])
