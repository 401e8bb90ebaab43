"""Inputs are sacred: no output (score --out, export, session file, results cache, demo and
train folders) may be, or hold, an input file, whatever the path says (symlink, hard link,
``..``), with or without --overwrite. Every refusal is one line, exit code 2, input unchanged."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from diascan import results_cache
from diascan.cli.main import main
from diascan.errors import OutputError, SessionError
from diascan.safety import check_output_folder, check_output_path, same_file
from diascan.session import Session, SourceRecord, VisitEntry, save_session
from tests._tiny_visit import score_args, tiny_visit


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def visit(tmp_path_factory) -> dict[str, Path]:
    return tiny_visit(tmp_path_factory.mktemp("visit"))


def one_error_line(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"diascan {command}: error: ")
    return err[0]


def out_spellings(target: Path, tmp_path: Path) -> dict[str, Path]:
    """Several names of ``target``: itself, with ``..``, a symlink, a hard link (the links are
    made in the folder ``tmp_path``)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    link = tmp_path / "link.fits"
    link.symlink_to(target)
    hard = tmp_path / "hard.fits"
    os.link(target, hard)
    dotted = target.parent / ".." / target.parent.name / "." / target.name
    return {"plain": target, "dotdot": dotted, "symlink": link, "hardlink": hard}


def test_same_file_sees_through_links_and_dotdot(tmp_path):
    a = tmp_path / "a.csv"
    a.write_text("x\n")
    for name in out_spellings(a, tmp_path).values():
        assert same_file(name, a)
    b = tmp_path / "b.csv"
    b.write_text("x\n")  # same content, another file
    assert not same_file(a, b)
    assert not same_file(tmp_path / "missing.csv", a)


@pytest.mark.parametrize("role", ["science", "difference", "template", "catalog"])
@pytest.mark.parametrize("spelling", ["plain", "dotdot", "symlink", "hardlink"])
@pytest.mark.parametrize("overwrite", [False, True])
def test_score_out_never_replaces_an_input(visit, tmp_path, capsys, role, spelling, overwrite):
    before = {r: sha(p) for r, p in visit.items()}
    target = visit[role]
    out = out_spellings(target, tmp_path)[spelling]
    # the table format follows the extension: give the link names the input's extension
    if spelling in ("symlink", "hardlink") and target.suffix != out.suffix:
        renamed = out.with_suffix(target.suffix)
        out.rename(renamed)
        out = renamed
    args = score_args(visit, out, "--no-score", "--quiet", *(["--overwrite"] if overwrite else []))
    assert main(args) == 2
    line = one_error_line(capsys, "score")
    assert "never writes over an input file" in line and str(out) in line
    assert {r: sha(p) for r, p in visit.items()} == before


def test_score_out_is_not_a_model_package_file(visit, tmp_path, capsys):
    from diascan.models import bundled_models_dir

    pkg = bundled_models_dir() / "diascan_taccnn_sim_v1"
    ckpt = pkg / "checkpoint.pt"
    link = tmp_path / "scores.parquet"
    link.symlink_to(ckpt)
    before = sha(ckpt)
    assert main(score_args(visit, link, "--quiet", "--overwrite", "--model", str(pkg))) == 2
    assert "model package file" in one_error_line(capsys, "score")
    assert sha(ckpt) == before


def test_score_out_ok_elsewhere_and_overwrite_of_an_output_still_works(visit, tmp_path):
    out = tmp_path / "s.parquet"
    assert main(score_args(visit, out, "--no-score", "--quiet")) == 0
    assert main(score_args(visit, out, "--no-score", "--quiet", "--overwrite")) == 0


def _session_on(visit: dict[str, Path]) -> Session:
    srcs = [SourceRecord(id=i, ra=150.0, dec=2.0, x=1.0, y=2.0) for i in range(3)]
    v = VisitEntry.create(srcs, science=visit["science"], difference=visit["difference"],
                          template=visit["template"], catalog=visit["catalog"])
    return Session(visits=[v])


@pytest.mark.parametrize("spelling", ["plain", "dotdot", "symlink", "hardlink"])
def test_export_never_replaces_the_session_or_its_inputs(visit, tmp_path, capsys, spelling):
    session_file = save_session(_session_on(visit), tmp_path / "s.json")
    session_file = session_file.rename(session_file.with_suffix(".csv"))  # an exportable name
    before = {**{r: sha(p) for r, p in visit.items()}, "session": sha(session_file)}
    for target in (session_file, visit["catalog"], visit["science"]):
        spellings = out_spellings(target, tmp_path / target.name.replace(".", "_"))
        out = spellings[spelling]
        if spelling in ("symlink", "hardlink"):
            out = out.rename(out.with_suffix(target.suffix))
        assert main(["export", str(session_file), "--out", str(out), "--overwrite"]) == 2
        assert "never writes over an input file" in one_error_line(capsys, "export")
    assert {**{r: sha(p) for r, p in visit.items()}, "session": sha(session_file)} == before


