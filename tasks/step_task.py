"""How one delivery of a step's task runs: at most once at a time, never again once
done, retried through outages, and never blamed for a failing device.

``leased`` wraps every step's body; ``MatchTask`` and ``JobEndTask`` say what a step
whose retries run out leaves behind (a failed view, or a failed job).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar, cast

from celery import Task
from celery.utils.log import get_task_logger

from prodseg.errors import InputError, as_device_error, recovery_hint
from prodseg.tasks import worker_cache as cache
from prodseg.tasks.leases import gone_here, this_process
from prodseg.tasks.names import FAILED, STEP_TASKS, work_unit
from prodseg.tasks.step_chain import end_job, finish, step_done, view_finished

log = get_task_logger(__name__)

DEVICE_EXIT = 75
"""The exit status of a worker process whose device failed (``EX_TEMPFAIL``)."""

STEP_OF_TASK = {task: step for step, task in STEP_TASKS.items()}


def gave_up(task: str, exc: BaseException, retries: int, job: str) -> str:
    """Why a step ended without its outputs, and what can be done about it."""
    if isinstance(exc, InputError):
        return f"{task}: {exc}{recovery_hint(exc, job)}"
    return (f"{task} gave up after {retries} retries: {type(exc).__name__}: {exc}"
            f"{recovery_hint(exc, job)}")


class StepTask(Task):
    """A step's task (its body runs under ``leased``).

    A failure of the device (``prodseg.errors.as_device_error``: out of memory, a lost
    context) is never the photo's: the process exits at once, so the pool starts a fresh
    one with a fresh device context, and the step is delivered and taken again.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except Exception as exc:
            device = as_device_error(exc)
            if device is None:
                raise
            log.error("%s%s: %s; this worker process exits and the task goes back to the "
                      "queue", self.name, list(args), device)
            os._exit(DEVICE_EXIT)


StepBody = TypeVar("StepBody", bound=Callable[..., None])


def leased(body: StepBody) -> StepBody:
    """A step's body, run at most once at a time, not again once done, not for a
    cancelled job.

    Before running, a delivery asks storage whether its step is done (an earlier
    delivery finished it); if so it only accounts for it (``step_chain.finish``).
    Otherwise it takes the unit's lease (``tasks.leases``) and renews it while the step
    runs; a delivery that finds the lease held by a live worker looks again a lease's life
    later. A worker that is lost stops renewing, and another worker's check enqueues the
    unit again. All of this runs inside the task's retries, so a storage or broker outage
    met here is retried like one met in the step.
    """

    @functools.wraps(body)
    def run(self: Task, job: str, *rest: Any) -> None:
        step = STEP_OF_TASK[self.name]
        index = int(rest[0]) if rest else None
        leases, unit = cache.leases(), work_unit(self.name, job, index)
        if cache.board().is_cancelled(job):
            leases.not_queued(unit)
            return
        if step_done(job, step, index):
            leases.not_queued(unit)
            finish(job, step, index)
            return
        args = [job, *rest]
        lease = leases.take(unit, this_process(), self.name, args)
        if lease is None and gone_here(holder := leases.holder(unit)):
            # the pool process that held it was killed; the pool hands its message back
            lease = leases.take(unit, this_process(), self.name, args, gone=holder)
        if lease is None:  # another worker runs it now: look again once it could lapse
            raise self.retry(countdown=leases.ttl_s, max_retries=None)
        with leases.held(lease):
            body(self, job, *rest)

    return cast(StepBody, run)


class MatchTask(StepTask):
    """``prodseg.match``: a target whose retries run out is accounted for, not dropped."""

    def on_failure(self, exc: Exception, task_id: str, args: tuple[Any, ...],
                   kwargs: dict[str, Any], einfo: Any) -> None:
        job, index = args
        cache.leases().not_queued(work_unit(self.name, job, index))
        try:
            image_id = cache.manifest(job).images[index].image_id
        except Exception as lost:
            log.exception("job %s: target %s failed and cannot be recorded%s", job, index,
                          recovery_hint(lost, job))
            return
        cache.board().note_unstored(job, image_id,
                                    gave_up("matching", exc, self.request.retries, job))
        view_finished(job, image_id, ok=False)


class JobEndTask(StepTask):
    """The once-per-job steps (reference, track, resolve, finalize): out of retries, the
    job fails."""

    def on_failure(self, exc: Exception, task_id: str, args: tuple[Any, ...],
                   kwargs: dict[str, Any], einfo: Any) -> None:
        job = args[0]
        cache.leases().not_queued(work_unit(self.name, job))
        step = self.name.rsplit(".", 1)[-1]
        end_job(job, FAILED, gave_up(step, exc, self.request.retries, job))
