"""Go-to: ids, decimal and sexagesimal positions, answers in plain words."""

from __future__ import annotations

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

from diascan.goto import format_separation, locate_source

IDS = np.array([10, 11, 12, 13])
RA = np.array([150.0, 150.001, 150.002, 150.003])
DEC = np.array([2.0, 2.001, 2.002, 2.003])


def test_by_id():
    a = locate_source("13", IDS, RA, DEC)
    assert a.row == 3 and a.message == "source 13"
    a = locate_source(" 99 ", IDS, RA, DEC)
    assert a.row is None and a.message == "no source has the id 99"
    big = np.array([611256453305139201, 611256453305139202], dtype=np.int64)
    assert locate_source("611256453305139202", big).row == 1  # Rubin-sized ids, exactly
    assert locate_source("ZTF21abc", np.array(["ZTF21abd", "ZTF21abc"], dtype=object)).row == 1


@pytest.mark.parametrize("text", [
    "150.002, 2.002", "150.002 2.002", "10:00:00.48 +02:00:07.2", "10h00m00.48s 2d00m07.2s",
    "10 00 00.48 +02 00 07.2",
])
def test_by_position_decimal_and_sexagesimal(text):
    a = locate_source(text, IDS, RA, DEC)
    assert a.row == 2
    assert a.separation_arcsec < 0.05
    assert a.message.startswith("source 12 is the nearest, ") and '" from 150.00200 +2.00200' \
        in a.message


def test_nearest_says_how_far():
    target = SkyCoord(RA[1] * u.deg, DEC[1] * u.deg).directional_offset_by(0 * u.deg, 2 * u.arcmin)
    a = locate_source(f"{target.ra.deg} {target.dec.deg}", IDS, RA, DEC)
    assert a.row == 3  # 150.003, 2.003 is nearer to 150.001, 2.0343 than 11 is
    expect = target.separation(SkyCoord(RA[3] * u.deg, DEC[3] * u.deg)).arcsec
    assert a.separation_arcsec == pytest.approx(expect)
    assert format_separation(expect) in a.message and "'" in a.message


def test_plain_words_when_nothing_is_found():
    assert "cannot go to 'abc'" in locate_source("abc", IDS, RA, DEC).message
    assert "outside [-90, 90]" in locate_source("150 -95", IDS, RA, DEC).message
    assert locate_source("", IDS, RA, DEC).message.startswith("type a source id")
    nosky = locate_source("150 2", IDS, np.full(4, np.nan), np.full(4, np.nan))
    assert nosky.row is None and "no sky positions" in nosky.message
    assert not locate_source("abc", IDS, RA, DEC).found


def test_format_separation():
    assert format_separation(0.4242) == '0.42"'
    assert format_separation(12.34) == '12.3"'
    assert format_separation(150) == "2.5'"
    assert format_separation(7200) == "2.00 deg"
