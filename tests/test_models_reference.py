"""Reference scores on fixed inputs: the DP1 ones of rubin-facts.md and the bundled model's own.

The bundled model's numbers below were computed with the float64 forward pass of
tests/_independent.py (torch.nn.functional on the checkpoint's tensors, not diascan's network
code), which reproduces the published DP1 reference scores to 1e-6; they change only when the
bundled checkpoint does (a retrained model must update them, and its card, on purpose).
"""

from __future__ import annotations

import numpy as np
import pytest

from diascan.models import bundled_models_dir, load_model
from tests import _independent as ind

#: Bundled ``diascan_taccnn_sim_v1`` on ``reference_inputs()`` and on ``reference_inputs() / 10``.
BUNDLED_REFERENCE = [0.2369515, 0.9958417, 0.6260999, 0.9999898, 1.724226e-05,
                     0.2369515, 0.494343, 0.6584829, 0.933526, 0.01774285]


def _inputs() -> np.ndarray:
    x = ind.reference_inputs()
    return np.concatenate([x, x / 10]).astype(np.float32)


def _close(a, b) -> None:
    np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)


def test_independent_forward_pass_gives_the_dp1_reference(dp1_model_dir):
    """Guards the reference path itself: the published DP1 numbers, in double precision."""
    scores = ind.taccnn_scores(ind.checkpoint_state(dp1_model_dir), ind.reference_inputs())
    np.testing.assert_allclose(scores, ind.DP1_REFERENCE, atol=1e-6, rtol=0)


def test_bundled_checkpoint_gives_its_reference_scores():
    pkg = bundled_models_dir() / "diascan_taccnn_sim_v1"
    _close(ind.taccnn_scores(ind.checkpoint_state(pkg), _inputs()), BUNDLED_REFERENCE)


@pytest.mark.parametrize("batch_size", [1, 64])
def test_bundled_model_scores_its_reference(batch_size):
    model = load_model()  # the default: the bundled package
    assert model.name == "diascan_taccnn_sim_v1"
    _close(model.score_stamps(_inputs(), batch_size=batch_size), BUNDLED_REFERENCE)
