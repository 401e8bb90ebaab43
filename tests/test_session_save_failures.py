"""Labels are never lost: a save that fails (read-only folder, a folder where the file was, a
deleted file or folder, a disk that fills up, a file-size limit) leaves the previous file intact,
raises a SessionError naming the file and the reason, keeps the session in memory and marked
dirty, and the next change saves again; save_as moves the autosave elsewhere. Saving keeps an
existing file's permission bits; new files follow the umask."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from diascan.errors import SessionError
from diascan.session import Autosave, Label, Session, SourceRecord, VisitEntry, load_session
from diascan.session.store import save_session
from tests._unwritable import unwritable_folder


def make_session(n: int = 50) -> Session:
    srcs = [SourceRecord(id=i, ra=150.0 + i * 1e-4, dec=2.0, x=float(i), y=3.0, score=0.5,
                         status="matched") for i in range(n)]  # fmt: skip
    return Session(visits=[VisitEntry.create(srcs, visit=1, detector=2)])


def labels_on_disk(path: Path) -> dict:
    v = load_session(path).current
    return {sid: v.labels.label(sid) for sid in v.labels.ids if v.labels.label(sid)}


def labels_in_memory(s: Session) -> dict:
    v = s.current
    return {sid: v.labels.label(sid) for sid in v.labels.ids if v.labels.label(sid)}


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_read_only_folder_keeps_labels_and_retries(tmp_path):
    with unwritable_folder(tmp_path / "sessions") as folder:
        path = folder.path / "s.json"
        s = make_session()
        errors = []
        saved = []
        auto = Autosave(s, path, on_error=errors.append, on_saved=saved.append)
        s.current.labels.set_label(0, "real")
        assert not auto.dirty and auto.last_error is None and saved == [path]
        folder.read_only()
        s.current.labels.set_label(1, "bogus")
        s.current.labels.set_label(2, "unsure")
        assert auto.dirty and len(errors) == 2 and auto.last_error is errors[-1]
        err = errors[-1]
        assert isinstance(err, SessionError) and err.path == path
        assert "read-only file system" in str(err) or "permission denied" in str(err)
        assert labels_on_disk(path) == {0: Label.REAL}  # the previous file, intact
        assert labels_in_memory(s) == {0: Label.REAL, 1: Label.BOGUS, 2: Label.UNSURE}
        folder.writable()
        s.current.labels.set_label(3, "real")  # the next change retries, and saves everything
        assert not auto.dirty and auto.last_error is None
        assert labels_on_disk(path) == labels_in_memory(s)
        assert no_temp_files(folder.path)


def test_save_as_moves_autosave_out_of_a_read_only_folder(tmp_path):
    with unwritable_folder(tmp_path / "sessions") as folder:
        path = folder.path / "s.json"
        s = make_session()
        auto = Autosave(s, path, on_error=lambda e: None)
        auto.save()
        folder.read_only()
        s.current.labels.set_label(5, "bogus")
        assert auto.dirty
        with pytest.raises(SessionError):
            auto.save_as(folder.path / "other.json")  # also read-only: still dirty, same path
        assert auto.dirty and auto.path == path
        elsewhere = tmp_path / "rescued.json"
        assert auto.save_as(elsewhere) == elsewhere
        assert auto.path == elsewhere and not auto.dirty
        s.current.labels.set_label(6, "real")  # autosave now goes to the new file
        assert labels_on_disk(elsewhere) == {5: Label.BOGUS, 6: Label.REAL}


def test_file_replaced_by_a_folder_then_restored(tmp_path):
    path = tmp_path / "s.json"
    s = make_session()
    errors = []
    auto = Autosave(s, path, on_error=errors.append)
    s.current.labels.set_label(0, "real")
    path.unlink()
    path.mkdir()  # someone put a folder where the session file was
    s.current.labels.set_label(1, "real")
    assert auto.dirty and "is a folder" in str(errors[-1]) and str(path) in str(errors[-1])
    assert path.is_dir() and not any(path.iterdir())  # the folder is not touched
    path.rmdir()
    s.current.labels.set_label(2, "bogus")
    assert not auto.dirty and labels_on_disk(path) == labels_in_memory(s)


def test_deleted_file_is_written_again_and_deleted_folder_is_an_error(tmp_path):
    folder = tmp_path / "sessions"
    folder.mkdir()
    path = folder / "s.json"
    s = make_session()
    errors = []
    auto = Autosave(s, path, on_error=errors.append)
    s.current.labels.set_label(0, "real")
    path.unlink()
    s.current.labels.set_label(1, "bogus")
    assert not errors and labels_on_disk(path) == labels_in_memory(s)  # nothing lost
    shutil.rmtree(folder)
    s.current.labels.set_label(2, "unsure")
    assert auto.dirty and "no such file or folder" in str(errors[-1])
    folder.mkdir()
    s.current.labels.undo()  # any change retries
    assert not auto.dirty and labels_on_disk(path) == labels_in_memory(s)


def test_failed_save_leaves_the_session_unchanged(tmp_path):
    s = make_session()
    good = save_session(s, tmp_path / "s.json")
    stamp = (s.created, s.modified)
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(SessionError, match="cannot save the session: is a folder"):
        save_session(s, tmp_path / "dir.json")
    assert (s.created, s.modified) == stamp and load_session(good).modified == stamp[1]


def test_small_disk_fills_mid_session(tmp_path):
    """A real 96 kB tmpfs: labels with long notes until the disk is full (ENOSPC)."""
    with unwritable_folder(tmp_path / "disk", size_kb=96) as folder:
        path = folder.path / "s.json"
        s = make_session(100)
        errors = []
        auto = Autosave(s, path, on_error=errors.append)
        auto.save()
        i = 0
        while not errors:
            s.current.labels.set_note(i % 100, "n" * 400 + str(i))
            i += 1
            assert i < 1000, "the disk never filled"
        assert "disk full" in str(errors[-1]) and auto.dirty
        on_disk = load_session(path)  # the last good file
        assert on_disk.current.labels.note((i - 2) % 100).endswith(str(i - 2))
        assert no_temp_files(folder.path)
        for k in range(100):  # free space: shorter notes fit again, nothing was lost meanwhile
            s.current.labels.set_note(k, f"short {k}")
        assert not auto.dirty
        back = load_session(path).current
        assert [back.labels.note(k) for k in range(100)] == [f"short {k}" for k in range(100)]


FSIZE_CHILD = r"""
import json, resource, signal, sys
from diascan.session import Autosave, Session, SourceRecord, VisitEntry, load_session

