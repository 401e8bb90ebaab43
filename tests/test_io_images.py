"""Image reading and writing: LSST Exposure FITS round trips, plain FITS, bad input, real frames."""

from __future__ import annotations

import gzip
import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS, Sip
from astropy.wcs.utils import proj_plane_pixel_scales

from diascan.errors import ImageReadError
from diascan.io import ImageData, read_image, read_image_metadata, write_exposure
from diascan.io.image_reader import estimate_noise

NY, NX = 60, 80


def _tan_sip_wcs() -> WCS:
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
    w.wcs.crpix = [40.5, 30.5]
    w.wcs.crval = [150.1, 2.2]
    c, s = np.cos(0.3), np.sin(0.3)
    scale = 0.2 / 3600.0
    w.wcs.cd = scale * np.array([[-c, s], [s, c]])
    a = np.zeros((3, 3))
    b = np.zeros((3, 3))
    a[2, 0], a[0, 2], a[1, 1] = 2e-6, -1e-6, 5e-7
    b[2, 0], b[0, 2], b[1, 1] = -3e-7, 1.5e-6, 8e-7
    w.sip = Sip(a, b, None, None, w.wcs.crpix)
    w.wcs.set()
    return w


def _tan_wcs() -> WCS:
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crpix = [40.5, 30.5]
    w.wcs.crval = [150.1, 2.2]
    w.wcs.cd = np.array([[-1.0, 0.0], [0.0, 1.0]]) * (0.2 / 3600.0)
    return w


def _exposure(wcs: WCS | None = None, x0: int = -20, y0: int = -20) -> ImageData:
    rng = np.random.default_rng(7)
    image = rng.normal(0.0, 10.0, (NY, NX)).astype(np.float32)
    image[3, 4] = np.nan
    variance = rng.uniform(90.0, 110.0, (NY, NX)).astype(np.float32)
    planes = {"BAD": 0, "SAT": 1, "DETECTED": 5, "DETECTED_NEGATIVE": 6, "INJECTED_TEMPLATE": 13}
    mask = np.zeros((NY, NX), dtype=np.int32)
    mask[10:12, 20:25] = 1 << 5
    mask[40, 50] = (1 << 13) | 1
    return ImageData(
        image=image,
        mask=mask,
        variance=variance,
        mask_planes=planes,
        wcs=wcs if wcs is not None else _tan_sip_wcs(),
        x0=x0,
        y0=y0,
        bunit="nJy",
        metadata={
            "visit": 2024120700123,
            "detector": 4,
            "band": "r",
            "mjd": 60653.123456789,
            "psf_sigma": 1.7,
            "template_kind": "coadd",
        },
    )


def _write_hdus(path, hdus) -> None:
    fits.HDUList(hdus).writeto(path)


# ---------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("compress", [False, True])
def test_exposure_round_trip_every_field(tmp_path, compress):
    src = _exposure()
    path = write_exposure(tmp_path / "exp.fits", src, compress=compress)
    with fits.open(path) as hdul:
        kinds = {h.name: type(h) for h in hdul}
    expected = fits.CompImageHDU if compress else fits.ImageHDU
    assert kinds["IMAGE"] is expected and kinds["MASK"] is expected

    out = read_image(path)
    assert out.path == path
    for name in ("image", "mask", "variance"):
        got = getattr(out, name)
        assert got.flags.c_contiguous
        assert got.dtype == getattr(src, name).dtype
        np.testing.assert_array_equal(got, getattr(src, name))  # lossless, NaN included
    assert out.mask_planes == src.mask_planes
    assert out.plane("INJECTED_TEMPLATE")[40, 50] and out.plane("BAD")[40, 50]
    assert (out.x0, out.y0) == (-20, -20)
    assert out.bbox == (-20, -20, -20 + NX - 1, -20 + NY - 1)
    assert out.bunit == "nJy"
    assert out.metadata["visit"] == 2024120700123 and isinstance(out.metadata["visit"], int)
    assert out.metadata["detector"] == 4
    assert out.metadata["band"] == "r"
    assert out.metadata == src.metadata  # incl. psf_sigma and the free-form key
    assert not out.variance_estimated
    assert out.has_sky
    assert out.wcs.sip is not None
    np.testing.assert_allclose(out.wcs.sip.a, src.wcs.sip.a)
    yy, xx = np.mgrid[0:NY:7, 0:NX:9]
    ra0, dec0 = src.wcs.pixel_to_world_values(xx, yy)
    ra1, dec1 = out.wcs.pixel_to_world_values(xx, yy)
    np.testing.assert_allclose(ra1, ra0, rtol=0, atol=1e-10)
    np.testing.assert_allclose(dec1, dec0, rtol=0, atol=1e-10)


