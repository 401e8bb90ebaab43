"""Property-based fuzzing of the image readers (issue 12): generated FITS files (mask-plane cards
MP_/MSKN/MSKM, WCS cards, origin cards, metadata of every type, image dtypes and shapes, DP2
JSON HDUs) must give either a valid image or ONE line naming the file with exit code 2; never a
traceback, never a changed input, always in bounded time.

``DIASCAN_FUZZ_EXAMPLES`` sets the number of examples per target (default 300).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from diascan.cli.main import main
from diascan.errors import ImageReadError
from diascan.io import read_image

EXAMPLES = int(os.environ.get("DIASCAN_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # the time bound is asserted per example below (first calls import astropy)
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    # DIASCAN_FUZZ_NO_SHRINK=1 reports a failure at once (shrinking a file can take minutes)
    phases=[p for p in Phase if p != Phase.shrink or not os.environ.get("DIASCAN_FUZZ_NO_SHRINK")],
)
#: Seconds one example may take (a tiny file: anything slower is a hang).
TIME_BOUND = 10.0

# ---------------------------------------------------------------------------- strategies

numbers = st.one_of(
    st.integers(-5, 70),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.sampled_from([0, 1, 30, 31, 32, 62, 63, 1e30, -1e30, 0.5, 2**31]),
)
values = st.one_of(numbers, st.booleans(), st.text(max_size=12), st.sampled_from(["", " ", "T"]))

wcs_cards = st.fixed_dictionaries(
    {},
    optional={
        "CTYPE1": st.sampled_from(["RA---TAN", "RA---TAN-SIP", "GLON-TAN", "LINEAR", "XX--TAN", ""]),
        "CTYPE2": st.sampled_from(["DEC--TAN", "DEC--TAN-SIP", "GLAT-TAN", "LINEAR", "YY", ""]),
        "CRVAL1": numbers, "CRVAL2": numbers, "CRPIX1": numbers, "CRPIX2": numbers,
        "CD1_1": numbers, "CD1_2": numbers, "CD2_1": numbers, "CD2_2": numbers,
        "CDELT1": numbers, "CDELT2": numbers, "A_ORDER": st.integers(-1, 9),
        "A_2_0": numbers, "RADESYS": st.sampled_from(["ICRS", "FK5", "GALACTIC", "??"]),
    },
)  # fmt: skip
origin_cards = st.fixed_dictionaries(
    {},
    optional={"CRPIX1A": values, "CRPIX2A": values, "CRVAL1A": values, "CRVAL2A": values,
              "CTYPE1A": st.sampled_from(["LINEAR", "X"]), "LTV1": values, "LTV2": values},
)  # fmt: skip
metadata_cards = st.fixed_dictionaries(
    {},
    optional={"VISIT": values, "EXPID": values, "DETECTOR": values, "PSFSIGMA": values,
              "MJD-OBS": values, "EXPTIME": values, "BAND": values, "FILTER": values,
              "DATE-AVG": st.one_of(values, st.just("2020-01-20T12:34:56")),
              "TIMESYS": st.sampled_from(["TAI", "UTC", "XYZ"]), "INHERIT": st.booleans(),
              "BUNIT": values},
)  # fmt: skip
plane_names = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789", min_size=1, max_size=20)
mp_cards = st.dictionaries(plane_names.map(lambda n: f"MP_{n}"), values, max_size=6)
mskn_cards = st.lists(
    st.tuples(st.integers(0, 40), st.one_of(plane_names, values), st.one_of(st.none(), values)),
    max_size=6,
)

dtypes = st.sampled_from(["uint8", "int16", "int32", "int64", "float32", "float64", ">f4"])
shapes = st.one_of(
    st.tuples(st.integers(1, 24), st.integers(1, 24)),
    st.tuples(st.integers(1, 30)),
    st.tuples(st.integers(1, 2), st.integers(1, 6), st.integers(1, 6)),
)


@st.composite
def fits_files(draw) -> bytes:
    """Bytes of a FITS file in one of the layouts diascan reads, with generated cards."""
    layout = draw(st.sampled_from(["plain", "afw", "afw-exttype", "position", "dp2"]))
    shape = draw(shapes)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(dtypes)
    raw = rng.normal(0, 10, shape) * draw(st.sampled_from([1, 1e6, 1e40]))
    if draw(st.booleans()):
        raw.flat[rng.integers(0, raw.size, max(1, raw.size // 5))] = np.nan
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image = raw.astype(kind)
    mask = rng.integers(0, 2**31 - 1, shape, dtype=np.int64).astype(
        draw(st.sampled_from(["int32", "int64", "int16", "float32"]))
    )
    variance = np.abs(rng.normal(100, 5, shape)).astype("float32")
    primary = fits.Header()
    image_hdr, mask_hdr = fits.Header(), fits.Header()
    for target, cards in ((image_hdr, draw(wcs_cards)), (image_hdr, draw(origin_cards)),
                          (draw(st.sampled_from([primary, image_hdr])), draw(metadata_cards)),
                          (mask_hdr, draw(mp_cards))):  # fmt: skip
        for key, value in cards.items():
            with contextlib.suppress(ValueError, TypeError, KeyError):
                target[key if len(key) <= 8 else f"HIERARCH {key}"] = value
    for n, name, m in draw(mskn_cards):
        with contextlib.suppress(ValueError, TypeError, KeyError):
            mask_hdr[f"MSKN{n:04d}"] = name
            if m is not None:
                mask_hdr[f"MSKM{n:04d}"] = m
    compress = draw(st.booleans()) and len(shape) == 2 and kind != "int64"

    def hdu(data, hdr, name=None):  # each header is used once: no copy (astropy copies are slow)
        if name and layout in ("afw", "dp2"):
            hdr["EXTNAME"] = name
        if name and layout == "afw-exttype":
            hdr["EXTTYPE"] = name
        if compress and data.dtype.kind in "iuf":
            return fits.CompImageHDU(data, header=hdr, quantize_level=0.0)
        return fits.ImageHDU(data, header=hdr)

    if layout == "plain":
        hdus = [fits.PrimaryHDU(image, header=image_hdr)]
    else:
        if layout == "dp2":
            primary["FMTVER"] = 1
            primary["JSONADDR"] = draw(st.integers(0, 10**6))
        hdus = [fits.PrimaryHDU(header=primary), hdu(image, image_hdr, "IMAGE"),
                hdu(mask, mask_hdr, "MASK"), hdu(variance, fits.Header(), "VARIANCE")]  # fmt: skip
        if layout == "dp2":
            blob = draw(st.one_of(st.binary(max_size=200), st.just(b'{"obs_info": {"visit_id": '
                                  b'"x"}, "summary_stats": {"psfSigma": -1}, "band": 5}')))  # fmt: skip
            col = fits.Column(name="JSON", format="PB()",
                              array=np.array([np.frombuffer(blob, np.uint8)], dtype=object))  # fmt: skip
            hdus.append(fits.BinTableHDU.from_columns([col], name="JSON"))
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits.HDUList(hdus).writeto(buf, output_verify="silentfix")
    data = buf.getvalue()
    # sometimes a damaged file: truncated, or bytes flipped in the data
    damage = draw(st.sampled_from(["none", "none", "truncate", "flip"]))
    if damage == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    elif damage == "flip" and len(data) > 2880:
        pos = draw(st.integers(2880, len(data) - 1))
        data = data[:pos] + bytes([data[pos] ^ 0xA5]) + data[pos + 1 :]
    return data


# ---------------------------------------------------------------------------- checks


def _write(data: bytes) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="diascan-fuzz-"))
    path = folder / "fuzz.fits"
    path.write_bytes(data)
    return path


def _valid(img) -> None:
    assert img.image.ndim == 2 and img.image.dtype == np.float32 and img.image.size > 0
    assert img.mask.shape == img.image.shape and img.mask.dtype in (np.int32, np.int64)
    assert img.variance.shape == img.image.shape and img.variance.dtype == np.float32
    width = 31 if img.mask.dtype == np.int32 else 63
    bits = list(img.mask_planes.values())
    assert all(isinstance(b, int) and 0 <= b < width for b in bits), img.mask_planes
    assert len(set(bits)) == len(bits), img.mask_planes
    assert isinstance(img.x0, int) and isinstance(img.y0, int)
    assert all(isinstance(n, str) and "\n" not in n for n in img.notes), img.notes


def _cli(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # warnings are not diascan's output under test here
        rc = main(args)
    return rc, out.getvalue(), err.getvalue()


def _check_error_line(rc: int, err: str, path: Path, command: str) -> None:
    assert rc in (0, 2), (rc, err)
    assert "Traceback" not in err
    if rc == 2:
        assert err.count("\n") == 1, err
        assert err.startswith(f"diascan {command}: error: ") and str(path) in err, err


@FUZZ
@given(fits_files())
def test_read_image_gives_an_image_or_an_error_naming_the_file(data):
    path = _write(data)
    t0 = time.perf_counter()
    try:
        _valid(read_image(path))
    except ImageReadError as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc), str(exc)
    assert time.perf_counter() - t0 < TIME_BOUND
    assert path.read_bytes() == data  # the input is never changed


@FUZZ
@given(fits_files())
def test_diascan_info_exits_0_or_2_with_one_line(data):
    path = _write(data)
    digest = hashlib.sha256(data).hexdigest()
    t0 = time.perf_counter()
    rc, _, err = _cli(["info", str(path)])
    assert time.perf_counter() - t0 < TIME_BOUND
    _check_error_line(rc, err, path, "info")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


@FUZZ
@given(fits_files())
def test_diascan_score_exits_0_or_2_with_one_line(data):
    path = _write(data)
    out = path.with_name("out.parquet")
    t0 = time.perf_counter()
    rc, _, err = _cli(["score", "--science", str(path), "--difference", str(path),
                       "--template", str(path), "--no-score", "--quiet", "--out", str(out)])  # fmt: skip
    assert time.perf_counter() - t0 < TIME_BOUND
    assert rc in (0, 2), (rc, err)
    assert "Traceback" not in err
    if rc == 2:
        assert err.count("\n") == 1 and err.startswith("diascan score: error: "), err
    else:
        assert out.is_file()
    assert path.read_bytes() == data
