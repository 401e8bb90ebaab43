"""Batch scoring on a real Dask LocalCluster: ``diascan score --visits`` and ``diascan.batch``.

Four small demo visits (three good ones with different visit numbers, one with a truncated
difference image), a local cluster of 2 worker processes shared by the tests of this module,
a run interrupted with SIGINT and resumed, and a worker process killed with SIGKILL mid-visit.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from diascan.batch import (
    BatchSettings,
    dask_client,
    read_dataset,
    read_manifest,
    read_summary,
    run_batch,
)
from diascan.batch.settings import input_checksums, resume_key
from diascan.batch.task import EVENTS_TOPIC
from diascan.cli.main import main
from diascan.demo.generate import VISIT
from diascan.errors import InputError

REPO = Path(__file__).resolve().parents[1]
BROKEN_VISIT = VISIT + 99


@pytest.fixture(scope="session")
def demo_visits(small_demo, tmp_path_factory) -> Path:
    """A folder of 4 visit folders: v1 (the session's small demo), v2, v3 (other seeds and
    visit numbers) and v4: v1's files with another visit number and a truncated difference."""
    from astropy.io import fits

    from diascan.demo import generate_demo
    from diascan.io.tables import read_table, write_table

    root = tmp_path_factory.mktemp("visits")
    shutil.copytree(small_demo, root / "v1", copy_function=os.link)
    for i in (2, 3):
        generate_demo(root / f"v{i}", small=True, seed=i, visit=VISIT + i - 1)
    bad = root / "v4"
    shutil.copytree(small_demo, bad, copy_function=os.link)
    for name in ("science.fits", "difference.fits"):  # own copies (not links) to change
        (bad / name).unlink()
        shutil.copyfile(small_demo / name, bad / name)
    fits.setval(bad / "science.fits", "VISIT", value=BROKEN_VISIT)
    # its catalog's rows of that visit too: the truncated difference is its only problem (a
    # catalog without rows for the visit failed the run too, first or second by timing)
    cat = read_table(small_demo / "dia_source.parquet")
    cat["visit"] = BROKEN_VISIT
    (bad / "dia_source.parquet").unlink()  # a link to the demo's catalog: a file of its own
    write_table(cat, bad / "dia_source.parquet")
    os.truncate(bad / "difference.fits", (bad / "difference.fits").stat().st_size // 2)
    return root


def _write_csv(path: Path, rows: list[dict]) -> Path:
    names = ["science", "difference", "template_patches", "catalog", "target", "visit"]
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=names)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in names})
    return path


