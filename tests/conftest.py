"""Shared fixtures. Data from ../shared is found through ONE fixture, ``shared_dir``."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

# GUI tests drive real Qt widgets without a display, on a 1920 x 1080 desktop (the offscreen
# plugin's own screen is 800 x 800, smaller than any a scanner uses; the window opens at 90 %
# of the screen). tests/fixtures/screens/ holds the screens the layout tests use.
SCREENS = Path(__file__).resolve().parent / "fixtures" / "screens"
if os.environ.setdefault("QT_QPA_PLATFORM", "offscreen") == "offscreen":
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={SCREENS / '1920x1080.json'}"

# Tests never touch the user's cache (demo, results cache), sessions or key bindings: the XDG
# folders point into one temporary folder for the whole run (subprocesses inherit it).
_XDG_ROOT = Path(tempfile.mkdtemp(prefix="diascan-tests-"))
for _var in ("XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME"):
    (_XDG_ROOT / _var.lower()).mkdir()
    os.environ[_var] = str(_XDG_ROOT / _var.lower())


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_XDG_ROOT, ignore_errors=True)


@pytest.fixture(autouse=True)
def _delete_closed_windows_now():
    """Delete the windows a GUI test closed before the next test starts.

    Left for a later event loop, a window whose Python side is only held in reference cycles
    can be deleted by the garbage collector in the middle of Qt's event handling (a segfault
    inside QGraphicsScene); here they go at a safe point, their queued signals handled first.
    Tests that never imported Qt are left alone (the core must run without it).
    """
    yield
    import sys

    if "PyQt6.QtCore" not in sys.modules:
        return
    from PyQt6.QtCore import QCoreApplication, QEvent

    if QCoreApplication.instance() is not None:
        _watch_modal_dialogs(QCoreApplication.instance())
        QCoreApplication.processEvents()
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)


#: A modal dialog nobody answers within this many seconds is rejected (see below).
MODAL_PATIENCE_S = 60.0


def _watch_modal_dialogs(app) -> None:
    """Reject a modal dialog left open by a failed test, so the suite fails instead of hanging.

    A test that fails half way can leave a window whose close asks a question (unsaved
    labels): ``exec()`` then waits for an answer at teardown or at exit, for ever in CI. One
    timer per run (it lives in the dialog's own event loop) rejects a dialog that stayed the
    active modal widget for :data:`MODAL_PATIENCE_S` and says so on stderr."""
    if getattr(app, "_diascan_modal_watch", None) is not None:
        return
    import sys
    import time

    from PyQt6.QtCore import QTimer
    from PyQt6.QtWidgets import QApplication

    seen: dict[str, object] = {"widget": None, "since": 0.0}

    def check() -> None:
        w = QApplication.activeModalWidget()
        if w is not seen["widget"]:
            seen.update(widget=w, since=time.monotonic())
        elif w is not None and time.monotonic() - seen["since"] > MODAL_PATIENCE_S:
            print(f"conftest: rejected the modal dialog {w.windowTitle()!r} nobody answered "
                  f"in {MODAL_PATIENCE_S:.0f} s", file=sys.stderr)
            w.reject() if hasattr(w, "reject") else w.close()

    timer = QTimer(app)
    timer.setInterval(1000)
    timer.timeout.connect(check)
    timer.start()
    app._diascan_modal_watch = timer

REPO = Path(__file__).resolve().parents[1]


def _shared_path() -> Path:
    return Path(os.environ.get("DIASCAN_SHARED", REPO.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The read-only ../shared folder (override with $DIASCAN_SHARED).

    Missing data skips the test on a developer machine but FAILS in CI (CI=true), so a broken
    checkout is never reported green.
    """
    path = _shared_path()
    if not (path / "data").is_dir() or not (path / "models").is_dir():
        msg = f"shared data not found at {path} (set DIASCAN_SHARED)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def dp1_model_dir(shared_dir: Path) -> Path:
    """The real DP1 model package (checkpoint + meta.yaml, no arch.py)."""
    return shared_dir / "models" / "tac_cnn_comcam_2025-02-18"


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory) -> Path:
    """The small (1024 x 1024) demo data set, generated once per test session."""
    from diascan.demo import generate_demo

    out = tmp_path_factory.mktemp("demo_small")
    generate_demo(out, small=True, seed=1)
    return out


@pytest.fixture(scope="session")
def small_demo_result(small_demo):
    """The pipeline run on the small demo (real images, real detections, bundled model)."""
    from diascan.inputs import guess_roles, pipeline_inputs
    from diascan.pipeline import read_target, run_pipeline

    files = guess_roles([small_demo])
    files["target"] = read_target(small_demo / "target.json")
    return run_pipeline(pipeline_inputs(files), score=True)
