"""Loading packages (bundled default, by name, trusted arch.py), listing and scoring sources."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import torch

from diascan.cli.main import main
from diascan.cutouts import cut_stamps
from diascan.errors import CatalogReadError, ModelPackageError
from diascan.io.images import ImageData
from diascan.models import DEFAULT_MODEL_NAME, bundled_models_dir, find_model_packages, load_model
from diascan.models.scoring import score_sources
from diascan.models.taccnn import TACCNN
from diascan.models.training import write_package
from diascan.progress import CancelToken

UNKNOWN_ARCH = '''
import torch
from torch import nn


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3 * 51 * 51, 1)

    def forward(self, x):
        return torch.sigmoid(self.lin(torch.flatten(x, 1)))
'''


def test_bundled_default_model():
    model = load_model()
    assert model.name == DEFAULT_MODEL_NAME
    assert model.architecture == "TACCNN"
    assert model.input_shape == (51, 51, 3)
    assert model.path.parent == bundled_models_dir()
    assert (model.path / "arch.py").is_file()
    assert (model.path / "checkpoint.pt").stat().st_size < 1_000_000
    # Loadable by name too.
    assert load_model(DEFAULT_MODEL_NAME).path == model.path
    scores = model.score_stamps(np.zeros((3, 3, 51, 51), np.float32))
    assert scores.shape == (3,) and scores.dtype == np.float32


def test_bundled_arch_py_is_rubin_loadable():
    """Our arch.py, imported as the Rubin pipeline does, gives the same scores as our module."""
    model = load_model()
    import importlib.util

    spec = importlib.util.spec_from_file_location("arch_under_test", model.path / "arch.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    # meas_transiNet takes the single class in __all__, whose direct base is nn.Module.
    assert len(mod.__all__) == 1
    cls = getattr(mod, mod.__all__[0])
    assert torch.nn.Module in cls.__bases__
    net = cls()
    ckpt = torch.load(model.path / "checkpoint.pt", weights_only=True, map_location="cpu")
    net.load_state_dict(ckpt["model_state_dict"], strict=True)
    net.eval()
    x = np.random.default_rng(0).normal(0, 300, (4, 3, 51, 51)).astype(np.float32)
    with torch.inference_mode():
        ref = net(torch.from_numpy(x)).numpy().ravel()
    np.testing.assert_allclose(model.score_stamps(x), ref, atol=1e-6)


def test_unknown_architecture_needs_trust(tmp_path):
    pkg = tmp_path / "tiny"
    pkg.mkdir()
    (pkg / "arch.py").write_text(UNKNOWN_ARCH)
    torch.manual_seed(0)
    state = {"lin.weight": torch.randn(1, 3 * 51 * 51) * 1e-3, "lin.bias": torch.zeros(1)}
    torch.save({"model_state_dict": state}, pkg / "model.pt")
    (pkg / "meta.yaml").write_text("version: 2\ndescription: tiny\ninput_shape: [51, 51, 3]\n")
    with pytest.raises(ModelPackageError, match="unknown model architecture.*--trust-model-code"):
        load_model(pkg)
    model = load_model(pkg, trust_model_code=True)
    assert model.architecture == "Tiny (from arch.py)"
    x = np.ones((2, 3, 51, 51), np.float32)
    expected = torch.sigmoid(torch.tensor(x).flatten(1) @ state["lin.weight"].T).numpy().ravel()
    np.testing.assert_allclose(model.score_stamps(x), expected, rtol=1e-5)
    # Listed as unknown, without running its code.
    info = {i.name: i for i in find_model_packages([tmp_path])}
    assert info["tiny"].architecture.startswith("unknown")


PADDED_ARCH = '''
import torch
from torch import nn

__all__ = ["PadNet"]


class PadNet(nn.Module):
    """TACCNN's layer names, but padded convolutions: fc1 takes 8 x 6 x 6 features."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 5, padding=2)
        self.conv2 = nn.Conv2d(4, 6, 5, padding=2)
        self.conv3 = nn.Conv2d(6, 8, 5, padding=2)
        self.fc1 = nn.Linear(8 * 6 * 6, 5)
        self.fc2 = nn.Linear(5, 1)

    def forward(self, x):
        for conv in (self.conv1, self.conv2, self.conv3):
            x = nn.functional.max_pool2d(torch.relu(conv(x)), 2)
        return torch.sigmoid(self.fc2(torch.relu(self.fc1(torch.flatten(x, 1)))))
