"""``prodseg resume``: enqueue again the first step of the job plan that storage lacks.

Storage is the source of truth: the reference's record, the track's, each view's result
(or candidates, when the bank grows) and the job's end. Redis's record of the job is
rebuilt from them first, so each view is counted once however often it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prodseg.errors import InputError
from prodseg.storage.base import ObjectNotFound, ObjectStore
from prodseg.storage.manifest import JOBS_PREFIX, JobManifest, get_json, job_layout, state_key
from prodseg.tasks.names import (
    FINALIZE_TASK,
    INTERACTIVE_QUEUE,
    MATCH_TASK,
    REFERENCE_TASK,
    RESOLVE_TASK,
    TRACK_TASK,
    task_label,
)

if TYPE_CHECKING:
    from prodseg.producer.client import JobClient


@dataclass(frozen=True)
class ResumeReport:
    """What ``resume_job`` found in storage and enqueued again.

    Attributes:
        job: the job id.
        total: target images.
        stored: targets whose results are in storage (left alone).
        requeued: image ids of the targets enqueued again (all of them when the reference
            itself had to be redone, as its task enqueues every target).
        step: what was enqueued: ``"reference"``, ``"track"``, ``"targets"``,
            ``"resolve"``, ``"finalize"``, or ``"nothing"`` for a job that is complete.
    """

    job: str
    total: int
    stored: int
    requeued: tuple[str, ...]
    step: str



def resume_job(client: JobClient, job: str) -> ResumeReport:
    """Enqueue again whatever storage says is missing; storage is the source of truth.

    For a job whose queued messages were lost (a broker restarted without its
    append-only file, a queue flushed) or whose targets failed on an outage, the first
    step of the job plan whose outputs storage lacks: the reference; the track (when
    the spin is tracked); a match task for each view without a stored result (or
    candidates, when the bank grows); the resolve step; else finalisation. Redis's
    record of the job is rebuilt from storage first. Safe to repeat, and safe while
    workers still run the job: work in flight may be done twice, with identical
    outputs and each target counted once.

    Raises:
        InputError: there is no such job.
    """
    from prodseg.storage.manifest import candidates_key, image_state_key
    from prodseg.workers.plan.job_plan import JobPlan

    layout = job_layout(job)
    if not client.store.exists(layout.key("job.json")):
        where = client.store.describe(JOBS_PREFIX.rstrip("/"))
        raise InputError(f"no job {job!r} in {where}")
    manifest = JobManifest.load(client.store, job)
    plan = JobPlan.of_manifest(manifest.settings)
    total = len(manifest.images)
    results = _stored_status(client.store, manifest, lambda i: image_state_key(job, i))
    tracked = _tracked(client.store, job) if plan.tracks else set()
    finished = dict(results)
    if plan.grows_bank:  # an untracked view is done once its candidates are stored
        finished = {i: ok for i, ok in results.items() if i in (tracked or set())}
        finished |= _stored_status(client.store, manifest, lambda i: candidates_key(job, i, "json"))
    reference_done = client.store.exists(state_key(job, "reference.json"))
    if reference_done and len(results) == total and client.completed(job):
        return ResumeReport(job, total, total, (), "nothing")
    client.board.restore(job, total, finished, reference_done)
    if not reference_done:
        client.app.send_task(REFERENCE_TASK, args=(job,), queue=INTERACTIVE_QUEUE)
        ids = tuple(i.image_id for i in manifest.images)
        return ResumeReport(job, total, len(finished), ids, "reference")
    if tracked is None:
        client.app.send_task(TRACK_TASK, args=(job,))
        ids = tuple(i.image_id for i in manifest.images if i.image_id not in results)
        return ResumeReport(job, total, len(results), ids, "track")
    missing = [(k, i.image_id) for k, i in enumerate(manifest.images)
               if i.image_id not in finished]
    if not missing:
        step = RESOLVE_TASK if plan.grows_bank and len(results) < total else FINALIZE_TASK
        client.app.send_task(step, args=(job,))
        return ResumeReport(job, total, total, (), step.rsplit(".", 1)[-1])
    from prodseg.tasks.app import publishing

    with publishing(client.app) as producer:
        for index, image_id in missing:
            client.app.send_task(MATCH_TASK, args=(job, index), producer=producer,
                                 shadow=task_label(MATCH_TASK, job, image_id))
    return ResumeReport(job, total, len(finished), tuple(i for _, i in missing), "targets")


def _stored_status(store: ObjectStore, manifest: JobManifest,
                   record_key: Callable[[str], str]) -> dict[str, bool]:
    """image id -> ok, for the views whose record (at ``record_key(image id)``) is
    stored."""
    found: dict[str, bool] = {}
    for image in manifest.images:
        try:
            record = get_json(store, record_key(image.image_id))
        except ObjectNotFound:
            continue
        status = record.get("status") or record["entry"]["status"]  # records of 0.1.0
        found[image.image_id] = status == "ok"
    return found


def _tracked(store: ObjectStore, job: str) -> set[str] | None:
    """The views the track step finished, or None when it has not run."""
    try:
        return set(get_json(store, state_key(job, "tracking.json"))["tracked"])
    except ObjectNotFound:
        return None
