"""Decoding photos: modes, orientation, and every way a file can be wrong."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from prodseg.errors import ImageReadError, InputError
from prodseg.storage.image_encoding import encode_jpeg, encode_png
from prodseg.storage.images import decode_image, header_size, read_image_file
from tests.support.outcomes import record, without_dirs


def _save(image: Image.Image, path: Path, fmt: str, **params: object) -> Path:
    image.save(path, format=fmt, **params)
    return path


def _png_declaring_size(width: int, height: int) -> bytes:
    """A tiny valid PNG whose IHDR claims ``width`` x ``height`` (CRC fixed up)."""
    buffer = io.BytesIO()
    Image.new("1", (8, 8)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    # signature (8) | IHDR length (4) | b"IHDR" (4) | width, height, ... (13) | CRC (4)
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def _reason(excinfo: pytest.ExceptionInfo[ImageReadError]) -> str:
    return excinfo.value.reason


# --- failures -----------------------------------------------------------------------


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "leer ü.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageReadError) as caught:
        read_image_file(path)
    assert caught.value.reason == "file is empty (0 bytes)"
    assert caught.value.source == str(path)
    assert "leer ü.jpg" in str(caught.value)
    assert isinstance(caught.value, InputError)
    record("bad input", "zero-byte file", without_dirs(str(caught.value), tmp_path))


def test_text_named_jpg(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("this is a shopping list, not a photo\n")
    with pytest.raises(ImageReadError) as caught:
        read_image_file(path)
    assert _reason(caught).startswith("not a recognised image format")
    record("bad input", "a text file named .jpg", without_dirs(str(caught.value), tmp_path))


def test_heic_gets_a_hint() -> None:
    data = b"\x00\x00\x00\x18ftypheic" + b"\x00" * 64
    with pytest.raises(ImageReadError) as caught:
        decode_image(data, "IMG_0001.HEIC")
    assert "HEIC" in _reason(caught)


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_jpeg(tmp_path: Path, keep: float) -> None:
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    data = buffer.getvalue()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ImageReadError) as caught:
        read_image_file(path)
    assert _reason(caught).startswith("image data is truncated or corrupt: ")
    record("bad input", f"truncated JPEG ({keep:.0%} of its bytes)",
           without_dirs(str(caught.value), tmp_path))


def test_corrupt_png_data() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 30)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    idat = data.index(b"IDAT")
    data[idat + 8 : idat + 20] = b"\xff" * 12  # garble the compressed pixels
    with pytest.raises(ImageReadError) as caught:
        decode_image(bytes(data), "garbled.png")
    assert _reason(caught).startswith("image data is truncated or corrupt")


@pytest.fixture
def pillow_default_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pillow's own bomb limit at its default, whatever other code has set."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1024 * 1024 * 1024 // 4 // 3)


@pytest.mark.usefixtures("pillow_default_limit")
def test_decompression_bomb_rejected_from_header() -> None:
    data = _png_declaring_size(12_000, 10_000)  # 120 MP: over our limit, under Pillow's
    assert len(data) < 200
    with pytest.raises(ImageReadError) as caught:
        decode_image(data, "bomb.png")
    assert _reason(caught) == (
        "12000 x 10000 = 120000000 pixels exceeds the limit of 100000000 (setting max_image_pixels)"
    )
    record("bad input", f"PNG decompression bomb ({len(data)}-byte file declaring 12000 x 10000)",
           str(caught.value))


@pytest.mark.usefixtures("pillow_default_limit")
def test_pillow_decompression_bomb_error_is_mapped() -> None:
    data = _png_declaring_size(100_000, 100_000)  # Pillow itself refuses this one
    with pytest.raises(ImageReadError) as caught:
        decode_image(data, "huge.png")
    assert _reason(caught) == (
        "10000000000 pixels exceeds the limit of 100000000 (setting max_image_pixels)"
    )
    with pytest.raises(ImageReadError) as caught:
        decode_image(data, "huge.png", max_pixels=10**11)
    assert _reason(caught).startswith("10000000000 pixels exceeds the limit of 178956970 ")
    assert "PIL.Image.MAX_IMAGE_PIXELS" in _reason(caught)
    record("bad input", "huge dimensions (100000 x 100000)", str(caught.value))


def test_max_pixels_setting_is_used() -> None:
    data = encode_png(np.zeros((20, 30, 3), dtype=np.uint8))
    assert decode_image(data, "ok.png", max_pixels=600).shape == (20, 30, 3)
    with pytest.raises(ImageReadError) as caught:
        decode_image(data, "small.png", max_pixels=599)
    assert _reason(caught) == (
        "30 x 20 = 600 pixels exceeds the limit of 599 (setting max_image_pixels)"
    )


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "IMG 1.jpg"
    with pytest.raises(ImageReadError) as caught:
        read_image_file(path)
    assert caught.value.reason == "file not found"
    assert str(caught.value) == f"{path}: file not found"
    record("bad input", "missing local file", without_dirs(str(caught.value), tmp_path))


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError) as caught:
        read_image_file(tmp_path)
    assert caught.value.reason == "is a directory, not an image file"


# --- modes --------------------------------------------------------------------------


def test_rgb_jpeg_with_unicode_and_spaces_in_name(tmp_path: Path) -> None:
    path = _save(Image.new("RGB", (40, 30), (200, 100, 50)), tmp_path / "Milch Ä 1.jpg", "JPEG")
    array = read_image_file(path)
    assert array.shape == (30, 40, 3)
    assert array.dtype == np.uint8
    assert np.abs(array[15, 20].astype(int) - [200, 100, 50]).max() <= 3
    record("bad input", "unicode and spaces in a file name ('Milch Ä 1.jpg')",
           f"read as {array.shape} {array.dtype}, colours kept")


def test_grayscale(tmp_path: Path) -> None:
    gray = np.arange(0, 200, dtype=np.uint8).reshape(10, 20)
    path = _save(Image.fromarray(gray, mode="L"), tmp_path / "gray.png", "PNG")
    array = read_image_file(path)
    assert array.shape == (10, 20, 3)
    for channel in range(3):
        np.testing.assert_array_equal(array[:, :, channel], gray)
    record("bad input", "grayscale PNG", f"read as {array.shape} {array.dtype}, gray copied to "
           "R, G and B")


def test_one_bit(tmp_path: Path) -> None:
    image = Image.new("1", (8, 4), 0)
    image.putpixel((3, 2), 1)
    array = read_image_file(_save(image, tmp_path / "bw.png", "PNG"))
    assert array[2, 3].tolist() == [255, 255, 255]
    assert array[0, 0].tolist() == [0, 0, 0]


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    path = _save(Image.fromarray(values), tmp_path / "deep.png", "PNG")
    with Image.open(path) as check:
        assert check.mode.startswith("I")  # really stored as 16-bit
    array = read_image_file(path)
    assert array[0, :, 0].tolist() == [0, 1, 128, 255]
    assert (array[..., 0] == array[..., 2]).all()
    record("bad input", "16-bit PNG", "scaled to 8 bits, not clipped: 0, 257, 32768, 65535 -> "
           f"{', '.join(map(str, array[0, :, 0].tolist()))}")


def test_sixteen_bit_tiff(tmp_path: Path) -> None:
    values = np.full((4, 4), 65535, dtype=np.uint16)
    values[0, 0] = 0
    array = read_image_file(_save(Image.fromarray(values), tmp_path / "deep.tif", "TIFF"))
    assert array[0, 0].tolist() == [0, 0, 0]
    assert array[3, 3].tolist() == [255, 255, 255]


def test_rgba_is_composited_on_white(tmp_path: Path) -> None:
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[..., :3] = (10, 20, 30)
    rgba[0, 0, 3] = 0
    rgba[0, 1, 3] = 255
    rgba[0, 2, 3] = 128
    array = read_image_file(_save(Image.fromarray(rgba, mode="RGBA"), tmp_path / "a.png", "PNG"))
    assert array.shape == (2, 3, 3)
    assert array[0, 0].tolist() == [255, 255, 255]
    assert array[0, 1].tolist() == [10, 20, 30]
    expected = [round(c * 128 / 255 + 255 * 127 / 255) for c in (10, 20, 30)]
    assert np.abs(array[0, 2].astype(int) - expected).max() <= 1
    record("bad input", "RGBA PNG", "composited on white: transparent -> "
           f"{array[0, 0].tolist()}, opaque kept, half-transparent blended")


def test_la_and_palette_transparency(tmp_path: Path) -> None:
    la = Image.new("LA", (2, 1), (40, 255))
    la.putpixel((1, 0), (40, 0))
    array = read_image_file(_save(la, tmp_path / "la.png", "PNG"))
    assert array[0, 0].tolist() == [40, 40, 40]
    assert array[0, 1].tolist() == [255, 255, 255]

    palette = Image.new("P", (2, 1), 0)
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette.putpixel((1, 0), 1)
    path = _save(palette, tmp_path / "p.png", "PNG", transparency=1)
    array = read_image_file(path)
    assert array[0, 0].tolist() == [255, 0, 0]
    assert array[0, 1].tolist() == [255, 255, 255]


def test_cmyk_jpeg(tmp_path: Path) -> None:
    path = _save(Image.new("CMYK", (16, 8), (0, 255, 255, 0)), tmp_path / "print.jpg", "JPEG")
    with Image.open(path) as check:
        assert check.mode == "CMYK"
    array = read_image_file(path)
    assert array.shape == (8, 16, 3)
    assert np.abs(array[4, 8].astype(int) - [255, 0, 0]).max() <= 4
    record("bad input", "CMYK JPEG", f"converted to RGB: CMYK (0, 255, 255, 0) -> "
           f"{array[4, 8].tolist()}")


@pytest.mark.parametrize(("fmt", "suffix"), [("WEBP", "webp"), ("TIFF", "tif"), ("BMP", "bmp")])
def test_lossless_formats(tmp_path: Path, fmt: str, suffix: str) -> None:
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (12, 9, 3), dtype=np.uint8)
    params = {"lossless": True} if fmt == "WEBP" else {}
    path = _save(Image.fromarray(pixels), tmp_path / f"x.{suffix}", fmt, **params)
    np.testing.assert_array_equal(read_image_file(path), pixels)


def test_animated_gif_gives_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (6, 6), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:])
    assert read_image_file(path)[3, 3].tolist() == [255, 0, 0]


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    # Stored 40 wide x 20 high, with a red block at x 32..35, y 4..7. Orientation 6 means
    # "rotate 90 degrees clockwise to display": stored (x, y) shows at (19 - y, x).
    stored = np.full((20, 40, 3), 255, dtype=np.uint8)
    stored[4:8, 32:36] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = _save(
        Image.fromarray(stored), tmp_path / "rotated.jpg", "JPEG", exif=exif.tobytes(), quality=95
    )
    array = read_image_file(path)
    assert array.shape == (40, 20, 3)
    red = (array[..., 0] > 200) & (array[..., 1] < 80) & (array[..., 2] < 80)
    rows, cols = np.nonzero(red)
    assert rows.min() >= 31 and rows.max() <= 36  # y' = x in 32..35
    assert cols.min() >= 11 and cols.max() <= 16  # x' = 19 - y in 12..15
    assert red[33:35, 13:15].all()
    record("bad input", "EXIF-rotated JPEG (orientation 6)",
           f"stored 40x20, read upright as {array.shape[1]}x{array.shape[0]}; masks and "
           "boxes are in this displayed orientation")


def test_unreadable_exif_keeps_image_as_stored(tmp_path: Path) -> None:
    path = _save(
        Image.new("RGB", (10, 5), (0, 0, 0)),
        tmp_path / "badexif.jpg",
        "JPEG",
        exif=b"Exif\x00\x00II*\x00\xff\xff\xff\xff",
    )
    assert read_image_file(path).shape == (5, 10, 3)


def test_result_is_writable_and_contiguous(tmp_path: Path) -> None:
    array = read_image_file(_save(Image.new("RGB", (5, 5)), tmp_path / "a.png", "PNG"))
    assert array.flags.c_contiguous and array.flags.writeable


# --- encoding -----------------------------------------------------------------------


def test_encode_png_round_trips_rgb_rgba_gray_and_bool() -> None:
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (7, 5, 3), dtype=np.uint8)
    np.testing.assert_array_equal(decode_image(encode_png(rgb), "x"), rgb)
    rgba = rng.integers(0, 256, (7, 5, 4), dtype=np.uint8)
    with Image.open(io.BytesIO(encode_png(rgba))) as image:
        assert image.mode == "RGBA"
        np.testing.assert_array_equal(np.asarray(image), rgba)
    mask = rng.random((7, 5)) > 0.5
    with Image.open(io.BytesIO(encode_png(mask))) as image:
        assert image.mode == "L"
        np.testing.assert_array_equal(np.asarray(image), mask.astype(np.uint8) * 255)


def test_encode_jpeg() -> None:
    rgb = np.full((16, 24, 3), (30, 140, 220), dtype=np.uint8)
    data = encode_jpeg(rgb, quality=90)
    assert data[:2] == b"\xff\xd8"
    assert np.abs(decode_image(data, "x").astype(int) - rgb).max() <= 3
    with pytest.raises(ValueError, match="JPEG"):
        encode_jpeg(np.zeros((4, 4, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        encode_png(np.zeros((4, 4, 3), dtype=np.float32))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF", "BMP"])
def test_header_size_is_the_decoded_size_from_a_prefix(tmp_path: Path, fmt: str) -> None:
    # Noise, so that the compressed file is larger than the prefix read.
    pixels = np.random.default_rng(0).integers(0, 256, (300, 601, 3), dtype=np.uint8)
    data = _save(Image.fromarray(pixels), tmp_path / f"a.{fmt.lower()}", fmt).read_bytes()
    assert len(data) > 4096
    decoded = decode_image(data, "a")
    assert header_size(data) == (decoded.shape[1], decoded.shape[0]) == (601, 300)
    if fmt == "WEBP":  # Pillow reads a WebP whole to open it: the caller decodes it
        assert header_size(data[:4096]) is None
    else:
        assert header_size(data[:4096]) == (601, 300)


def test_header_size_follows_exif_orientation_like_decoding(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _save(Image.new("RGB", (40, 20)), tmp_path / "r.jpg", "JPEG",
                 exif=exif.tobytes()).read_bytes()
    assert header_size(data) == (20, 40) == decode_image(data, "r").shape[1::-1]
    broken = _save(Image.new("RGB", (10, 5)), tmp_path / "b.jpg", "JPEG",
                   exif=b"Exif\x00\x00II*\x00\xff\xff\xff\xff").read_bytes()
    assert header_size(broken) == (10, 5)


def test_header_size_is_none_where_the_bytes_do_not_say(tmp_path: Path) -> None:
    data = _save(Image.new("RGB", (64, 32)), tmp_path / "a.png", "PNG").read_bytes()
    assert header_size(data[:10]) is None  # the signature alone
    assert header_size(b"not an image at all") is None
    assert header_size(b"") is None
