"""Archive links built locally (no network): Legacy Survey viewer, SIMBAD, TNS."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from diascan.links import ARCHIVES, legacy_survey_url, position_text, simbad_url, tns_url


def _parts(url: str):
    u = urlsplit(url)
    return f"{u.scheme}://{u.netloc}{u.path}", {k: v[0] for k, v in parse_qs(u.query).items()}


def test_legacy_survey_viewer():
    base, q = _parts(legacy_survey_url(53.1234567, -27.9))
    assert base == "https://www.legacysurvey.org/viewer"
    assert q == {"ra": "53.123457", "dec": "-27.900000", "layer": "ls-dr10", "zoom": "16",
                 "mark": "53.123457,-27.900000"}


def test_simbad_cone():
    url = simbad_url(53.1, -27.9, radius_arcsec=5)
    base, q = _parts(url)
    assert base == "https://simbad.cds.unistra.fr/simbad/sim-coo"
    assert q["Coord"] == "53.100000 -27.900000" and q["CooFrame"] == "ICRS"
    assert q["Radius"] == "5" and q["Radius.unit"] == "arcsec"
    assert "%2B" in simbad_url(10, 5)  # a plus sign in Dec is escaped, not read as a space


def test_tns_cone():
    base, q = _parts(tns_url(361.5, 12.25))
    assert base == "https://www.wis-tns.org/search"
    assert q == {"ra": "1.500000", "decl": "12.250000", "radius": "10", "coords_unit": "arcsec"}


def test_bad_positions_and_the_menu_list():
    with pytest.raises(ValueError, match="no sky position"):
        tns_url(float("nan"), 1.0)
    with pytest.raises(ValueError, match="outside"):
        simbad_url(1.0, 91.0)
    assert [title for title, _ in ARCHIVES] == ["Legacy Survey viewer", "SIMBAD", "TNS"]
    assert position_text(53.125, -27.9) == "53.125000 -27.900000  03:32:30.00 -27:54:00.0"
