"""``prodseg`` with the leases turned off: a benchmark's yardstick, never for use.

``bench_catalog.py --leases off`` runs its workers and its submission through this file
to measure what the leases (``prodseg.tasks.leases``) cost: every lease call is answered
here without Redis (a take always succeeds, nothing is queued, renewed or reclaimed), so
a lost worker's work waits for the broker's visibility timeout again, and resume may run
queued work twice. The product itself has no switch for this.

    python benchmarks/leases_off.py worker ...   # as `prodseg worker ...`
"""

from __future__ import annotations

import sys
from typing import Any

from prodseg.tasks import leases


def _take(self: leases.Leases, unit: str, holder: str, task: str, args: list[Any],
          gone: str = "") -> leases.Lease:
    return leases.Lease(unit, holder, 1)


def _check(self: leases.Leases, previous: float | None, quiet_s: float,
           limit: int = 100) -> leases.Check:
    return leases.Check(0.0, False, [])


def _none(*_: Any, **__: Any) -> None:
    return None


def _true(*_: Any, **__: Any) -> bool:
    return True


def _nothing(*_: Any, **__: Any) -> set[str]:
    return set()


def turn_off() -> None:
    """Answer every lease call of this process (and its forked pool) without Redis."""
    cls = leases.Leases
    cls.take = _take  # type: ignore[method-assign]
    cls.check = _check  # type: ignore[method-assign]
    cls.renew = _true  # type: ignore[method-assign]
    cls.release = _none  # type: ignore[method-assign]
    cls.queued = _none  # type: ignore[method-assign]
    cls.not_queued = _none  # type: ignore[method-assign]
    cls.busy = _nothing  # type: ignore[method-assign]
    cls.live = _nothing  # type: ignore[method-assign]
    cls.server_time = lambda self: 0.0  # type: ignore[method-assign]


if __name__ == "__main__":
    turn_off()
    from prodseg.producer.cli.main import main

    sys.exit(main())
