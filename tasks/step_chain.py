"""What follows a step in a distributed job: the Celery executor's walk of the step list.

A step whose outputs storage holds is *finished* (``finish``): a view is counted on the
progress board, and the last view, or any once-per-job step, enqueues the step the plan
takes next (``advance``, by ``workers.plan.step_list.next_step``). The job ends with
finalize, or with a failure (``end_job``). Every step is finished this way, whether the
delivery that finds it done ran it or an earlier one did.
"""

from __future__ import annotations

from celery.utils.log import get_task_logger

from prodseg.tasks import worker_cache as cache
from prodseg.tasks.app import app, publishing
from prodseg.tasks.names import DONE, STEP_TASKS, task_label, work_unit

log = get_task_logger(__name__)


def end_job(job: str, state: str, message: str = "") -> None:
    """Record a job's end, once: in Redis, then in storage (``JobState.end``).

    Redis first: a job that fails because storage is unreachable must still end.
    """
    board = cache.board()
    if not board.claim_end(job):
        return
    board.ended(job, state, message)
    try:
        cache.manifest(job).state(cache.store()).put_end(state, message)
    except Exception:
        log.exception("job %s: could not store its end (%s)", job, state)


def step_done(job: str, step: str, index: int | None) -> bool:
    """Whether storage holds the step's outputs (``workers.plan.step_list``)."""
    from prodseg.workers.plan.step_list import StoredJob, step_named

    manifest = cache.manifest(job)
    image_id = "" if index is None else manifest.images[index].image_id
    return step_named(step).done(StoredJob.of(cache.store(), manifest), image_id)


def finish(job: str, step: str, index: int | None) -> None:
    """Account for a step that storage shows done, by this delivery or an earlier one, and
    enqueue what follows it."""
    if step == "view":
        from prodseg.storage.job_state import record_status
        from prodseg.workers.plan.step_list import StoredJob

        assert index is not None
        manifest = cache.manifest(job)
        image_id = manifest.images[index].image_id
        record = StoredJob.of(cache.store(), manifest).view_record(image_id)
        view_finished(job, image_id, ok=record is not None and record_status(record))
    elif step == "finalize":
        end_job(job, DONE)
    else:
        if step == "reference":
            cache.board().started(job, len(cache.manifest(job).images))
        advance(job, step)


def view_finished(job: str, image_id: str, ok: bool) -> None:
    """Count one view finished; the last one enqueues the step after the view step."""
    if cache.board().target_finished(job, image_id, ok=ok):
        advance(job, "view")


def advance(job: str, after: str) -> None:
    """Enqueue the step the job's plan takes after the step ``after``.

    The view step is enqueued for the views storage says are not done; those that are
    (tracked, prompted, or done before) are counted finished first, and with none left
    the step after it is enqueued at once.
    """
    from prodseg.workers.plan.step_list import StoredJob, next_step, pending_views

    step = next_step(cache.plan(job), after)
    if step is None:
        return
    leases = cache.leases()
    if step.per == "job":
        app.send_task(STEP_TASKS[step.name], args=(job,))
        leases.queued([work_unit(STEP_TASKS[step.name], job)])
        return
    stored = StoredJob.of(cache.store(), cache.manifest(job))
    pending = pending_views(stored, step)
    board = cache.board()
    for image_id, ok in sorted(stored.finished_views().items()):
        board.target_finished(job, image_id, ok=ok)
    if not pending:
        advance(job, step.name)
        return
    task = STEP_TASKS[step.name]
    images = stored.manifest.images
    with publishing(app) as producer:
        for index in pending:
            app.send_task(task, args=(job, index), producer=producer,
                          shadow=task_label(task, job, images[index].image_id))
    leases.queued([work_unit(task, job, index) for index in pending])
