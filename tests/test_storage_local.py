"""The ObjectStore contract, run against every implementation (LocalStore for now)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from storage.base import ObjectNotFound, ObjectStore, validate_key
from storage.local import LocalStore

INVALID_KEYS = [
    "",
    "/abs/key.png",
    "a//b",
    "a/",
    "./a",
    "a/./b",
    "..",
    "../escape.txt",
    "a/../../escape.txt",
    "a\\b",
    "nul\x00byte",
    "new\nline",
]


@pytest.fixture(params=["local"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """Each ObjectStore implementation, empty. (S3 joins the params when it exists.)"""
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    raise AssertionError(request.param)


# --- the contract -------------------------------------------------------------------


def test_implements_protocol(store: ObjectStore) -> None:
    assert isinstance(store, ObjectStore)


def test_put_get_round_trip(store: ObjectStore) -> None:
    store.put("masks/img_0.png", b"\x89PNG data", "image/png")
    assert store.get("masks/img_0.png") == b"\x89PNG data"
    assert store.exists("masks/img_0.png")


def test_put_replaces_whole_object(store: ObjectStore) -> None:
    store.put("results.json", b"a much longer first version")
    store.put("results.json", b"short")
    assert store.get("results.json") == b"short"


def test_empty_object(store: ObjectStore) -> None:
    store.put("empty", b"")
    assert store.get("empty") == b""
    assert store.exists("empty")


def test_get_missing_raises_object_not_found_naming_key(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound) as caught:
        store.get("reference/mask.png")
    assert isinstance(caught.value, KeyError)
    assert "reference/mask.png" in str(caught.value)
    assert caught.value.key == "reference/mask.png"
    assert not store.exists("reference/mask.png")


def test_list_is_sorted_and_filters_by_string_prefix(store: ObjectStore) -> None:
    keys = ["masks/b_0.png", "masks/a_1.png", "masks/a_0.png", "cutouts/a_0.png", "results.json"]
    for key in keys:
        store.put(key, key.encode())
    assert list(store.list()) == sorted(keys)
    assert list(store.list("masks/")) == ["masks/a_0.png", "masks/a_1.png", "masks/b_0.png"]
    assert list(store.list("masks/a")) == ["masks/a_0.png", "masks/a_1.png"]
    assert list(store.list("mas")) == ["masks/a_0.png", "masks/a_1.png", "masks/b_0.png"]
    assert list(store.list("thumbs/")) == []
    assert list(store.list("../")) == []


def test_list_of_empty_store(store: ObjectStore) -> None:
    assert list(store.list()) == []


def test_unicode_and_space_keys(store: ObjectStore) -> None:
    key = "jobs/Milch Ä/masks/Käse 1_0.png"
    store.put(key, b"x")
    assert store.get(key) == b"x"
    assert list(store.list("jobs/Milch Ä/")) == [key]


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_every_method_rejects_invalid_keys(store: ObjectStore, key: str) -> None:
    operations: list[Callable[[], object]] = [
        lambda: store.put(key, b"x"),
        lambda: store.get(key),
        lambda: store.exists(key),
        lambda: store.describe(key),
    ]
    for operation in operations:
        with pytest.raises(ValueError):
            operation()
    assert list(store.list()) == []


def test_describe_names_the_object(store: ObjectStore) -> None:
    assert "masks/img_0.png" in store.describe("masks/img_0.png").replace(os.sep, "/")


# --- validate_key -------------------------------------------------------------------


@pytest.mark.parametrize("key", ["a", "a/b/c.png", "jobs/x/.hidden", "a..b", "Käse 1.png"])
def test_validate_key_accepts_relative_keys(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_validate_key_rejects_and_names_key(key: str) -> None:
    with pytest.raises(ValueError) as caught:
        validate_key(key)
    assert repr(key) in str(caught.value)


# --- LocalStore specifics -----------------------------------------------------------


def test_local_put_creates_parents_and_writes_file(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "out")
    store.put("a/b/c.bin", b"123")
    assert (tmp_path / "out" / "a" / "b" / "c.bin").read_bytes() == b"123"
    assert store.describe("a/b/c.bin") == str((tmp_path / "out" / "a" / "b" / "c.bin").resolve())


def test_local_put_leaves_no_temporary_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    for n in range(3):
        store.put("dir/object", bytes([n]) * 1000)
    assert sorted(p.name for p in (tmp_path / "dir").iterdir()) == ["object"]


def test_local_failed_put_keeps_old_object_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(tmp_path)
    store.put("obj", b"old")

    def broken_replace(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        store.put("obj", b"new")
    monkeypatch.undo()
    assert store.get("obj") == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["obj"]


def test_local_temporary_files_are_not_listed(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("masks/a_0.png", b"x")
    (tmp_path / "masks" / ".prodseg-0123456789abcdef.tmp").write_bytes(b"half")
    assert list(store.list()) == ["masks/a_0.png"]


def test_local_files_honour_umask(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    store = LocalStore(tmp_path)
    store.put("obj", b"x")
    assert (tmp_path / "obj").stat().st_mode & 0o777 == 0o666 & ~umask


def test_local_directory_is_not_an_object(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("masks/a_0.png", b"x")
    assert not store.exists("masks")
    with pytest.raises(ObjectNotFound):
        store.get("masks")


def test_local_symlink_cannot_escape_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"secret")
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    store = LocalStore(root)
    with pytest.raises(ValueError, match="outside the store root"):
        store.get("link/secret.txt")
    with pytest.raises(ValueError, match="outside the store root"):
        store.put("link/new.txt", b"x")
    assert not (outside / "new.txt").exists()


def test_local_skips_files_whose_names_are_not_valid_keys(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    (tmp_path / "back\\slash").write_bytes(b"x")
    store.put("good", b"y")
    assert list(store.list()) == ["good"]
