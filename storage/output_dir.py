"""The one rule for every command that writes an output directory (``run``, ``fetch``).

- the path must be a directory, or not exist yet (it is then created);
- a lock (``.prodseg.lock``, ``flock``) refuses a second writer while one is at work;
- a directory that holds anything but prodseg outputs is refused unless ``force``;
- nothing is written through a symbolic link that leads out of the directory;
- the previous run's outputs are removed before anything is written, ``results.json``
  first, so an interrupted rerun never leaves a ``results.json`` naming a mix of old and
  new files, and a rerun with fewer matches leaves no stale masks or cutouts;
- the writer puts ``results.json`` last: its presence means the directory is complete.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path
from types import TracebackType

from prodseg.errors import InputError
from prodseg.storage.layout import COCO, GALLERY_HTML, GALLERY_PNG, RESULTS
from prodseg.storage.local import LocalStore

LOCK_NAME = ".prodseg.lock"
OUTPUT_FILES = (RESULTS, COCO, GALLERY_HTML, GALLERY_PNG)
OUTPUT_FOLDERS = ("reference", "masks", "cutouts", "thumbs")


def is_prodseg_output(name: str) -> bool:
    """Whether a top-level entry of an output directory is one prodseg writes."""
    return name in OUTPUT_FILES or name in OUTPUT_FOLDERS or name == LOCK_NAME


class OutputDir:
    """An output directory held for writing; use as a context manager.

    Args:
        path: the directory.
        force: write into a non-empty directory that holds other files too (they are
            kept; only prodseg's own outputs are replaced).

    Attributes:
        store: a ``LocalStore`` on the directory, valid inside the ``with`` block.
    """

    def __init__(self, path: Path, force: bool = False) -> None:
        self.path = Path(path)
        self.force = force
        self._lock: int | None = None
        self.store = LocalStore(self.path)

    def __enter__(self) -> OutputDir:
        path = self.path
        if path.exists() and not path.is_dir():
            raise InputError(f"{path}: not a directory; --output names a directory to write")
        path.mkdir(parents=True, exist_ok=True)
        self._lock = _take_lock(path)
        try:
            _refuse_links_out(path)
            others = sorted(e.name for e in path.iterdir() if not is_prodseg_output(e.name))
            if others and not self.force:
                shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
                raise InputError(
                    f"{path}: not empty and not a prodseg output ({shown}); choose an empty "
                    "directory or give --force to write beside these files")
            remove_outputs(path)
        except BaseException:
            self._release()
            raise
        self.store = LocalStore(path)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._release()

    def _release(self) -> None:
        if self._lock is not None:
            (self.path / LOCK_NAME).unlink(missing_ok=True)
            os.close(self._lock)  # closing the descriptor releases the flock
            self._lock = None


def remove_outputs(path: Path) -> None:
    """Remove prodseg's outputs from ``path``: ``results.json`` first, then the rest."""
    (path / RESULTS).unlink(missing_ok=True)
    for name in OUTPUT_FILES:
        (path / name).unlink(missing_ok=True)
    for name in OUTPUT_FOLDERS:
        folder = path / name
        if folder.is_symlink() or folder.is_file():
            folder.unlink()
        elif folder.is_dir():
            shutil.rmtree(folder)


def _take_lock(path: Path) -> int:
    """An exclusive ``flock`` on ``path/.prodseg.lock``, or ``InputError`` if held."""
    fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise InputError(f"{path}: another prodseg is writing here ({holder}); wait for it "
                         "to finish or choose another output directory") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()}".encode())
    return fd


def _refuse_links_out(path: Path) -> None:
    """``InputError`` if a symbolic link among prodseg's outputs leads out of ``path``."""
    root = path.resolve()
    for name in OUTPUT_FOLDERS + OUTPUT_FILES:
        entry = path / name
        candidates = [entry]
        if entry.is_dir() and not entry.is_symlink():
            candidates += [p for p in entry.rglob("*") if p.is_symlink()]
        for candidate in candidates:
            if candidate.is_symlink() and not candidate.resolve().is_relative_to(root):
                raise InputError(
                    f"{candidate}: a symbolic link to {candidate.resolve()}, outside the "
                    f"output directory; prodseg writes only inside {path}")
