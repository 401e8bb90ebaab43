"""Fuzzed meta.yaml files of a real model package (the bundled checkpoint) through
``diascan models --json`` and loading + scoring: structured documents with values of any type,
and hostile YAML (aliases, tags, deep nesting, several documents, bad bytes). Each example
lists the package with its metadata or with a one-line error, loads or raises one
ModelPackageError line, scores N numbers in [0, 1] when it loads; bounded time and memory."""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from diascan.errors import ModelPackageError
from diascan.models import load_model
from tests.fuzz._harness import Bounds, checksums, run
from tests.fuzz.conftest import EXAMPLES

#: The bundled package (checkpoint, arch.py) whose meta.yaml is fuzzed, in a copy.
BUNDLED = Path(__file__).resolve().parents[2] / "models" / "diascan_taccnn_sim_v1"

scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats()
           | st.text(max_size=10))  # fmt: skip
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=10)
shapes = st.sampled_from([[51, 51, 3]] * 4 + [[51, 51], [0, 51, 3], [51, 51, 4], [10**9, 51, 3],
                                               [51.0, 51, 3], [True, 51, 3], "51x51x3"])
scales = st.sampled_from([[1.0, 1.0, 1.0], [1e30, 1, 1], [".nan", 1, 1], [1, 1], "x", 3, None])

HOSTILE = [
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\nb: [*a,*a,*a,*a,*a,*a]\n',
    "base: &b {input_shape: [51, 51, 3]}\n<<: *b\n",
    "!!python/object/apply:os.system ['true']\n",
    "input_shape: !!python/tuple [51, 51, 3]\n",
    "version: !!binary aGVsbG8=\ninput_shape: [51, 51, 3]\n",
    "input_shape: [51, 51, 3]\n---\ninput_shape: [1, 1, 1]\n",
    "\tinput_shape: [51, 51, 3]\n",
    "input_shape: [51, 51, 3]\nversion: 2026-12-01\n",
    "[" * 5000,
    "{" * 40 + "}" * 40,
    "- " * 3000 + "x\n",
    "input_shape: [51, 51, 3]\ndescription: " + "x" * 60_000 + "\n",
    "input_shape: [51, 51, 3]\nversion: 1" + "0" * 5000 + "\n",
]


@st.composite
def meta_texts(draw):
    kind = draw(st.sampled_from(["structured"] * 3 + ["hostile", "bytes"]))
    if kind == "structured":
        doc = {}
        for key, strategy in (("version", scalars), ("description", values),
                              ("input_shape", shapes | values), ("input_scale_factor", scales),
                              ("extra", values)):  # fmt: skip
            if draw(st.integers(0, 3)) > 0 or key == "input_shape":
                doc[key] = draw(strategy)
        text = yaml.safe_dump(doc, default_flow_style=draw(st.booleans()), allow_unicode=True)
        return text.encode("utf-8")
    if kind == "hostile":
        return draw(st.sampled_from(HOSTILE)).encode()
    prefix = draw(st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff\xfe", b"\x00"]))
    return prefix + b"input_shape: [51, 51, 3]\n" + draw(st.binary(max_size=40))


@pytest.fixture(scope="module", autouse=True)
def _no_bundled(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("DIASCAN_MODELS_DIR", str(tmp_path_factory.mktemp("no_bundled_models")))
    mp.delenv("MEAS_TRANSINET_DIR", raising=False)
    yield
    mp.undo()


def test_fuzz_meta_yaml(tmp_path_factory):
    pkg = tmp_path_factory.mktemp("fuzz_meta") / "pkg"
    shutil.copytree(BUNDLED, pkg)
    (pkg / "README.md").unlink(missing_ok=True)
    bounds = Bounds(["models", "--json", str(pkg)])
    stamps = np.random.default_rng(0).normal(0, 100, (3, 3, 51, 51)).astype(np.float32)
    outcomes: Counter = Counter()

    @given(meta_texts())
    def example(raw):
        (pkg / "meta.yaml").write_bytes(raw)
        inputs = checksums(sorted(pkg.iterdir()))
        outcome = run(["models", "--json", str(pkg)])
        bounds.check(outcome, "models", None, inputs)
        assert outcome.rc == 0
        (entry,) = json.loads(outcome.out)
        assert entry["path"] == str(pkg)
        if entry["error"] is not None:
            assert "\n" not in entry["error"] and entry["error"]
        else:  # TACCNN, or unknown (then only --trust-model-code would run its arch.py)
            assert entry["architecture"] == "TACCNN" or entry["architecture"].startswith("unknown")
            assert len(entry["input_shape"]) == 3 and min(entry["input_shape"]) > 0
        t0 = time.perf_counter()
        try:
            model = load_model(pkg)
        except ModelPackageError as exc:
            assert exc.path == pkg and "\n" not in str(exc)
            outcomes["refused"] += 1
        else:
            assert entry["error"] is None
            scores = model.score_stamps(stamps)
            assert scores.shape == (3,) and np.all((scores >= 0) & (scores <= 1))
            outcomes["loaded"] += 1
        assert time.perf_counter() - t0 < 5.0
        assert checksums(sorted(pkg.iterdir())) == inputs

    example()
    print(f"meta.yaml fuzz outcomes: {dict(outcomes)}")
    if EXAMPLES >= 100:
        assert min(outcomes.values()) > EXAMPLES // 10 and len(outcomes) == 2, outcomes
