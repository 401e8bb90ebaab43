"""Butler model-package zips (members checkpoint, architecture, metadata) load like folders."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from diascan.cli.main import main
from diascan.errors import ModelPackageError
from diascan.models import find_model_packages, load_model, package_dirs
from diascan.models.package import ZIP_LIMITS
from tests.test_models_dp1 import REFERENCE, reference_inputs
from tests.test_models_package import UNKNOWN_ARCH

CANARY_ARCH = '''
import pathlib
pathlib.Path(__file__).with_name("ran").touch()
raise RuntimeError("arch.py must not run for a recognised architecture")
'''


def _butler_zip(path, checkpoint: bytes, metadata: str, architecture: str | None = None):
    """A zip as the Butler's storage adapter writes one (ZIP_DEFLATED, three members)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("checkpoint", checkpoint)
        if architecture is not None:
            zf.writestr("architecture", architecture)
        zf.writestr("metadata", metadata)
    return path


@pytest.fixture
def dp1_zip(dp1_model_dir, tmp_path):
    return _butler_zip(
        tmp_path / "tac_cnn_comcam_2025-02-18.zip",
        (dp1_model_dir / "checkpoint.pt").read_bytes(),
        (dp1_model_dir / "meta.yaml").read_text(),
        architecture=CANARY_ARCH,
    )


def test_dp1_zip_scores_like_the_folder_without_running_its_code(dp1_zip, tmp_path):
    model = load_model(dp1_zip)
    assert model.name == "tac_cnn_comcam_2025-02-18" and model.architecture == "TACCNN"
    assert model.version == "0.1" and model.scale_factors == (1.0, 1.0, 1.0)
    np.testing.assert_allclose(model.score_stamps(reference_inputs()), REFERENCE, atol=1e-5)
    assert not (tmp_path / "ran").exists()  # recognised from the state dict: arch not imported


def test_zip_found_by_name_listing_and_cli(dp1_zip, tmp_path, monkeypatch, capsys):
    root = tmp_path / "transinet"
    (root / "model_packages").mkdir(parents=True)
    dp1_zip.rename(root / "model_packages" / dp1_zip.name)
    monkeypatch.setenv("MEAS_TRANSINET_DIR", str(root))
    assert load_model("tac_cnn_comcam_2025-02-18").path.suffix == ".zip"
    found = {p.name: s for p, s in package_dirs()}
    assert found["tac_cnn_comcam_2025-02-18.zip"] == "MEAS_TRANSINET_DIR"
    info = next(i for i in find_model_packages() if i.name == "tac_cnn_comcam_2025-02-18")
    assert info.architecture == "TACCNN" and info.error is None
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert any(r["name"] == "tac_cnn_comcam_2025-02-18" and r["version"] == "0.1" for r in rows)


def test_unknown_architecture_in_zip_needs_trust(tmp_path):
    import io

    import torch

    torch.manual_seed(0)
    state = {"lin.weight": torch.randn(1, 3 * 51 * 51) * 1e-3, "lin.bias": torch.zeros(1)}
    buf = io.BytesIO()
    torch.save({"model_state_dict": state}, buf)
    meta = "version: 2\ndescription: tiny\ninput_shape: [51, 51, 3]\n"
    path = _butler_zip(tmp_path / "tiny.zip", buf.getvalue(), meta, UNKNOWN_ARCH)
    with pytest.raises(ModelPackageError, match="not run unless you pass --trust-model-code"):
        load_model(path)
    model = load_model(path, trust_model_code=True)
    assert model.architecture == "Tiny (from architecture)"
    x = np.random.default_rng(0).normal(0, 1, (2, 3, 51, 51)).astype(np.float32)
    expected = torch.sigmoid(torch.from_numpy(x).flatten(1) @ state["lin.weight"].T).numpy()
    np.testing.assert_allclose(model.score_stamps(x), expected.ravel(), atol=1e-6)


def test_bad_zips_are_clear_errors(dp1_model_dir, tmp_path, monkeypatch):
    ckpt = (dp1_model_dir / "checkpoint.pt").read_bytes()
    meta = (dp1_model_dir / "meta.yaml").read_text()
    cases = {
        "nometa.zip": (lambda p: _butler_zip(p, ckpt, "") and _drop(p, "metadata"), "no member"),
        "nockpt.zip": (lambda p: _butler_zip(p, b"", meta) and _drop(p, "checkpoint"), "no member"),
        "junk.zip": (lambda p: p.write_bytes(b"PK\x03\x04 not a zip at all"), "not a readable"),
        "notorch.zip": (lambda p: _butler_zip(p, b"hello", meta), "corrupt or unreadable"),
        "badyaml.zip": (lambda p: _butler_zip(p, ckpt, "input_shape: [51, 51"), "not valid YAML"),
    }
    for name, (make, fragment) in cases.items():
        path = tmp_path / name
        make(path)
        with pytest.raises(ModelPackageError, match=fragment) as info:
            load_model(path)
        assert str(path) in str(info.value)
    # zip bomb: a member far larger than its limit is refused before it is inflated
    monkeypatch.setitem(ZIP_LIMITS, "metadata", 1000)
    bomb = _butler_zip(tmp_path / "bomb.zip", ckpt, meta + "#" * 10_000_000)
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(ModelPackageError, match="metadata is 10"):
        load_model(bomb)
    # a member whose directory entry lies about its size is cut at the limit all the same
    liar = tmp_path / "liar.zip"
    _butler_zip(liar, ckpt, meta + "#" * 5000)
    raw = bytearray(liar.read_bytes())
    with zipfile.ZipFile(liar) as zf:
        real = zf.getinfo("metadata").file_size
    raw = raw.replace(real.to_bytes(4, "little"), (500).to_bytes(4, "little"))
    liar.write_bytes(bytes(raw))
    with pytest.raises(ModelPackageError) as info:
        load_model(liar)
    assert str(liar) in str(info.value)


def _drop(path, member):
    with zipfile.ZipFile(path) as zf:
        items = [(i, zf.read(i)) for i in zf.infolist() if i.filename != member]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for info, data in items:
            zf.writestr(info, data)
    return path
