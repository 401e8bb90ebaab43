"""Rescoring alerts: a model is used only where its input fits the stamps (the DP1 model's 51 x 51
does not fit Rubin's ~30 x 30 alert stamps), each survey with a model meant for its stamps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from diascan.alerts import open_alerts
from diascan.alerts.scoring import available_models, score_alerts
from diascan.models import load_model
from diascan.models.inputs import StampMismatch
from diascan.models.taccnn import TACCNN, TACCNNConfig


@pytest.fixture(scope="module")
def rubin(shared_dir):
    return open_alerts(shared_dir / "data" / "rubin_alerts" / "rubin_alerts_sample.parquet")


@pytest.fixture(scope="module")
def small_taccnn(tmp_path_factory):
    """A real TACCNN package with a 29 x 29 input (3 x 3 kernels), random weights."""
    pkg = tmp_path_factory.mktemp("models") / "taccnn_29"
    pkg.mkdir()
    torch.manual_seed(0)
    net = TACCNN(TACCNNConfig(kernel=3, input_hw=(29, 29)))
    torch.save({"model_state_dict": net.state_dict()}, pkg / "model.pt")
    meta = {"version": "0", "description": "test", "input_shape": [29, 29, 3]}
    (pkg / "meta.yaml").write_text(yaml.safe_dump(meta))
    return pkg


def test_dp1_model_says_rubin_alert_stamps_are_too_small(rubin, dp1_model_dir):
    dp1 = load_model(dp1_model_dir)
    with pytest.raises(StampMismatch, match="stamps 30x30 are smaller than the 51x51 model input"):
        rubin.model_input(0, dp1.input_spec)
    sizes = [rubin.stamps(i).cutouts["science"].shape[0] for i in range(len(rubin))]
    scores = score_alerts(rubin, [dp1])
    small = np.array(sizes) < 51
    assert small.sum() == 96
    assert np.isnan(scores.score[small]).all()
    assert all("smaller than the 51x51 model input" in scores.note[i] for i in np.where(small)[0])
    assert all(scores.model[i] == "" for i in np.where(small)[0])
    # the stamps large enough (52 to 66 px) are scored with it, from their centred 51 x 51 box
    assert np.isfinite(scores.score[~small]).all()


def test_a_model_whose_input_fits_the_stamps_is_used(rubin, small_taccnn, dp1_model_dir):
    model = load_model(small_taccnn)
    dp1 = load_model(dp1_model_dir)
    idx = list(range(0, 100, 7))
    scores = score_alerts(rubin, [dp1, model], indices=idx)
    for i in idx:
        st = rubin.stamps(i)
        planes = []
        for name in ("difference", "science", "template"):
            cx, cy = st.centres[name]
            x0, y0 = int(np.floor(cx + 0.5)) - 14, int(np.floor(cy + 0.5)) - 14
            planes.append(np.nan_to_num(st.cutouts[name].image[y0 : y0 + 29, x0 : x0 + 29]))
        with torch.inference_mode():
            expected = model.module(torch.from_numpy(np.stack(planes)[None])).item()
        small = st.cutouts["science"].shape[0] < 51
        assert scores.model[i] == ("taccnn_29" if small else dp1.name)
        if small:
            assert scores.score[i] == pytest.approx(expected, abs=1e-6)
    not_asked = [i for i in range(100) if i not in idx]
    assert np.isnan(scores.score[not_asked]).all()


def test_models_are_kept_to_their_survey(shared_dir, rubin, small_taccnn):
    braai = load_model(shared_dir / "data" / "braai_d6_m7")
    with pytest.raises(StampMismatch, match="meant for ZTF stamps, not Rubin ones"):
        rubin.model_input(0, braai.input_spec)
    scores = score_alerts(rubin, [braai], indices=[0, 1])
    assert np.isnan(scores.score[:2]).all() and "braai_d6_m7: meant for ZTF" in scores.note[0]
    assert score_alerts(rubin, [], indices=[0]).note[0] == "no model for RUBIN stamps found"


def test_available_models_by_survey(shared_dir, monkeypatch):
    monkeypatch.delenv("DIASCAN_MODEL_PATH", raising=False)
    monkeypatch.delenv("MEAS_TRANSINET_DIR", raising=False)
    models, notes = available_models({"ztf", "rubin"})
    assert [m.name for m in models] == ["diascan_taccnn_sim_v1"]
    assert "no ZTF model found" in notes[0] and "DIASCAN_MODEL_PATH" in notes[0]
    monkeypatch.setenv("DIASCAN_MODEL_PATH", str(shared_dir / "data"))
    models, notes = available_models({"ztf"})
    assert [m.name for m in models] == ["braai_d6_m7"] and not notes
