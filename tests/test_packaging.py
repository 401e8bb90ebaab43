"""The wheel carries what an installed diascan needs: every package, the icon, the bundled model."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_package_list_names_every_package_and_model():
    """``packages`` is listed by hand (resources/ and models/ are mapped into the package)."""
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    src = REPO / "src"
    found = {
        ".".join(p.parent.relative_to(src).parts)
        for p in src.rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    models = {f"diascan.resources.models.{p.name}" for p in (REPO / "models").iterdir() if p.is_dir()}
    expected = found | models | {"diascan.resources", "diascan.resources.models"}
    assert listed == expected


@pytest.mark.slow
def test_installed_wheel_scores_with_its_bundled_model(tmp_path):
    """A non-editable install finds its model and icon as package data, away from the clone."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(wheels), str(REPO)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = wheels.glob("diascan-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("diascan/resources/diascan.svg", "diascan/resources/diascan.desktop",
                   "diascan/py.typed", "diascan/qt/qt_main_window.py",
                   "diascan/resources/models/diascan_taccnn_sim_v1/checkpoint.pt",
                   "diascan/resources/models/diascan_taccnn_sim_v1/meta.yaml"):  # fmt: skip
        assert needed in names, needed
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
         str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    probe = (
        "import numpy as np, diascan, diascan.assets as a\n"
        "from diascan.models import load_model\n"
        "from diascan.models.package import bundled_models_dir\n"
        "print(diascan.__file__); print(bundled_models_dir()); print(a.resource_path('diascan.svg'))\n"
        "m = load_model()\n"
        "s = m.score_stamps(np.zeros((2, 3, 51, 51), np.float32))\n"
        "assert s.shape == (2,) and np.all((s >= 0) & (s <= 1)), s\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DIASCAN_MODELS_DIR"}
    env["PYTHONPATH"] = str(target)
    # run from tmp_path: no pyproject.toml above it, so nothing can fall back to the clone
    p = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert p.returncode == 0, p.stderr
    module, models, icon = p.stdout.split("\n")[:3]
    for line in (module, models, icon):
        assert line.startswith(str(target)), (line, p.stdout)