def test_write_exposure_refuses_overwrite(tmp_path):
    path = write_exposure(tmp_path / "a.fits", _exposure())
    with pytest.raises(FileExistsError):
        write_exposure(path, _exposure())
    other = _exposure(x0=5, y0=7)
    write_exposure(path, other, overwrite=True)
    assert (read_image(path).x0, read_image(path).y0) == (5, 7)
    assert not (tmp_path / "a.fits.part").exists()


def test_hdus_found_by_extname_not_position(tmp_path):
    src = _exposure(wcs=_tan_wcs(), x0=0, y0=0)
    hdr = _tan_wcs().to_header()
    table = fits.BinTableHDU.from_columns(
        [fits.Column(name="id", format="K", array=np.arange(3))], name="ARCHIVE_INDEX"
    )
    mask_hdr = hdr.copy()
    mask_hdr["HIERARCH MP_DETECTED_NEGATIVE"] = 6
    mask_hdr["MP_BAD"] = 2
    hdus = [
        fits.PrimaryHDU(),
        table,
        fits.CompImageHDU(
            src.variance, header=hdr, name="VARIANCE", quantize_level=0.0, compression_type="GZIP_2"
        ),
        fits.ImageHDU(src.mask, header=mask_hdr, name="MASK"),
        fits.ImageHDU(src.image, header=hdr, name="IMAGE"),
    ]
    _write_hdus(tmp_path / "odd.fits", hdus)
    out = read_image(tmp_path / "odd.fits")
    np.testing.assert_array_equal(out.image, src.image)
    np.testing.assert_array_equal(out.variance, src.variance)
    np.testing.assert_array_equal(out.mask, src.mask)
    assert out.mask_planes == {"DETECTED_NEGATIVE": 6, "BAD": 2}


def test_origin_from_alternate_wcs_and_wcs_from_primary(tmp_path):
    img = np.ones((NY, NX), dtype=">f4")  # big-endian on disk, native in memory
    ihdr = fits.Header()
    ihdr["CTYPE1A"], ihdr["CTYPE2A"] = "LINEAR", "LINEAR"
    ihdr["CRPIX1A"], ihdr["CRPIX2A"] = 1.0, 1.0
    ihdr["CRVAL1A"], ihdr["CRVAL2A"] = -20.0, 37.0
    ihdr["BUNIT"] = "nJy"
    ihdr["HIERARCH LSST BUTLER DATAID DETECTOR"] = 9
    ihdr["INHERIT"] = True  # afw: the PRIMARY cards count only for an HDU that inherits them
    primary = fits.PrimaryHDU(header=_tan_wcs().to_header())
    primary.header["HIERARCH LSST BUTLER DATAID VISIT"] = 77
    primary.header["FILTER"] = "i_39"
    _write_hdus(tmp_path / "a.fits", [primary, fits.ImageHDU(img, header=ihdr, name="IMAGE")])
    out = read_image(tmp_path / "a.fits")
    assert (out.x0, out.y0) == (-20, 37)
    assert out.image.dtype == np.float32 and out.image.dtype.isnative
    assert out.has_sky
    np.testing.assert_allclose(out.wcs.wcs.crval, [150.1, 2.2])
    assert out.metadata["visit"] == 77 and out.metadata["detector"] == 9
    assert out.metadata["band"] == "i"
    # no MASK / VARIANCE HDU: empty mask, estimated variance
    assert out.variance_estimated and not out.mask.any()
    # Without INHERIT = T the PRIMARY's WCS and metadata do not apply (as in afw).
    ihdr["INHERIT"] = False
    _write_hdus(tmp_path / "b.fits", [primary, fits.ImageHDU(img, header=ihdr, name="IMAGE")])
    out = read_image(tmp_path / "b.fits")
    assert not out.has_sky and "visit" not in out.metadata and out.metadata["detector"] == 9
    assert (out.x0, out.y0) == (-20, 37)


# ---------------------------------------------------------------------------- plain FITS


