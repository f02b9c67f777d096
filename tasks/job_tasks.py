"""The Celery executor of the step list (``workers.plan.step_list``): one task per step
(``tasks.names.STEP_TASKS``): reference; track; match (the view step, one task per
view); resolve; finalize. Thin: each runs its step (``workers.plan.steps``,
``ordered_steps``), then enqueues the next step the job's plan takes (``_advance``).

Arguments are job ids and indices only: images, masks and embeddings travel through
storage, never through the broker. The last view to finish starts the next step.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from typing import Any, TypeVar, cast

import redis
from celery import Task
from celery.signals import worker_ready
from celery.utils.log import get_task_logger

from prodseg.errors import (
    DeviceError,
    InputError,
    TransientError,
    as_device_error,
    recovery_hint,
)
from prodseg.jsonio import dumps
from prodseg.settings import JOB_SETTINGS, Settings, load_settings
from prodseg.storage.base import ObjectStore
from prodseg.storage.manifest import JobManifest
from prodseg.tasks.app import app, publishing
from prodseg.tasks.leases import Leases, gone_here, this_process
from prodseg.tasks.names import (
    DONE,
    FAILED,
    FINALIZE_TASK,
    MATCH_TASK,
    PREVIEW_TASK,
    PROPOSE_TASK,
    REFERENCE_TASK,
    RESOLVE_TASK,
    STEP_TASKS,
    TRACK_TASK,
    task_label,
    work_unit,
)
from prodseg.tasks.progress import ProgressBoard

# A task logger: in a worker its lines carry the task's name and id.
log = get_task_logger(__name__)

# Storage trouble, and the broker's Redis going away for a moment (a restart).
RETRYABLE: tuple[type[Exception], ...] = (
    TransientError, ConnectionError, TimeoutError,
    redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
)


@functools.lru_cache(maxsize=1)
def _settings() -> Settings:
    """The worker's settings (its environment), read once per process."""
    return load_settings()


def _retry_policy() -> dict[str, Any]:
    s = _settings()
    return {
        "autoretry_for": RETRYABLE,
        "dont_autoretry_for": (DeviceError,),  # the process is replaced instead (StepTask)
        "retry_backoff": 2,
        "retry_backoff_max": s.task_retry_backoff_max_s,
        "retry_jitter": True,
        "max_retries": s.task_retries,
    }


RETRY = _retry_policy()


@functools.lru_cache(maxsize=1)
def _store() -> ObjectStore:
    from prodseg.storage.s3 import S3Store

    return S3Store.from_settings(_settings())


@functools.lru_cache(maxsize=1)
def _board() -> ProgressBoard:
    return ProgressBoard.from_url(_settings().broker_url, _settings().outage_budget_s)


@functools.lru_cache(maxsize=1)
def _leases() -> Leases:
    return Leases(_board().redis, ttl_s=_settings().lease_ttl_s)


@functools.lru_cache(maxsize=8)
def _manifest(job: str) -> JobManifest:
    return JobManifest.load(_store(), job)


@functools.lru_cache(maxsize=2)
def _pipeline(settings_json: str) -> Any:
    """One pipeline (and so one set of models) per distinct job settings, kept."""
    from prodseg.workers.plan.pipeline import ProductSegmentationPipeline

    return ProductSegmentationPipeline(load_settings(**json.loads(settings_json)))


def _pipeline_for(manifest: JobManifest) -> Any:
    """The pipeline of the job's settings on top of this machine's own: only job settings
    are taken from the manifest (one written by an older client may carry others)."""
    carried = {k: v for k, v in manifest.settings.items() if k in JOB_SETTINGS}
    return _pipeline(dumps(carried, sort_keys=True))


@functools.lru_cache(maxsize=8)
def _plan(job: str) -> Any:
    """The job's plan (``JobPlan``): which steps follow which."""
    from prodseg.workers.plan.job_plan import JobPlan

    return JobPlan.of_manifest(_manifest(job).settings)


