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

from prodseg.errors import WeightsError
from prodseg.settings import Settings
from prodseg.workers.models.weights import download_command, missing_weights


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


def check_weights(settings: Settings) -> None:
    """Refuse to start a worker whose pretrained weights are not in its cache.

    Without this check such a worker would start, report healthy, take a task and fail
    it. The classic backend and random weights need no files.

    Raises:
        WeightsError: one line naming the missing models and the download command.
    """
    if settings.backend == "classic" or settings.weights == "random":
        return
    cache = settings.model_cache_dir
    missing = missing_weights([settings.sam2_checkpoint, settings.dinov2_model], cache)
    if missing:
        names = [wf.model for wf in missing]
        raise WeightsError(
            f"worker not started: no weights for {', '.join(names)} in {cache}; fetch them "
            f"with: {download_command(*names, cache_dir=cache)}")


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