def test_session_file_is_never_an_input(visit, tmp_path):
    session = _session_on(visit)
    before = sha(visit["catalog"])
    for out in out_spellings(visit["catalog"], tmp_path).values():
        with pytest.raises(SessionError, match="never writes over an input file"):
            save_session(session, out)
    assert sha(visit["catalog"]) == before
    assert session.modified is None  # a refused save leaves the session as it was


def test_results_cache_refuses_a_folder_holding_an_input(visit, tmp_path, monkeypatch, caplog):
    """$DIASCAN_RESULTS_CACHE pointed at the data folder: nothing stored, nothing pruned."""
    data = visit["science"].parent
    monkeypatch.setenv("DIASCAN_RESULTS_CACHE", str(data))
    before = {r: sha(p) for r, p in visit.items()}
    out = tmp_path / "o.parquet"
    assert main(score_args(visit, out, "--no-score", "--quiet", "--cache")) == 0
    assert "results cache not used" in caplog.text
    assert {r: sha(p) for r, p in visit.items()} == before
    assert sorted(p.name for p in data.iterdir()) == sorted(p.name for p in visit.values())


def test_results_cache_prunes_only_its_own_entries(tmp_path, monkeypatch):
    monkeypatch.setenv("DIASCAN_RESULTS_CACHE", str(tmp_path))
    mine = [tmp_path / (f"{i:x}" * 64)[:64] for i in range(1, 7)]
    for i, p in enumerate(mine):
        p.mkdir()
        os.utime(p, ns=(i * 10**9, i * 10**9))
    user = tmp_path / "visit_folder"
    user.mkdir()
    (user / "science.fits").write_bytes(b"precious")
    results_cache.prune(keep=2)
    assert user.is_dir() and (user / "science.fits").read_bytes() == b"precious"
    assert sorted(p for p in tmp_path.iterdir() if p != user) == sorted(mine[-2:])


def test_check_output_folder(tmp_path):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    f = data / "sub" / "cat.csv"
    f.write_text("ra,dec\n")
    with pytest.raises(OutputError, match="holds the catalog"):
        check_output_folder(data, [("catalog", f)])
    with pytest.raises(OutputError):
        check_output_folder(data / "sub" / ".." / "sub", [f])
    link = tmp_path / "alias"
    link.symlink_to(data)
    with pytest.raises(OutputError):
        check_output_folder(link, [f])
    check_output_folder(tmp_path / "elsewhere", [f])  # fine
    check_output_path(tmp_path / "new.csv", [None, ("catalog", None), f])  # None skipped


def test_demo_overwrite_replaces_links_not_their_targets(tmp_path, capsys):
    """``diascan demo --out DIR --overwrite`` where DIR's files are links to the user's files:
    the links are replaced, the files they point to stay as they were."""
    user = tmp_path / "user"
    user.mkdir()
    precious = {n: user / n for n in ("science.fits", "dia_source.parquet", "target.json")}
    for p in precious.values():
        p.write_bytes(b"the user's own data " + p.name.encode())
    out = tmp_path / "demo"
    out.mkdir()
    (out / "science.fits").symlink_to(precious["science.fits"])
    os.link(precious["dia_source.parquet"], out / "dia_source.parquet")
    (out / "target.json").symlink_to(precious["target.json"])
    before = {n: sha(p) for n, p in precious.items()}
    assert main(["demo", "--out", str(out), "--small", "--overwrite"]) == 0
    assert {n: sha(p) for n, p in precious.items()} == before
    assert not (out / "science.fits").is_symlink() and (out / "science.fits").stat().st_size > 1e6


def test_train_out_is_not_a_compared_package(tmp_path, capsys):
    from diascan.models import bundled_models_dir

    pkg = bundled_models_dir() / "diascan_taccnn_sim_v1"
    before = sha(pkg / "checkpoint.pt")
    assert main(["train", "--out", str(pkg), "--force", "--compare", str(pkg), "--epochs", "1",
                 "--n-train", "10"]) == 2  # fmt: skip
    assert "never writes over or deletes an input file" in one_error_line(capsys, "train")
    assert sha(pkg / "checkpoint.pt") == before