# What the diascan command does for itself (cli.main): a file-size limit must give an error
# (EFBIG), not kill the process with SIGXFSZ.
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
path = sys.argv[1]
srcs = [SourceRecord(id=i, ra=10.0, dec=-5.0, x=float(i), y=1.0, score=0.5) for i in range(200)]
s = Session(visits=[VisitEntry.create(srcs)])
errors = []
auto = Autosave(s, path, on_error=errors.append)
auto.save()
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
import os
resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(path) + 20000, hard))
i = 0
while not errors and i < 500:
    s.current.labels.set_label(i % 200, "real")
    s.current.labels.set_note(i % 200, "x" * 300)
    i += 1
def noted(visit):
    return sum(1 for sid in visit.labels.ids if visit.labels.note(sid))


result = {"error": str(errors[-1]) if errors else None, "dirty": auto.dirty,
          "on_disk_noted": noted(load_session(path).current), "in_memory_noted": noted(s.current)}
resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
s.current.labels.set_label(199, "bogus")
back = load_session(path).current
result.update(after_dirty=auto.dirty, after_real=back.labels.statistics().real,
              after_bogus=back.labels.statistics().bogus,
              mem_real=s.current.labels.statistics().real)
print(json.dumps(result))
"""


def test_file_size_limit_mid_session(tmp_path):
    """RLIMIT_FSIZE in a child process: EFBIG mid-session, previous file intact, then saved."""
    path = tmp_path / "s.json"
    p = subprocess.run([sys.executable, "-c", FSIZE_CHILD, str(path)], capture_output=True,
                       text=True, timeout=120)  # fmt: skip
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["error"] and "file too large" in r["error"] and str(path) in r["error"]
    assert r["dirty"] and 0 < r["on_disk_noted"] < r["in_memory_noted"]
    assert not r["after_dirty"] and r["after_real"] == r["mem_real"] and r["after_bogus"] == 1
    assert not [q for q in tmp_path.iterdir() if q.name.endswith(".tmp")]


def test_existing_permissions_kept_new_files_follow_umask(tmp_path):
    s = make_session()
    shared = save_session(s, tmp_path / "shared.json")
    shared.chmod(0o664)
    s.current.labels.set_label(0, "real")
    save_session(s, shared)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o664  # not rewritten as 0600
    shared.chmod(0o640)
    save_session(s, shared)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o640
    for mask, expected in ((0o022, 0o644), (0o002, 0o664), (0o077, 0o600)):
        old = os.umask(mask)
        try:
            new = save_session(s, tmp_path / f"new_{mask:o}.json")
        finally:
            os.umask(old)
        assert stat.S_IMODE(new.stat().st_mode) == expected


def test_symlinked_session_file_stays_a_link(tmp_path):
    real = save_session(make_session(), tmp_path / "real.json")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    s = load_session(link)
    s.current.labels.set_label(3, "bogus")
    save_session(s, link)
    assert link.is_symlink() and labels_on_disk(real) == {3: Label.BOGUS}


def test_cli_export_to_a_read_only_folder_is_one_line(tmp_path, capsys):
    from diascan.cli.main import main

    session = save_session(make_session(), tmp_path / "s.json")
    with unwritable_folder(tmp_path / "ro") as folder:
        folder.read_only()
        out = folder.path / "labels.csv"
        assert main(["export", str(session), "--out", str(out), "--labels", "none"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"diascan export: error: {out}: ")
        assert "read-only file system" in err[0] or "permission denied" in err[0]
        assert not out.exists()
