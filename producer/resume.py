"""``prodseg resume``: enqueue again the first step of the job that storage says is not
done, for each unit (``workers.plan.step_list.first_pending``).

Storage is the source of truth. Redis's record of the job is rebuilt from it first, so
each view is counted once however often it runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from prodseg.errors import InputError
from prodseg.storage.base import ObjectStore
from prodseg.storage.manifest import JOBS_PREFIX, job_layout
from prodseg.tasks.leases import Leases
from prodseg.tasks.names import INTERACTIVE_QUEUE, STEP_TASKS, task_label, work_unit
from prodseg.tasks.progress import ProgressBoard

if TYPE_CHECKING:
    from celery import Celery


@dataclass(frozen=True)
class ResumeReport:
    """What ``resume_job`` found in storage and enqueued again.

    Attributes:
        job: the job id.
        total: target images.
        stored: targets whose view step is done (left alone).
        requeued: image ids of the targets enqueued again (all of them when the reference
            itself had to be redone, as its task enqueues every target).
        step: what was enqueued: ``"reference"``, ``"track"``, ``"targets"`` (the view
            step), ``"resolve"``, ``"finalize"``, or ``"nothing"`` for a complete job.
        in_flight: units of that step left alone because they are queued or held by a
            live lease (``tasks.leases``): enqueued again, they would run twice.
    """

    job: str
    total: int
    stored: int
    requeued: tuple[str, ...]
    step: str
    in_flight: int = 0


def resume_job(store: ObjectStore, board: ProgressBoard, app: Celery, job: str
               ) -> ResumeReport:
    """Enqueue the first step storage says is not done: for a job whose queued messages
    were lost (a broker restarted without its append-only file, a queue flushed) or whose
    targets failed on an outage. Safe to repeat, and safe while workers still run the
    job: work in flight may be done twice, with identical outputs and each target
    counted once.

    Raises:
        InputError: there is no such job.
    """
    from prodseg.workers.plan.step_list import StoredJob, first_pending

    if not store.exists(job_layout(job).key("job.json")):
        where = store.describe(JOBS_PREFIX.rstrip("/"))
        raise InputError(f"no job {job!r} in {where}")
    stored = StoredJob.load(store, job)
    images = stored.manifest.images
    total = len(images)
    pending = first_pending(stored)
    if pending is None:
        return ResumeReport(job, total, total, (), "nothing")
    step, views = pending
    finished = stored.finished_views()
    reference_done = step.name != "reference"
    board.restore(job, total, finished, reference_done)
    task = STEP_TASKS[step.name]
    leases = Leases(board.redis)
    if step.per == "view":
        from prodseg.tasks.app import publishing

        units = {k: work_unit(task, job, k) for k in views}
        busy = _busy(leases, app, list(units.values()))
        todo = [k for k in views if units[k] not in busy]
        with publishing(app) as producer:
            for index in todo:
                app.send_task(task, args=(job, index), producer=producer,
                              shadow=task_label(task, job, images[index].image_id))
        leases.queued([units[k] for k in todo])
        return ResumeReport(job, total, len(finished),
                            tuple(images[k].image_id for k in todo), "targets", len(busy))
    unit = work_unit(task, job)
    if _busy(leases, app, [unit]):
        return ResumeReport(job, total, len(finished), (), step.name, 1)
    if step.name == "reference":  # a person may be waiting for it
        app.send_task(task, args=(job,), queue=INTERACTIVE_QUEUE)
    else:
        app.send_task(task, args=(job,))
    leases.queued([unit])
    requeued = tuple(i.image_id for i in images if i.image_id not in finished)
    return ResumeReport(job, total, len(finished), requeued, step.name)


def _busy(leases: Leases, app: Celery, units: list[str]) -> set[str]:
    """Those of ``units`` queued with a message or held by a live lease: a unit marked
    queued whose message the broker lost (``tasks.lost_messages``) is not busy."""
    busy = leases.busy(units)
    if busy - leases.live(units):
        from prodseg.tasks.lost_messages import lost_units

        busy -= set(lost_units(leases, [queue.name for queue in app.conf.task_queues]))
    return busy
