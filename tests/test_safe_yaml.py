"""Untrusted YAML stays small: a 1 kB "billion laughs" meta.yaml costs under a second and
100 MB in ``diascan models`` and in scoring (it cost 85 s / 8.5 GB and 41 s / 3.5 GB before);
bad YAML is one line with its position."""

from __future__ import annotations

import shutil
import time
import tracemalloc

import pytest

from diascan.cli.main import main
from diascan.errors import ModelPackageError
from diascan.models import bundled_models_dir, load_model
from diascan.safe_yaml import MAX_YAML_BYTES, UnsafeYAMLError, load_yaml
from tests._tiny_visit import score_args, tiny_visit

LAUGHS = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{c}: &{c} [{','.join(['*' + p] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)]
    + ['version: "1"', "description: *i", "input_shape: [51, 51, 3]", ""]
)


@pytest.fixture
def laughing_package(tmp_path):
    pkg = tmp_path / "laughs"
    shutil.copytree(bundled_models_dir() / "diascan_taccnn_sim_v1", pkg)
    (pkg / "meta.yaml").write_text(LAUGHS)
    assert len(LAUGHS) < 1024
    return pkg


def cost(fn):
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        result = fn()
    finally:
        seconds = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return result, seconds, peak


def test_models_listing_of_a_billion_laughs(laughing_package, capsys):
    assert main(["models"]) == 0  # imports (torch) first: the cost measured is the package's
    capsys.readouterr()
    rc, seconds, peak = cost(lambda: main(["models", str(laughing_package)]))
    assert rc == 0 and seconds < 1.0 and peak < 100e6
    out = capsys.readouterr().out
    assert "ERROR: meta.yaml is not valid YAML: YAML aliases (*name) are not accepted" in out


def test_scoring_with_a_billion_laughs(laughing_package, tmp_path, capsys, monkeypatch):
    load_model(None)  # imports first
    _, seconds, peak = cost(lambda: pytest.raises(ModelPackageError, load_model, laughing_package))
    assert seconds < 1.0 and peak < 100e6
    monkeypatch.setenv("DIASCAN_RESULTS_CACHE", str(tmp_path / "rcache"))
    visit = tiny_visit(tmp_path / "visit")
    out = tmp_path / "s.parquet"
    rc, seconds, peak = cost(lambda: main(score_args(visit, out, "--quiet", "--model",
                                                     str(laughing_package))))  # fmt: skip
    assert rc == 2 and peak < 100e6 and not out.exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{laughing_package}: meta.yaml is not valid YAML" in err[0]


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("a: [1, 2\nb: 3\n", "line 2"),
        ("a: b: c\n", "mapping values are not allowed"),
        ("a: b: c\n", "(line 1, column 5)"),
        ("x: &x 1\ny: *x\n", "YAML aliases (*name) are not accepted (line 2, column 4)"),
        ("<<: *base\n", "aliases"),
        ("[" * 100_000, "nest"),
        ("[" * 40 + "]" * 40, "nested more than 32 levels deep"),
        ("!!python/object:os.system {}\n", "could not determine a constructor"),
        ("a: 1\n" * (MAX_YAML_BYTES // 4), "larger than"),
    ],
)
def test_bad_yaml_is_one_line(text, fragment):
    t0 = time.perf_counter()
    with pytest.raises(UnsafeYAMLError) as info:
        load_yaml(text[:MAX_YAML_BYTES] if "nest" in fragment else text)
    assert time.perf_counter() - t0 < 1.0
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_plain_yaml_still_loads():
    assert load_yaml("version: '1.0'\ninput_shape: [51, 51, 3]\nx: &anchor 5\n") == {
        "version": "1.0", "input_shape": [51, 51, 3], "x": 5}
    assert load_model(None).input_shape == (51, 51, 3)


@pytest.mark.parametrize(
    "meta, fragment",
    [
        ("input_shape: [1000000000, 1000000000, 3]\n", "input_shape must be"),
        ("input_shape: [51, 51, 3]\ninput_scale_factor: [.nan, 1, 1]\n", "bad input_scale_factor"),
        ("input_shape: [51, 51, 3]\ninput_scale_factor: 5\n", "bad input_scale_factor"),
        ("- 1\n- 2\n", "is not a mapping"),
    ],
)
def test_meta_values_out_of_range(tmp_path, meta, fragment):
    pkg = tmp_path / "pkg"
    shutil.copytree(bundled_models_dir() / "diascan_taccnn_sim_v1", pkg)
    (pkg / "meta.yaml").write_text(meta)
    with pytest.raises(ModelPackageError, match=fragment):
        load_model(pkg)
