"""Leases on running work, so that a lost worker's work comes back within a minute.

The broker hands a message taken by a worker that vanished to another worker only after
its visibility timeout (an hour by default): long enough for the longest task, far too
long for a preemptible GPU machine that disappeared. So each unit of work that runs (one
step of one job, for the whole job or for one view) holds a lease in Redis that its worker
renews every few seconds. A lease that is not renewed lapses; a checker then enqueues the
unit again, and another worker takes it.

Redis holds, in the broker's database:

- ``prodseg:leases`` (sorted set): unit -> expiry, in the Redis server's own clock, so the
  workers' clocks do not matter;
- ``prodseg:lease:<unit>`` (hash): ``holder``, ``generation`` (bumped by every take),
  ``task`` and ``args`` (JSON): what to enqueue to run the unit again;
- ``prodseg:queued`` (set): units whose message waits in the queue; taking the lease
  takes the unit out. With the leases, it tells ``prodseg resume`` what not to enqueue.

Every change is one Lua script, so any number of checkers may run at once: each lapsed
lease is given to exactly one of them. The generation decides which delivery holds the
unit: a worker that comes back after its lease was taken over finds, at its next renewal,
that its generation is no longer the current one, and logs that it lost the lease. Its
outputs are the same bytes at the same keys as the newer run's (outputs are idempotent),
so whichever writes last leaves the same files.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis

from prodseg.jsonio import dumps

log = logging.getLogger(__name__)

LEASES_KEY = "prodseg:leases"
LOCKS_KEY = "prodseg:locks"  # leases that nothing reclaims: one submitting process each
QUEUED_KEY = "prodseg:queued"
KEEP_RECORD_S = 7 * 24 * 3600  # a unit's generation outlives its last lease by a week

TAKE_SCRIPT = """
-- KEYS: the leases set, the unit's record, the queued set.
-- ARGV: unit, holder, ttl (s), task, args, keep (s), a holder known to be gone ("" if none).
-- Returns the new generation, or 0 when another holder's lease is still live.
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1e6
local expiry = redis.call('ZSCORE', KEYS[1], ARGV[1])
local current = redis.call('HGET', KEYS[2], 'holder')
if expiry and tonumber(expiry) > t and current ~= ARGV[2]
   and (ARGV[7] == '' or current ~= ARGV[7]) then
  return 0
end
redis.call('SREM', KEYS[3], ARGV[1])
local generation = redis.call('HINCRBY', KEYS[2], 'generation', 1)
redis.call('HSET', KEYS[2], 'holder', ARGV[2], 'task', ARGV[4], 'args', ARGV[5])
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[6]))
redis.call('ZADD', KEYS[1], t + tonumber(ARGV[3]), ARGV[1])
return generation
"""

RENEW_SCRIPT = """
-- KEYS: the leases set, the unit's record. ARGV: unit, generation, ttl (s).
-- Returns 1 while the lease is this generation's and live, else 0.
if redis.call('HGET', KEYS[2], 'generation') ~= ARGV[2]
   or not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
local now = redis.call('TIME')
redis.call('ZADD', KEYS[1], 'XX', tonumber(now[1]) + tonumber(now[2]) / 1e6 + tonumber(ARGV[3]),
           ARGV[1])
return 1
"""

RELEASE_SCRIPT = """
-- KEYS: the leases set, the unit's record. ARGV: unit, generation.
if redis.call('HGET', KEYS[2], 'generation') == ARGV[2] then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HSET', KEYS[2], 'holder', '')
  return 1
end
return 0
"""

RECLAIM_SCRIPT = """
-- KEYS: the leases set.
-- ARGV: the record key prefix, the most units to take, the server time of the caller's
-- previous check ('' if none), the longest quiet span (s), a lease's life (s).
-- Returns the server time, '1' if the caller was cut off from here for longer than the
-- quiet span (an outage: nothing is taken, and each lapsed lease is pushed a life ahead,
-- as its holder could not renew either) else '0', and then, for each lease taken off the
-- set (so that no other checker sees it): unit, task, args, the holder that lost it.
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1e6
local stamp = string.format('%.6f', t)
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', t, 'LIMIT', 0, tonumber(ARGV[2]))
if ARGV[3] ~= '' and t - tonumber(ARGV[3]) > tonumber(ARGV[4]) then
  for _, unit in ipairs(lapsed) do
    redis.call('ZADD', KEYS[1], t + tonumber(ARGV[5]), unit)
  end
  return {stamp, '1'}