'''


def test_taccnn_layer_names_with_other_shapes_need_trust(tmp_path):
    """A non-TACCNN network using TACCNN's layer names loads from its arch.py when trusted."""
    import importlib.util

    pkg = tmp_path / "padded"
    pkg.mkdir()
    (pkg / "arch.py").write_text(PADDED_ARCH)
    spec = importlib.util.spec_from_file_location("padded_arch_ref", pkg / "arch.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.manual_seed(3)
    ref = mod.PadNet().eval()
    torch.save({"model_state_dict": ref.state_dict()}, pkg / "model.pt")
    (pkg / "meta.yaml").write_text("version: 5\ndescription: p\ninput_shape: [51, 51, 3]\n")
    with pytest.raises(ModelPackageError, match=r"fc1 takes 288 features.*--trust-model-code"):
        load_model(pkg)
    model = load_model(pkg, trust_model_code=True)
    assert model.architecture == "PadNet (from arch.py)"
    x = np.random.default_rng(2).normal(0, 50, (3, 3, 51, 51)).astype(np.float32)
    with torch.inference_mode():
        expected = ref(torch.from_numpy(x)).numpy().ravel()
    np.testing.assert_allclose(model.score_stamps(x), expected, rtol=1e-5, atol=1e-7)
    info = {i.name: i for i in find_model_packages([tmp_path])}["padded"]
    assert info.error is None and info.architecture.startswith("unknown (arch.py")
    # Without arch.py there is nothing to trust: the mismatch is the error.
    (pkg / "arch.py").unlink()
    with pytest.raises(ModelPackageError, match="does not fit the TACCNN"):
        load_model(pkg, trust_model_code=True)


CANARY_ARCH = '''
from pathlib import Path

Path(__file__).with_name("canary.txt").write_text("arch.py was imported")

import torch
from torch import nn


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3 * 51 * 51, 1)

    def forward(self, x):
        return torch.sigmoid(self.lin(torch.flatten(x, 1)))
