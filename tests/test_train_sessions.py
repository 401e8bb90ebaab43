"""``diascan train --from-sessions``: labels gathered from real session files, re-cut through the
scorer's path; bad input refused in one line; the package written, listed, Rubin-loadable, with
honest numbers (re-computed here independently)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from diascan.cli.main import main
from diascan.cutouts import cut_stamps
from diascan.errors import Cancelled, ModelPackageError
from diascan.inputs import folder_files, pipeline_inputs
from diascan.learn.demo import demo_detections, write_labelled_session
from diascan.learn.gather import SKIP_OUTSIDE, SKIP_UNSURE, cut_labels, plan_labels
from diascan.learn.job import TrainJob, run_train_job
from diascan.models import ModelPackage, load_model
from diascan.models.finetune import FinetuneConfig, trainable
from diascan.models.locate import user_models_dir
from diascan.pipeline import run_pipeline
from diascan.progress import CancelToken

FIXTURES = Path(__file__).parent / "fixtures" / "sessions"
#: A short fine-tuning run for the small demo's ~30 labels (the numbers are not the point here).
QUICK = ["--min-per-class", "5", "--epochs", "3", "--threads", "1"]


def _pairwise_auc(scores, labels) -> float:
    """ROC AUC by counting ordered (real, bogus) pairs (independent of the code under test)."""
    s, y = np.asarray(scores, np.float64), np.asarray(labels).astype(bool)
    real, bogus = s[y][:, None], s[~y][None, :]
    return float(((real > bogus).sum() + 0.5 * (real == bogus).sum()) / (real.size * bogus.size))


@pytest.fixture(scope="module")
def demo_dets(small_demo):
    return demo_detections(small_demo)


@pytest.fixture
def linked_demo(small_demo, tmp_path):
    """A hard-linked copy of the small demo (files can be moved or replaced in it)."""
    dst = tmp_path / "demo"
    shutil.copytree(small_demo, dst, copy_function=os.link)
    return dst


def _session(folder: Path, path: Path, n_labels=None, n_unsure=0) -> Path:
    return write_labelled_session([demo_detections(folder)], path, n_labels, n_unsure)


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_gathered_stamps_are_the_scorers_stamps(small_demo, demo_dets, tmp_path):
    """Every real/bogus label comes back as the stamp the pipeline scores (same template, same
    cut, same channel order: the bundled model gives the pipeline's scores on them); unsure and
    unlabelled sources are left out."""
    path = write_labelled_session([demo_dets], tmp_path / "s.json", n_labels=20, n_unsure=4)
    plan = plan_labels([path])
    assert plan.n_real + plan.n_bogus == 20 and plan.skipped[SKIP_UNSURE] == 4
    got = cut_labels(plan)
    n = len(got.data)
    assert n + got.skipped[SKIP_OUTSIDE] == 20
    result = run_pipeline(pipeline_inputs(folder_files(small_demo)), score=True)
    det = result.detections
    row = {int(i): k for k, i in enumerate(det["id"])}
    rows = [row[int(sid)] for _, _, sid in got.data.keys]
    ref = cut_stamps(det["x"][rows], det["y"][rows], result.difference, result.science,
                     result.template)  # fmt: skip
    np.testing.assert_array_equal(got.data.stamps, ref)
    np.testing.assert_array_equal(load_model().score_stamps(got.data.stamps),
                                  np.asarray(det["score"])[rows])  # fmt: skip
    # Labels are the truth's, in session order.
    order = {int(i): k for k, i in enumerate(demo_dets.detections["id"])}
    truth = demo_dets.real[[order[int(sid)] for _, _, sid in got.data.keys]]
    np.testing.assert_array_equal(got.data.labels == 1, truth)
    assert got.sessions[0].path == path.resolve() and len(got.sessions[0].sha256) == 64


def test_too_few_labels_refused_before_any_image_is_read(linked_demo, tmp_path, capsys):
    path = _session(linked_demo, tmp_path / "s.json")  # all ~33 detections labelled
    plan = plan_labels([path])
    assert 0 < plan.n_real < 30 and 0 < plan.n_bogus < 30
    shutil.rmtree(linked_demo)  # the counts are checked first: no image is needed for that
    rc = main(["train", "--from-sessions", str(path), "--out", str(tmp_path / "m")])
    assert rc == 2
    assert _error_line(capsys) == (
        f"diascan train: error: {path}: too few labels to train: {plan.n_real} real and "
        f"{plan.n_bogus} bogus (at least 30 of each class needed); label more sources"
    )
    assert not (tmp_path / "m").exists()


def test_moved_input_file_is_reported_not_guessed(linked_demo, tmp_path, capsys):
    path = _session(linked_demo, tmp_path / "s.json")
    (linked_demo / "science.fits").rename(tmp_path / "science.fits")  # moved away
    rc = main(["train", "--from-sessions", str(path), "--out", str(tmp_path / "m"), *QUICK])
    assert rc == 2
    line = _error_line(capsys)
    assert line.startswith(f"diascan train: error: {path}: visit 1 (visit ")
    assert f"science {linked_demo / 'science.fits'}: not found (moved or deleted?" in line


def test_changed_input_file_is_reported(linked_demo, tmp_path, capsys):
    path = _session(linked_demo, tmp_path / "s.json")
    diff = linked_demo / "difference.fits"
    data = bytearray(diff.read_bytes())
    data[-1] ^= 1  # same size, other content (a new file: the demo itself is not touched)
    diff.unlink()
    diff.write_bytes(bytes(data))
    rc = main(["train", "--from-sessions", str(path), "--out", str(tmp_path / "m"), *QUICK])
    assert rc == 2
    assert "difference " in (line := _error_line(capsys))
    assert "changed since it was labelled (size or sha256 differ" in line


def test_app_written_fixture_session_reports_its_moved_files(tmp_path, capsys):
    """The session written by the application (inputs under /data/..., not on this machine)."""
    fixture = FIXTURES / "session_v1_app_2026-11-29.json"
    rc = main(["train", "--from-sessions", str(fixture), "--out", str(tmp_path / "m"),
               "--min-per-class", "1"])  # fmt: skip
    assert rc == 2
    line = _error_line(capsys)
    assert "science /data/diascan-demo-small/science.fits: not found" in line


def test_fine_tuned_package_is_listed_loadable_and_its_numbers_hold(small_demo, tmp_path, capsys):
    """No --out: the package goes to the user models folder, ``diascan models`` lists it, it
    loads by name, its arch.py works as the Rubin pipeline imports it, meta.yaml and the card
    carry the provenance, and the held-out numbers re-computed here match the report."""
    session = _session(small_demo, tmp_path / "s.json")
    base = load_model()
    rc = main(["train", "--from-sessions", str(session), "--seed", "3", "--threshold", "0.3",
               *QUICK])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0, out
    folder = Path(re.search(r"^wrote (.+) in [0-9.]+ s", out, re.M).group(1))
    assert folder.parent == user_models_dir() and folder.name.startswith(f"{base.name}_ft_")
    assert "ROC AUC" in out and "at 0.3:" in out
    assert main(["models", "--json"]) == 0
    listed = {m["name"]: m for m in json.loads(capsys.readouterr().out)}
    assert listed[folder.name]["source"] == "user" and listed[folder.name]["error"] is None
    model = load_model(folder.name)
    assert model.architecture == "TACCNN" and model.scale_factors == (1.0, 1.0, 1.0)

    # Rubin's way: import arch.py, instantiate its one class, load model_state_dict strictly.
    spec = importlib.util.spec_from_file_location("ft_arch", folder / "arch.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    net = getattr(mod, mod.__all__[0])()
    ckpt = torch.load(folder / "checkpoint.pt", weights_only=True, map_location="cpu")
    net.load_state_dict(ckpt["model_state_dict"], strict=True)

    metrics = json.loads((folder / "metrics.json").read_text())
    keys = [tuple(k) for k in metrics["heldout_sources"]]
    gathered = cut_labels(plan_labels([session]))
    index = [gathered.data.keys.index(k) for k in keys]
    held = gathered.data.subset(np.array(index))
    with torch.no_grad():
        rubin = net.eval()(torch.from_numpy(held.stamps)).numpy().ravel()
    np.testing.assert_allclose(rubin, model.score_stamps(held.stamps), rtol=1e-6, atol=1e-7)
    for name, scorer in (("before", base), ("after", model)):
        s = scorer.score_stamps(held.stamps)
        m = metrics["heldout_metrics"][name]
        assert m["roc_auc"] == pytest.approx(_pairwise_auc(s, held.labels))
        for t in m["thresholds"]:
            called, real = s >= t["threshold"], held.labels == 1
            assert (t["tp"], t["fp"], t["fn"], t["tn"]) == (
                int((called & real).sum()), int((called & ~real).sum()),
                int((~called & real).sum()), int((~called & ~real).sum()),
            )  # fmt: skip
        assert [t["threshold"] for t in m["thresholds"]] == [0.5, 0.3]
    assert metrics["labels"]["heldout"] == {"real": held.n_real, "bogus": held.n_bogus}

    meta = yaml.safe_load((folder / "meta.yaml").read_text())
    prov = meta["provenance"]
    assert prov["base_model"]["name"] == base.name and len(prov["base_model"]["checkpoint_sha256"]) == 64
    assert prov["sessions"] == [{"path": str(session.resolve()),
                                 "sha256": gathered.sessions[0].sha256}]  # fmt: skip
    assert prov["seed"] == 3 and "--from-sessions" in prov["command"]
    assert prov["labels"]["used"] == metrics["labels"]["used"]
    assert set(prov["heldout_metrics"]) == {"before", "after"}
    card = (folder / "README.md").read_text()
    for text in (base.name, gathered.sessions[0].sha256, "| held out |", "Seed 3",
                 "--from-sessions", "| ROC AUC |", "| purity at 0.3 |"):  # fmt: skip
        assert text in card, text


def test_job_api_progress_cancel_and_same_seed_same_bytes(small_demo, tmp_path):
    """The job the viewer will run: per-epoch callbacks with the held-out loss, progress, a
    cancel token; the same seed writes the same checkpoint bytes; a cancelled job writes
    nothing."""
    session = _session(small_demo, tmp_path / "s.json")
    cfg = FinetuneConfig(seed=7, epochs=3, patience=3, threads=1)
    epochs, stages = [], set()
    reports = [
        run_train_job(TrainJob([session], out=tmp_path / name, config=cfg, min_per_class=5),
                      on_epoch=epochs.append,
                      progress=lambda stage, f, msg: stages.add(stage))  # fmt: skip
        for name in ("a", "b")
    ]
    assert [e.epoch for e in epochs] == [1, 2, 3, 1, 2, 3]
    assert all(e.heldout_loss is not None and e.heldout_loss > 0 for e in epochs)
    assert stages == {"gather", "train", "write"}
    a, b = ((tmp_path / n / "checkpoint.pt").read_bytes() for n in ("a", "b"))
    assert a == b
    assert len(reports[0].before.fpr) >= 2 and reports[0].after.tpr[-1] == 1.0
    assert "ROC AUC" in "\n".join(reports[0].summary_lines())

    token = CancelToken()

    def cancel_after_first(stats):
        token.cancel()

    with pytest.raises(Cancelled):
        run_train_job(TrainJob([session], out=tmp_path / "c", config=cfg, min_per_class=5),
                      on_epoch=cancel_after_first, cancel=token)  # fmt: skip
    assert not (tmp_path / "c").exists()


def test_bad_options_and_unsupported_architectures(small_demo, tmp_path, capsys):
    session = _session(small_demo, tmp_path / "s.json")
    rc = main(["train", "--from-sessions", str(session), "--heldout-fraction", "1.5"])
    assert rc == 2 and "--heldout-fraction" in _error_line(capsys)
    rc = main(["train", "--from-sessions", str(tmp_path / "nope.json"), *QUICK])
    assert rc == 2 and "session file not found" in _error_line(capsys)
    other = ModelPackage(
        path=tmp_path / "tiny", module=nn.Linear(1, 1), version="", description="",
        architecture="Tiny (from arch.py)", input_shape=(51, 51, 3), scale_factors=(1.0,) * 3,
    )  # fmt: skip
    with pytest.raises(ModelPackageError, match=r"fine-tuning Tiny \(from arch.py\) models is "
                                                r"not supported \(supported: TACCNN\)"):
        trainable(other)