end
local out = {stamp, '0'}
for _, unit in ipairs(lapsed) do
  redis.call('ZREM', KEYS[1], unit)
  local record = ARGV[1] .. unit
  local fields = redis.call('HMGET', record, 'task', 'args', 'holder')
  redis.call('HSET', record, 'holder', '')
  table.insert(out, unit)
  table.insert(out, fields[1] or '')
  table.insert(out, fields[2] or '[]')
  table.insert(out, fields[3] or '')
end
return out
"""


def this_process() -> str:
    """This process as a lease's holder: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def gone_here(holder: str) -> bool:
    """Whether ``holder`` (``host:pid``) is a process of this machine that has ended: a
    pool process killed a moment ago, whose lease need not be waited out."""
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def record_key(unit: str) -> str:
    """The Redis hash of ``unit``'s lease."""
    return f"prodseg:lease:{unit}"


@dataclass(frozen=True)
class Lease:
    """A unit of work held by one delivery.

    Attributes:
        unit: what is held (``"match:<job>:<index>"``).
        holder: who holds it (worker host name and process id).
        generation: this delivery's take of the unit; a later take makes it stale.
    """

    unit: str
    holder: str
    generation: int


@dataclass(frozen=True)
class Lapsed:
    """A lease that was not renewed in time, taken off by one checker.

    Attributes:
        unit: the unit that must run again.
        task: the Celery task name that runs it.
        args: that task's arguments.
        holder: the holder that lost it.
    """

    unit: str
    task: str
    args: list[Any]
    holder: str


@dataclass(frozen=True)
class Check:
    """One checker's look at the leases (``Leases.check``).

    Attributes:
        at: the Redis server's clock when it looked (seconds since the epoch).
        outage: the checker had been cut off from Redis for longer than a lease can lapse
            unseen: nothing was taken, and the lapsed leases were given a new life.
        lapsed: the lapsed leases it took, for the caller to enqueue again.
    """

    at: float
    outage: bool
    lapsed: list[Lapsed]