def _noisy_image(sigma=5.0, seed=3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.normal(100.0, sigma, (300, 400))
    yy, xx = np.mgrid[0:300, 0:400]
    for x, y in rng.uniform(20, 280, (40, 2)):  # bright stars must not bias the estimate
        img += 5000.0 * np.exp(-((xx - x - 50) ** 2 + (yy - y) ** 2) / (2 * 2.0**2))
    return img.astype(np.float32)


def test_plain_primary_image_estimates_variance_robustly(tmp_path):
    img = _noisy_image(sigma=5.0)
    img[0:3, 0:5] = np.nan
    hdu = fits.PrimaryHDU(img, header=_tan_wcs().to_header())
    hdu.header["MJD-OBS"] = 59000.5
    hdu.writeto(tmp_path / "p.fits")
    out = read_image(tmp_path / "p.fits")
    assert out.variance_estimated
    assert any("estimated" in n for n in out.notes)
    assert out.variance.dtype == np.float32 and out.variance.shape == img.shape
    assert out.variance[100, 100] == pytest.approx(25.0, rel=0.05)
    assert np.std(img[np.isfinite(img)]) > 50  # a plain std would be far off
    assert out.plane("NO_DATA").sum() == 15 and out.mask.sum() == 15 * out.bit("NO_DATA")
    assert out.metadata["mjd"] == 59000.5 and (out.x0, out.y0) == (0, 0)
    assert estimate_noise(img) == pytest.approx(5.0, rel=0.05)


def test_plain_image_in_extension_with_wcs_in_primary(tmp_path):
    img = _noisy_image()
    primary = fits.PrimaryHDU(header=_tan_wcs().to_header())
    primary.header["EXPTIME"] = 30.0
    primary.header["RADECSYS"] = "FK5"  # deprecated card: astropy's WCS "fixes" it, with warnings
    primary.header["DATE-OBS"] = "11/05/18"
    _write_hdus(tmp_path / "e.fits", [primary, fits.ImageHDU(img, name="SCI")])
    out = _no_fits_warnings(read_image, tmp_path / "e.fits")
    np.testing.assert_array_equal(out.image, img)
    assert out.has_sky and out.metadata["exptime"] == 30.0


def test_single_plane_cube_is_squeezed(tmp_path):
    img = _noisy_image()
    fits.PrimaryHDU(img[None, :, :]).writeto(tmp_path / "c.fits")
    out = read_image(tmp_path / "c.fits")
    assert out.shape == img.shape
    assert any("squeezed" in n for n in out.notes)


def test_no_wcs_is_allowed_without_sky(tmp_path):
    fits.PrimaryHDU(_noisy_image()).writeto(tmp_path / "n.fits")
    out = read_image(tmp_path / "n.fits")
    assert out.wcs is None and not out.has_sky
    assert any("no sky coordinates" in n for n in out.notes)


def test_separate_integer_mask_file_with_bit_cards(tmp_path):
    img = _noisy_image()
    fits.PrimaryHDU(img, header=_tan_wcs().to_header()).writeto(tmp_path / "sci.fits")
    mask = np.zeros(img.shape, dtype=np.int16)
    mask[5, 6] = 1 << 8
    mask[7, 8] = 1 << 9
    mhdr = fits.Header()
    mhdr["BIT08"] = (8, "SATURATED")
    mhdr["BIT09"] = (9, "DEAD (UNRESPONSIVE)")
    mhdr["BIT04"] = (4, "NOISY")
    mhdr["BIT15"] = (15, "RESERVED FOR FUTURE USE")
    fits.PrimaryHDU(mask, header=mhdr).writeto(tmp_path / "msk.fits.gz")
    out = read_image(tmp_path / "sci.fits", mask_path=tmp_path / "msk.fits.gz")
    assert out.mask.dtype == np.int32
    assert out.mask_planes == {"SAT": 8, "BAD": 9, "NOISY": 4}
    assert out.plane("SAT")[5, 6] and out.plane("BAD")[7, 8] and out.plane("BAD").sum() == 1


# ---------------------------------------------------------------------------- bad input


def _assert_error(path, fragment, mask_path=None, named=None):
    with pytest.raises(ImageReadError) as info:
        read_image(path, mask_path=mask_path)
    assert fragment in str(info.value)
    assert str(named or path) in str(info.value)


def test_missing_file(tmp_path):
    _assert_error(tmp_path / "nope.fits", "file not found")


def test_not_fits_and_empty(tmp_path):
    (tmp_path / "a.fits").write_text("hello, this is a text file\n" * 20)
    _assert_error(tmp_path / "a.fits", "not a FITS file")
    (tmp_path / "b.fits").write_bytes(b"")
    _assert_error(tmp_path / "b.fits", "empty file")
    with gzip.open(tmp_path / "c.fits.gz", "wb") as fh:
        fh.write(b"not fits at all" * 100)
    _assert_error(tmp_path / "c.fits.gz", "not a FITS file")


def test_truncated_files(tmp_path):
    path = write_exposure(tmp_path / "full.fits", _exposure())
    raw = path.read_bytes()
    (tmp_path / "cut.fits").write_bytes(raw[: len(raw) // 2])
    _assert_error(tmp_path / "cut.fits", "truncated")
    (tmp_path / "hdr.fits").write_bytes(raw[:1000])  # inside the primary header
    _assert_error(tmp_path / "hdr.fits", "FITS")
    gz = gzip.compress(raw)
    (tmp_path / "cut.fits.gz").write_bytes(gz[: len(gz) // 2])
    _assert_error(tmp_path / "cut.fits.gz", "truncated")


@pytest.mark.parametrize("layout", ["afw", "afw-exttype", "dp2"])
def test_metadata_alone_is_what_read_image_gives(tmp_path, layout):
    """read_image_metadata (headers and DP2 tree only) agrees with read_image's metadata."""
    path = write_exposure(tmp_path / "exp.fits", _exposure(), layout=layout)
    meta = read_image_metadata(path)
    assert meta == read_image(path).metadata
    assert meta["visit"] == 2024120700123 and meta["detector"] == 4


def test_metadata_alone_of_plain_fits_and_bad_files(tmp_path):
    primary = fits.PrimaryHDU()
    primary.header["EXPTIME"] = 30.0
    primary.header["VISIT"] = 17
    _write_hdus(tmp_path / "p.fits", [primary, fits.ImageHDU(_noisy_image(), name="SCI")])
    assert read_image_metadata(tmp_path / "p.fits") == {"exptime": 30.0, "visit": 17}
    raw = write_exposure(tmp_path / "full.fits", _exposure()).read_bytes()
    (tmp_path / "hdr.fits").write_bytes(raw[:1000])  # inside the primary header
    (tmp_path / "t.fits").write_text("not FITS\n" * 50)
    for name, fragment in [("hdr.fits", "FITS"), ("t.fits", "not a FITS file"),
                           ("none.fits", "file not found")]:  # fmt: skip
        with pytest.raises(ImageReadError, match=fragment) as info:
            read_image_metadata(tmp_path / name)
        assert str(tmp_path / name) in str(info.value)


def test_no_image_hdu(tmp_path):
    table = fits.BinTableHDU.from_columns([fits.Column(name="a", format="D", array=[1.0])])
    _write_hdus(tmp_path / "t.fits", [fits.PrimaryHDU(), table])
    _assert_error(tmp_path / "t.fits", "no image HDU")


def test_1d_and_3d_data(tmp_path):
    fits.PrimaryHDU(np.arange(50, dtype=np.float32)).writeto(tmp_path / "v.fits")
    _assert_error(tmp_path / "v.fits", "1-D")
    fits.PrimaryHDU(np.zeros((3, 10, 10), dtype=np.float32)).writeto(tmp_path / "c.fits")
    _assert_error(tmp_path / "c.fits", "3-D cube")


def test_planes_of_different_shapes(tmp_path):
    src = _exposure()
    hdus = [
        fits.PrimaryHDU(),
        fits.ImageHDU(src.image, name="IMAGE"),
        fits.ImageHDU(src.mask[:-1], name="MASK"),
        fits.ImageHDU(src.variance, name="VARIANCE"),
    ]
    _write_hdus(tmp_path / "s.fits", hdus)
    _assert_error(tmp_path / "s.fits", "MASK shape")


def test_mask_file_of_different_shape(tmp_path):
    fits.PrimaryHDU(_noisy_image()).writeto(tmp_path / "sci.fits")
    fits.PrimaryHDU(np.zeros((10, 10), dtype=np.int16)).writeto(tmp_path / "m.fits")
    _assert_error(tmp_path / "sci.fits", "differs", tmp_path / "m.fits", tmp_path / "m.fits")
    fits.PrimaryHDU(np.full((300, 400), 0.5, np.float32)).writeto(tmp_path / "f.fits")
    _assert_error(tmp_path / "sci.fits", "non-integer", tmp_path / "f.fits", tmp_path / "f.fits")


def test_all_nan_image(tmp_path):
    fits.PrimaryHDU(np.full((20, 20), np.nan, np.float32)).writeto(tmp_path / "nan.fits")
    _assert_error(tmp_path / "nan.fits", "no finite pixel")
    src = _exposure()
    src.image[:] = np.nan
    write_exposure(tmp_path / "nan_exp.fits", src, compress=True)
    _assert_error(tmp_path / "nan_exp.fits", "no finite pixel")


# ---------------------------------------------------------------------------- real frames


def _no_fits_warnings(func, *args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = func(*args, **kwargs)
    assert [f"{w.category.__name__}: {w.message}" for w in caught] == []
    return out


@pytest.mark.parametrize("name", ["1.fits.gz", "2.fits.gz"])
def test_goto_tan_sip_frames(shared_dir, name):
    path = shared_dir / "data" / "frames" / "goto_n" / name
    img = _no_fits_warnings(read_image, path)
    hdr = fits.getheader(path)
    assert img.shape == (1850, 1850) and img.variance_estimated
    assert img.has_sky and img.wcs.sip is not None
    scale = proj_plane_pixel_scales(img.wcs.celestial) * 3600.0
    np.testing.assert_allclose(scale, 1.24, atol=0.01)
    # the reference pixel lies outside this cut-out: evaluating there must give CRVAL back
    ra, dec = img.wcs.wcs_pix2world([[hdr["CRPIX1"], hdr["CRPIX2"]]], 1)[0]
    assert (ra, dec) == pytest.approx((hdr["CRVAL1"], hdr["CRVAL2"]), abs=1e-9)
    ra_c, dec_c = img.wcs.pixel_to_world_values(924.5, 924.5)
    assert abs(dec_c - hdr["CRVAL2"]) < 3 and abs(ra_c - hdr["CRVAL1"]) < 3
    assert img.metadata["mjd"] == pytest.approx(58249.966319444)


def _tpv_reference(hdr, px, py):
    """Independent TPV pixel -> sky (FITS 1-based pixels), straight from the PV polynomial."""
    cd = np.array([[hdr["CD1_1"], hdr["CD1_2"]], [hdr["CD2_1"], hdr["CD2_2"]]])
    x, y = cd @ np.array([px - hdr["CRPIX1"], py - hdr["CRPIX2"]])
    r = np.hypot(x, y)

    def poly(axis, u, v):
        terms = [
            1,
            u,
            v,
            r,
            u * u,
            u * v,
            v * v,
            u**3,
            u * u * v,
            u * v * v,
            v**3,
            r**3,
            u**4,
            u**3 * v,
            u * u * v * v,
            u * v**3,
            v**4,
        ]
        return sum(hdr.get(f"PV{axis}_{k}", 0.0) * t for k, t in enumerate(terms))

    xi, eta = np.radians(poly(1, x, y)), np.radians(poly(2, y, x))
    ra0, dec0 = np.radians(hdr["CRVAL1"]), np.radians(hdr["CRVAL2"])
    den = np.cos(dec0) - eta * np.sin(dec0)
    ra = ra0 + np.arctan2(xi, den)
    dec = np.arctan2(np.sin(dec0) + eta * np.cos(dec0), np.hypot(xi, den))
    return np.degrees(ra) % 360.0, np.degrees(dec)


def test_ztf_tpv_quadrant_with_mask(shared_dir):
    folder = shared_dir / "data" / "frames" / "ztf_quadrant"
    sci = next(folder.glob("*_sciimg.fits.gz"))
    msk = next(folder.glob("*_mskimg.fits.gz"))
    img = _no_fits_warnings(read_image, sci, mask_path=msk)
    hdr = fits.getheader(sci)
    assert img.shape == (3080, 3072) and img.mask.dtype == np.int32
    assert img.mask_planes["SAT"] == 8 and img.mask_planes["NO_DATA"] == 10
    assert img.mask.any()
    assert img.metadata["band"] == "r" and img.metadata["mjd"] == pytest.approx(59116.4317708)
    scale = proj_plane_pixel_scales(img.wcs.celestial) * 3600.0
    np.testing.assert_allclose(scale, 1.012, atol=0.005)
    for px, py in [(1, 1), (3072, 1), (1, 3080), (3072, 3080), (1536.5, 1540.5)]:
        ra_ref, dec_ref = _tpv_reference(hdr, px, py)
        ra, dec = img.wcs.pixel_to_world_values(px - 1, py - 1)  # array coords are 0-based
        assert abs((ra - ra_ref) * np.cos(np.radians(dec_ref))) * 3600 < 0.01
        assert abs(dec - dec_ref) * 3600 < 0.01
    # the check can fail: without the PV distortion a corner is off by 0.28 arcsec
    tan = WCS(naxis=2)
    tan.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    tan.wcs.crpix = [hdr["CRPIX1"], hdr["CRPIX2"]]
    tan.wcs.crval = [hdr["CRVAL1"], hdr["CRVAL2"]]
    tan.wcs.cd = [[hdr["CD1_1"], hdr["CD1_2"]], [hdr["CD2_1"], hdr["CD2_2"]]]
    ra_t, dec_t = tan.wcs_pix2world([[1, 1]], 1)[0]
    ra_ref, dec_ref = _tpv_reference(hdr, 1, 1)
    assert np.hypot((ra_t - ra_ref) * np.cos(np.radians(dec_ref)), dec_t - dec_ref) * 3600 > 0.2
