"""A model whose output is not N finite numbers in [0, 1] is an error naming the package, and
nothing is written. Real model packages (arch.py + checkpoint + meta.yaml, loaded with
--trust-model-code) whose real torch forward returns NaN, the wrong shape, logits, or raises."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diascan.cli.main import main
from diascan.errors import ModelPackageError
from diascan.models import load_model
from tests._tiny_visit import score_args, tiny_visit

ARCH = '''
import torch
from torch import nn

__all__ = ["Odd"]
MODE = {mode!r}


class Odd(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3 * 51 * 51, 1)

    def forward(self, x):
        p = torch.sigmoid(self.lin(x.flatten(1)))
        if MODE == "nan":
            p[0] = float("nan")
        elif MODE == "inf":
            p[-1] = float("inf")
        elif MODE == "shape":
            p = torch.cat([p, 1 - p], dim=1)  # two classes per stamp
        elif MODE == "logits":
            p = self.lin(x.flatten(1)) * 1e3
        elif MODE == "raises":
            raise RuntimeError("CUDA is not available on this machine")
        elif MODE == "not_tensor":
            p = p.tolist()
        return p
'''

BAD_MODES = {
    "nan": "not finite for 1 of",
    "inf": "not finite for 1 of",
    "shape": "model output has shape",
    "logits": "scores must be in [0, 1]",
    "raises": "the model failed on",
    "not_tensor": "model output is a list",
}


def odd_package(folder, mode: str):
    folder.mkdir(parents=True)
    (folder / "arch.py").write_text(ARCH.format(mode=mode))
    torch.manual_seed(1)
    state = {"lin.weight": torch.randn(1, 3 * 51 * 51) * 1e-2, "lin.bias": torch.zeros(1)}
    torch.save({"model_state_dict": state}, folder / "checkpoint.pt")
    (folder / "meta.yaml").write_text(f"version: '{mode}'\ninput_shape: [51, 51, 3]\n")
    return folder


@pytest.fixture(scope="module")
def visit(tmp_path_factory):
    return tiny_visit(tmp_path_factory.mktemp("visit"))


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("DIASCAN_RESULTS_CACHE", str(tmp_path_factory.getbasetemp() / "rcache"))


def test_a_well_behaved_trusted_model_scores(tmp_path, visit):
    pkg = odd_package(tmp_path / "good", "good")
    model = load_model(pkg, trust_model_code=True)
    s = model.score_stamps(np.random.default_rng(0).normal(0, 50, (9, 3, 51, 51)))
    assert s.shape == (9,) and np.all((s >= 0) & (s <= 1))
    out = tmp_path / "s.parquet"
    args = score_args(visit, out, "--quiet", "--cache", "--model", str(pkg), "--trust-model-code")
    assert main(args) == 0 and out.is_file()


@pytest.mark.parametrize("mode", sorted(BAD_MODES))
def test_bad_output_is_an_error_naming_the_package(tmp_path, mode):
    pkg = odd_package(tmp_path / f"odd_{mode}", mode)
    model = load_model(pkg, trust_model_code=True)
    for n in (1, 5, 70):  # one thread, several, more than a batch of 64
        stamps = np.random.default_rng(n).normal(0, 50, (n, 3, 51, 51)).astype(np.float32)
        with pytest.raises(ModelPackageError) as info:
            model.score_stamps(stamps)
        assert info.value.path == pkg and BAD_MODES[mode] in info.value.problem
    assert torch.get_num_threads() >= 1


@pytest.mark.parametrize("mode", sorted(BAD_MODES))
def test_cli_exit_2_one_line_nothing_written(tmp_path, visit, capsys, mode):
    pkg = odd_package(tmp_path / f"odd_{mode}", mode)
    out = tmp_path / "scores.parquet"
    args = score_args(visit, out, "--quiet", "--cache", "--model", str(pkg), "--trust-model-code")
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"diascan score: error: {pkg}: ") and BAD_MODES[mode] in err[0]
    assert not out.exists() and not list(tmp_path.glob("*.tmp"))
