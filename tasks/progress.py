"""Live job progress in Redis: counters the producer reads and the workers update.

Storage is the source of truth (``prodseg.storage.manifest``); Redis holds what changes often:

- ``prodseg:job:<id>`` (hash): ``state`` (queued, running, done, failed, cancelled),
  ``total`` targets, ``ok`` and ``error`` counts, ``error_message``, timestamps;
- ``prodseg:job:<id>:done`` (set): ids of finished targets. Adding an id twice (a task
  redelivered after a crash) counts once, so counters never run past the total;
- ``prodseg:job:<id>:finalize`` and ``:ended``: set-if-absent guards so finalisation is
  enqueued once and a job ends once.

Keys expire a week after the job ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from prodseg.errors import InputError, TransientError
from prodseg.tasks.names import CANCELLED, ENDED, QUEUED, RUNNING, UNKNOWN, JobState

EXPIRE_AFTER_END_S = 7 * 24 * 3600
T = TypeVar("T")


@dataclass(frozen=True)
class JobStatus:
    """Where a job stands: read from Redis while it runs, from storage once it ended.

    Attributes:
        job: the job id.
        state: one of ``tasks.names.JobState`` ("unknown": Redis has no record of it).
        total: target images (0 until the reference is done).
        finished: targets finished (each counted once, however often it ran).
        failed_images: targets that could not be processed.
        message: why the job failed, if it did.
    """

    job: str
    state: JobState
    total: int
    finished: int
    failed_images: int
    message: str = ""

    @property
    def ended(self) -> bool:
        """Whether the job has reached a final state."""
        return self.state in ENDED


SUFFIXES = ("", ":done", ":finalize", ":ended", ":deliveries", ":unstored")


FINISH_SCRIPT = """
-- KEYS: the job's finished set, its hash, its finalisation guard.
-- ARGV: the target's image id, the counter to bump ("ok" or "error").
-- Returns 1 to the one call that finished the last target, else 0.
if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then
  redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
end
local total = redis.call('HGET', KEYS[2], 'total')
if not total or redis.call('SCARD', KEYS[1]) < tonumber(total) then
  return 0
end
if redis.call('SET', KEYS[3], 1, 'NX') then
  return 1
