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


def test_a_checker_cut_off_from_redis_renews_lapsed_leases_instead(leases: Leases) -> None:
    """A checker whose previous check is older than its quiet span was cut off, and so
    were the holders: the lapsed lease is given a new life, not taken; when it lapses
    again and the checker is on time, it is taken."""
    unit = _unit()
    assert leases.take(unit, "w1", "prodseg.match", ["job", 3]) is not None
    first = leases.check(None, quiet_s=0.5)
    time.sleep(1.3)  # the lease lapses; the checker heard nothing for 1.3 s > 0.5 s
    after = leases.check(first.at, quiet_s=0.5)
    assert after.outage and after.lapsed == []
    assert leases.live([unit]) == {unit}  # a life ahead: a live holder renews it now
    time.sleep(1.3)
    on_time = leases.check(after.at, quiet_s=5.0)  # 1.3 s after the last: on time
    assert not on_time.outage and [x.unit for x in on_time.lapsed] == [unit]


def test_a_queued_unit_whose_message_was_lost_is_found(each_broker_url: str) -> None:
    """Three targets enqueued, nobody consuming: one message is taken off the queue the way
    a worker whose connection broke mid-take loses it; `lost_units` names that one only,
    and not a unit that holds a lease."""
    from prodseg.settings import load_settings
    from prodseg.tasks.app import make_app
    from prodseg.tasks.lost_messages import lost_units, send_again, units_with_messages
    from prodseg.tasks.names import BATCH_QUEUE, MATCH_TASK, work_unit

    client = redis.Redis.from_url(each_broker_url)
    client.flushdb()
    leases = Leases(client, ttl_s=30.0)
    app = make_app(load_settings(broker_url=each_broker_url))
    job = f"lost-{uuid.uuid4().hex[:8]}"
    units = [work_unit(MATCH_TASK, job, k) for k in range(3)]
    for k in range(3):
        app.send_task(MATCH_TASK, args=[job, k])
    leases.queued(units)
    assert units_with_messages(client, [BATCH_QUEUE]) == set(units)
    client.rpop(BATCH_QUEUE)  # the oldest message (index 0), taken and never filed
    assert leases.take(units[1], "w1", MATCH_TASK, [job, 1]) is not None
    client.rpop(BATCH_QUEUE)  # index 1's message, as its worker took it: leased, not lost
    assert lost_units(leases, [BATCH_QUEUE], settle_s=0.1) == [units[0]]
    send_again(app, [units[0]])
    assert lost_units(leases, [BATCH_QUEUE], settle_s=0.1) == []
    assert units_with_messages(client, [BATCH_QUEUE]) == {units[0], units[2]}
