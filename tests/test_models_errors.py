"""Bad model packages and bad stamps give clear errors naming the package and the problem."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from diascan.cli.main import main
from diascan.errors import InputError, ModelPackageError
from diascan.models import load_model
from diascan.models.taccnn import TACCNN
from diascan.models.training import write_package


@pytest.fixture
def package(tmp_path):
    torch.manual_seed(0)
    return write_package(TACCNN(), tmp_path / "pkg", version="0.0", description="test")


def _fails(path, *words):
    with pytest.raises(ModelPackageError) as info:
        load_model(path)
    msg = str(info.value)
    assert str(path) in msg
    for w in words:
        assert w in msg, msg
    return msg


def test_good_package_loads(package):
    assert load_model(package).architecture == "TACCNN"


def test_missing_checkpoint(package):
    (package / "checkpoint.pt").unlink()
    _fails(package, "missing checkpoint")


def test_missing_meta(package):
    (package / "meta.yaml").unlink()
    _fails(package, "missing meta.yaml")


def test_extra_checkpoint(package):
    shutil.copy(package / "checkpoint.pt", package / "other.pt")
    _fails(package, "more than one checkpoint", "other.pt")


def test_extra_arch(package):
    shutil.copy(package / "arch.py", package / "arch2.py")
    _fails(package, "more than one architecture file")


def test_missing_package_directory(tmp_path):
    _fails(tmp_path / "nope", "no such model package")


def test_missing_path_is_not_searched_as_a_name(tmp_path, monkeypatch):
    """A spec with a path separator is a path: no "looked ... in /" from joining it onto the
    bundled folder; a bare name names the folders it was looked for in."""
    from pathlib import Path

    from diascan.models import bundled_models_dir

    monkeypatch.setenv("MEAS_TRANSINET_DIR", str(tmp_path / "transinet"))
    for spec in ("/nonexistent", str(tmp_path / "nope"), "./nope", "sub/nope"):
        with pytest.raises(ModelPackageError) as info:
            load_model(spec)
        assert str(info.value) == f"{Path(spec)}: no such model package directory"
    with pytest.raises(ModelPackageError) as info:
        load_model("nope_by_name")
    msg = str(info.value)
    assert msg.startswith("nope_by_name: no such model package")
    assert str(bundled_models_dir()) in msg and str(tmp_path / "transinet" / "model_packages") in msg


def test_cli_missing_model_path_message(small_demo, tmp_path):
    """``diascan score --model /nonexistent``: one line naming the path, exit 2 (run as the
    installed script: importing the score command under capsys would bind its progress stream)."""
    import subprocess
    import sys
    from pathlib import Path

    demo = small_demo
    script = Path(sys.executable).with_name("diascan")
    p = subprocess.run([
        str(script), "score", "--science", str(demo / "science.fits"),
        "--difference", str(demo / "difference.fits"),
        "--template-patches", *map(str, sorted(demo.glob("template_coadd_*.fits"))),
        "--model", "/nonexistent", "--out", str(tmp_path / "o.csv"), "--quiet",
    ], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
    assert "/nonexistent: no such model package directory" in p.stderr
    assert "looked" not in p.stderr


def test_corrupt_checkpoint(package):
    (package / "checkpoint.pt").write_bytes(b"PK\x03\x04 this is not a torch file" * 10)
    _fails(package, "corrupt or unreadable checkpoint checkpoint.pt")


def test_checkpoint_without_state_dict(package):
    torch.save({"epoch": 3}, package / "checkpoint.pt")
    _fails(package, "no model_state_dict")


def test_state_dict_shapes_do_not_fit(package):
    state = TACCNN().state_dict()
    state["conv2.weight"] = torch.zeros(32, 8, 5, 5)  # conv1 gives 16 channels
    torch.save({"model_state_dict": state}, package / "checkpoint.pt")
    _fails(package, "does not fit the TACCNN", "conv2")


def test_older_state_dict_key_accepted(package):
    state = TACCNN().state_dict()
    torch.save({"state_dict": state}, package / "checkpoint.pt")
    assert load_model(package).architecture == "TACCNN"


def test_meta_with_wrong_input_shape(package):
    text = (package / "meta.yaml").read_text().replace("[51, 51, 3]", "[63, 63, 3]")
    (package / "meta.yaml").write_text(text)
    _fails(package, "fc1 takes 256 features", "[63, 63, 3]")


def test_meta_with_malformed_input_shape(package):
    (package / "meta.yaml").write_text("version: 1\ninput_shape: [51, 51]\n")
    _fails(package, "input_shape must be [height, width, channels]")


def test_meta_scale_factors_count(package):
    (package / "meta.yaml").write_text(
        "version: 1\ninput_shape: [51, 51, 3]\ninput_scale_factor: [1, 1]\n"
    )
    _fails(package, "input_scale_factor has 2 values for 3 channels")


def test_meta_not_yaml(package):
    (package / "meta.yaml").write_text("version: [unclosed\n")
    _fails(package, "not valid YAML")


def test_wrong_stamp_size(package):
    model = load_model(package)
    for bad in (np.zeros((2, 3, 63, 63), np.float32), np.zeros((3, 51, 51), np.float32),
                np.zeros((2, 2, 51, 51), np.float32)):
        with pytest.raises(ModelPackageError) as info:
            model.score_stamps(bad)
        assert "do not fit the model input (N, 3, 51, 51)" in str(info.value)
        assert isinstance(info.value, InputError)


def test_cli_bad_package_is_one_line_exit_2(package, capsys):
    (package / "checkpoint.pt").write_bytes(b"garbage")
    rc = main(["train", "--out", str(package.parent / "out"), "--compare", str(package)])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and "corrupt or unreadable checkpoint" in err


def test_cli_models_missing_path_exit_2(tmp_path, capsys):
    assert main(["models", str(tmp_path / "missing")]) == 2
    assert "not a directory" in capsys.readouterr().err
