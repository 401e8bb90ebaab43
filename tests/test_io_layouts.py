"""Every Rubin layout: real afw files, DP2 files written by the project, pre-2021 and position
layouts, origin and INHERIT rules, plane aliases, bad header values and corrupt data."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from astropy.io import fits
from astropy.time import Time

from diascan.cli.main import main
from diascan.errors import ImageReadError
from diascan.io import ImageData, read_image, write_exposure
from diascan.io.info import describe
from tests.test_io_images import NX, NY, _exposure

AFW_EXPOSURES = ["exposure-version-0.fits", "exposure-version-2.fits"]


def _mp_cards(hdr) -> dict[str, int]:
    return {k[3:]: v for k, v in hdr.items() if k.startswith("MP_")}


# ---------------------------------------------------------------------------- real afw files


@pytest.mark.parametrize("name", AFW_EXPOSURES)
def test_real_afw_exposures_read_as_afw_does(shared_dir, name):
    path = shared_dir / "data" / "afw" / name
    out = read_image(path)
    with fits.open(path) as hdul:  # by position: image, mask, variance are HDUs 1, 2, 3
        image, mask, variance = (hdul[i].data.astype(t) for i, t in ((1, "f4"), (2, "i4"), (3, "f4")))
        planes = _mp_cards(hdul[2].header)
        date = Time(hdul[0].header["DATE-AVG"], scale="tai").mjd
        assert all("EXTNAME" not in hdul[i].header for i in (1, 2, 3))
    assert out.layout == "afw-exttype"
    assert [(h.index, h.role, h.found_by) for h in out.hdus] == [
        (1, "image", "EXTTYPE"), (2, "mask", "EXTTYPE"), (3, "variance", "EXTTYPE")]  # fmt: skip
    np.testing.assert_array_equal(out.image, image)
    np.testing.assert_array_equal(out.mask, mask)
    np.testing.assert_array_equal(out.variance, variance)
    assert out.mask_planes == planes and not out.variance_estimated
    assert np.all(out.variance == 1.0)
    # the one flagged pixel is BAD | INTRP; INTRP answers to its DP2 name too
    assert out.plane("BAD").sum() == 1 and out.plane("INTERPOLATED")[5, 5]
    assert out.bit("INTRP") == out.bit("INTERPOLATED") == 1 << planes["INTRP"]
    assert (out.x0, out.y0) == (0, 0)
    assert out.metadata["visit"] == 12345 and out.metadata["exptime"] == 30.0
    assert out.metadata["mjd"] == pytest.approx(date, abs=1e-9)  # DATE-AVG, as VisitInfo
    assert out.has_sky
    np.testing.assert_allclose(out.wcs.wcs.crval, [30.0, 40.0])


def test_real_afw_plain_and_tile_compressed_images(shared_dir):
    plain = read_image(shared_dir / "data" / "afw" / "ticketdm26260.fits")
    packed = read_image(shared_dir / "data" / "afw" / "ticketdm26260.fits.fz")
    ref = fits.getdata(shared_dir / "data" / "afw" / "ticketdm26260.fits", 0)
    for img, index in ((plain, 0), (packed, 1)):
        assert img.layout == "plain" and img.hdus[0].index == index
        np.testing.assert_array_equal(img.image, ref)
        assert img.variance_estimated and not img.mask.any() and (img.x0, img.y0) == (0, 0)
    assert "tile-compressed" in packed.hdus[0].kind


# ---------------------------------------------------------------------------- DP2


def _planes(n: int) -> dict[str, int]:
    base = ["BAD", "SATURATED", "INTERPOLATED", "COSMIC_RAY", "DETECTION_EDGE", "DETECTED",
            "DETECTED_NEGATIVE", "SUSPECT", "NO_DATA", "STREAK"]  # fmt: skip
    names = base[:n] + [f"EXTRA_{i}" for i in range(n - len(base[:n]))]
    return {name: i for i, name in enumerate(names)}


def _dp2_source(n_planes: int) -> ImageData:
    src = _exposure()
    src.mask_planes = _planes(n_planes)
    rng = np.random.default_rng(n_planes)
    src.mask = rng.integers(0, 2**n_planes, (NY, NX), dtype=np.int64)
    if n_planes <= 31:
        src.mask = src.mask.astype(np.int32)
    src.mask_descriptions = {"EXTRA_3": "a plane of our own"}
    return src


@pytest.mark.parametrize("n_planes", [10, 40])
def test_dp2_files_with_10_and_40_planes(tmp_path, n_planes):
    src = _dp2_source(n_planes)
    path = write_exposure(tmp_path / "dp2.fits", src, layout="dp2", data_model="difference_image")
    with fits.open(path) as hdul:  # the layout, checked with astropy alone
        p = hdul[0].header
        assert p["FMTVER"] == 1 and p["DATAMODL"].endswith("difference_image-1.0.0")
        assert p["HIERARCH LSST BUTLER DATAID VISIT"] == 2024120700123
        masks = [h for h in hdul if h.name == "MASK"]
        assert len(masks) == (1 if n_planes <= 31 else 2)
        assert [h.header.get("EXTVER", 1) for h in masks] == list(range(1, len(masks) + 1))
        assert all(isinstance(h, fits.CompImageHDU) and h.data.dtype == np.int32 for h in masks)
        cards = [(h.header[f"MSKN{n:04d}"], h.header[f"MSKM{n:04d}"]) for h in masks
                 for n in range(31) if f"MSKN{n:04d}" in h.header]  # fmt: skip
        assert [c[0] for c in cards] == list(src.mask_planes)
        assert all(m == 1 << (i % 31) for i, (_, m) in enumerate(cards))
        assert hdul["IMAGE"].header["BUNIT"] == "nJy" and hdul["VARIANCE"].header["BUNIT"] == "nJy2"
        assert "LTV1" not in hdul["IMAGE"].header and hdul["IMAGE"].header["CRVAL1A"] == -20
        merged = np.zeros((NY, NX), np.int64)
        for k, h in enumerate(masks):
            merged |= h.data.astype(np.int64) << (31 * k)
        np.testing.assert_array_equal(merged, src.mask)
        raw = path.read_bytes()
        for key in ("JSONADDR", "INDXADDR"):
            assert raw[p[key] : p[key] + 8] == b"XTENSION"
        tree = json.loads(hdul["JSON"].data["JSON"][0].tobytes())
        assert tree["summary_stats"]["psfSigma"] == 1.7 and tree["band"] == "r"
        index = hdul["INDEX"].data
        assert list(index["EXTNAME"])[1:4] == ["IMAGE", "MASK", "MASK" if len(masks) > 1 else "VARIANCE"]
        for row in index:
            assert raw[row["HDRADDR"] : row["HDRADDR"] + 6] in (b"SIMPLE", b"XTENSI")
    out = read_image(path)
    assert out.layout == "dp2" and out.mask.dtype == (np.int32 if n_planes <= 31 else np.int64)
    np.testing.assert_array_equal(out.mask, src.mask)
    np.testing.assert_array_equal(out.image, src.image)
    np.testing.assert_array_equal(out.variance, src.variance)
    assert out.mask_planes == src.mask_planes and (out.x0, out.y0) == (-20, -20)
    assert out.bit("SAT") == out.bit("SATURATED") == 2 and out.bit("EDGE") == 16
    if n_planes > 31:
        assert out.mask_descriptions["EXTRA_3"] == "a plane of our own"
        assert out.plane("EXTRA_29").sum() == np.count_nonzero(src.mask & (1 << 39))
    assert out.metadata["visit"] == 2024120700123 and out.metadata["psf_sigma"] == 1.7
    assert out.metadata["mjd"] == pytest.approx(60653.123456789, abs=1e-9)
    assert out.metadata["template_kind"] == "coadd" and out.bunit == "nJy"
    assert [h.found_by for h in out.hdus if h.role == "json"] == ["JSONADDR"]


def test_dp2_with_a_corrupt_json_hdu_still_loads_its_pixels(tmp_path):
    src = _dp2_source(10)
    path = write_exposure(tmp_path / "dp2.fits", src, layout="dp2")
    raw = bytearray(path.read_bytes())
    start = raw.index(b'{"schema_version"')
    raw[start : start + 40] = b"#" * 40  # the tree no longer parses
    path.write_bytes(bytes(raw))
    out = read_image(path)
    assert any("JSON tree does not parse" in n for n in out.notes)
    np.testing.assert_array_equal(out.image, src.image)
    np.testing.assert_array_equal(out.mask, src.mask)
    # what the PRIMARY's Butler cards still say
    assert out.metadata["visit"] == 2024120700123 and out.metadata["band"] == "r"
    assert "psf_sigma" not in out.metadata


# ---------------------------------------------------------------------------- afw generations


def test_pre_2021_layouts_round_trip_and_image_in_primary(tmp_path):
    src = _exposure()
    path = write_exposure(tmp_path / "old.fits", src, layout="afw-exttype")
    with fits.open(path) as hdul:
        assert [h.header.get("EXTNAME") for h in hdul[1:]] == [None, None, None]
        assert [h.header["EXTTYPE"] for h in hdul[1:]] == ["IMAGE", "MASK", "VARIANCE"]
        hdr_i, hdr_m, hdr_v = (h.header.copy() for h in hdul[1:])
    out = read_image(path)
    assert out.layout == "afw-exttype" and out.metadata == src.metadata
    np.testing.assert_array_equal(out.mask, src.mask)
    # the image in the PRIMARY HDU (EXTTYPE = IMAGE there), mask and variance in HDUs 1, 2
    primary = fits.PrimaryHDU(src.image, header=fits.Header([c for c in hdr_i.cards
                              if c.keyword not in ("XTENSION", "PCOUNT", "GCOUNT")]))  # fmt: skip
    primary.header["VISIT"] = 99
    fits.HDUList([primary, fits.ImageHDU(src.mask, hdr_m), fits.ImageHDU(src.variance, hdr_v)]
                 ).writeto(tmp_path / "p.fits")  # fmt: skip
    out = read_image(tmp_path / "p.fits")
    assert [h.index for h in out.hdus] == [0, 1, 2] and out.metadata["visit"] == 99
    np.testing.assert_array_equal(out.variance, src.variance)
    # neither EXTNAME nor EXTTYPE: by position
    for h in (hdr_i, hdr_m, hdr_v):
        del h["EXTTYPE"]
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(src.image, hdr_i), fits.ImageHDU(src.mask, hdr_m),
                  fits.ImageHDU(src.variance, hdr_v)]).writeto(tmp_path / "pos.fits")  # fmt: skip
    out = read_image(tmp_path / "pos.fits")
    assert out.layout == "afw-position" and out.mask_planes == src.mask_planes
    np.testing.assert_array_equal(out.variance, src.variance)


def test_origin_a_wcs_first_then_ltv_and_inherit(tmp_path):
    src = _exposure(x0=5, y0=7)
    path = write_exposure(tmp_path / "a.fits", src)
    with fits.open(path) as hdul:
        hdul["IMAGE"].header["LTV1"] = -100  # afw strips LTV: the A WCS wins
        del hdul["IMAGE"].header["INHERIT"]
        hdul.writeto(tmp_path / "b.fits")
    out = read_image(tmp_path / "b.fits")
    assert (out.x0, out.y0) == (5, 7) and any("LTV1/LTV2 give origin" in n for n in out.notes)
    assert out.metadata == {}  # no INHERIT: the PRIMARY's metadata is not this HDU's
    with fits.open(path) as hdul:
        for k in ("CRPIX1A", "CRPIX2A", "CRVAL1A", "CRVAL2A"):
            del hdul["IMAGE"].header[k]
        hdul.writeto(tmp_path / "c.fits")
    assert (read_image(tmp_path / "c.fits").x0, read_image(tmp_path / "c.fits").y0) == (5, 7)


# ---------------------------------------------------------------------------- bad header values


def _edited(tmp_path, name, hdu, **cards):
    path = write_exposure(tmp_path / f"{name}.src.fits", _exposure(), overwrite=True)
    with fits.open(path) as hdul:
        for key, value in cards.items():
            key = key.replace("__", " ")
            hdul[hdu].header[key if len(key) <= 8 else f"HIERARCH {key}"] = value
        hdul.writeto(tmp_path / f"{name}.fits", output_verify="silentfix", checksum=False)
    return tmp_path / f"{name}.fits"


@pytest.mark.parametrize(
    ("hdu", "cards", "fragment"),
    [
        ("MASK", {"MP_BAD": 31}, "MP_BAD = 31 is outside 0..30"),
        ("MASK", {"MP_BAD": -1}, "outside 0..30"),
        ("MASK", {"MP_BAD": 10**15}, "outside 0..30"),
        ("MASK", {"MP_BAD": "many"}, "is not an integer"),
        ("MASK", {"MP_OTHER": 5}, "both use bit 5"),
        ("IMAGE", {"CRVAL1A": 1e30}, "out of range"),
        ("IMAGE", {"LTV2": "far"}, "is not a number"),
    ],
)
def test_impossible_mask_planes_and_origins_are_errors(tmp_path, hdu, cards, fragment):
    path = _edited(tmp_path, "bad", hdu, **cards)
    with pytest.raises(ImageReadError, match=fragment) as info:
        read_image(path)
    assert str(path) in str(info.value)
    assert main(["info", str(path)]) == 2


def test_metadata_of_the_wrong_type_is_ignored_with_a_note(tmp_path):
    path = _edited(tmp_path, "md", "PRIMARY", VISIT="abc", PSFSIGMA="wide", DETECTOR=-3)
    out = read_image(path)
    assert "visit" not in out.metadata and "psf_sigma" not in out.metadata
    assert "detector" not in out.metadata
    assert sum("ignored" in n for n in out.notes) == 3


def test_fuzz_regressions(tmp_path):
    """Failures tests/fuzz found, kept as ordinary tests."""
    # an unknown TIMESYS made astropy.time raise its own (non-ValueError) type: now a note
    path = _edited(tmp_path, "timesys", "PRIMARY", **{"DATE-AVG": "2020-01-20T12:34:56",
                                                       "TIMESYS": "XYZ"})
    with fits.open(path, mode="update") as hdul:
        del hdul[0].header["MJD-OBS"]
    out = read_image(path)
    assert "mjd" not in out.metadata and any("DATE-AVG" in n for n in out.notes)
    assert all("\n" not in n for n in out.notes)  # astropy's multi-line message: one line
    # a card astropy cannot parse (VerifyError, not a ValueError) is an error naming the file
    raw = bytearray(write_exposure(tmp_path / "u.fits", _exposure()).read_bytes())
    at = raw.index(b"MP_BAD  =")
    raw[at : at + 30] = b"MP_BAD  = 'unclosed           "
    (tmp_path / "u.fits").write_bytes(bytes(raw))
    with pytest.raises(ImageReadError) as info:
        read_image(tmp_path / "u.fits")
    assert str(tmp_path / "u.fits") in str(info.value)


def test_corrupt_compressed_data_is_an_error(tmp_path):
    src = _exposure()
    raw = write_exposure(tmp_path / "e.fits", src).read_bytes()
    gz = bytearray(gzip.compress(raw))
    gz[-6] ^= 0xFF  # the CRC32 of the gzip trailer
    (tmp_path / "crc.fits.gz").write_bytes(bytes(gz))
    with pytest.raises(ImageReadError, match="CRC") as info:
        read_image(tmp_path / "crc.fits.gz")
    assert str(tmp_path / "crc.fits.gz") in str(info.value)
    # a corrupt tile of a RICE-compressed mask (RICE has no check of its own: the DATASUM is)
    path = write_exposure(tmp_path / "c.fits", src, compress=True)
    with fits.open(path, disable_image_compression=True) as hdul:
        start = hdul.fileinfo(2)["datLoc"]
    data = bytearray(path.read_bytes())
    data[start + 200] ^= 0x5A
    (tmp_path / "tile.fits").write_bytes(bytes(data))
    with pytest.raises(ImageReadError, match="corrupt tile-compressed data"):
        read_image(tmp_path / "tile.fits")


# ---------------------------------------------------------------------------- diascan info


def test_info_text_json_and_errors(tmp_path, capsys):
    src = _dp2_source(40)
    dp2 = write_exposure(tmp_path / "dp2.fits", src, layout="dp2")
    text = describe(dp2).text()
    for fragment in ("dp2: DP2 lsst.images", "HDU 3 MASK: mask (by EXTNAME", "int64, 40 planes",
                     "bit 39  EXTRA_29", "x0 = -20", "RA---TAN-SIP", "visit = 2024120700123",
                     "a plane of our own"):  # fmt: skip
        assert fragment in text, fragment
    (tmp_path / "bad.fits").write_text("not fits")
    assert main(["info", str(dp2), str(tmp_path / "bad.fits"), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "bad.fits: not a FITS file" in captured.err
    rows = json.loads(captured.out)
    assert rows[0]["layout"] == "dp2" and len(rows[0]["planes"]) == 40
