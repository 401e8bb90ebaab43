"""The fuzz suite's hypothesis profile: reproducible in CI, nothing written into the repo.

``DIASCAN_FUZZ_EXAMPLES`` sets the examples per target (default 300, the number ``make test``
runs); examples are derandomized (the same ones on every run, so CI is reproducible), there is
no per-example deadline (each target bounds its own time and memory), and hypothesis keeps its
files in a temporary folder instead of ``.hypothesis/`` in the working tree.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir

_HOME = tempfile.mkdtemp(prefix="diascan-hypothesis-")
set_hypothesis_home_dir(_HOME)

EXAMPLES = int(os.environ.get("DIASCAN_FUZZ_EXAMPLES", "300"))

settings.register_profile(
    "diascan-fuzz",
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
        HealthCheck.large_base_example,
    ],
)
settings.load_profile("diascan-fuzz")


@pytest.fixture(scope="module", autouse=True)
def _private_results_cache(tmp_path_factory):
    """Each fuzz target's runs share one results cache of their own (``--cache`` examples)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("DIASCAN_RESULTS_CACHE", str(tmp_path_factory.mktemp("fuzz_rcache")))
    yield
    mp.undo()


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_HOME, ignore_errors=True)