@functools.lru_cache(maxsize=8)
def _fixed_bank(job: str) -> Any:
    """The reference embedding and the job's lookalikes (``load_fixed_bank``); kept per job."""
    from prodseg.workers.plan.steps import load_fixed_bank

    return load_fixed_bank(_store(), _manifest(job), _plan(job))


@functools.lru_cache(maxsize=8)
def _shape(job: str) -> Any:
    from prodseg.workers.plan.steps import load_reference_shape

    return load_reference_shape(_store(), _manifest(job))


def end_job(job: str, state: str, message: str = "") -> None:
    """Record a job's end, once: in Redis, then in storage (``JobState.end``).

    Redis first: a job that fails because storage is unreachable must still end.
    """
    board = _board()
    if not board.claim_end(job):
        return
    board.ended(job, state, message)
    try:
        _manifest(job).state(_store()).put_end(state, message)
    except Exception:
        log.exception("job %s: could not store its end (%s)", job, state)


def _gave_up(task: str, exc: BaseException, retries: int, job: str) -> str:
    """Why a step ended without its outputs, and what can be done about it."""
    if isinstance(exc, InputError):
        return f"{task}: {exc}{recovery_hint(exc, job)}"
    return (f"{task} gave up after {retries} retries: {type(exc).__name__}: {exc}"
            f"{recovery_hint(exc, job)}")


DEVICE_EXIT = 75
"""The exit status of a worker process whose device failed (``EX_TEMPFAIL``)."""


STEP_OF_TASK = {task: step for step, task in STEP_TASKS.items()}


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
    """A step's body, run at most once at a time and not again once done.

    Before running, a delivery asks storage whether its step is done (an earlier
    delivery finished it); if so it only accounts for it (``_finish``). Otherwise it takes
    the unit's lease (``tasks.leases``) and renews it while the step runs; a delivery that
    finds the lease held by a live worker looks again a lease's life later. A worker that
    is lost stops renewing, and another worker's check enqueues the unit again. All of
    this runs inside the task's retries, so a storage or broker outage met here is retried
    like one met in the step.
    """

    @functools.wraps(body)
    def run(self: Task, job: str, *rest: Any) -> None:
        step = STEP_OF_TASK[self.name]
        index = int(rest[0]) if rest else None
        leases, unit = _leases(), work_unit(self.name, job, index)
        if not _board().is_cancelled(job) and _step_done(job, step, index):
            leases.not_queued(unit)
            _finish(job, step, index)
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


def _step_done(job: str, step: str, index: int | None) -> bool:
    """Whether storage holds the step's outputs (``workers.plan.step_list``)."""
    from prodseg.workers.plan.step_list import StoredJob, step_named

    image_id = "" if index is None else _manifest(job).images[index].image_id
    return step_named(step).done(StoredJob.of(_store(), _manifest(job)), image_id)


def _finish(job: str, step: str, index: int | None) -> None:
    """Account for a step that storage shows done, by this delivery or an earlier one, and
    enqueue what follows it."""
    if step == "view":
        from prodseg.storage.job_state import record_status
        from prodseg.workers.plan.step_list import StoredJob

        assert index is not None
        image_id = _manifest(job).images[index].image_id
        record = StoredJob.of(_store(), _manifest(job)).view_record(image_id)
        ok = record is not None and record_status(record)
        if _board().target_finished(job, image_id, ok=ok):
            _after_views(job)
    elif step == "finalize":
        end_job(job, DONE)
    else:
        if step == "reference":
            _board().started(job, len(_manifest(job).images))
        _advance(job, step)


class MatchTask(StepTask):
    """``prodseg.match``: a target whose retries run out is accounted for, not dropped."""

    def on_failure(self, exc: Exception, task_id: str, args: tuple[Any, ...],
                   kwargs: dict[str, Any], einfo: Any) -> None:
        job, index = args
        _leases().not_queued(work_unit(self.name, job, index))
        try:
            image_id = _manifest(job).images[index].image_id
        except Exception as lost:
            log.exception("job %s: target %s failed and cannot be recorded%s", job, index,
                          recovery_hint(lost, job))
            return
        board = _board()
        board.note_unstored(job, image_id,
                            _gave_up("matching", exc, self.request.retries, job))
        if board.target_finished(job, image_id, ok=False):
            _after_views(job)


