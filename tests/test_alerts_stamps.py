"""Alert cutouts and display stamps: Rubin FITS (variance, PSF, TAN WCS without CTYPE, CUTMIN
origin), ZTF gzipped FITS (clipped at chip edges, NaN pixels), and the StampSource triplets."""

from __future__ import annotations

import gzip
import io

import numpy as np
import pyarrow.parquet as pq
import pytest
from astropy.io import fits

from diascan.alerts import CutoutError, decode_cutout, open_alerts
from diascan.alerts.cutouts import display_stamp, ztf_centre
from diascan.stamps import FRAME_ORDER, StampSource


@pytest.fixture(scope="module")
def rubin(shared_dir):
    path = shared_dir / "data" / "rubin_alerts" / "rubin_alerts_sample.parquet"
    return open_alerts(path), pq.read_table(path).to_pydict()


@pytest.fixture(scope="module")
def ztf(shared_dir):
    path = shared_dir / "data" / "ztf_alerts" / "ztf_alerts_sample.parquet"
    return open_alerts(path), pq.read_table(path).to_pydict()


def test_rubin_cutout_planes_wcs_and_origin(rubin):
    alerts, columns = rubin
    for i in (0, 50, 99):
        raw = columns["cutoutScience"][i]
        cut = decode_cutout(raw)
        with fits.open(io.BytesIO(raw)) as hdul:
            hdr = hdul[0].header
            assert "CTYPE1" not in hdr  # the assumption under test
            np.testing.assert_array_equal(cut.image, hdul[0].data)
            np.testing.assert_array_equal(cut.variance, hdul["UNCERT"].data)
            np.testing.assert_allclose(cut.psf, hdul["PSFIMAGE"].data)
            assert cut.origin == (hdr["CUTMINX"] + 1, hdr["CUTMINY"] + 1)
        assert cut.bunit == "nJy"
        # the diaSource position falls on the same array pixel through the TAN WCS and the origin
        px, py = cut.wcs.world_to_pixel_values(columns["ra"][i], columns["dec"][i])
        assert px == pytest.approx(columns["x"][i] - cut.origin[0], abs=1e-3)
        assert py == pytest.approx(columns["y"][i] - cut.origin[1], abs=1e-3)
        image = cut.to_image_data()
        assert (image.x0, image.y0) == cut.origin and image.has_sky
        np.testing.assert_array_equal(image.variance, cut.variance)


def test_rubin_triplets_are_centred_on_the_source(rubin):
    alerts, columns = rubin
    assert isinstance(alerts, StampSource) and len(alerts) == 100
    for i in (0, 50, 99):
        st = alerts.stamps(i)
        trip = alerts.triplet(i, 21)
        for name in FRAME_ORDER:
            cut = st.cutouts[name]
            cx, cy = st.centres[name]
            assert cx == pytest.approx(columns["x"][i] - cut.origin[0])
            col, row = int(np.floor(cx + 0.5)), int(np.floor(cy + 0.5))
            stamp = trip.frames()[name]
            assert stamp.shape == (21, 21) and stamp.dtype == np.float32
            assert stamp[10, 10] == cut.image[row, col]
        # a display stamp larger than the cutout: the cutout whole, NaN around it
        big = alerts.triplet(i, 80).science
        assert np.isfinite(big).sum() == np.isfinite(st.cutouts["science"].image).sum()


def test_ztf_cutouts_nan_and_no_wcs(ztf):
    alerts, columns = ztf
    nan_alerts = 0
    for i in range(len(alerts)):
        raw = gzip.decompress(columns["cutoutDifference"][i])
        with fits.open(io.BytesIO(raw), ignore_missing_simple=True) as hdul:
            data = hdul[0].data
        cut = alerts.stamps(i).cutouts["difference"]
        np.testing.assert_array_equal(cut.image, data)
        assert cut.wcs is None and cut.origin is None and cut.variance is None
        nan_alerts += bool(np.isnan(data).any())
    assert nan_alerts > 0


def test_ztf_clipped_stamps_keep_the_source_in_the_middle(ztf):
    """A stamp clipped at a chip edge lost its low side when the candidate is near the chip's
    first pixel: the display stamp puts the candidate pixel in the middle either way."""
    alerts, columns = ztf
    clipped = [i for i in range(len(alerts)) if (columns["stamp_ny"][i], columns["stamp_nx"][i])
               != (63, 63)]
    assert len(clipped) == 5
    for i in clipped:
        st = alerts.stamps(i)
        cut = st.cutouts["science"]
        cx, cy = st.centres["science"]
        ny, nx = cut.shape
        for n, pos, c in ((nx, columns["xpos"][i], cx), (ny, columns["ypos"][i], cy)):
            if n < 63 and pos < 32:  # low side lost: the stamp starts at the chip's pixel 1
                assert c == pytest.approx(pos - 1)
            else:
                assert c == 31
        trip = alerts.triplet(i, 63).science
        missing = 63 * 63 - ny * nx
        assert np.isnan(trip).sum() >= missing
        assert trip[31, 31] == cut.image[int(np.floor(cy + 0.5)), int(np.floor(cx + 0.5))]


