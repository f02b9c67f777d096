"""What one worker process keeps between tasks, each made on first use and kept.

Per process: its settings (the environment), the store, the progress board and the
leases. Per job (a few jobs at a time): the manifest, the plan, the fixed bank and the
reference mask's shape. Per distinct job settings: the pipeline, and so the models.
Also the retry policy every step task is declared with (``RETRY``).
"""

from __future__ import annotations

import functools
import json
from typing import Any

import redis

from prodseg.errors import DeviceError, TransientError
from prodseg.jsonio import dumps
from prodseg.settings import JOB_SETTINGS, Settings, load_settings
from prodseg.storage.base import ObjectStore
from prodseg.storage.manifest import JobManifest
from prodseg.tasks.leases import Leases
from prodseg.tasks.progress import ProgressBoard

# Storage trouble, and the broker's Redis going away for a moment (a restart).
RETRYABLE: tuple[type[Exception], ...] = (
    TransientError, ConnectionError, TimeoutError,
    redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
)


@functools.lru_cache(maxsize=1)
def settings() -> Settings:
    """The worker's settings (its environment), read once per process."""
    return load_settings()


def _retry_policy() -> dict[str, Any]:
    s = settings()
    return {
        "autoretry_for": RETRYABLE,
        "dont_autoretry_for": (DeviceError,),  # the process is replaced instead (StepTask)
        "retry_backoff": 2,
        "retry_backoff_max": s.task_retry_backoff_max_s,
        "retry_jitter": True,
        "max_retries": s.task_retries,
    }


RETRY = _retry_policy()
"""Celery's retry options of every step task: transient errors back off and retry."""


@functools.lru_cache(maxsize=1)
def store() -> ObjectStore:
    """The S3 store of this worker's settings."""
    from prodseg.storage.s3 import S3Store

    return S3Store.from_settings(settings())


@functools.lru_cache(maxsize=1)
def board() -> ProgressBoard:
    """The progress board on the broker's Redis."""
    return ProgressBoard.from_url(settings().broker_url, settings().outage_budget_s)


@functools.lru_cache(maxsize=1)
def leases() -> Leases:
    """The work units' leases, on the board's Redis."""
    return Leases(board().redis, ttl_s=settings().lease_ttl_s)


@functools.lru_cache(maxsize=8)
def manifest(job: str) -> JobManifest:
    """The job's manifest, read from the store once."""
    return JobManifest.load(store(), job)


@functools.lru_cache(maxsize=2)
def pipeline(settings_json: str) -> Any:
    """One pipeline (and so one set of models) per distinct job settings, kept."""
    from prodseg.workers.plan.pipeline import ProductSegmentationPipeline

    return ProductSegmentationPipeline(load_settings(**json.loads(settings_json)))


def pipeline_for(job_manifest: JobManifest) -> Any:
    """The pipeline of the job's settings on top of this machine's own: only job settings
    are taken from the manifest (one written by an older client may carry others)."""
    carried = {k: v for k, v in job_manifest.settings.items() if k in JOB_SETTINGS}
    return pipeline(dumps(carried, sort_keys=True))


@functools.lru_cache(maxsize=8)
def plan(job: str) -> Any:
    """The job's plan (``JobPlan``): which steps follow which."""
    from prodseg.workers.plan.job_plan import JobPlan

    return JobPlan.of_manifest(manifest(job).settings)


@functools.lru_cache(maxsize=8)
def fixed_bank(job: str) -> Any:
    """The reference embedding and the job's lookalikes (``load_fixed_bank``)."""
    from prodseg.workers.plan.steps import load_fixed_bank

    return load_fixed_bank(store(), manifest(job), plan(job))


@functools.lru_cache(maxsize=8)
def shape(job: str) -> Any:
    """The reference mask's shape (``load_reference_shape``)."""
    from prodseg.workers.plan.steps import load_reference_shape

    return load_reference_shape(store(), manifest(job))