def _after_views(job: str) -> None:
    """Every view is done: enqueue the step after the view step."""
    _advance(job, "view")


def _advance(job: str, after: str) -> None:
    """Enqueue the step the job's plan takes after the step ``after``.

    The view step is enqueued for the views storage says are not done; those that are
    (tracked, prompted, or done before) are counted finished first, and with none left
    the step after it is enqueued at once.
    """
    from prodseg.workers.plan.step_list import StoredJob, next_step, pending_views

    step = next_step(_plan(job), after)
    if step is None:
        return
    if step.per == "job":
        app.send_task(STEP_TASKS[step.name], args=(job,))
        _leases().queued([work_unit(STEP_TASKS[step.name], job)])
        return
    stored = StoredJob.of(_store(), _manifest(job))
    pending = pending_views(stored, step)
    board = _board()
    for image_id, ok in sorted(stored.finished_views().items()):
        board.target_finished(job, image_id, ok=ok)
    if not pending:
        _advance(job, step.name)
        return
    task = STEP_TASKS[step.name]
    images = stored.manifest.images
    with publishing(app) as producer:
        for index in pending:
            app.send_task(task, args=(job, index), producer=producer,
                          shadow=task_label(task, job, images[index].image_id))
    _leases().queued([work_unit(task, job, index) for index in pending])


class JobEndTask(StepTask):
    """The once-per-job steps (reference, track, resolve, finalize): out of retries, the
    job fails."""

    def on_failure(self, exc: Exception, task_id: str, args: tuple[Any, ...],
                   kwargs: dict[str, Any], einfo: Any) -> None:
        job = args[0]
        _leases().not_queued(work_unit(self.name, job))
        step = self.name.rsplit(".", 1)[-1]
        end_job(job, FAILED, _gave_up(step, exc, self.request.retries, job))


@app.task(name=REFERENCE_TASK, bind=True, base=JobEndTask, **RETRY)
@leased
def reference(self: Task, job: str) -> None:
    """Segment the reference, store its outputs, enqueue one match task per target."""
    from prodseg.workers.plan.steps import reference_step

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
        end_job(job, FAILED, str(exc))
        return
    except Exception as exc:  # without a reference the job cannot go on
        if as_device_error(exc) is not None:
            raise  # not the job's failure: StepTask replaces the process
        log.exception("job %s: reference failed", job)
        end_job(job, FAILED, f"reference: {type(exc).__name__}: {exc}")
        return
    board.started(job, len(manifest.images))
    _advance(job, "reference")


@app.task(name=TRACK_TASK, bind=True, base=JobEndTask, **RETRY)
@leased
def track(self: Task, job: str) -> None:
    """Track the spin (sequential: one task per job); tracked views are done, the others
    go to match tasks."""
    from prodseg.workers.plan.ordered_steps import track_step

    board = _board()
    if board.is_cancelled(job):
        return
    manifest = _manifest(job)
    track_step(_store(), manifest, _pipeline_for(manifest))
    _advance(job, "track")


@app.task(name=MATCH_TASK, bind=True, base=MatchTask, **RETRY)
@leased
def match(self: Task, job: str, index: int) -> None:
    """Match one target image; the last one to finish enqueues finalisation.

    A target delivered ``task_max_deliveries`` times without finishing (each time its
    worker died) is recorded as failed instead of being tried again.
    """
    from prodseg.workers.plan.steps import match_step, record_failure

    board = _board()
    if board.is_cancelled(job):
        return
    manifest = _manifest(job)
    target = manifest.images[index]
    limit = _settings().task_max_deliveries
    pipeline = _pipeline_for(manifest)
    if board.delivered(job, f"{target.image_id}#{self.request.retries}") > limit:
        record = record_failure(
            _store(), manifest, index, f"{target.source}: delivered {limit} times and never "
            "finished: processing it kills or stalls its worker (out of memory?); not tried "
            "again", pipeline.settings)
    else:
        record = match_step(_store(), manifest, index, pipeline, _fixed_bank(job), _shape(job))
    if board.target_finished(job, target.image_id, ok=record["status"] == "ok"):
        _after_views(job)


