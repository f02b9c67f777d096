"""HEIC (iPhones' default) through pillow-heif, the [heic] extra, and AVIF through Pillow:
real files made by those encoders, EXIF rotation included."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image

from prodseg.errors import ImageReadError
from prodseg.producer.cli.options import expand_images
from prodseg.storage.images import decode_image, read_image_file
from tests.support.outcomes import record

pillow_heif = pytest.importorskip("pillow_heif")  # in the dev extra: never skipped there

RED, BLUE = (230, 20, 20), (20, 20, 230)


def _stored() -> np.ndarray:
    """60 wide, 40 high: red in the top-left corner, blue in the bottom-left, as stored."""
    pixels = np.full((40, 60, 3), 128, np.uint8)
    pixels[:10, :15] = RED
    pixels[-10:, :15] = BLUE
    return pixels


def _encoded(fmt: str, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    buffer = io.BytesIO()
    if fmt == "HEIF":
        pillow_heif.register_heif_opener()
    Image.fromarray(_stored()).save(buffer, format=fmt, exif=exif.tobytes(), quality=95)
    return buffer.getvalue()


def _close(pixel: np.ndarray, colour: tuple[int, int, int]) -> bool:
    return bool(np.abs(pixel.astype(int) - colour).max() < 40)


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_a_rotated_photo_is_read_as_displayed(fmt: str, tmp_path: Path) -> None:
    """EXIF orientation 6 (rotate 90° clockwise to display): the top-left red corner shows
    at the top right, the bottom-left blue one at the top left."""
    data = _encoded(fmt, 6)
    assert data[4:8] == b"ftyp"
    path = tmp_path / ("IMG_0001.HEIC" if fmt == "HEIF" else "photo.avif")
    path.write_bytes(data)
    displayed = read_image_file(path)
    assert displayed.shape == (60, 40, 3) and displayed.dtype == np.uint8
    assert _close(displayed[2, -3], RED) and _close(displayed[2, 2], BLUE)
    assert _close(displayed[-3, 20], (128, 128, 128))


def test_an_upright_heic_keeps_its_pixels() -> None:
    decoded = decode_image(_encoded("HEIF", 1), "IMG_0002.HEIC")
    assert decoded.shape == (40, 60, 3)
    assert _close(decoded[2, 2], RED) and _close(decoded[-3, 2], BLUE)


def test_heic_files_in_a_folder_are_taken_as_photos(tmp_path: Path) -> None:
    for name in ("IMG_0001.HEIC", "IMG_0002.heif", "c.avif", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in expand_images([str(tmp_path)])] == [
        "IMG_0001.HEIC", "IMG_0002.heif", "c.avif"]


def test_without_the_extra_the_reason_names_it(tmp_path: Path) -> None:
    path = tmp_path / "IMG_0003.HEIC"
    path.write_bytes(_encoded("HEIF", 6))
    code = ("import sys\nsys.modules['pillow_heif'] = None\n"
            "from prodseg.storage.images import read_image_file\n"
            "from prodseg.errors import ImageReadError\n"
            f"try:\n    read_image_file({str(path)!r})\n"
            "except ImageReadError as e:\n    print(e.reason)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    reason = done.stdout.strip()
    assert reason == ("is a HEIC/HEIF photo; reading it needs the [heic] extra: "
                      "pip install 'prodseg[heic]'")
    record("bad input", "a HEIC photo without the [heic] extra installed",
           f"that image fails with: {reason}")


def test_other_photos_decode_where_no_heif_opener_is_registered(tmp_path: Path) -> None:
    """A fresh process that never saw pillow-heif: JPEG and PNG read as always."""
    path = tmp_path / "a.png"
    Image.fromarray(_stored()).save(path)
    code = ("import sys\nsys.modules['pillow_heif'] = None\n"
            "from prodseg.storage.images import read_image_file\n"
            f"print(read_image_file(__import__('pathlib').Path({str(path)!r})).shape)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(40, 60, 3)"


def test_a_broken_heic_is_one_reason() -> None:
    data = b"\x00\x00\x00\x18ftypheic" + b"\x00" * 64
    with pytest.raises(ImageReadError) as caught:
        decode_image(data, "IMG_0004.HEIC")
    assert "HEIC" in caught.value.reason
