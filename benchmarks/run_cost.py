"""What a distributed run costs in CPU seconds and Redis commands, for the benchmarks.

Wall-clock time on a shared machine mostly measures the other work on it. The commands
Redis processed do not depend on that load; the CPU seconds of each process do not count
the time it waited for a core, though contention for cores and caches still moves them
(``docs/reliability.md``, "What the leases cost"). ``Meter`` reads, before and after a
run:

- the CPU seconds (user + system) of each worker: every process of its session (a
  worker is started in a session of its own, so its pool children are in it), plus the
  time of children it already reaped, from ``/proc/PID/stat``;
- the CPU seconds of the S3 server process (SeaweedFS: one process), the same way;
- the Redis server's own ``used_cpu_user`` + ``used_cpu_sys`` (``INFO cpu``), and its
  ``total_commands_processed`` and per-command calls (``INFO commandstats``);
- the client: this process's reaped children (``getrusage(RUSAGE_CHILDREN)``), which
  holds the submitting command once ``subprocess.run`` has returned.

Linux only (``/proc``).
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (field 3 on), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return text[text.rindex(")") + 2:].split()


def session_cpu_s(session: int) -> float:
    """CPU seconds (user + system) of every process in ``session``, with the children
    each has reaped (``utime + stime + cutime + cstime``)."""
    ticks = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        # fields[0] is field 3 (state): session is field 6, utime..cstime fields 14..17.
        if fields is None or int(fields[3]) != session:
            continue
        ticks += sum(int(v) for v in fields[11:15])
    return ticks / _TICKS_PER_S


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of one process and the children it has reaped."""
    fields = _stat_fields(pid)
    return 0.0 if fields is None else sum(int(v) for v in fields[11:15]) / _TICKS_PER_S


def children_cpu_s() -> float:
    """CPU seconds of the children this process has waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Reading:
    """One reading of what the processes of a run have spent so far.

    Attributes:
        workers_s: CPU seconds of the worker sessions, summed.
        store_s: CPU seconds of the S3 server.
        redis_s: the Redis server's own CPU seconds.
        client_s: CPU seconds of this process's reaped children.
        commands: Redis ``total_commands_processed``.
        calls: Redis calls per command name (``INFO commandstats``).
    """

    workers_s: float
    store_s: float
    redis_s: float
    client_s: float
    commands: int
    calls: dict[str, int] = field(default_factory=dict)


@dataclass
class Meter:
    """Reads the cost of a run from its processes and its Redis server.

    Args:
        redis: a client of the broker (``redis.Redis``).
        workers: the worker processes' ids (each leads its own session).
        store: the S3 server's process id, or None.
    """

    redis: Any
    workers: list[int]
    store: int | None = None

    def read(self) -> Reading:
        """What the run's processes have spent up to now."""
        cpu = self.redis.info("cpu")
        stats = self.redis.info("commandstats")
        return Reading(
            workers_s=sum(session_cpu_s(pid) for pid in self.workers),
            store_s=0.0 if self.store is None else process_cpu_s(self.store),
            redis_s=float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]),
            client_s=children_cpu_s(),
            commands=int(self.redis.info("stats")["total_commands_processed"]),
            calls={name.removeprefix("cmdstat_"): int(v["calls"])
                   for name, v in stats.items()})


def cost(before: Reading, after: Reading, targets: int) -> dict[str, Any]:
    """What was spent between two readings, in all and per target.

    Args:
        before: the reading before the run.
        after: the reading after it.
        targets: the target images the run processed.

    Returns:
        CPU seconds per part (``*_cpu_s``) and their total, CPU milliseconds per target
        (``*_cpu_ms_per_target``), Redis commands in all and per target, and the calls
        per Redis command, most first.
    """
    parts = {name: getattr(after, f"{name}_s") - getattr(before, f"{name}_s")
             for name in ("workers", "redis", "client", "store")}
    parts["total"] = sum(parts.values())
    commands = after.commands - before.commands
    calls = {name: n - before.calls.get(name, 0) for name, n in after.calls.items()}
    result: dict[str, Any] = {f"{k}_cpu_s": v for k, v in parts.items()}
    result |= {f"{k}_cpu_ms_per_target": 1000 * v / max(targets, 1)
               for k, v in parts.items()}
    result |= {"redis_commands": commands,
               "redis_commands_per_target": commands / max(targets, 1),
               "redis_calls": dict(sorted(((k, v) for k, v in calls.items() if v),
                                          key=lambda kv: -kv[1]))}
    return result


def describe(spent: dict[str, Any]) -> str:
    """Two lines: CPU seconds (and ms per target) of each part, and Redis commands."""
    cpu = ", ".join(f"{name} {spent[f'{name}_cpu_s']:.1f} s "
                    f"({spent[f'{name}_cpu_ms_per_target']:.1f} ms/target)"
                    for name in ("workers", "redis", "client", "store", "total"))
    top = ", ".join(f"{k} {v}" for k, v in list(spent["redis_calls"].items())[:6])
    return (f"CPU: {cpu}\nRedis: {spent['redis_commands']} commands = "
            f"{spent['redis_commands_per_target']:.1f} per target (most: {top})")
