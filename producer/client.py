"""The distributed mode from the user's side: submit, status, watch, fetch, cancel.

Imports without torch: a catalog client on a laptop needs only Redis and S3 access.

    client = JobClient(load_settings())
    job = client.submit(["a.jpg", "b.jpg"], "a.jpg", Prompt.from_point(250, 300))
    client.watch(job)               # until it ends
    client.fetch(job, "results/")   # the layout of `prodseg run`

A job is prepared by ``producer.job_prepare``, downloaded by ``producer.fetch`` and
followed through ``producer.polling``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from prodseg.errors import InputError, TransientError
from prodseg.job_spec import ViewPrompts
from prodseg.outages import Backoff, ride_out
from prodseg.producer.fetch import fetch_outputs
from prodseg.producer.job_prepare import prepare_job
from prodseg.producer.polling import OUTAGES, outage_reason, poll
from prodseg.prompts import Prompt
from prodseg.settings import Settings
from prodseg.storage.base import ObjectStore
from prodseg.storage.manifest import (
    JOBS_PREFIX,
    JobManifest,
    get_json,
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
        return prepare_job(self.store, self.settings, images, reference, prompt, on_upload,
                           job, settings or self.settings, distractor_points, views)

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
                on_outage(f"waiting for the broker and the store: {outage_reason(error)} "
                          f"(down {down_s:.0f} s of the {budget} s budget)")

        def read() -> JobStatus:
            try:
                return ride_out(lambda: self.status(job), Backoff(budget), OUTAGES, waiting)
            except OUTAGES as error:
                raise TransientError(
                    f"gave up watching job {job} after {budget} s without an answer "
                    f"({outage_reason(error)}); the job goes on by itself: run `prodseg "
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
        return fetch_outputs(self.store, job, Path(output_dir), on_file, force)

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
