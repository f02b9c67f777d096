"""``prodseg worker``: start Celery workers, one process per GPU, models built per child.

A GPU worker is a Celery worker with the prefork pool and one child process; the child
builds SAM2 and DINOv2 on its first task (never before the fork, so CUDA is never
touched in the parent) and keeps them for every later task. With several GPUs, one such
worker runs per GPU with ``CUDA_VISIBLE_DEVICES`` set to it. Without a GPU, one worker
runs on the CPU with ``--concurrency`` children sharing the cores.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence


def celery_argv(queues: Sequence[str], concurrency: int, name: str, loglevel: str) -> list[str]:
    """Arguments of ``celery worker`` for one worker process."""
    return [
        "worker",
        "--queues", ",".join(queues),
        "--concurrency", str(concurrency),
        "--pool", "prefork",
        "--hostname", name,
        "--loglevel", loglevel,
        "--without-gossip",
    ]


def run_worker(
    gpus: Sequence[str] | None,
    queues: Sequence[str],
    concurrency: int,
    loglevel: str = "info",
    name: str | None = None,
) -> int:
    """Run the worker(s) in the foreground until they stop; returns an exit code.

    Args:
        gpus: GPU indices (one worker process each), or None/empty for the CPU.
        queues: Celery queues to consume (``interactive``, ``batch``).
        concurrency: child processes per worker (1 per GPU is right; more on CPU).
        loglevel: Celery's log level.
        name: the worker's node name (default ``prodseg[-gpuN]@<host>``).
    """
    host = socket.gethostname()
    if gpus and len(gpus) > 1:
        return _run_per_gpu(gpus, queues, concurrency, loglevel, name)
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[0]
        node = name or f"prodseg-gpu{gpus[0]}@{host}"
    else:
        node = name or f"prodseg@{host}"
        cores = os.cpu_count() or 1
        # Children share the cores instead of each taking all of them.
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, cores // max(1, concurrency))))
    from prodseg.tasks.app import app

    app.worker_main(celery_argv(queues, concurrency, node, loglevel))
    return 0


def _run_per_gpu(
    gpus: Sequence[str], queues: Sequence[str], concurrency: int, loglevel: str,
    name: str | None,
) -> int:
    """One ``prodseg worker --gpus N`` child per GPU; signals are passed on to them."""
    children = []
    for gpu in gpus:
        argv = [sys.executable, "-m", "prodseg", "worker", "--gpus", gpu,
                "--queues", ",".join(queues), "--concurrency", str(concurrency),
                "--loglevel", loglevel]
        if name:
            argv += ["--name", name.replace("@", f"-gpu{gpu}@", 1)]
        children.append(subprocess.Popen(argv))

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    codes = [child.wait() for child in children]
    return max(codes, default=0)
