"""``benchmarks/run_cost.py`` counts what a run cost: the CPU seconds of a process
session, the children its processes already reaped included, and the commands a real
Redis server processed, per command and per target."""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.imports import REPO
from tests.support.servers import start_broker

# A process that burns 0.3 s of CPU in a child it reaps, then 0.3 s itself, then waits.
BURNER = """
import os, sys, time
def burn(s):
    end = time.process_time() + s
    while time.process_time() < end:
        pass
pid = os.fork()
if pid == 0:
    burn(0.3)
    os._exit(0)
os.waitpid(pid, 0)
burn(0.3)
print("burnt", flush=True)
time.sleep(60)
"""


def load_run_cost() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "run_cost", REPO / "benchmarks" / "run_cost.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_cost"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_session_cpu_counts_the_reaped_child() -> None:
    run_cost = load_run_cost()
    proc = subprocess.Popen([sys.executable, "-c", BURNER], stdout=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "burnt"
        session_s = run_cost.session_cpu_s(proc.pid)
        process_s = run_cost.process_cpu_s(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    assert session_s >= 0.55, session_s
    assert process_s >= 0.55, process_s
    assert run_cost.session_cpu_s(proc.pid) == 0.0  # nothing left in the session


def test_cost_per_target_and_per_command() -> None:
    run_cost = load_run_cost()
    before = run_cost.Reading(workers_s=1.0, store_s=0.5, redis_s=0.25, client_s=2.0,
                              commands=100, calls={"get": 10, "set": 5})
    after = run_cost.Reading(workers_s=3.0, store_s=1.5, redis_s=0.75, client_s=2.5,
                             commands=300, calls={"get": 10, "set": 105, "evalsha": 40})
    spent = run_cost.cost(before, after, targets=4)
    assert spent["workers_cpu_s"] == pytest.approx(2.0)
    assert spent["total_cpu_s"] == pytest.approx(2.0 + 1.0 + 0.5 + 0.5)
    assert spent["redis_cpu_ms_per_target"] == pytest.approx(125.0)
    assert spent["redis_commands"] == 200
    assert spent["redis_commands_per_target"] == pytest.approx(50.0)
    assert list(spent["redis_calls"].items()) == [("set", 100), ("evalsha", 40)]
    assert "50.0 per target" in run_cost.describe(spent)


@pytest.mark.integration
def test_meter_reads_a_real_redis(tmp_path: Path) -> None:
    import redis

    run_cost = load_run_cost()
    server = start_broker("redis-server", tmp_path)
    try:
        meter = run_cost.Meter(redis.Redis.from_url(server.url), workers=[])
        before = meter.read()
        client = redis.Redis.from_url(server.url)
        for k in range(50):
            client.set(f"key{k}", "x" * 1000)
        time.sleep(0.1)
        spent = run_cost.cost(before, meter.read(), targets=50)
    finally:
        server.stop()
    assert spent["redis_calls"]["set"] == 50
    # The 50 SETs, the connection's HELLO, and the meter's own INFO reads.
    assert 50 < spent["redis_commands"] < 60, spent["redis_commands"]
