"""One process at a time submits a catalog: a lease in the broker's Redis.

Two processes submitting one catalog (a resume while the submit still runs, the same file
from two shells) would each enqueue the products the other has not recorded yet, and each
count only its own jobs against ``--max-inflight``. So ``submit`` and ``resume`` hold the
catalog while they run; a killed process's hold lapses within half a minute, at once when
it ran on this machine.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

from prodseg.errors import InputError
from prodseg.storage.manifest import validate_job_id
from prodseg.tasks.leases import LOCKS_KEY, Leases
from prodseg.tasks.progress import ProgressBoard


@contextmanager
def exclusive(board: ProgressBoard, catalog: str, command: str) -> Iterator[None]:
    """Hold ``catalog`` for this process while it submits or resumes it.

    The hold is a lease in the broker's Redis (``tasks.leases``), renewed while the block
    runs: a killed process's hold lapses within half a minute.

    Args:
        board: the broker's progress board (its Redis holds the lease).
        catalog: the catalog id.
        command: what this process runs, in words, for the message another one gets.

    Raises:
        InputError: another process holds the catalog (the message names it).
    """
    locks = Leases(board.redis, set_key=LOCKS_KEY)
    unit = f"catalog:{validate_job_id(catalog)}"
    holder = _holder(command, socket.gethostname(), os.getpid())
    lease = locks.take(unit, holder, "", [])
    if lease is None:
        current = locks.holder(unit)
        if _dead_here(current):  # killed on this machine: no need to wait it out
            lease = locks.take(unit, holder, "", [], gone=current)
    if lease is None:
        raise InputError(f"catalog {catalog} is being submitted by {locks.holder(unit)}; "
                         "wait for it to end, or stop it and run `prodseg catalog "
                         f"resume {catalog}`")
    with locks.held(lease):
        yield


def _holder(command: str, host: str, pid: int) -> str:
    """Who holds a catalog, in words (``_dead_here`` reads it back)."""
    return f"{command} on {host} (pid {pid}, since {time.strftime('%H:%M:%S')})"


def _dead_here(holder: str) -> bool:
    """Whether ``holder`` (``_holder``'s words) is a process of this machine that is gone."""
    match = re.fullmatch(r".* on (\S+) \(pid (\d+), since [0-9:]+\)", holder)
    if match is None or match[1] != socket.gethostname():
        return False
    try:
        os.kill(int(match[2]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
