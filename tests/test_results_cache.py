"""The on-disk results cache: hits, misses on changed inputs, corrupt entries, viewer path."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from diascan import results_cache
from diascan.pipeline import PipelineInputs, run_pipeline


@pytest.fixture()
def cache_home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "diascan" / "results"


@pytest.fixture()
def demo_copy(small_demo, tmp_path) -> Path:
    """A copy of the small demo, so touching a file does not affect other tests."""
    out = tmp_path / "demo"
    shutil.copytree(small_demo, out)
    return out


def _inputs(folder: Path, use_cache: bool = True, **kw) -> PipelineInputs:
    return PipelineInputs(
        science=folder / "science.fits",
        difference=folder / "difference.fits",
        template_patches=sorted(folder.glob("template_coadd_*.fits")),
        catalog=folder / "dia_source.parquet",
        use_cache=use_cache,
        **kw,
    )


def _run(inputs: PipelineInputs):
    stages: list[tuple[str, float, str]] = []
    res = run_pipeline(inputs, score=False, progress=lambda s, f, m: stages.append((s, f, m)))
    return res, stages


def _from_cache(stages) -> bool:
    return any(s == "template" and "from cache" in m for s, _f, m in stages)


def _assert_same(a, b) -> None:
    for plane in ("image", "mask", "variance"):
        np.testing.assert_array_equal(getattr(a.template, plane), getattr(b.template, plane))
    assert (a.template.x0, a.template.y0) == (b.template.x0, b.template.y0)
    assert a.template.mask_planes == b.template.mask_planes
    assert a.template.notes == b.template.notes
    assert a.detections.colnames == b.detections.colnames
    for name in a.detections.colnames:
        ca, cb = a.detections[name], b.detections[name]
        assert ca.dtype == cb.dtype, name
        assert ca.unit == cb.unit, name
        np.testing.assert_array_equal(np.asarray(ca), np.asarray(cb), err_msg=name)
    assert list(a.detections["status"]) == list(b.detections["status"])


def test_hit_gives_identical_products(cache_home, small_demo):
    first, st1 = _run(_inputs(small_demo))
    assert not _from_cache(st1)
    entries = [p for p in cache_home.iterdir() if not p.name.startswith(".")]
    assert len(entries) == 1
    assert (entries[0] / "template.fits").is_file()
    assert (entries[0] / "detections.parquet").is_file()

    second, st2 = _run(_inputs(small_demo))
    assert _from_cache(st2)
    assert "template and detections from the results cache" in second.notes
    assert [s for s, _f, _m in st2 if _f == 0.0][:3] == ["load", "template", "detect"]
    _assert_same(first, second)
    assert second.template.wcs.to_header_string(relax=True) == first.template.wcs.to_header_string(
        relax=True
    )
    assert second.detections.meta["threshold"] == first.detections.meta["threshold"]

    # Without use_cache the pipeline recomputes (and agrees with the cached products).
    plain, st3 = _run(_inputs(small_demo, use_cache=False))
    assert not _from_cache(st3)
    _assert_same(plain, second)


def test_changed_settings_or_touched_file_miss(cache_home, demo_copy):
    _run(_inputs(demo_copy))
    res, st = _run(_inputs(demo_copy, threshold=6.0))
    assert not _from_cache(st)
    sci = demo_copy / "science.fits"
    st_ = sci.stat()
    os.utime(sci, ns=(st_.st_atime_ns, st_.st_mtime_ns + 1_000_000_000))
    _res, st = _run(_inputs(demo_copy))
    assert not _from_cache(st)
    assert len([p for p in cache_home.iterdir() if not p.name.startswith(".")]) == 3
    _res, st = _run(_inputs(demo_copy))
    assert _from_cache(st)


@pytest.mark.parametrize("damage", ["truncate_template", "delete_table", "garbage_entry"])
def test_corrupt_entry_is_rebuilt(cache_home, small_demo, damage):
    first, _ = _run(_inputs(small_demo))
    (entry,) = [p for p in cache_home.iterdir() if not p.name.startswith(".")]
    if damage == "truncate_template":
        with open(entry / "template.fits", "r+b") as fh:
            fh.truncate(20000)
    elif damage == "delete_table":
        (entry / "detections.parquet").unlink()
    else:
        (entry / "entry.json").write_text("{not json")
    again, st = _run(_inputs(small_demo))
    assert not _from_cache(st)  # rebuilt, no error
    _assert_same(first, again)
    assert results_cache.has_entry(entry.name)
    _res, st = _run(_inputs(small_demo))
    assert _from_cache(st)


def test_prune_keeps_newest(cache_home, small_demo):
    res, _ = _run(_inputs(small_demo))
    for i in range(results_cache.MAX_ENTRIES + 2):
        assert results_cache.store(f"{i:064x}", res.template, res.detections[:0])
        os.utime(cache_home / f"{i:064x}", ns=(i * 10**9, (i + 10**6) * 10**9))
    results_cache.prune()
    kept = sorted(p.name for p in cache_home.iterdir())
    assert len(kept) == results_cache.MAX_ENTRIES
    assert f"{results_cache.MAX_ENTRIES + 1:064x}" in kept


def test_viewer_loader_uses_cache(cache_home, small_demo):
    from diascan.inputs import files_loader, folder_files, inputs_from_files

    files = folder_files(small_demo)
    assert inputs_from_files(files).use_cache
    stages: list[tuple[str, float, str]] = []
    load = files_loader(files)
    first = load(progress=lambda s, f, m: stages.append((s, f, m)))
    assert not _from_cache(stages)
    stages.clear()
    second = load(progress=lambda s, f, m: stages.append((s, f, m)))
    assert _from_cache(stages)
    _assert_same(first, second)


def test_cli_score_cache_flag(cache_home, small_demo, tmp_path):
    from diascan.cli.main import main
    from diascan.io import read_table

    args = [
        "score", "--science", str(small_demo / "science.fits"),
        "--difference", str(small_demo / "difference.fits"),
        "--template-patches", *map(str, sorted(small_demo.glob("template_coadd_*.fits"))),
        "--catalog", str(small_demo / "dia_source.parquet"), "--quiet", "--no-score",
    ]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "a.parquet")]) == 0
    assert not cache_home.exists()  # no --cache: nothing stored
    assert main([*args, "--cache", "--out", str(tmp_path / "b.parquet")]) == 0
    assert main([*args, "--cache", "--out", str(tmp_path / "c.parquet")]) == 0
    assert len(list(cache_home.iterdir())) == 1
    a, c = read_table(tmp_path / "a.parquet"), read_table(tmp_path / "c.parquet")
    assert "template and detections from the results cache" in c.meta["notes"]
    np.testing.assert_array_equal(np.asarray(a["x"]), np.asarray(c["x"]))
    assert list(a["status"]) == list(c["status"])


def test_results_cache_folder_can_be_chosen(cache_home, small_demo, tmp_path, monkeypatch):
    """``$DIASCAN_RESULTS_CACHE`` moves the results cache (the start-up benchmark uses it)."""
    private = tmp_path / "private-results"
    monkeypatch.setenv("DIASCAN_RESULTS_CACHE", str(private))
    assert results_cache.results_root() == private
    _run(_inputs(small_demo))
    assert [p.name for p in private.iterdir() if (p / "entry.json").is_file()]
    assert not cache_home.exists() or not any(cache_home.iterdir())