def _row(folder: Path, rel_to: Path | None = None, **extra) -> dict:
    def p(f):
        return os.path.relpath(f, rel_to) if rel_to else str(f)

    return {
        "science": p(folder / "science.fits"),
        "difference": p(folder / "difference.fits"),
        "template_patches": ";".join(p(f) for f in sorted(folder.glob("template_coadd_*.fits"))),
        "catalog": p(folder / "dia_source.parquet"),
        **extra,
    }


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of 2 worker processes (1 thread, 2 GB each) made by diascan itself."""
    with dask_client(workers=2, memory_limit="2GB") as client:
        client.wait_for_workers(2, timeout=120)
        yield client


def _files(out: Path) -> dict[str, tuple[int, int]]:
    """Relative path -> (inode, mtime_ns) of every file under ``out`` (hidden ones too)."""
    return {str(p.relative_to(out)): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in sorted(out.rglob("*")) if p.is_file()}


def _by_visit(out: Path) -> dict[int, dict]:
    return {r["visit"]: r for r in read_summary(out).to_pylist()}


# --------------------------------------------------------------------------------------------
# The manifest and the resume key (no cluster)


def test_manifest_forms_and_row_errors(demo_visits, tmp_path):
    folder_jobs = read_manifest(demo_visits)
    assert [j.visit for j in folder_jobs] == [VISIT, VISIT + 1, VISIT + 2, BROKEN_VISIT]
    assert all(j.error is None and j.detector == 4 for j in folder_jobs)
    assert folder_jobs[0].files["target"] is not None  # from the demo's target.json
    assert folder_jobs[0].name == f"{VISIT}-004"

    v1, v2 = demo_visits / "v1", demo_visits / "v2"
    rows = [
        _row(v1, rel_to=tmp_path),  # relative paths: to the manifest's folder
        _row(v2, target="53.13,-28.11"),
        _row(v2) | {"difference": ""},
        _row(v2) | {"catalog": str(v2 / "nope.parquet")},
        _row(v1, visit="123abc"),
        _row(v1),  # the same visit and detector as row 1
        _row(v2) | {"template_patches": ""},
    ]
    jobs = read_manifest(_write_csv(tmp_path / "m.csv", rows))
    assert jobs[0].error is None and jobs[0].files["science"] == v1 / "science.fits"
    assert len(jobs[0].files["template_patches"]) == 2
    assert jobs[1].error is None and jobs[1].files["target"] == pytest.approx((53.13, -28.11))
    errors = [j.error for j in jobs[2:]]
    assert "row 3" in errors[0] and "'difference' cell is empty" in errors[0]
    assert "nope.parquet: no such file" in errors[1]
    assert "row 5: visit '123abc' is not an integer" in errors[2]
    assert "is also row 1" in errors[3]
    assert "row 7: no template" in errors[4]
    assert all("\n" not in e for e in errors)

    # Parquet manifest with a list column of patches: the same visits.
    import pyarrow as pa

    table = pa.table({
        "Science": [str(v1 / "science.fits")], "difference": [str(v1 / "difference.fits")],
        "template_patches": [[str(f) for f in sorted(v1.glob("template_coadd_*.fits"))]],
        "catalog": [str(v1 / "dia_source.parquet")], "detector": [4],
    })  # fmt: skip
    pq.write_table(table, tmp_path / "m.parquet")
    (pj,) = read_manifest(tmp_path / "m.parquet")
    assert pj.error is None and (pj.visit, pj.detector) == (VISIT, 4)
    assert pj.files["template_patches"] == jobs[0].files["template_patches"]


def test_bad_manifests_are_input_errors(tmp_path):
    (tmp_path / "not.csv").write_bytes(b"\xff\xfe\x00garbage\x00\xff")
    (tmp_path / "not.parquet").write_text("science,difference\n")
    (tmp_path / "cols.csv").write_text("image,diff\na.fits,b.fits\n")
    (tmp_path / "empty.csv").write_text("science,difference,template\n")
    cases = {
        "not.csv": "cannot be read as a CSV manifest",
        "not.parquet": "cannot be read as a Parquet manifest",
        "cols.csv": "no science and no difference and no template or template_patches column",
        "empty.csv": "no rows",
        "missing.csv": "no such file or folder",
    }
    for name, problem in cases.items():
        with pytest.raises(InputError) as err:
            read_manifest(tmp_path / name)
        assert problem in str(err.value) and str(tmp_path / name) in str(err.value)


def test_resume_key_follows_contents_model_and_settings(demo_visits, tmp_path):
    job = read_manifest(demo_visits)[0]
    base = BatchSettings().resolved()
    sums = input_checksums(job.files)

    def key(settings=base, checksums=sums, visit=job.visit):
        return resume_key(checksums, settings, visit, job.detector, job.files.get("target"))

    assert key() == key(BatchSettings().resolved())
    # the same bytes elsewhere give the same key: the key is made of contents, not paths
    copy = tmp_path / "copy"
    shutil.copytree(demo_visits / "v1", copy)
    (cj,) = [j for j in read_manifest(copy)]
    assert input_checksums(cj.files) == sums
    other_catalog = dict(sums, catalog="0" * 64)
    assert key(checksums=other_catalog) != key()
    assert key(BatchSettings(threshold=6.0).resolved()) != key()
    assert key(BatchSettings(score=False).resolved()) != key()
    assert key(BatchSettings(with_missing=True).resolved()) != key()
    assert key(visit=job.visit + 1) != key()
    pkg = tmp_path / "pkg"
    shutil.copytree(Path(base.model_path), pkg)
    assert key(BatchSettings(model=str(pkg)).resolved()) == key()  # same files, same model
    zipped = Path(shutil.make_archive(str(tmp_path / "pkg"), "zip", pkg))  # a Butler-style zip
    with open(next(pkg.glob("meta*.yaml")), "a") as fh:
        fh.write("\n# retrained\n")
    assert key(BatchSettings(model=str(pkg)).resolved()) != key()
    # a zipped package is identified by the zip's bytes
    rezipped = Path(shutil.make_archive(str(tmp_path / "pkg2"), "zip", pkg))
    keys = {key(BatchSettings(model=str(z)).resolved()) for z in (zipped, rezipped)}
    assert len(keys) == 2 and key() not in keys


def test_score_visit_in_process_resumes_and_drops_stale_outputs(demo_visits, tmp_path):
    """The task without Dask (a plain loop): done, skipped with the same key, done again with
    other settings; a visit that fails loses the outputs an earlier run left."""
    from diascan.batch import score_visit
    from diascan.batch.outputs import dataset_file, visit_file
    from diascan.models.package import configure_threads

    jobs = {j.visit: j for j in read_manifest(demo_visits)}
    good, bad = jobs[VISIT + 2], jobs[BROKEN_VISIT]
    base = BatchSettings(torch_threads=configure_threads()).resolved()  # this process's threads
    out = tmp_path / "out"
    first = score_visit(good, out, base)
    assert first["status"] == "done" and first["sources"] > 10, first
    stamp = _files(out)
    again = score_visit(good, out, base)
    assert again["status"] == "skipped" and again["sources"] == first["sources"]
    assert _files(out) == stamp
    other = score_visit(good, out, BatchSettings(threshold=8.0, score=False).resolved())
    assert other["status"] == "done" and other["sources"] < first["sources"]
    assert pq.read_table(visit_file(out, good)).num_rows == other["sources"]

    # outputs of the broken visit from "an earlier run" (when its files were good)
    for f in (visit_file(out, bad), dataset_file(out, bad)):
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(visit_file(out, good).read_bytes())
    row = score_visit(bad, out, base)
    assert row["status"] == "failed" and "truncated" in row["error"]
    assert not visit_file(out, bad).exists() and not dataset_file(out, bad).parent.exists()
    assert visit_file(out, good).exists()


def test_cli_bad_options_one_line_exit_2(demo_visits, tmp_path, capsys):
    cases = [
        (["--visits", str(demo_visits)], "--visits needs --out-dir"),
        (["--visits", str(demo_visits), "--out-dir", str(tmp_path), "--science", "x.fits"],
         "--science is for one visit"),
        (["--out-dir", str(tmp_path), "--science", "a", "--difference", "b"],
         "--out-dir needs --visits"),
        (["--visits", str(tmp_path / "none.csv"), "--out-dir", str(tmp_path)], "none.csv"),
        (["--visits", str(demo_visits), "--out-dir", str(tmp_path), "--workers", "0"],
         "argument --workers: must be an integer >= 1"),
        (["--visits", str(demo_visits), "--out-dir", str(demo_visits)],
         "this --out-dir holds the manifest"),
        (["--visits", str(demo_visits), "--out-dir", str(sorted(demo_visits.iterdir())[0])],
         "this --out-dir holds the science of visit"),
        (["--visits", str(demo_visits), "--out-dir", str(tmp_path), "--memory-limit", "lots"],
         "--memory-limit lots"),
        (["--visits", str(demo_visits), "--out-dir", str(tmp_path), "--model", "nosuchmodel"],
         "nosuchmodel"),
    ]
    for args, message in cases:
        assert main(["score", *args]) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("diascan score: error: ") and message in err[0]


def test_progress_line_terminal_and_log():
    import io

    from diascan.batch import BatchProgress
    from diascan.cli.batch import BatchProgressLine

    class Tty(io.StringIO):
        def isatty(self):
            return True

    snap = BatchProgress(total=40, done=10, skipped=1, failed=1, running=2, elapsed=60.0,
                         scored=11)
    assert snap.rate == pytest.approx(11.0) and snap.finished == 12
    tty = Tty()
    bar = BatchProgressLine(tty)
    bar(snap)
    bar.close()
    text = tty.getvalue()
    assert text.startswith("\r[######") and text.endswith("\n")
    for part in ("12/40", "done 10", "failed 1", "running 2", "skipped 1", "11.0 visits/min",
                 "ETA 2m33s"):
        assert part in text
    log = io.StringIO()
    line = BatchProgressLine(log)
    line(snap)  # no visit finished: nothing for a log
    line(BatchProgress(**{**snap.__dict__, "last": {"row": 3, "visit": 7, "detector": 4,
                                                    "status": "failed", "error": "x: bad"}}))
    assert log.getvalue().count("\n") == 1 and "visit 7 detector 4 failed: x: bad" in log.getvalue()


# --------------------------------------------------------------------------------------------
# On the cluster


def test_two_workers_four_visits_one_broken(cluster, demo_visits, tmp_path, capsys):
    manifest = _write_csv(tmp_path / "visits.csv",
                          [_row(demo_visits / f"v{i}") for i in (1, 2, 3, 4)])
    out = tmp_path / "out"
    address = cluster.scheduler.address
    args = ["score", "--visits", str(manifest), "--out-dir", str(out), "--scheduler", address]
    assert main(args) == 1  # one visit failed
    err = capsys.readouterr().err
    assert "running" in err and "visits/min" in err  # the progress lines (not a terminal)
    fail_lines = [ln for ln in err.splitlines() if ln.startswith("diascan score: visit")]
    assert len(fail_lines) == 1 and f"visit {BROKEN_VISIT}" in fail_lines[0]
    assert "difference.fits: truncated FITS file" in fail_lines[0]

    rows = _by_visit(out)
    assert {v: r["status"] for v, r in rows.items()} == {
        VISIT: "done", VISIT + 1: "done", VISIT + 2: "done", BROKEN_VISIT: "failed"}
    good = [rows[v] for v in (VISIT, VISIT + 1, VISIT + 2)]
    assert all(r["sources"] > 10 and 0 < r["matched"] <= r["sources"] and r["seconds"] > 0
               and r["error"] is None for r in good)
    assert len({r["worker"] for r in good}) == 2  # both workers took visits
    assert "truncated" in rows[BROKEN_VISIT]["error"] and rows[BROKEN_VISIT]["sources"] is None

    # one Parquet file per visit and the dataset partitioned by visit, read as one table
    names = sorted(p.name for p in (out / "visits").iterdir())
    assert names == [f"{v}-004.parquet" for v in (VISIT, VISIT + 1, VISIT + 2)]
    parts = sorted(str(p.relative_to(out / "dataset")) for p in (out / "dataset").rglob("*"))
    assert [p for p in parts if p.endswith(".parquet")] == [
        f"visit={v}/{v}-004.parquet" for v in (VISIT, VISIT + 1, VISIT + 2)]
    one = pq.read_table(out / "visits" / f"{VISIT + 1}-004.parquet")
    assert set(one.column("visit").to_pylist()) == {VISIT + 1}
    assert one.num_rows == rows[VISIT + 1]["sources"]
    scores = np.asarray(one.column("score"))
    assert np.all((scores >= 0) & (scores <= 1))
    table = read_dataset(out)
    assert table.num_rows == sum(r["sources"] for r in good)
    counts = dict(zip(*np.unique(table.column("visit").to_numpy(), return_counts=True),
                      strict=True))
    assert counts == {r["visit"]: r["sources"] for r in good}
    assert pq.read_table(out / "dataset").num_rows == table.num_rows  # plain pyarrow too
    # torch ran on one thread in each worker (2 workers on 2 cores: no oversubscription)
    assert set(cluster.run(lambda: __import__("torch").get_num_threads()).values()) == {1}
    limits = {w["memory_limit"] for w in cluster.scheduler_info()["workers"].values()}
    assert limits == {2 * 10**9}

    # Again: every finished visit is skipped (nothing rewritten), the broken one fails again.
    before = _files(out / "visits") | _files(out / "dataset")
    assert main([*args, "--quiet", "--dashboard"]) == 1
    err = capsys.readouterr().err
    assert "Dask dashboard:" in err
    after = _by_visit(out)
    assert [after[v]["status"] for v in (VISIT, VISIT + 1, VISIT + 2)] == ["skipped"] * 3
    assert [after[v]["sources"] for v in (VISIT, VISIT + 1, VISIT + 2)] == [
        r["sources"] for r in good]
    assert (_files(out / "visits") | _files(out / "dataset")) == before


#: ``diascan`` as run from a terminal, where Ctrl-C raises KeyboardInterrupt. A test suite
#: started in the background by a shell (``make test &``) inherits SIGINT ignored, and Python
#: keeps an ignored SIGINT ignored: the run would not see the test's SIGINT at all.
_AS_IN_A_TERMINAL = (
    "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from diascan.cli.main import console_main; console_main()"
)


def test_resume_after_interruption(cluster, demo_visits, tmp_path):
    """SIGINT to a run on its own LocalCluster, then the same command again (here on the shared
    cluster): the visits finished before are kept as they are, the others are scored."""
    out = tmp_path / "out"
    good = [VISIT, VISIT + 1, VISIT + 2]
    manifest = _write_csv(tmp_path / "m.csv", [_row(demo_visits / f"v{i}") for i in (1, 2, 3)])
    cmd = [sys.executable, "-c", _AS_IN_A_TERMINAL, "score", "--visits", str(manifest),
           "--out-dir", str(out), "--workers", "1", "--quiet", "--dashboard"]
    proc = subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while not list((out / "visits").glob("*.parquet")):
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "no visit finished in time"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    assert "Dask dashboard: " in stderr  # printed before the first visit (not served without bokeh)
    # finished: written to the end (its result may not have reached the client before SIGINT)
    finished = [v for v in good if (out / "visits" / f"{v}-004.parquet").exists()]
    assert finished and len(finished) < 3
    first = _by_visit(out)
    assert {first[v]["status"] for v in finished} <= {"done", "not run"}
    assert {first[v]["status"] for v in good if v not in finished} == {"not run"}
    kept = {f: s for f, s in _files(out).items() if any(str(v) in f for v in finished)
            and not f.startswith("summary")}

    assert main(["score", "--visits", str(manifest), "--out-dir", str(out), "--quiet",
                 "--scheduler", cluster.scheduler.address]) == 0
    second = _by_visit(out)
    assert [second[v]["status"] for v in finished] == ["skipped"] * len(finished)
    assert {second[v]["status"] for v in good if v not in finished} == {"done"}
    now = _files(out)
    assert {f: now[f] for f in kept} == kept  # the finished visits were not written again
    assert all(f.endswith(".parquet") and not Path(f).name.startswith(".") for f in now)
    assert read_dataset(out).num_rows == sum(second[v]["sources"] for v in good)


def test_killed_worker_visit_retried_on_another(cluster, demo_visits, tmp_path):
    """SIGKILL the worker process running the first visit that starts: the scheduler moves the
    visit to another worker, every visit ends done, each output written once."""
    jobs = [j for j in read_manifest(demo_visits) if j.visit != BROKEN_VISIT]
    out = tmp_path / "out"
    t_start = time.time()
    killed: dict = {}

    def killer():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            for stamp, msg in cluster.get_events(EVENTS_TOPIC):
                if stamp >= t_start and isinstance(msg, dict):
                    os.kill(msg["pid"], signal.SIGKILL)  # the worker process, for real
                    killed.update(msg)
                    return
            time.sleep(0.02)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    rows = run_batch(jobs, out, BatchSettings(), cluster)
    thread.join(timeout=5)
    assert killed, "no visit started"
    assert [r["status"] for r in rows] == ["done"] * 3
    starts = [m for s, m in cluster.get_events(EVENTS_TOPIC)
              if s >= t_start and m["key"] == killed["key"]]
    assert len(starts) >= 2  # it started again after the kill...
    redo = next(r for r in rows if f"-{r['visit']}-" in killed["key"])
    assert redo["worker"] != killed["worker"]  # ... on another worker
    names = sorted(p.name for p in out.rglob("*") if p.is_file())
    assert names == sorted(["summary.parquet"] + [f"{j.name}.parquet" for j in jobs] * 2)
    assert read_dataset(out).num_rows == sum(r["sources"] for r in rows)
    cluster.wait_for_workers(2, timeout=120)  # the nanny restarted the killed worker
