"""The one rule for every command that writes an output directory (``run``, ``fetch``).

- the path must be a directory, or not exist yet (it is then created);
- a lock (``.prodseg.lock``, ``flock``) refuses a second writer while one is at work;
- a directory is prodseg's when it is empty or holds ``results.json`` or the lock file
  (an interrupted run leaves the lock); any other non-empty directory is refused unless
  ``force``, and then prodseg writes beside its files and removes none of them;
- nothing is written through a symbolic link that leads out of the directory;
- in prodseg's own directory the previous run's outputs are removed before anything is
  written, ``results.json`` first, so an interrupted rerun never leaves a
  ``results.json`` naming a mix of old and new files, and a rerun with fewer matches
  leaves no stale masks or cutouts;
- the writer puts ``results.json`` last: its presence means the directory is complete.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path
from types import TracebackType

from prodseg.errors import InputError
from prodseg.storage.layout import COCO, GALLERY_HTML, GALLERY_PNG, OUTPUT_FOLDERS, RESULTS
from prodseg.storage.local import LocalStore

LOCK_NAME = ".prodseg.lock"
OUTPUT_FILES = (RESULTS, COCO, GALLERY_HTML, GALLERY_PNG)


class OutputDir:
    """An output directory held for writing; use as a context manager.

    Args:
        path: the directory.
        force: write into a non-empty directory that is not prodseg's: its files are kept,
            and nothing there is removed first.

    Attributes:
        store: a ``LocalStore`` on the directory, to write with inside the ``with`` block.
    """

    def __init__(self, path: Path, force: bool = False) -> None:
        self.path = Path(path)
        self.force = force
        self._lock: int | None = None
        self._drop_lock = False  # a lock made in a directory that is not prodseg's
        self.store = LocalStore(self.path)

    def __enter__(self) -> OutputDir:
        path = self.path
        if path.is_symlink() and not path.exists():
            raise InputError(f"{path}: a symbolic link to nowhere; --output names a directory")
        if path.exists() and not path.is_dir():
            raise InputError(f"{path}: not a directory; --output names a directory to write")
        try:
            path.mkdir(parents=True, exist_ok=True)
            self._lock, locked_before = _take_lock(path)
        except OSError as error:
            raise InputError(f"{path}: cannot write here ({error.strerror or error})") from None
        try:
            _refuse_links_out(path)
            entries = sorted(e.name for e in path.iterdir() if e.name != LOCK_NAME)
            ours = not entries or RESULTS in entries or locked_before
            if not ours and not self.force:
                shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
                if not locked_before:  # leave the user's directory as it was
                    (path / LOCK_NAME).unlink(missing_ok=True)
                raise InputError(
                    f"{path}: not empty and not a prodseg output ({shown}); choose an empty "
                    "directory or give --force to write beside these files")
            if ours:
                remove_outputs(path)
            else:  # --force beside other files: leave no lock that would make it prodseg's
                self._drop_lock = not locked_before
        except OSError as error:
            self._release()
            raise InputError(f"{path}: cannot write here ({error.strerror or error})") from None
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._release()

    def _release(self) -> None:
        # The lock file stays in prodseg's own directory: deleting it would let a writer
        # that opened it just before lock a file no longer on disk while a third locks a
        # new one. Beside the user's files (--force) it goes, so the directory stays theirs.
        if self._lock is not None:
            if self._drop_lock:
                (self.path / LOCK_NAME).unlink(missing_ok=True)
            os.close(self._lock)  # closing the descriptor releases the flock
            self._lock = None


def require_empty_folder(output: Path) -> None:
    """The rule of the exports: they write into a new or empty folder only.

    Raises:
        InputError: ``output`` is a file or a folder with something in it.
    """
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise InputError(f"{output}: not an empty folder; export into a new or empty one")


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


def _take_lock(path: Path) -> tuple[int, bool]:
    """An exclusive ``flock`` on ``path/.prodseg.lock``, or ``InputError`` if held.

    The lock is opened without following a symbolic link, so a link planted there cannot
    make prodseg write to a file elsewhere.

    Returns:
        The locked descriptor, and whether the lock file was there before (an earlier
        prodseg run wrote here).
    """
    lock = path / LOCK_NAME
    existed = os.path.lexists(lock)
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError:
        if lock.is_symlink():
            raise InputError(f"{lock}: a symbolic link where prodseg keeps its lock; remove "
                             "it") from None
        raise
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise InputError(f"{path}: another prodseg is writing here ({holder}); wait for it "
                         "to finish or choose another output directory") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()}".encode())
    return fd, existed


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
