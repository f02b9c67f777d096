"""Output key layout of one job and the image ids its keys are built from."""

from __future__ import annotations

import unicodedata

import pytest

from prodseg.storage.base import validate_key
from prodseg.storage.layout import JobLayout, is_safe_image_id, make_image_ids
from tests.support.outcomes import record


def test_keys_without_prefix() -> None:
    layout = JobLayout()
    assert layout.results == "results.json"
    assert layout.coco == "coco.json"
    assert layout.gallery_html == "gallery.html"
    assert layout.gallery_png == "gallery.png"
    assert layout.reference_mask == "reference/mask.png"
    assert layout.reference_cutout == "reference/cutout.png"
    assert layout.reference_embedding == "reference/embedding.npy"
    assert layout.mask("IMG_0001", 0) == "masks/IMG_0001_0.png"
    assert layout.cutout("IMG_0001", 2) == "cutouts/IMG_0001_2.png"
    assert layout.thumbnail("IMG_0001") == "thumbs/IMG_0001.jpg"


@pytest.mark.parametrize("prefix", ["jobs/j42/", "jobs/j42", "jobs/j42//"])
def test_prefix_is_normalised(prefix: str) -> None:
    layout = JobLayout(prefix)
    assert layout.prefix == "jobs/j42/"
    assert layout.results == "jobs/j42/results.json"
    assert layout.mask("a", 1) == "jobs/j42/masks/a_1.png"
    assert layout.relative(layout.mask("a", 1)) == "masks/a_1.png"


@pytest.mark.parametrize("prefix", ["/jobs/x/", "../x/", "jobs/../x/", "a//b/", "a\\b/"])
def test_invalid_prefix_rejected(prefix: str) -> None:
    with pytest.raises(ValueError):
        JobLayout(prefix)


def test_relative_rejects_keys_of_other_jobs() -> None:
    layout = JobLayout("jobs/a/")
    with pytest.raises(ValueError, match="not under the job prefix"):
        layout.relative("jobs/b/results.json")
    assert JobLayout().relative("results.json") == "results.json"


@pytest.mark.parametrize("image_id", ["", "../x", "a/b", ".hidden", "a.b", "a b", "x\x00", "CON"])
def test_unsafe_image_ids_rejected(image_id: str) -> None:
    layout = JobLayout("jobs/a/")
    with pytest.raises(ValueError, match="unsafe image id"):
        layout.mask(image_id, 0)
    with pytest.raises(ValueError, match="unsafe image id"):
        layout.thumbnail(image_id)


@pytest.mark.parametrize("k", [-1, True, 1.0, "0"])
def test_bad_match_index_rejected(k: object) -> None:
    with pytest.raises(ValueError, match="match index"):
        JobLayout().mask("a", k)  # type: ignore[arg-type]


def test_layout_is_frozen() -> None:
    layout = JobLayout("jobs/a/")
    with pytest.raises(AttributeError):
        layout.prefix = "other/"  # type: ignore[misc]


# --- make_image_ids -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("/home/me/photos/IMG_0001.jpg", "IMG_0001"),
        ("photos/spin-12.JPEG", "spin-12"),
        ("s3://bucket/uploads/job/carton.png", "carton"),
        ("uploads/job/carton.webp", "carton"),
        ("C:\\Users\\me\\Milch.tif", "Milch"),
        ("Milch Ä 1.jpg", "Milch_Ä_1"),
        ("фото_молока.jpg", "фото_молока"),
        ("牛乳.png", "牛乳"),
        ("archive.tar.gz", "archive_tar"),
        ("no_extension", "no_extension"),
        ("a  (copy) .jpg", "a_copy_"),
        (".jpg", "_jpg"),
        ("..jpg", "_jpg"),
        ("...", "image"),
        ("", "image"),
        ("   .png", "image"),
        ("bad\x00name\n.jpg", "bad_name_"),
        ("CON.jpg", "CON_"),
        ("dir/", "dir"),
    ],
)
def test_image_id_of_one_source(source: str, expected: str) -> None:
    assert make_image_ids([source]) == [expected]


def test_decomposed_unicode_is_normalised() -> None:
    decomposed = unicodedata.normalize("NFD", "Käse.jpg")
    assert make_image_ids([decomposed]) == ["Käse"]


def test_duplicates_get_numbered_suffixes_in_order() -> None:
    sources = ["a/img.jpg", "b/img.jpg", "c/img.png", "img2.jpg", "IMG.jpg"]
    assert make_image_ids(sources) == ["img", "img-2", "img-3", "img2", "IMG-4"]


def test_suffix_never_collides_with_a_natural_id() -> None:
    assert make_image_ids(["a.jpg", "a.png", "a-2.jpg"]) == ["a", "a-2", "a-2-2"]
    assert make_image_ids(["a-2.jpg", "a.jpg", "a.png"]) == ["a-2", "a", "a-3"]


def test_long_names_are_truncated_on_a_character_boundary() -> None:
    (image_id,) = make_image_ids(["ü" * 500 + ".jpg"])
    assert image_id == "ü" * 60
    assert len(image_id.encode("utf-8")) <= 120


NASTY_SOURCES = [
    "../../etc/passwd",
    "..\\..\\windows\\system32.dll",
    "/",
    "s3://bucket/..",
    "x/../..",
    ".hidden",
    "tab\tname.jpg",
    "semi;colon&amp.jpg",
    "percent%2F..%2Fescape.jpg",
    "emoji 🥛.jpg",
    "right\u202eto-left.jpg",
]


def test_ids_never_leave_the_prefix() -> None:
    layout = JobLayout("jobs/j/")
    ids = make_image_ids(NASTY_SOURCES)
    assert len(set(ids)) == len(ids)
    for image_id in ids:
        assert image_id and not image_id.startswith(".")
        assert is_safe_image_id(image_id)
        for key in (
            layout.mask(image_id, 0),
            layout.cutout(image_id, 3),
            layout.thumbnail(image_id),
        ):
            assert validate_key(key) == key
            assert key.startswith("jobs/j/")
            assert key.count("/") == 3  # jobs/j/<folder>/<file>: the id adds no segment
            assert ".." not in key.split("/")
    examples = ", ".join(f"{s!r} -> {i!r}" for s, i in zip(NASTY_SOURCES[:2], ids[:2],
                                                            strict=True))
    record("bad input", "file names containing ../ (and other path tricks)",
           f"image ids are single safe path segments ({examples}); every key stays under "
           "jobs/<job>/")
