"""LocalStore specifics: files, atomic writes, symlinks (the shared contract is in
test_store_contract.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from prodseg.storage.base import ObjectNotFound
from prodseg.storage.local import LocalStore

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