def test_ztf_centre_rule():
    assert ztf_centre((63, 63), 500.0, 900.0) == (31.0, 31.0)
    assert ztf_centre((41, 63), 2646.1, 9.39) == (31.0, 9.39)
    assert ztf_centre((63, 53), 3050.0, 1213.2) == (31.0, 31.0)
    assert ztf_centre((63, 53), None, None) == (31.0, 31.0)


def test_display_stamp_fills_missing_pixels_with_nan():
    image = np.arange(25, dtype=np.float32).reshape(5, 5)
    out = display_stamp(image, (0.0, 4.0), 5)
    assert out[2, 2] == image[4, 0]
    assert np.isnan(out[:, :2]).all() and np.isnan(out[3:]).all()
    np.testing.assert_array_equal(out[:3, 2:], image[2:, :3])
    assert np.isnan(display_stamp(None, None, 4)).all()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (None, "no cutout"),
        (b"", "no cutout"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "JPEG"),
        (b"GIF89a", "not FITS"),
        (gzip.compress(b"SIMPLE  = garbage"), "corrupt FITS"),
        (b"\x1f\x8b\x08\x00broken", "corrupt gzip"),
    ],
)
def test_cutouts_without_pixels_are_refused_clearly(data, message):
    with pytest.raises(CutoutError, match=message):
        decode_cutout(data)


def test_cutouts_read_directly_give_astropys_pixels(rubin, ztf):
    """decode_cutout reads plain primary images itself (not through fits.open): every cutout of
    the Rubin and ZTF broker tables gives astropy's pixels, header, origin and unit; only files
    with HDUs after the image keep their bytes (Rubin: UNCERT, PSFIMAGE; ZTF: nothing)."""
    from diascan.alerts.cutouts import _fits_bytes, _primary_image

    n = 0
    for (_, columns), more in ((rubin, True), (ztf, False)):
        for frame in FRAME_ORDER:
            for raw in columns[f"cutout{frame.capitalize()}"]:
                data = _fits_bytes(raw)
                cut = _primary_image(data)
                assert cut is not None  # the fast path, not the fallback
                with fits.open(io.BytesIO(data), ignore_missing_simple=True) as hdul:
                    np.testing.assert_array_equal(cut.image, hdul[0].data.astype(np.float32))
                    assert cut.header == hdul[0].header
                    bunit = hdul[0].header.get("BUNIT")
                assert cut.bunit == (bunit.strip() if bunit else None)
                assert (cut._fits is not None) is more
                n += 1
    assert n > 600


@pytest.mark.parametrize("bitpix", [8, 16, 32, -64])
def test_scaled_and_blank_integer_cutouts_as_astropy_reads_them(bitpix):
    rng = np.random.default_rng(abs(bitpix))
    dtype = {8: np.uint8, 16: np.int16, 32: np.int32, -64: np.float64}[bitpix]
    data = rng.integers(0, 100, size=(7, 9)).astype(dtype)
    hdu = fits.PrimaryHDU(data)
    if bitpix > 0:
        data[2, 3] = 99
        hdu = fits.PrimaryHDU(data)
        hdu.header["BLANK"] = 99
    hdu.header["BSCALE"], hdu.header["BZERO"] = 0.5, -3.0
    hdu.header["BUNIT"] = "O'Neil"  # a quote inside a string value
    buf = io.BytesIO()
    fits.HDUList([hdu, fits.ImageHDU(np.ones((2, 2)), name="UNCERT")]).writeto(buf)
    raw = buf.getvalue()
    cut = decode_cutout(gzip.compress(raw))
    with fits.open(io.BytesIO(raw)) as hdul:
        expected = hdul[0].data.astype(np.float32)
    np.testing.assert_allclose(cut.image, expected, equal_nan=True)
    assert np.isnan(cut.image[2, 3]) == (bitpix > 0)
    assert cut.bunit == "O'Neil" and cut._fits == raw  # an HDU follows: the bytes are kept
    # a cube, or a truncated image, is left to fits.open (which says what is wrong)
    cube = io.BytesIO()
    fits.PrimaryHDU(np.zeros((2, 3, 4), dtype=np.float32)).writeto(cube)
    from diascan.alerts.cutouts import _primary_image

    assert _primary_image(cube.getvalue()) is None
    assert _primary_image(raw[:2880 + 10]) is None
    with pytest.raises(CutoutError, match="cutout image has 3 dimensions"):
        decode_cutout(cube.getvalue())