end
return 0
"""
"""``target_finished`` as one Lua script: Redis runs it without interleaving any other
command, so the finished set, the counters and the finalisation claim move together."""


class BudgetRetry(Retry):
    """redis-py's retry, bounded by seconds instead of a count: a command is retried,
    backing off exponentially up to 4 s between tries, until ``budget_s`` seconds have
    passed since it was first sent.

    Args:
        budget_s: seconds of retrying; 0 retries nothing.
    """

    def __init__(self, budget_s: float) -> None:
        super().__init__(ExponentialBackoff(cap=4.0, base=0.1), retries=-1)
        self.budget_s = budget_s

    def call_with_retry(  # redis-py has changed this signature; the rest goes on as given
            self, do: Callable[[], T], fail: Callable[..., Any],
            is_retryable: Callable[[Exception], bool] | None = None, *args: Any,
            **kwargs: Any) -> T:
        """``Retry.call_with_retry`` that stops retrying once the budget is spent."""
        deadline = time.monotonic() + self.budget_s

        def retryable(error: Exception) -> bool:
            within = time.monotonic() < deadline
            return within and (is_retryable is None or is_retryable(error))

        return super().call_with_retry(do, fail, retryable, *args, **kwargs)


def _key(job: str, suffix: str = "") -> str:
    return f"prodseg:job:{job}{suffix}"


class ProgressBoard:
    """Reads and updates job progress.

    Args:
        client: a Redis client (``redis.Redis.from_url(settings.broker_url)``).
    """

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        # EVALSHA, loaded again by itself when Redis restarted and forgot it.
        self._finish = client.register_script(FINISH_SCRIPT)

    @classmethod
    def from_url(cls, url: str, outage_budget_s: float = 30.0) -> ProgressBoard:
        """A board on the Redis at ``url`` (the broker URL).

        Commands ride out a Redis restart: on a connection error they are retried with
        exponential backoff (capped at 4 s) for ``outage_budget_s`` seconds before the
        error is raised. Workers give the ``outage_budget_s`` setting; a command line
        keeps the default and says itself that it is waiting (``prodseg watch``).
        """
        return cls(redis.Redis.from_url(
            url, socket_timeout=10, health_check_interval=30,
            retry=BudgetRetry(outage_budget_s),
            retry_on_error=[redis.exceptions.ConnectionError, redis.exceptions.TimeoutError]))

    @staticmethod
    def check(url: str, timeout_s: float = 5.0) -> None:
        """Answer within ``timeout_s`` whether the broker at ``url`` takes commands.

        Commands of a board ride out outages for half a minute (``from_url``); a command
        line checks first, so that an unreachable broker or a wrong password is said at
        once, before anything is uploaded.

        Raises:
            TransientError: the broker does not answer (names it, without credentials).
            InputError: it refused the credentials.
        """
        from prodseg.storage.urls import without_userinfo

        where = without_userinfo(url)
        try:
            client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s,
                                          socket_timeout=timeout_s, retry_on_timeout=False)
        except ValueError as error:
            raise InputError(f"PRODSEG_BROKER_URL {where!r} is not a usable Redis URL: "
                             f"{error}") from None
        try:
            client.ping()
        except redis.exceptions.AuthenticationError:
            if urlsplit(url).password is None:
                raise InputError(f"the broker at {where} wants a password; give it in "
                                 "PRODSEG_BROKER_URL (redis://:PASSWORD@host:port/db)") from None
            raise InputError(f"the broker at {where} refused the credentials; check the "
                             "password in PRODSEG_BROKER_URL") from None
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as error:
            reason = str(error).replace(url, where).rstrip(".")
            raise TransientError(f"cannot reach the broker at {where}: {reason}") from None
        except redis.exceptions.RedisError as error:
            raise TransientError(f"the broker at {where} does not answer as Redis does "
                                 f"({type(error).__name__})") from None
        finally:
            client.close()

    def queued(self, job: str) -> None:
        """A job was submitted."""
        self.redis.hset(_key(job), mapping={"state": QUEUED, "submitted": time.time()})

    def started(self, job: str, total: int) -> None:
        """The reference is done and ``total`` targets were enqueued."""
        self.redis.hset(_key(job), mapping={"state": RUNNING, "total": total,
                                            "started": time.time()})

    def target_finished(self, job: str, image_id: str, ok: bool) -> bool:
        """Record one finished target; True when it was the last one, the first time.

        Idempotent: a redelivered target is counted once. Returns True to exactly one
        caller, the one that must enqueue finalisation. One atomic step in Redis
        (:data:`FINISH_SCRIPT`): no reader ever sees a target in the finished set that
        the ok/error counters do not count yet, and a worker dying mid-call leaves either
        everything recorded or nothing.
        """
        keys = [_key(job, ":done"), _key(job), _key(job, ":finalize")]
        last = self._finish(keys=keys, args=[image_id, "ok" if ok else "error"])
        return bool(last)

    def restore(self, job: str, total: int, finished: dict[str, bool],
                reference_done: bool) -> None:
        """Rebuild a job's record from what storage holds (``prodseg resume``).

        Forgets any end, cancellation or finalisation claim: the job runs again. Keeps
        the delivery counts: a target that killed its worker twice before the resume has
        used two of its ``task_max_deliveries``.

        Args:
            total: the job's target count.
            finished: image id -> ok, for every target with a stored result.
            reference_done: whether the reference's outputs are stored.
        """
        ok = sum(finished.values())
        pipe = self.redis.pipeline()
        for suffix in SUFFIXES:
            if suffix != ":deliveries":
                pipe.delete(_key(job, suffix))
        pipe.persist(_key(job, ":deliveries"))
        pipe.hset(_key(job), mapping={
            "state": RUNNING if reference_done else QUEUED, "total": total, "ok": ok,
            "error": len(finished) - ok, "resumed": time.time()})
        if finished:
            pipe.sadd(_key(job, ":done"), *finished)
        pipe.execute()

    def delivered(self, job: str, attempt: str) -> int:
        """Count one delivery of a task attempt; returns how many there have been.

        A worker killed in the middle of a task (out of memory, SIGKILL) makes the broker
        deliver the same message again; counting them bounds a target that always kills
        its worker.
        """
        return int(self.redis.hincrby(_key(job, ":deliveries"), attempt, 1))

    def note_unstored(self, job: str, image_id: str, reason: str) -> None:
        """A target's task gave up before storing its record: keep why, for the results."""
        self.redis.hset(_key(job, ":unstored"), image_id, reason)

    def unstored(self, job: str) -> dict[str, str]:
        """Image id -> reason for targets whose task gave up before storing a record."""
        raw = cast("dict[bytes, bytes]", self.redis.hgetall(_key(job, ":unstored")))
        return {k.decode(): v.decode() for k, v in raw.items()}

    def claim_end(self, job: str) -> bool:
        """True to exactly one caller: the one that records the job's end."""
        return bool(self.redis.set(_key(job, ":ended"), 1, nx=True))

    def ended(self, job: str, state: str, message: str = "") -> None:
        """Record the job's final state and let its keys expire later."""
        self.redis.hset(_key(job), mapping={"state": state, "error_message": message,
                                            "finished": time.time()})
        for suffix in SUFFIXES:
            self.redis.expire(_key(job, suffix), EXPIRE_AFTER_END_S)

    def cancel(self, job: str) -> None:
        """Mark the job cancelled: its tasks still in the queue become no-ops."""
        self.redis.hset(_key(job), "state", CANCELLED)

    def is_cancelled(self, job: str) -> bool:
        """Whether the job was cancelled (tasks check this before working)."""
        return self.redis.hget(_key(job), "state") == CANCELLED.encode()

    def read(self, job: str) -> JobStatus:
        """The job's progress; state "unknown" if Redis holds no record of it."""
        return self.read_many([job])[0]

    def read_many(self, jobs: Sequence[str]) -> list[JobStatus]:
        """The progress of each of ``jobs``, in one round trip (a catalog's jobs)."""
        pipe = self.redis.pipeline(transaction=False)
        for job in jobs:
            pipe.hgetall(_key(job))
            pipe.scard(_key(job, ":done"))
        replies = pipe.execute()
        out = []
        for job, fields, finished in zip(jobs, replies[0::2], replies[1::2], strict=True):
            raw = {k.decode(): v.decode() for k, v in fields.items()}
            out.append(JobStatus(
                job=job,
                state=cast(JobState, raw.get("state", UNKNOWN)),
                total=int(raw.get("total", 0)),
                finished=int(finished),
                failed_images=int(raw.get("error", 0)),
                message=raw.get("error_message", ""),
            ))
        return out
