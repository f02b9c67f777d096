"""Leases against a real redis-server: taking, renewing, lapsing and reclaiming, with
several checkers at once."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from prodseg.tasks.leases import LEASES_KEY, Leases

pytestmark = pytest.mark.integration


@pytest.fixture()
def leases(each_broker_url: str) -> Leases:
    """Leases on Valkey and on redis-server (the scripts read the server's clock)."""
    client = redis.Redis.from_url(each_broker_url)
    client.delete(LEASES_KEY)
    return Leases(client, ttl_s=1.0)


def _unit() -> str:
    return f"match:{uuid.uuid4().hex[:8]}:3"


def test_a_live_lease_keeps_other_holders_out(leases: Leases) -> None:
    unit = _unit()
    first = leases.take(unit, "w1", "prodseg.match", ["job", 3])
    assert first is not None and first.generation == 1
    assert leases.take(unit, "w2", "prodseg.match", ["job", 3]) is None
    assert leases.live([unit, _unit()]) == {unit}
    leases.release(first)
    second = leases.take(unit, "w2", "prodseg.match", ["job", 3])
    assert second is not None and second.generation == 2
    assert not leases.renew(first) and leases.renew(second)


def test_a_renewed_lease_outlives_its_ttl(leases: Leases) -> None:
    unit = _unit()
    lease = leases.take(unit, "w1", "prodseg.match", ["job", 3])
    assert lease is not None
    with leases.held(lease, every_s=0.2) as lost:
        time.sleep(2.5)  # two and a half lifetimes
        assert unit not in {x.unit for x in leases.reclaim()}
        assert not lost.is_set()
    assert leases.live([unit]) == set()  # released on the way out


def test_each_lapsed_lease_goes_to_exactly_one_of_many_checkers(leases: Leases) -> None:
    units = [_unit() for _ in range(40)]
    for k, unit in enumerate(units):
        assert leases.take(unit, f"w{k % 2}", "prodseg.match", ["job", k]) is not None
    time.sleep(1.3)  # nobody renews: every lease lapses
    with ThreadPoolExecutor(8) as pool:
        batches = list(pool.map(lambda _: leases.reclaim(limit=7), range(24)))
    taken = [lapsed for batch in batches for lapsed in batch]
    assert sorted(x.unit for x in taken) == sorted(units)  # each once
    assert {x.task for x in taken} == {"prodseg.match"}
    assert sorted(x.args[1] for x in taken) == list(range(40))
    assert {x.holder for x in taken} == {"w0", "w1"}


def test_a_late_worker_learns_that_its_lease_was_taken_over(leases: Leases) -> None:
    """The holder is partitioned away: its lease lapses, is reclaimed and taken by the new
    delivery; when the old holder comes back, its renewal fails and the new one's holds."""
    unit = _unit()
    old = leases.take(unit, "lost-machine", "prodseg.match", ["job", 3])
    assert old is not None
    time.sleep(1.3)
    assert [x.unit for x in leases.reclaim()] == [unit]
    new = leases.take(unit, "w2", "prodseg.match", ["job", 3])
    assert new is not None and new.generation == old.generation + 1
    assert not leases.renew(old)
    assert leases.renew(new)


def test_a_holder_whose_lease_is_lost_is_told_while_it_runs(leases: Leases) -> None:
    unit = _unit()
    lease = leases.take(unit, "w1", "prodseg.match", ["job", 3])
    assert lease is not None
    with leases.held(lease, every_s=0.1) as lost:
        leases.redis.zrem(LEASES_KEY, unit)  # as a checker that reclaimed it would
        for _ in range(50):
            if lost.is_set():
                break
            time.sleep(0.05)
        assert lost.is_set()
