"""Redis calls per target: all of a job's, and the leases' share (``prodseg.tasks.leases``).

Starts its own redis-server and S3 server (SeaweedFS) on loopback and one ``prodseg
worker`` (fast deterministic backend), then submits one job of ``--views`` rendered photos
and records every command Redis executes while the job runs (``MONITOR``), until the job
ends. Commands on the leases' keys (the lease scripts, ``prodseg:queued``,
``prodseg:lease:*``) and the ``TIME`` they read are the leases' share; prints both per
target, by command.

    python benchmarks/bench_lease_calls.py --views 24
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from local_services import CLASSIC_ENV, LocalServices

LEASE_KEYS = ("prodseg:leases", "prodseg:queued", "prodseg:lease:", "prodseg:locks")


def is_lease_call(command: str, lease_scripts: set[str]) -> bool:
    """Whether a ``MONITOR`` line's command is the leases' work."""
    words = command.split()
    if not words:
        return False
    name = words[0].upper()
    if name in ("EVALSHA", "EVAL"):
        return len(words) > 1 and words[1] in lease_scripts
    if name == "TIME":
        return True
    return any(key in command for key in LEASE_KEYS)


def lease_script_shas() -> set[str]:
    """The SHA1 of each lease script (what ``EVALSHA`` names)."""
    import hashlib

    from prodseg.tasks import leases

    scripts = (leases.TAKE_SCRIPT, leases.RENEW_SCRIPT, leases.RELEASE_SCRIPT,
               leases.RECLAIM_SCRIPT)
    return {hashlib.sha1(s.encode()).hexdigest() for s in scripts}


def monitor(url: str, lines: list[str], stop: threading.Event) -> None:
    """Append every command Redis executes to ``lines`` until ``stop`` is set."""
    import redis

    client = redis.Redis.from_url(url)
    with client.monitor() as m:
        while not stop.is_set():
            event: dict[str, Any] = m.next_command()
            inside = event.get("client_type") == "lua"  # run by a script, not a call
            lines.append(("lua " if inside else "") + str(event.get("command", "")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=24, help="photos in the job")
    parser.add_argument("--size", default="320x240", help="WIDTHxHEIGHT of each photo")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="prodseg-lease-calls-"))
    env = {**os.environ, **CLASSIC_ENV}
    services = LocalServices(tmp, env)
    try:
        services.start_broker_and_store()
        sample = tmp / "sample"
        subprocess.run([sys.executable, "-m", "prodseg", "sample", "--output", str(sample),
                        "--views", str(args.views), "--size", args.size], env=env,
                       check=True, capture_output=True)
        doc = json.loads((sample / "sample.json").read_text())
        x, y = doc["reference_point"]
        services.worker("w1")
        time.sleep(12)  # past the worker's first lease check: counted below as it runs
        lines: list[str] = []
        stop = threading.Event()
        watcher = threading.Thread(target=monitor, args=(env["PRODSEG_BROKER_URL"], lines,
                                                         stop), daemon=True)
        watcher.start()
        time.sleep(0.5)
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "prodseg", "submit", "--images", str(sample / "images"),
             "--reference", str(sample / doc["reference"]), "--ref-point", f"{x},{y}",
             "--watch", "--no-progress"], env=env, check=True, capture_output=True)
        seconds = time.perf_counter() - start
        stop.set()
        time.sleep(1)
        shas = lease_script_shas()
        targets = args.views - 1
        calls = [line for line in lines if line and not line.startswith("lua ")]
        inside = [line.removeprefix("lua ") for line in lines if line.startswith("lua ")]
        lease_calls = [line for line in calls if is_lease_call(line, shas)]
        lease_inside = [line for line in inside if is_lease_call(line, shas)]
        by_command = collections.Counter(line.split()[0].upper() for line in lease_calls)
        result = {"targets": targets, "seconds": seconds, "calls": len(calls),
                  "lease_calls": len(lease_calls), "script_commands": len(inside),
                  "lease_script_commands": len(lease_inside),
                  "lease_calls_by_command": dict(by_command)}
        print(f"one job of {targets} targets in {seconds:.1f} s: {len(calls)} Redis calls "
              f"({len(calls) / targets:.1f} per target), of which the leases' "
              f"{len(lease_calls)} ({len(lease_calls) / targets:.1f} per target, "
              f"{100 * len(lease_calls) / len(calls):.0f}%); inside the leases' scripts "
              f"Redis ran {len(lease_inside)} commands ({len(lease_inside) / targets:.1f} "
              "per target)")
        print("the leases' calls, by command:", dict(by_command.most_common()))
        print(json.dumps(result))
    finally:
        services.stop()


if __name__ == "__main__":
    main()
