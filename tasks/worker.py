"""``prodseg worker``: start Celery workers, one process per GPU, models built per child.

A GPU worker is a Celery worker with the prefork pool and one child process; the child
builds SAM2 and DINOv2 on its first task (never before the fork, so CUDA is never
touched in the parent) and keeps them for every later task. With several GPUs, one such
worker runs per GPU with ``CUDA_VISIBLE_DEVICES`` set to it. Without a GPU, one worker
runs on the CPU with ``--concurrency`` children sharing the cores.

With ``$PRODSEG_WORKER_HEALTH_FILE`` set, the process ids of the worker are kept there
for the health check (``prodseg.tasks.health``). A per-GPU worker process that dies
unasked stops the launcher, non-zero, instead of leaving its GPU idle.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from prodseg.errors import WeightsError
from prodseg.settings import Settings
from prodseg.tasks.health import HEALTH_FILE_ENV, write_health_file
from prodseg.workers.models.weights import download_command, missing_weights

log = logging.getLogger(__name__)

CHILD_POLL_S = 0.2
"""How often the launcher looks whether a per-GPU worker process has exited."""
LAUNCHER_LOG_FORMAT = "[%(asctime)s: %(levelname)s/launcher] %(message)s"
"""The launcher's lines, shaped like those of the Celery workers it runs."""


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

    with _health_file({}):
        app.worker_main(celery_argv(queues, concurrency, node, loglevel))
    return 0


@contextmanager
def _health_file(children: Mapping[str, int]) -> Iterator[None]:
    """While the block runs, ``$PRODSEG_WORKER_HEALTH_FILE`` lists this process and
    ``children`` for the health check (``prodseg.tasks.health``); removed after."""
    name = os.environ.get(HEALTH_FILE_ENV)
    if not name:
        yield
        return
    path = Path(name)
    write_health_file(path, children)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def _exit_code(returncode: int) -> int:
    """A child's return code as a shell would report it: 128 + N when killed by signal N."""
    return 128 - returncode if returncode < 0 else returncode


def _run_per_gpu(
    gpus: Sequence[str], queues: Sequence[str], concurrency: int, loglevel: str,
    name: str | None,
) -> int:
    """One ``prodseg worker --gpus N`` child per GPU; signals are passed on to them.

    A child that exits without being told to (killed, crashed) takes the others down:
    they get SIGTERM (warm shutdown: each finishes the task in hand) and the launcher
    exits with the dead child's code, so that the container ends and is restarted
    instead of running on with a GPU idle. Until then the health check already fails.
    """
    for handler in logging.getLogger().handlers:
        handler.setFormatter(logging.Formatter(LAUNCHER_LOG_FORMAT))
    env = {k: v for k, v in os.environ.items() if k != HEALTH_FILE_ENV}
    children: dict[str, subprocess.Popen[bytes]] = {}
    for gpu in gpus:
        argv = [sys.executable, "-m", "prodseg", "worker", "--gpus", gpu,
                "--queues", ",".join(queues), "--concurrency", str(concurrency),
                "--loglevel", loglevel]
        if name:
            argv += ["--name", name.replace("@", f"-gpu{gpu}@", 1)]
        children[gpu] = subprocess.Popen(argv, env=env)
    asked_to_stop = False

    def forward(signum: int, _frame: object = None) -> None:
        nonlocal asked_to_stop
        asked_to_stop = True
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    with _health_file({gpu: child.pid for gpu, child in children.items()}):
        while not (gone := [g for g, c in children.items() if c.poll() is not None]):
            time.sleep(CHILD_POLL_S)
        code = 0
        if not asked_to_stop:
            dead = children[gone[0]]
            code = max(1, _exit_code(dead.returncode))
            log.error("the worker process of GPU %s (pid %d) exited with code %d "
                      "unasked; stopping the others (warm shutdown), then exiting %d",
                      gone[0], dead.pid, dead.returncode, code)
            forward(signal.SIGTERM)
        codes = [_exit_code(child.wait()) for child in children.values()]
    return code or max(codes, default=0)
