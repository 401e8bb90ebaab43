"""The core must import and work with Qt absent; the import-linter contract must hold."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

BLOCK_QT = textwrap.dedent(
    """
    import importlib.abc, sys

    class BlockQt(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("PyQt6", "PyQt5", "PySide6", "pyqtgraph"):
                raise ImportError(f"Qt is absent in this test: {name}")
            return None

    sys.meta_path.insert(0, BlockQt())
    """
)


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCK_QT + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )


def test_every_core_module_imports_without_qt():
    proc = _run(
        """
        import importlib, pkgutil
        import diascan
        names = []
        for info in pkgutil.walk_packages(diascan.__path__, "diascan."):
            if info.name == "diascan.qt" or info.name.startswith("diascan.qt."):
                continue
            importlib.import_module(info.name)
            names.append(info.name)
        assert "diascan.io" in names and "diascan.progress" in names, names
        assert not any(m.split(".")[0] in ("PyQt6", "pyqtgraph") for m in sys.modules)
        print(len(names), "core modules imported")
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert "core modules imported" in proc.stdout


def test_blocker_really_blocks_qt():
    """Guard against a vacuous pass: the same harness must refuse Qt itself."""
    proc = _run("import PyQt6.QtCore")
    assert proc.returncode != 0
    assert "Qt is absent" in proc.stderr


def test_cli_help_runs_without_qt():
    proc = _run(
        """
        from diascan.cli.main import main
        try:
            main(["--help"])
        except SystemExit as exc:
            assert exc.code == 0
        """
    )
    assert proc.returncode == 0, proc.stderr


def test_import_linter_contract_holds():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "import-linter is a test dependency"
    proc = subprocess.run([exe], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "KEPT" in proc.stdout


def test_viewer_start_and_pipeline_import_do_not_import_torch():
    """torch costs ~1 s to import: the window shows and lists its models without it, and the
    pipeline only imports it (in a background thread) once it runs."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(
            """
            import sys
            from diascan.models.locate import model_choices
            from diascan.qt.qt_main_window import QtMainWindow
            import diascan.models, diascan.pipeline, diascan.cli.main
            specs, default = model_choices()
            assert default == "diascan_taccnn_sim_v1" and default in specs, specs
            assert "torch" not in sys.modules, "torch imported at start-up"
            from diascan.models import load_model  # the lazy attribute still works
            assert load_model().name == default and "torch" in sys.modules
            print("ok")
            """
        )],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "ok" in proc.stdout
