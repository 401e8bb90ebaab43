"""Input discovery (diascan.inputs): targets, file roles, visit folders and lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from diascan.errors import InputError
from diascan.inputs import guess_roles, parse_target, pipeline_inputs, visits_from_arg


@pytest.mark.parametrize(
    ("text", "ra", "dec"),
    [
        ("53.1,-27.9", 53.1, -27.9),
        (" 53.1 , -27.9 ", 53.1, -27.9),
        ("53.1 -27.9", 53.1, -27.9),
        ("-10,5", 350.0, 5.0),
        # 03:32:30 = 3.541667 h = 53.125 deg; -27:54:00 = -27.9 deg
        ("03:32:30 -27:54:00", 53.125, -27.9),
        ("03:32:30, -27:54:00", 53.125, -27.9),
        ("3h32m30s -27d54m00s", 53.125, -27.9),
        ("03 32 30 -27 54 00", 53.125, -27.9),
    ],
)
def test_parse_target_degrees_and_sexagesimal(text, ra, dec):
    got = parse_target(text)
    assert got == pytest.approx((ra, dec), abs=1e-9)


@pytest.mark.parametrize("text", ["53.1", "a,b", "1,2,3", "10,95", "nan,0", "inf,1", "03:32 x"])
def test_parse_target_refuses_with_the_rule(text):
    with pytest.raises(InputError) as err:
        parse_target(text)
    msg = str(err.value)
    assert "--target" in msg and "\n" not in msg


def test_parse_target_empty_is_none():
    assert parse_target(None) is None and parse_target("  ") is None


def _touch(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / n).write_bytes(b"")
    return folder


def test_guess_roles_by_name(tmp_path):
    f = _touch(tmp_path / "v", "science.fits", "difference.fits", "template_coadd_0.fits",
               "template_coadd_1.fits", "truth.parquet", "dia_source.parquet")
    files = guess_roles([f])
    assert files["science"].name == "science.fits"
    assert files["difference"].name == "difference.fits"
    assert [p.name for p in files["template_patches"]] == ["template_coadd_0.fits",
                                                           "template_coadd_1.fits"]
    assert files["catalog"].name == "dia_source.parquet"  # preferred over truth.parquet
    assert guess_roles([tmp_path / "v" / "science.fits"]) is None  # no difference


def test_visits_from_folder_and_list(tmp_path):
    for v in ("v1", "v2"):
        _touch(tmp_path / "all" / v, "science.fits", "difference.fits", "template.fits")
    visits = visits_from_arg(tmp_path / "all")
    assert [Path(v["science"]).parent.name for v in visits] == ["v1", "v2"]
    lst = tmp_path / "list.txt"
    lst.write_text("# two visits\nall/v2\n\nall/v1\n")
    assert [Path(v["science"]).parent.name for v in visits_from_arg(lst)] == ["v2", "v1"]
    lst.write_text("all/nothing\n")
    with pytest.raises(InputError, match="line 1"):
        visits_from_arg(lst)


def test_pipeline_inputs_passes_settings(tmp_path):
    files = {"science": "s.fits", "difference": "d.fits", "template": "t.fits",
             "target": [1.0, 2.0]}
    inp = pipeline_inputs(files, use_cache=True, threshold=6.0)
    assert inp.use_cache and inp.threshold == 6.0 and inp.target == (1.0, 2.0)
    assert inp.template == Path("t.fits") and inp.catalog is None
