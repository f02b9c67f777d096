"""The tasks: reference, match (one target), finalize. Thin: they call workers.job_steps.

Arguments are job ids and indices only: images, masks and embeddings travel through
storage, never through the broker.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

from celery import Task

from prodseg.errors import InputError, TransientError
from storage.base import ObjectStore
from storage.manifest import JobManifest, put_json, state_key
from tasks.app import app
from tasks.progress import ProgressBoard

log = logging.getLogger(__name__)

RETRYABLE: tuple[type[Exception], ...] = (TransientError, ConnectionError, TimeoutError)
RETRY = {
    "autoretry_for": RETRYABLE,
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 6,
}


@functools.lru_cache(maxsize=1)
def _store() -> ObjectStore:
    from prodseg.settings import load_settings
    from storage.s3 import S3Store

    return S3Store.from_settings(load_settings())


@functools.lru_cache(maxsize=1)
def _board() -> ProgressBoard:
    from prodseg.settings import load_settings

    return ProgressBoard.from_url(load_settings().broker_url)


@functools.lru_cache(maxsize=8)
def _manifest(job: str) -> JobManifest:
    return JobManifest.load(_store(), job)


@functools.lru_cache(maxsize=2)
def _pipeline(settings_json: str) -> Any:
    """One pipeline (and so one set of models) per distinct job settings, kept."""
    from prodseg.settings import load_settings
    from workers.pipeline import ProductSegmentationPipeline

    return ProductSegmentationPipeline(load_settings(**json.loads(settings_json)))


def _pipeline_for(manifest: JobManifest) -> Any:
    return _pipeline(json.dumps(manifest.settings, sort_keys=True))


@functools.lru_cache(maxsize=8)
def _embedding(job: str) -> Any:
    from workers.job_steps import load_reference_embedding

    return load_reference_embedding(_store(), _manifest(job))


def end_job(job: str, state: str, message: str = "") -> None:
    """Record a job's end, once: in storage (``_state/end.json``) and in Redis."""
    board = _board()
    if not board.claim_end(job):
        return
    put_json(_store(), state_key(job, "end.json"), {"state": state, "error": message or None})
    board.ended(job, state, message)


@app.task(name="prodseg.reference", bind=True, **RETRY)
def reference(self: Task, job: str) -> None:
    """Segment the reference, store its outputs, enqueue one match task per target."""
    from workers.job_steps import reference_step

    board = _board()
    if board.is_cancelled(job):
        return
    manifest = _manifest(job)
    try:
        reference_step(_store(), manifest, _pipeline_for(manifest))
    except RETRYABLE:
        raise
    except InputError as exc:
        log.warning("job %s failed: %s", job, exc)
        end_job(job, "failed", str(exc))
        return
    except Exception as exc:  # without a reference the job cannot go on
        log.exception("job %s: reference failed", job)
        end_job(job, "failed", f"reference: {type(exc).__name__}: {exc}")
        return
    board.started(job, len(manifest.images))
    if not manifest.images:
        finalize.apply_async((job,))
        return
    for index in range(len(manifest.images)):
        match.apply_async((job, index))


@app.task(name="prodseg.match", bind=True, **RETRY)
def match(self: Task, job: str, index: int) -> None:
    """Match one target image; the last one to finish enqueues finalisation."""
    from workers.job_steps import match_step

    board = _board()
    if board.is_cancelled(job):
        return
    manifest = _manifest(job)
    record = match_step(_store(), manifest, index, _pipeline_for(manifest), _embedding(job))
    image_id = manifest.images[index].image_id
    if board.target_finished(job, image_id, ok=record["entry"]["status"] == "ok"):
        finalize.apply_async((job,))


@app.task(name="prodseg.finalize", bind=True, **RETRY)
def finalize(self: Task, job: str) -> None:
    """Write coco.json, the gallery and results.json; the job is done."""
    from workers.job_steps import finalize_step

    if _board().is_cancelled(job):
        return
    finalize_step(_store(), _manifest(job))
    end_job(job, "done")