class Leases:
    """Takes, renews, releases and reclaims leases in Redis.

    Args:
        client: the broker's Redis.
        ttl_s: seconds a lease lives without being renewed.
        set_key: the sorted set the leases live in: ``LEASES_KEY`` for work that a checker
            enqueues again, ``LOCKS_KEY`` for locks that simply lapse.
    """

    def __init__(self, client: redis.Redis, ttl_s: float = 30.0,
                 set_key: str = LEASES_KEY) -> None:
        self.redis = client
        self.ttl_s = ttl_s
        self.set_key = set_key
        self._take = client.register_script(TAKE_SCRIPT)
        self._renew = client.register_script(RENEW_SCRIPT)
        self._release = client.register_script(RELEASE_SCRIPT)
        self._reclaim = client.register_script(RECLAIM_SCRIPT)

    def take(self, unit: str, holder: str, task: str, args: list[Any],
             gone: str = "") -> Lease | None:
        """Hold ``unit``; None while another holder's lease on it is live.

        Args:
            unit: the unit of work.
            holder: who takes it.
            task: the task name that runs it again if this holder is lost.
            args: that task's arguments (JSON).
            gone: a holder known to be gone (a dead process on this machine): its live
                lease is taken over at once instead of waited out.
        """
        generation = int(self._take(
            keys=[self.set_key, record_key(unit), QUEUED_KEY],
            args=[unit, holder, self.ttl_s, task, dumps(args, compact=True), KEEP_RECORD_S, gone]))
        return Lease(unit, holder, generation) if generation else None

    def renew(self, lease: Lease) -> bool:
        """Push the lease's expiry ``ttl_s`` ahead; False when it was lost (it lapsed and
        was reclaimed, or a later delivery took the unit)."""
        return bool(self._renew(keys=[self.set_key, record_key(lease.unit)],
                                args=[lease.unit, lease.generation, self.ttl_s]))

    def holder(self, unit: str) -> str:
        """Who holds ``unit`` ("" when nobody does)."""
        raw = self.redis.hget(record_key(unit), "holder")
        return raw.decode() if isinstance(raw, bytes) else ""

    def release(self, lease: Lease) -> None:
        """Give the unit up (its work is done, or failed for good)."""
        self._release(keys=[self.set_key, record_key(lease.unit)],
                      args=[lease.unit, lease.generation])

    def reclaim(self, limit: int = 100) -> list[Lapsed]:
        """Take every lapsed lease (at most ``limit``) off the set, for the caller to
        enqueue again. Safe with any number of callers: each lapsed lease goes to one."""
        return self.check(None, 0.0, limit).lapsed

    def check(self, previous: float | None, quiet_s: float, limit: int = 100) -> Check:
        """``reclaim``, unless the caller heard nothing from Redis for ``quiet_s`` since
        its ``previous`` check: then the broker (or the network to it) was away, the
        holders could not renew either, and a lapsed lease says nothing about its holder.
        Each is pushed a lease's life ahead instead, for a live holder to renew; one whose
        holder is really gone lapses again a life later.

        Args:
            previous: ``Check.at`` of the caller's previous check (None: the first).
            quiet_s: the longest span between two checks that is not an outage.
            limit: the most leases taken at once.
        """
        flat = self._reclaim(keys=[self.set_key],
                             args=["prodseg:lease:", limit,
                                   "" if previous is None else repr(previous), quiet_s,
                                   self.ttl_s])
        at, outage, rest = float(flat[0]), _text(flat[1]) == "1", flat[2:]
        lapsed = []
        for i in range(0, len(rest), 4):
            unit, task, args, holder = (_text(v) for v in rest[i:i + 4])
            lapsed.append(Lapsed(unit, task, json.loads(args), holder))
        return Check(at, outage, lapsed)

    def server_time(self) -> float:
        """The Redis server's clock, the one leases expire by (seconds since the epoch)."""
        seconds, micros = self.redis.time()
        return float(seconds) + float(micros) / 1e6

    def queued(self, units: list[str]) -> None:
        """Mark ``units`` as waiting in the queue (their messages were just sent)."""
        if units:
            self.redis.sadd(QUEUED_KEY, *units)

    def not_queued(self, unit: str) -> None:
        """``unit``'s message is gone without a lease being taken: it found its step done,
        or its task gave up."""
        self.redis.srem(QUEUED_KEY, unit)

    def busy(self, units: list[str]) -> set[str]:
        """Those of ``units`` that are queued or held by a live lease: enqueueing them
        again would run them twice."""
        if not units:
            return set()
        flags = self.redis.smismember(QUEUED_KEY, units)
        return {u for u, f in zip(units, flags, strict=True) if f} | self.live(units)

    def live(self, units: list[str]) -> set[str]:
        """Those of ``units`` whose lease is live now (``prodseg resume`` leaves them)."""
        if not units:
            return set()
        now = self.server_time()
        pipe = self.redis.pipeline(transaction=False)
        for unit in units:
            pipe.zscore(self.set_key, unit)
        return {u for u, expiry in zip(units, pipe.execute(), strict=True)
                if expiry is not None and float(expiry) > now}

    @contextmanager
    def held(self, lease: Lease, every_s: float | None = None) -> Iterator[threading.Event]:
        """Renew ``lease`` in a background thread while the block runs, then release it.

        Yields an event that is set when the lease was lost (taken over by a newer
        delivery); the loss is logged, and the lease is then left to its new holder.

        Args:
            lease: the lease taken.
            every_s: seconds between renewals (a third of the lease's life by default).
        """
        lost = threading.Event()
        stop = threading.Event()
        interval = every_s if every_s is not None else self.ttl_s / 3

        def renew() -> None:
            while not stop.wait(interval):
                try:
                    if not self.renew(lease):
                        log.warning("lease on %s lost: another worker runs it now",
                                    lease.unit)
                        lost.set()
                        return
                except redis.exceptions.RedisError as error:  # the broker is away: go on
                    log.warning("lease on %s not renewed: %s", lease.unit, error)

        thread = threading.Thread(target=renew, name=f"lease {lease.unit}", daemon=True)
        thread.start()
        try:
            yield lost
        finally:
            stop.set()
            thread.join()
            if not lost.is_set():
                try:
                    self.release(lease)
                except redis.exceptions.RedisError as error:
                    log.warning("lease on %s not released (it lapses by itself): %s",
                                lease.unit, error)