'''


def test_arch_py_of_a_recognised_architecture_is_never_imported(tmp_path):
    """A TACCNN package's arch.py never runs: not on load (trusted or not), not when listed."""
    pkg = write_package(TACCNN(), tmp_path / "taccnn_pkg", version="4", description="d")
    (pkg / "arch.py").write_text(CANARY_ARCH)
    canary = pkg / "canary.txt"
    assert load_model(pkg).architecture == "TACCNN"
    assert load_model(pkg, trust_model_code=True).architecture == "TACCNN"
    assert {i.name: i for i in find_model_packages([pkg])}["taccnn_pkg"].architecture == "TACCNN"
    assert main(["models", str(pkg)]) == 0
    assert not canary.exists()
    # the canary works: an unknown architecture, trusted, runs that very file
    tiny = tmp_path / "tiny_pkg"
    tiny.mkdir()
    (tiny / "arch.py").write_text(CANARY_ARCH)
    state = {"lin.weight": torch.zeros(1, 3 * 51 * 51), "lin.bias": torch.zeros(1)}
    torch.save({"model_state_dict": state}, tiny / "model.pt")
    (tiny / "meta.yaml").write_text("version: 1\ndescription: t\ninput_shape: [51, 51, 3]\n")
    assert not (tiny / "canary.txt").exists()
    load_model(tiny, trust_model_code=True)
    assert (tiny / "canary.txt").read_text() == "arch.py was imported"


def test_package_without_arch_py_loads_when_recognised(tmp_path):
    pkg = write_package(TACCNN(), tmp_path / "noarch", version="3", description="d")
    (pkg / "arch.py").unlink()
    assert load_model(pkg).architecture == "TACCNN"


def test_scale_factors_read_reported_and_never_applied(tmp_path, capsys):
    """As the Rubin pipeline: meta.yaml's input_scale_factor is read, never applied (issue 11)."""
    torch.manual_seed(1)
    pkg = write_package(TACCNN(), tmp_path / "scaled", version="1", description="d")
    plain = load_model(pkg)
    (pkg / "meta.yaml").write_text(
        "version: 1\ninput_shape: [51, 51, 3]\ninput_scale_factor: [2.0, 1.0, 0.5]\n"
    )
    scaled = load_model(pkg)
    assert scaled.scale_factors == (2.0, 1.0, 0.5)
    x = np.random.default_rng(1).normal(0, 100, (3, 3, 51, 51)).astype(np.float32)
    manual = x * np.array([2.0, 1.0, 0.5], np.float32)[None, :, None, None]
    np.testing.assert_array_equal(scaled.score_stamps(x), plain.score_stamps(x))
    # the check can fail: scaling the stamps does change the scores of this network
    assert np.abs(plain.score_stamps(manual) - plain.score_stamps(x)).max() > 1e-4
    assert main(["models", str(pkg)]) == 0
    out = capsys.readouterr().out
    assert "input_scale_factor [2.0, 1.0, 0.5]" in out and "NOT applied" in out
    assert main(["models", str(pkg.parent), "--json"]) == 0
    import json

    rows = json.loads(capsys.readouterr().out)
    assert [r["input_scale_factor"] for r in rows if r["name"] == "scaled"] == [[2.0, 1.0, 0.5]]
    (pkg / "meta.yaml").write_text("version: 1\ninput_shape: [51, 51, 3]\n")
    assert main(["models", str(pkg)]) == 0
    assert "input_scale_factor" not in capsys.readouterr().out  # all 1: nothing to say


def test_find_model_packages_and_cli(tmp_path, monkeypatch, capsys):
    root = tmp_path / "transinet"
    write_package(TACCNN(), root / "model_packages" / "env_pkg", version="7", description="env")
    extra = write_package(TACCNN(), tmp_path / "extra_pkg", version="8", description="extra")
    monkeypatch.setenv("MEAS_TRANSINET_DIR", str(root))
    infos = {i.name: i for i in find_model_packages([extra])}
    assert infos[DEFAULT_MODEL_NAME].source == "bundled"
    assert infos["env_pkg"].source == "MEAS_TRANSINET_DIR" and infos["env_pkg"].version == "7"
    assert infos["extra_pkg"].source == "path" and infos["extra_pkg"].architecture == "TACCNN"
    assert load_model("env_pkg").version == "7"  # by name from $MEAS_TRANSINET_DIR
    assert main(["models", str(extra)]) == 0
    out = capsys.readouterr().out
    assert "env_pkg" in out and "extra_pkg" in out and "version 8" in out and "TACCNN" in out


def _image(arr, x0=0, y0=0):
    return ImageData(image=arr, mask=np.zeros(arr.shape, np.int32),
                     variance=np.ones(arr.shape, np.float32), x0=x0, y0=y0)


def test_score_sources_matches_stamps():
    rng = np.random.default_rng(5)
    sci = _image(rng.normal(0, 300, (200, 220)).astype(np.float32))
    diff = _image(rng.normal(0, 350, (200, 220)).astype(np.float32))
    tmpl = _image(rng.normal(0, 100, (240, 260)).astype(np.float32), -20, -20)
    x = np.array([30.0, 100.4, 10.0, 200.0, 150.5])
    y = np.array([40.0, 100.6, 100.0, 150.0, 174.0])
    model = load_model()
    table = pa.table({"id": np.arange(5), "x": x, "y": y})
    calls = []
    scores = score_sources(model, table, diff, sci, tmpl, progress=lambda *a: calls.append(a))
    ref = model.score_stamps(cut_stamps(x, y, diff, sci, tmpl))
    np.testing.assert_allclose(scores, ref, atol=1e-6)
    zero = model.score_stamps(np.zeros((1, 3, 51, 51), np.float32))[0]
    assert scores[2] == pytest.approx(zero) and scores[3] == pytest.approx(zero)  # border
    assert calls and calls[-1][1] == 1.0
    # A dict of arrays works too; a table without x fails clearly; cancel stops the work.
    np.testing.assert_allclose(score_sources(model, {"x": x, "y": y}, diff, sci, tmpl), scores)
    with pytest.raises(CatalogReadError, match="no column 'x'"):
        score_sources(model, {"y": y}, diff, sci, tmpl)
    token = CancelToken()
    token.cancel()
    from diascan.errors import Cancelled

    with pytest.raises(Cancelled):
        score_sources(model, table, diff, sci, tmpl, cancel=token)


def test_score_sources_reports_every_batch():
    """Per-batch progress: 200 sources in batches of 64 give 4 updates (64, 128, 192, 200)."""
    rng = np.random.default_rng(6)
    sci = _image(rng.normal(0, 300, (200, 220)).astype(np.float32))
    diff = _image(rng.normal(0, 350, (200, 220)).astype(np.float32))
    tmpl = _image(rng.normal(0, 100, (240, 260)).astype(np.float32), -20, -20)
    x, y = rng.uniform(30, 180, 200), rng.uniform(30, 170, 200)
    calls = []
    score_sources(load_model(), {"x": x, "y": y}, diff, sci, tmpl, batch_size=64,
                  progress=lambda *a: calls.append(a))  # fmt: skip
    assert [c[0] for c in calls] == ["score"] * 4
    assert [c[2] for c in calls] == ["64/200", "128/200", "192/200", "200/200"]
    np.testing.assert_allclose([c[1] for c in calls], [0.32, 0.64, 0.96, 1.0])


def test_score_sources_progress_spans_chunks(monkeypatch):
    """Across cut chunks the batch fractions are mapped onto all sources, never going back."""
    import diascan.models.scoring as scoring

    monkeypatch.setattr(scoring, "CHUNK", 100)  # 250 sources: chunks of 100, 100, 50
    rng = np.random.default_rng(7)
    img = _image(rng.normal(0, 300, (200, 220)).astype(np.float32))
    x, y = rng.uniform(30, 180, 250), rng.uniform(30, 170, 250)
    calls = []
    score_sources(load_model(), {"x": x, "y": y}, img, img, img, batch_size=64,
                  progress=lambda *a: calls.append(a))  # fmt: skip
    assert [c[2] for c in calls] == ["64/250", "100/250", "164/250", "200/250", "250/250"]
    assert np.all(np.diff([c[1] for c in calls]) > 0) and calls[-1][1] == 1.0


def test_add_model_options():
    import argparse

    from diascan.cli.models import add_model_options

    p = argparse.ArgumentParser()
    add_model_options(p)
    a = p.parse_args([])
    assert a.model is None and a.trust_model_code is False
    a = p.parse_args(["--model", "x", "--trust-model-code"])
    assert a.model == "x" and a.trust_model_code is True


def test_score_sources_streams_batches_and_cancels(dp1_model_dir):
    """The one scoring loop streams (rows, scores) per batch (the viewer's rescore uses it)."""
    rng = np.random.default_rng(2)
    imgs = [_image(rng.normal(0, 1, (128, 128)).astype(np.float32)) for _ in range(3)]
    x, y = np.array([10.0, 50.0, 90.0, 30.0]), np.array([10.0, 50.0, 90.0, 70.0])
    model = load_model(dp1_model_dir)
    batches = []
    scores = score_sources(model, {"x": x, "y": y}, *imgs, batch_size=3,
                           on_batch=lambda rows, sc: batches.append((list(rows), list(sc))))
    assert [b[0] for b in batches] == [[0, 1, 2], [3]]
    np.testing.assert_allclose(np.concatenate([b[1] for b in batches]), scores)
    np.testing.assert_allclose(scores, model.score_stamps(cut_stamps(x, y, *imgs)), rtol=1e-5)
    token = CancelToken()
    token.cancel()
    from diascan.errors import Cancelled

    with pytest.raises(Cancelled):
        score_sources(model, {"x": x[:1], "y": y[:1]}, *imgs, cancel=token)
