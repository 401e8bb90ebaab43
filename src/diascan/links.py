"""Links to other archives at a sky position (Qt-free): built locally, nothing is fetched.

The source's right-click menu opens these in the browser: the Legacy Survey sky viewer (deep
optical imaging around the source), SIMBAD (known objects within a radius) and the Transient
Name Server (reported transients within a radius). Positions are ICRS degrees.
"""

from __future__ import annotations

import math
from urllib.parse import urlencode

LEGACY_SURVEY_VIEWER = "https://www.legacysurvey.org/viewer"
SIMBAD_COORD_QUERY = "https://simbad.cds.unistra.fr/simbad/sim-coo"
TNS_SEARCH = "https://www.wis-tns.org/search"

#: Default search radius of the SIMBAD and TNS cone searches (arcsec).
SEARCH_RADIUS_ARCSEC = 10.0


def _check(ra: float, dec: float) -> tuple[float, float]:
    ra, dec = float(ra), float(dec)
    if not (math.isfinite(ra) and math.isfinite(dec)):
        raise ValueError("this source has no sky position")
    if not -90.0 <= dec <= 90.0:
        raise ValueError(f"declination {dec:g} is outside [-90, 90]")
    return ra % 360.0, dec


def legacy_survey_url(ra: float, dec: float, zoom: int = 16, layer: str = "ls-dr10") -> str:
    """The Legacy Survey viewer centred on (ra, dec), with a mark there."""
    ra, dec = _check(ra, dec)
    query = {"ra": f"{ra:.6f}", "dec": f"{dec:.6f}", "layer": layer, "zoom": int(zoom),
             "mark": f"{ra:.6f},{dec:.6f}"}
    return f"{LEGACY_SURVEY_VIEWER}?{urlencode(query)}"


def simbad_url(ra: float, dec: float, radius_arcsec: float = SEARCH_RADIUS_ARCSEC) -> str:
    """SIMBAD's objects within ``radius_arcsec`` of (ra, dec), ICRS."""
    ra, dec = _check(ra, dec)
    query = {"Coord": f"{ra:.6f} {dec:+.6f}", "CooFrame": "ICRS", "CooEpoch": "2000",
             "CooEqui": "2000", "Radius": f"{float(radius_arcsec):g}", "Radius.unit": "arcsec",
             "submit": "submit query"}
    return f"{SIMBAD_COORD_QUERY}?{urlencode(query)}"


def tns_url(ra: float, dec: float, radius_arcsec: float = SEARCH_RADIUS_ARCSEC) -> str:
    """The Transient Name Server's objects within ``radius_arcsec`` of (ra, dec)."""
    ra, dec = _check(ra, dec)
    query = {"ra": f"{ra:.6f}", "decl": f"{dec:.6f}", "radius": f"{float(radius_arcsec):g}",
             "coords_unit": "arcsec"}
    return f"{TNS_SEARCH}?{urlencode(query)}"


#: The archives of the right-click menu: (title, URL builder).
ARCHIVES = (
    ("Legacy Survey viewer", legacy_survey_url),
    ("SIMBAD", simbad_url),
    ("TNS", tns_url),
)


def position_text(ra: float, dec: float) -> str:
    """``'53.123456 -27.912345  03:32:29.63 -27:54:44.4'``: degrees and sexagesimal, for copying."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    ra, dec = _check(ra, dec)
    c = SkyCoord(ra * u.deg, dec * u.deg)
    hms = c.ra.to_string(unit=u.hourangle, sep=":", precision=2, pad=True)
    dms = c.dec.to_string(unit=u.deg, sep=":", precision=1, alwayssign=True, pad=True)
    return f"{ra:.6f} {dec:+.6f}  {hms} {dms}"


__all__ = [
    "ARCHIVES",
    "SEARCH_RADIUS_ARCSEC",
    "legacy_survey_url",
    "position_text",
    "simbad_url",
    "tns_url",
]
