"""The distributed mode from the user's side: submit, status, watch, fetch, cancel.

Imports without torch: a catalog client on a laptop needs only Redis and S3 access.

    client = JobClient(load_settings())
    job = client.submit(["a.jpg", "b.jpg"], "a.jpg", Prompt.from_point(250, 300))
    client.watch(job)               # until it ends
    client.fetch(job, "results/")   # the layout of `prodseg run`
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import redis

from prodseg.errors import InputError, TransientError
from prodseg.job_spec import ViewPrompts, build_job_spec
from prodseg.outages import Backoff, ride_out
from prodseg.producer.inputs import (
    expand_inputs,
    input_identity,
    is_s3,
    place_input,
    place_video,
    read_input_bytes,
    video_job_inputs,
)
from prodseg.prompts import Prompt
from prodseg.settings import Settings
from prodseg.storage.base import ObjectStore
from prodseg.storage.exports.coco import relocated_coco
from prodseg.storage.images import decode_image
from prodseg.storage.layout import COCO, RESULTS
from prodseg.storage.manifest import (
    JOBS_PREFIX,
    JobManifest,
    get_json,
    is_output_key,
    job_layout,
    job_state,
)
from prodseg.tasks.leases import Leases
from prodseg.tasks.names import (
    CANCELLED,
    DONE,
    INTERACTIVE_QUEUE,
    QUEUED,
    REFERENCE_TASK,
    work_unit,
)
from prodseg.tasks.progress import JobStatus, ProgressBoard

if TYPE_CHECKING:
    from celery import Celery

    from prodseg.producer.resume import ResumeReport

T = TypeVar("T")


class JobClient:
    """Submit jobs to the workers and follow them.

    Args:
        settings: broker URL, S3 endpoint and bucket, and the job settings to send.
        store: the shared store (S3 from the settings by default).
        board: the progress board (Redis from the settings by default).
    """

    def __init__(
        self,
        settings: Settings,
        store: ObjectStore | None = None,
        board: ProgressBoard | None = None,
    ) -> None:
        self.settings = settings
        if store is None:
            from prodseg.storage.s3 import S3Store

            store = S3Store.from_settings(settings)
        self.store = store
        self.board = board or ProgressBoard.from_url(settings.broker_url)
        self._app: Celery | None = None

    @property
    def app(self) -> Celery:
        """The Celery app, made on first use."""
        if self._app is None:
            from prodseg.tasks.app import make_app

            self._app = make_app(self.settings)
        return self._app

    # -- submit -----------------------------------------------------------------------------

    def submit(
        self,
        images: Sequence[str | os.PathLike[str]],
        reference: str | os.PathLike[str],
        prompt: Prompt | None,
        on_upload: Callable[[str], None] | None = None,
        job: str | None = None,
        settings: Settings | None = None,
        distractor_points: Sequence[tuple[float, float]] = (),
        views: ViewPrompts | None = None,
    ) -> str:
        """Upload local images, write the manifest, enqueue the reference task.

        Args:
            images: local files or ``s3://bucket/prefix`` URLs (a prefix means every image
                under it); the reference may be among them.
            reference: a local file or an ``s3://bucket/key`` URL.
            prompt: the click(s) or box on the reference, in its pixels; None to have the
                reference step propose it (``--ref-point auto``).
            on_upload: called with each source after it is uploaded (progress).
            job: the job id (a new unique one by default).
            settings: this job's settings (the client's by default).
            distractor_points: clicks on lookalikes on the reference ("not this"), in its
                pixels; every view is then scored against the product minus them.
            views: prompts on other views (more references), views that are not the
                product and lookalikes on views, keyed by an image's path, file name or
                id (``workers.plan.view_prompts``).

        Returns:
            The job id.

        Raises:
            InputError: no images, a missing local file, an unreadable reference or a bad
                prompt, before anything is enqueued.
        """
        job = self.prepare(images, reference, prompt, on_upload, job, settings,
                           distractor_points, views)
        self.enqueue(job)
        return job

    def prepare(
        self,
        images: Sequence[str | os.PathLike[str]],
        reference: str | os.PathLike[str],
        prompt: Prompt | None,
        on_upload: Callable[[str], None] | None = None,
        job: str | None = None,
        settings: Settings | None = None,
        distractor_points: Sequence[tuple[float, float]] = (),
        views: ViewPrompts | None = None,
    ) -> str:
        """Everything ``submit`` does but enqueueing: check, upload, write the manifest.

        Safe to call from several threads at once (a catalog prepares products in
        parallel); ``enqueue`` then starts the job.
        """
        from prodseg.settings import recorded
        from prodseg.storage.manifest import new_job_id, validate_job_id

        settings = settings or self.settings
        limit = settings.max_image_pixels
        sources = expand_inputs(images, self.settings)
        video = video_job_inputs(sources, str(reference), settings, self.settings)
        if video is not None:  # its frames stand for it; it is uploaded once, below
            sources, reference = video.images, video.reference
        spec = build_job_spec(
            sources, str(reference), prompt,
            identity=input_identity,
            decode=video.read if video is not None else (
                lambda source: decode_image(read_input_bytes(source, self.settings),
                                            source, limit)),
            distractors=distractor_points, views=views,
            exists=None if video is not None else (
                lambda source: is_s3(source) or Path(source).is_file()))
        job = validate_job_id(job) if job is not None else new_job_id()
        named = list(zip(spec.ids, [spec.reference, *spec.targets], strict=True))
        if video is not None:
            entries = place_video(self.store, job, video.capture, named, settings)
            if on_upload is not None:
                on_upload(video.capture.source)
        else:
            entries = []
            for image_id, source in named:
                entries.append(place_input(self.store, job, image_id, source, settings))
                if on_upload is not None:
                    on_upload(source)
        manifest = JobManifest(
            job=job, reference=entries[0], images=entries[1:],
            prompt=None if spec.prompt is None else spec.prompt.to_json(),
            settings=recorded(settings), distractors=[list(p) for p in spec.distractors],
            views=spec.views.to_json() if not spec.views.empty else {},
            video=video.capture.to_json() if video is not None else {},
        )
        manifest.save(self.store)
        return job

    def enqueue(self, job: str) -> None:
        """Start a prepared job: its reference task goes to the ``interactive`` queue."""
        self.board.queued(job)
        self.app.send_task(REFERENCE_TASK, args=(job,), queue=INTERACTIVE_QUEUE)
        Leases(self.board.redis).queued([work_unit(REFERENCE_TASK, job)])

    # -- follow -----------------------------------------------------------------------------

    def status(self, job: str) -> JobStatus:
        """The job's state: Redis while it runs, storage once Redis has forgotten it.

        Raises:
            InputError: there is no such job.
        """
        progress = self.board.read(job)
        if progress.state != "unknown":
            return progress
        layout = job_layout(job)
        end = job_state(self.store, job).end()
        if end is None:
            if not self.store.exists(layout.key("job.json")):
                where = self.store.describe(JOBS_PREFIX.rstrip("/"))
                raise InputError(f"no job {job!r} in {where}")
            return JobStatus(job, QUEUED, 0, 0, 0)
        manifest = JobManifest.load(self.store, job)
        failed = 0
        if end["state"] == DONE:
            doc = get_json(self.store, layout.results)
            failed = int(doc["summary"]["error"])
        total = len(manifest.images)
        return JobStatus(job, end["state"], total, total if end["state"] == DONE else 0,
                         failed, end.get("error") or "")

    def watch(
        self,
        job: str,
        on_change: Callable[[JobStatus], None] | None = None,
        interval: float = 0.5,
        timeout: float | None = None,
        on_outage: Callable[[str], None] | None = None,
    ) -> JobStatus:
        """Poll until the job ends; ``on_change`` sees every new status.

        A broker or store that stops answering is waited for, backing off, for the
        ``outage_budget_s`` setting; the job itself goes on meanwhile.

        Args:
            on_outage: told, in words, each time the watch waits for the broker or store.

        Raises:
            TimeoutError: ``timeout`` seconds passed first.
            TransientError: the broker or store stayed away for the whole budget.
        """
        budget = self.settings.outage_budget_s

        def waiting(error: BaseException, down_s: float, wait_s: float) -> None:
            if on_outage is not None:
                on_outage(f"waiting for the broker and the store: {_outage_reason(error)} "
                          f"(down {down_s:.0f} s of the {budget} s budget)")

        def read() -> JobStatus:
            try:
                return ride_out(lambda: self.status(job), Backoff(budget), OUTAGES, waiting)
            except OUTAGES as error:
                raise TransientError(
                    f"gave up watching job {job} after {budget} s without an answer "
                    f"({_outage_reason(error)}); the job goes on by itself: run `prodseg "
                    f"watch {job}` again once the broker is back") from None

        return poll(read, lambda s: s.ended, on_change, interval, timeout, f"job {job}")

    def fetch(self, job: str, output_dir: str | os.PathLike[str],
              on_file: Callable[[str], None] | None = None, force: bool = False) -> list[Path]:
        """Download a finished job into ``output_dir``, in the layout of ``prodseg run``.

        The directory is held by the rule of ``storage.output_dir`` (locked, earlier
        outputs removed first, nothing through links that leave it) and ``results.json``
        is written last.

        Args:
            job: the job id.
            output_dir: where to write.
            on_file: called with each relative key written (progress).
            force: write into a directory that holds other files too.

        Raises:
            InputError: the job has not finished (or failed, or was cancelled), or the
                output directory cannot be used.
        """
        status = self.status(job)
        if status.state != DONE:
            detail = f": {status.message}" if status.message else ""
            raise InputError(
                f"job {job} is {status.state} ({status.finished}/{status.total} images)"
                f"{detail}; fetch needs a finished job"
            )
        from prodseg.storage.output_dir import OutputDir

        layout = job_layout(job)
        relative_keys = [r for r in map(layout.relative, self.store.list(layout.prefix))
                         if is_output_key(r)]
        # results.json last: its presence means the directory is complete.
        relative_keys.sort(key=lambda r: r == RESULTS)
        written = []
        with OutputDir(Path(output_dir), force=force) as out:
            for relative in relative_keys:
                data = self.store.get(layout.key(relative))
                if relative == COCO:  # the photos' paths, relative to the copy
                    data = relocated_coco(data, out.path)
                try:
                    out.store.put(relative, data)
                except OSError as error:  # e.g. a file where a folder of the layout goes
                    raise InputError(f"{out.path / relative}: cannot be written "
                                     f"({error.strerror or error})") from None
                written.append(out.path / relative)
                if on_file is not None:
                    on_file(relative)
        return written

    def resume(self, job: str) -> ResumeReport:
        """Enqueue again whatever storage says is missing (``producer.resume``).

        Raises:
            InputError: there is no such job.
        """
        from prodseg.producer.resume import resume_job

        return resume_job(self.store, self.board, self.app, job)

    def completed(self, job: str) -> bool:
        """The job ended as done and its results document is stored."""
        end = job_state(self.store, job).end()
        if end is None:
            return False
        return bool(end.get("state") == DONE and self.store.exists(job_layout(job).results))

    def cancel(self, job: str) -> JobStatus:
        """Stop a job: queued tasks become no-ops, the job ends as cancelled."""
        status = self.status(job)
        if status.ended:
            return status
        self.board.cancel(job)
        if self.board.claim_end(job):
            job_state(self.store, job).put_end(CANCELLED)
            self.board.ended(job, CANCELLED)
        return self.status(job)


OUTAGES: tuple[type[Exception], ...] = (
    TransientError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
"""What a broker or store that went away raises to a client."""


def _outage_reason(error: BaseException) -> str:
    """The error in a few words, without any URL's user info."""
    if isinstance(error, TransientError):
        return str(error)
    return f"the broker does not answer ({type(error).__name__})"


def poll(read: Callable[[], T], ended: Callable[[T], bool],
         on_change: Callable[[T], None] | None, interval: float, timeout: float | None,
         what: str) -> T:
    """Call ``read`` every ``interval`` seconds until ``ended`` says so; ``on_change``
    sees each value that differs from the one before.

    Raises:
        TimeoutError: ``timeout`` seconds passed first (the message names ``what``).
    """
    start = time.monotonic()
    last: T | None = None
    while True:
        value = read()
        if value != last and on_change is not None:
            on_change(value)
        last = value
        if ended(value):
            return value
        if timeout is not None and time.monotonic() - start > timeout:
            raise TimeoutError(f"{what} did not end within {timeout:g} s")
        time.sleep(interval)
