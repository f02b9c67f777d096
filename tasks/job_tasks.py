"""The Celery executor of the step list (``workers.plan.step_list``): one task per step
(``tasks.names.STEP_TASKS``): reference; track; match (the view step, one task per
view); resolve; finalize.

Thin: each task runs its step (``workers.plan.steps``, ``ordered_steps``) under
``step_task.leased`` (once at a time, not again once done, not for a cancelled job),
then enqueues what the plan takes next (``step_chain.advance``). Arguments are job ids
and indices only: images, masks and embeddings travel through storage, never through
the broker. The last view to finish starts the next step.
"""

from __future__ import annotations

from typing import Any

from celery import Task
from celery.signals import worker_ready
from celery.utils.log import get_task_logger

from prodseg.errors import InputError, as_device_error
from prodseg.tasks import worker_cache as cache
from prodseg.tasks.app import app
from prodseg.tasks.names import (
    DONE,
    FAILED,
    FINALIZE_TASK,
    MATCH_TASK,
    REFERENCE_TASK,
    RESOLVE_TASK,
    TRACK_TASK,
)
from prodseg.tasks.step_chain import advance, end_job, view_finished
from prodseg.tasks.step_task import JobEndTask, MatchTask, leased
from prodseg.tasks.worker_cache import RETRY, RETRYABLE

# A task logger: in a worker its lines carry the task's name and id.
log = get_task_logger(__name__)


@app.task(name=REFERENCE_TASK, bind=True, base=JobEndTask, **RETRY)
@leased
def reference(self: Task, job: str) -> None:
    """Segment the reference, store its outputs, enqueue what follows."""
    from prodseg.workers.plan.steps import reference_step

    manifest = cache.manifest(job)
    try:
        reference_step(cache.store(), manifest, cache.pipeline_for(manifest))
    except RETRYABLE:
        raise
    except InputError as exc:
        log.warning("job %s failed: %s", job, exc)
        end_job(job, FAILED, str(exc))
        return
    except Exception as exc:  # without a reference the job cannot go on
        if as_device_error(exc) is not None:
            raise  # not the job's failure: StepTask replaces the process
        log.exception("job %s: reference failed", job)
        end_job(job, FAILED, f"reference: {type(exc).__name__}: {exc}")
        return
    cache.board().started(job, len(manifest.images))
    advance(job, "reference")


@app.task(name=TRACK_TASK, bind=True, base=JobEndTask, **RETRY)
@leased
def track(self: Task, job: str) -> None:
    """Track the spin (sequential: one task per job); tracked views are done, the others
    go to match tasks."""
    from prodseg.workers.plan.ordered_steps import track_step

    manifest = cache.manifest(job)
    track_step(cache.store(), manifest, cache.pipeline_for(manifest))
    advance(job, "track")


@app.task(name=MATCH_TASK, bind=True, base=MatchTask, **RETRY)
@leased
def match(self: Task, job: str, index: int) -> None:
    """Match one target image; the last one to finish enqueues the next step.

    A target delivered ``task_max_deliveries`` times without finishing (each time its
    worker died) is recorded as failed instead of being tried again.
    """
    from prodseg.workers.plan.steps import match_step, record_failure

    manifest = cache.manifest(job)
    target = manifest.images[index]
    limit = cache.settings().task_max_deliveries
    pipeline = cache.pipeline_for(manifest)
    if cache.board().delivered(job, f"{target.image_id}#{self.request.retries}") > limit:
        record = record_failure(
            cache.store(), manifest, index, f"{target.source}: delivered {limit} times and "
            "never finished: processing it kills or stalls its worker (out of memory?); not "
            "tried again", pipeline.settings)
    else:
        record = match_step(cache.store(), manifest, index, pipeline, cache.fixed_bank(job),
                            cache.shape(job))
    view_finished(job, target.image_id, ok=record["status"] == "ok")


@app.task(name=RESOLVE_TASK, bind=True, base=JobEndTask, **RETRY)
@leased
def resolve(self: Task, job: str) -> None:
    """Grow the bank over the stored candidates in capture order, write the views'
    outputs, then finish. Runs no model."""
    from prodseg.workers.plan.ordered_steps import resolve_step

    manifest = cache.manifest(job)
    resolve_step(cache.store(), manifest, cache.pipeline_for(manifest),
                 cache.board().unstored(job))
    advance(job, "resolve")


@app.task(name=FINALIZE_TASK, bind=True, base=JobEndTask, **RETRY)
@leased
def finalize(self: Task, job: str) -> None:
    """Write coco.json, the gallery and results.json; the job is done."""
    from prodseg.workers.plan.steps import finalize_step

    manifest = cache.manifest(job)
    finalize_step(cache.store(), manifest, cache.pipeline_for(manifest).settings,
                  cache.board().unstored(job))
    end_job(job, DONE)


@worker_ready.connect
def _check_leases(sender: Any = None, **_: Any) -> None:
    """Every worker's main process gives the work of lapsed leases to the workers
    (``tasks.lease_checker``), as often as a lease is renewed."""
    from prodseg.tasks.lease_checker import start

    leases = cache.leases()
    start(app, leases, every_s=leases.ttl_s / 3)
