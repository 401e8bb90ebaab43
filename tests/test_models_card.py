"""The bundled model's card and metrics.json: the numbers in them are what the code computes."""

from __future__ import annotations

import json
import math
import time

import pytest

from diascan.models import DEFAULT_MODEL_NAME, bundled_models_dir, load_model
from diascan.models.card import (
    DEMO_HEADING,
    DEMO_SEED,
    card_demo_section,
    demo_check_paragraph,
    demo_counts,
    replace_demo_section,
)

DP1_NAME = "tac_cnn_comcam_2025-02-18"


@pytest.fixture(scope="module")
def package_dir():
    return bundled_models_dir() / DEFAULT_MODEL_NAME


@pytest.fixture(scope="module")
def metrics(package_dir):
    return json.loads((package_dir / "metrics.json").read_text())


def test_card_demo_section_is_what_the_code_computes(package_dir, small_demo, dp1_model_dir):
    """The card's "Check on the diascan demo" section equals the function's output on the same
    demo (the small demo of seed 1, which is what the ``small_demo`` fixture generates)."""
    assert DEMO_SEED == 1
    card = (package_dir / "README.md").read_text()
    ours, dp1 = load_model(), load_model(dp1_model_dir)
    section = demo_check_paragraph(ours, dp1, small_demo)
    assert card_demo_section(card) == section
    # The counts behind it are sane: every kind of the demo's truth table is there, once.
    counts = demo_counts([ours], small_demo)[ours.name]
    assert {"transient", "fading_variable", "star_residual", "cosmic_ray"} <= set(counts)
    assert all(0 <= above <= n for above, n, _ in counts.values())


def test_replace_demo_section_inserts_and_replaces():
    card = "# m\n\n## Metrics\n\nx\n\n## Caveats\n\ny\n"
    section = f"{DEMO_HEADING}\n\nfirst"
    once = replace_demo_section(card, section)
    assert once == f"# m\n\n## Metrics\n\nx\n\n{section}\n\n## Caveats\n\ny\n"
    assert card_demo_section(once) == section
    twice = replace_demo_section(once, f"{DEMO_HEADING}\n\nsecond")
    assert card_demo_section(twice) == f"{DEMO_HEADING}\n\nsecond" and "first" not in twice
    assert twice.endswith("## Caveats\n\ny\n")
    assert card_demo_section("# m\n") is None


def test_metrics_json_entries_and_requirements(package_dir, metrics):
    """Both models are recorded; ours meets Rubin's SNR-6 requirement; the card shows these."""
    from diascan.models.training import _row

    m = metrics["metrics"]
    assert set(m) == {DEFAULT_MODEL_NAME, DP1_NAME}
    ours, dp1 = m[DEFAULT_MODEL_NAME], m[DP1_NAME]
    # OSS-REQ-0353: completeness >= 90% with purity >= 95% at SNR 6.
    assert ours["completeness_snr6"] >= 0.9 and ours["purity_snr6"] >= 0.95
    for entry in (ours, dp1):
        for key in ("tpr_negative", "tpr_negative_snr6", "roc_auc", "purity", "completeness"):
            assert math.isfinite(entry[key]) and 0.0 <= entry[key] <= 1.0, key
        assert entry["n_mixed"] == ours["n_mixed"] and entry["n_snr6"] == ours["n_snr6"]
    # Fading variables are real: we find them, the DP1 model (no negatives in training) does not.
    assert ours["tpr_negative"] >= 0.9 and dp1["tpr_negative"] < 0.05
    card = (package_dir / "README.md").read_text()
    for name, entry in m.items():
        assert _row(name, entry) in card, name
    assert f"heldout_sets(seed={metrics['eval_seed']})" in card


def test_recorded_metrics_reproduced_by_rescoring(metrics, dp1_model_dir):
    """Re-simulating the held-out sets from their seed and scoring them with the shipped
    checkpoints gives the recorded figures (at most one stamp flipped by float rounding)."""
    from diascan.models.training import evaluate, heldout_sets

    t0 = time.perf_counter()
    recorded = metrics["metrics"]
    n, n6 = recorded[DEFAULT_MODEL_NAME]["n_mixed"], recorded[DEFAULT_MODEL_NAME]["n_snr6"]
    mixed, snr6 = heldout_sets(metrics["eval_seed"], n=n, n_snr6=n6)
    for spec in (None, dp1_model_dir):
        model = load_model(spec)
        got = evaluate(model.score_stamps, mixed, snr6)
        want = recorded[model.name]
        for key, tol in (
            ("roc_auc", 1e-4), ("purity", 1.5 / n), ("completeness", 1.5 / n),
            ("completeness_snr6", 1.5 / n6), ("purity_snr6", 1.5 / n6),
            ("tpr_negative", 1.5 / n), ("tpr_negative_snr6", 1.5 / n6),
            ("tpr_positive_snr6", 1.5 / n6),
        ):  # fmt: skip
            assert got[key] == pytest.approx(want[key], abs=tol), (model.name, key)
        for kind, entry in want["per_kind"].items():
            assert got["per_kind"][kind]["n"] == entry["n"]
            rate = next(iter(entry.values()))
            assert next(iter(got["per_kind"][kind].values())) == pytest.approx(
                rate, abs=1.5 / entry["n"]
            ), (model.name, kind)
    print(f"re-evaluated both models in {time.perf_counter() - t0:.1f} s")
