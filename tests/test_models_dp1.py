"""The real DP1 package reproduces the reference scores of rubin-facts.md section 6."""

from __future__ import annotations

import numpy as np
import pytest

from diascan.models import load_model
from tests._independent import DP1_REFERENCE as REFERENCE
from tests._independent import reference_inputs


@pytest.fixture(scope="module")
def dp1(dp1_model_dir):
    return load_model(dp1_model_dir)


def test_dp1_package_metadata(dp1, dp1_model_dir):
    assert dp1.path == dp1_model_dir
    assert dp1.name == "tac_cnn_comcam_2025-02-18"
    assert dp1.architecture == "TACCNN"
    assert dp1.input_shape == (51, 51, 3)
    assert dp1.scale_factors == (1.0, 1.0, 1.0)
    assert dp1.version == "0.1"
    assert "ComCam" in dp1.description
    assert sum(p.numel() for p in dp1.module.parameters()) == 73_569


@pytest.mark.parametrize("batch_size", [1, 2, 64])
def test_dp1_reference_scores(dp1, batch_size):
    scores = dp1.score_stamps(reference_inputs(), batch_size=batch_size)
    assert scores.dtype == np.float32 and scores.shape == (5,)
    np.testing.assert_allclose(scores, REFERENCE, atol=1e-5, rtol=0)


def test_dp1_loaded_by_name_from_meas_transinet_dir(dp1_model_dir, tmp_path, monkeypatch):
    """A name is looked up in $MEAS_TRANSINET_DIR/model_packages/<name> (here a symlink)."""
    (tmp_path / "model_packages").mkdir()
    (tmp_path / "model_packages" / dp1_model_dir.name).symlink_to(dp1_model_dir)
    monkeypatch.setenv("MEAS_TRANSINET_DIR", str(tmp_path))
    model = load_model(dp1_model_dir.name)
    assert model.name == dp1_model_dir.name
    np.testing.assert_allclose(model.score_stamps(reference_inputs()[:1]), REFERENCE[:1], atol=1e-5)
