"""The Celery app: Redis broker, JSON only, late acknowledgement, one task at a time.

``celery -A prodseg.tasks.app worker`` and ``celery -A prodseg.tasks.app flower`` use the
module-level ``app``, configured from the ``PRODSEG_*`` settings of the environment. Results are not
stored in Redis (progress lives in ``prodseg.tasks.progress`` and outputs in storage), so a
long catalog run leaves no task results behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from celery import Celery
from celery.signals import before_task_publish
from kombu import Queue

from prodseg.settings import Settings, load_settings
from prodseg.tasks.names import (
    BATCH_QUEUE,
    FINALIZE_TASK,
    INTERACTIVE_QUEUE,
    JOB_STEPS,
    MATCH_TASK,
    PREVIEW_TASK,
    REFERENCE_TASK,
    RESOLVE_TASK,
    TRACK_TASK,
    task_label,
)

PUBLISH_BATCH = 500  # Redis commands per pipelined round trip when enqueueing many tasks


@contextmanager
def publishing(app: Celery) -> Iterator[Any]:
    """A producer whose messages go to Redis in pipelined batches, flushed on exit.

    Enqueueing a job's match tasks one by one costs a Redis round trip (and a new
    client object in kombu) each; batched, the same publishes run about twice as fast.
    With a kombu older than 5.7 (no ``Producer.batch``) messages go one by one. If the
    block raises, messages not yet flushed are dropped: the task that was enqueueing
    is retried and enqueues them again (match tasks are idempotent).
    """
    with app.producer_or_acquire() as producer:
        batch = getattr(producer, "batch", None)
        with batch(max_size=PUBLISH_BATCH) if batch is not None else nullcontext():
            yield producer


@before_task_publish.connect
def _label_job_steps(sender: str | None = None, headers: dict[str, Any] | None = None,
                     body: Any = None, **_: Any) -> None:
    """Give a job step's message a name that says its job (``task_label``), unless the
    sender named it already (a match task names its photo too)."""
    if sender not in JOB_STEPS or headers is None or headers.get("shadow"):
        return
    args = body[0] if isinstance(body, list | tuple) and body else None
    if isinstance(args, list | tuple) and args and isinstance(args[0], str):
        headers["shadow"] = task_label(sender, args[0])


def make_app(settings: Settings | None = None) -> Celery:
    """A Celery app for the broker in ``settings`` (the environment's by default)."""
    s = settings if settings is not None else load_settings()
    app = Celery("prodseg", broker=s.broker_url,
                 include=["prodseg.tasks.job_tasks", "prodseg.tasks.preview_task",
                          "prodseg.tasks.propose_task"])
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=s.task_time_limit_s,
        task_soft_time_limit=max(1, s.task_time_limit_s - min(60, s.task_time_limit_s // 10)),
        # A message taken by a worker that vanished is handed out again after the
        # visibility timeout; unacknowledged messages are swept at a tenth of it.
        broker_transport_options={
            "visibility_timeout": s.broker_visibility_timeout_s,
            "unacked_restore_interval": max(1, min(10, s.broker_visibility_timeout_s // 10)),
            "unacked_restore_throttle": 1,
        },
        broker_connection_retry_on_startup=True,
        # Publishing (a retry, the next step) waits out a broker restart of up to about a
        # minute instead of dropping the message.
        task_publish_retry=True,
        task_publish_retry_policy={
            "max_retries": 40, "interval_start": 0.2, "interval_step": 0.5,
            "interval_max": 2.0,
        },
        task_queues=(Queue(INTERACTIVE_QUEUE), Queue(BATCH_QUEUE)),
        task_default_queue=BATCH_QUEUE,
        task_routes={
            REFERENCE_TASK: {"queue": INTERACTIVE_QUEUE},
            PREVIEW_TASK: {"queue": INTERACTIVE_QUEUE},
            MATCH_TASK: {"queue": BATCH_QUEUE},
            FINALIZE_TASK: {"queue": BATCH_QUEUE},
            TRACK_TASK: {"queue": BATCH_QUEUE},
            RESOLVE_TASK: {"queue": BATCH_QUEUE},
        },
        # Flower and `celery events` see task progress.
        worker_send_task_events=True,
        task_send_sent_event=True,
        # Models are built on the first task, not at process start, but give slow
        # machines room anyway.
        worker_proc_alive_timeout=60,
        # The worker owns its process's logging: the CLI's bare handler is replaced by
        # Celery's, so every line has a timestamp and a process name, and task loggers
        # (``celery.utils.log.get_task_logger``) add the task's name and id.
        worker_hijack_root_logger=True,
    )
    return app


app = make_app()