@app.task(name=RESOLVE_TASK, bind=True, base=JobEndTask, **RETRY)
@leased
def resolve(self: Task, job: str) -> None:
    """Grow the bank over the stored candidates in capture order, write the views'
    outputs, then finish. Runs no model."""
    from prodseg.workers.plan.ordered_steps import resolve_step

    board = _board()
    if board.is_cancelled(job):
        return
    manifest = _manifest(job)
    resolve_step(_store(), manifest, _pipeline_for(manifest), board.unstored(job))
    _advance(job, "resolve")


@app.task(name=FINALIZE_TASK, bind=True, base=JobEndTask, **RETRY)
@leased
def finalize(self: Task, job: str) -> None:
    """Write coco.json, the gallery and results.json; the job is done."""
    from prodseg.workers.plan.steps import finalize_step

    board = _board()
    if board.is_cancelled(job):
        return
    manifest = _manifest(job)
    finalize_step(_store(), manifest, _pipeline_for(manifest).settings, board.unstored(job))
    end_job(job, DONE)


@worker_ready.connect
def _check_leases(sender: Any = None, **_: Any) -> None:
    """Every worker's main process gives the work of lapsed leases to the workers
    (``tasks.lease_checker``), as often as a lease is renewed."""
    from prodseg.tasks.lease_checker import start

    leases = _leases()
    start(app, leases, every_s=leases.ttl_s / 3)


@app.task(name=PREVIEW_TASK, ignore_result=True)
def preview(session: str, n: int, image_key: str, prompt: dict[str, Any],
            settings: dict[str, Any]) -> None:
    """The mask for one click of an interactive selection (``prodseg select --submit``).

    Not retried: the person clicks again. Every outcome, an error included, is replied
    so that the selector never waits in vain.
    """
    from prodseg.tasks.previews import check_session, send_reply
    from prodseg.workers.plan.preview import preview_step

    reply: dict[str, Any] = {"n": n}
    try:
        s = _settings()
        mask_key = f"previews/{check_session(session)}/masks/{int(n)}.png"
        segmenter = _pipeline(dumps(settings, sort_keys=True)).segmenter
        reply.update(preview_step(_store(), segmenter, image_key, prompt, mask_key,
                                  s.max_image_pixels))
    except (InputError, ValueError) as exc:
        reply["error"] = str(exc)
    except Exception as exc:
        log.exception("preview %s/%s failed", session, n)
        reply["error"] = f"{type(exc).__name__}: {exc}"
    send_reply(_board().redis, session, reply)


@app.task(name=PROPOSE_TASK, ignore_result=True)
def propose(session: str, n: int, image_keys: list[str], settings: dict[str, Any]) -> None:
    """A product's proposed reference and prompt (``prodseg catalog prepare``), replied
    as previews are: ``{"n", "proposal": ProposedPrompt.to_json()}`` or ``{"n", "error"}``.
    """
    from prodseg.storage.manifest import InputImage
    from prodseg.tasks.previews import check_session, send_reply
    from prodseg.workers.plan.propose import propose_stored
    from prodseg.workers.plan.steps import read_input

    reply: dict[str, Any] = {"n": n}
    try:
        check_session(session)
        s, store = _settings(), _store()
        pipeline = _pipeline(dumps(settings, sort_keys=True))
        reply["proposal"] = propose_stored(
            pipeline, image_keys, lambda key: read_input(store, InputImage(key, key, key), s))
    except (InputError, ValueError) as exc:
        reply["error"] = str(exc)
    except Exception as exc:
        log.exception("propose %s/%s failed", session, n)
        reply["error"] = f"{type(exc).__name__}: {exc}"
    send_reply(_board().redis, session, reply)
