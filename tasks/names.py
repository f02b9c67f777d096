"""The names the producer and the workers share: tasks, queues and job states.

A job is ``queued`` from submission until its reference is done, ``running`` while its
targets are matched, and ends ``done``, ``failed`` or ``cancelled``; ``unknown`` is what
Redis says of a job it holds no record of (storage may still know it).
"""

from __future__ import annotations

from typing import Final, Literal

REFERENCE_TASK: Final = "prodseg.reference"
MATCH_TASK: Final = "prodseg.match"
FINALIZE_TASK: Final = "prodseg.finalize"
TRACK_TASK: Final = "prodseg.track"
RESOLVE_TASK: Final = "prodseg.resolve"
PREVIEW_TASK: Final = "prodseg.preview"
PROPOSE_TASK: Final = "prodseg.propose"
"""A product's prompt proposed on a worker (``workers.plan.propose``), ``interactive`` queue."""

STEP_TASKS: Final = {"reference": REFERENCE_TASK, "track": TRACK_TASK, "view": MATCH_TASK,
                     "resolve": RESOLVE_TASK, "finalize": FINALIZE_TASK}
"""The task that runs each step of the step list (``workers.plan.step_list``): a ``view``
step's task takes ``(job, index)``, the others ``(job,)``."""

JOB_STEPS: Final = tuple(STEP_TASKS.values())
"""The tasks whose first argument is a job id."""


def work_unit(task: str, job: str, index: int | None = None) -> str:
    """The name of one unit of work, as leases and the queued set know it:
    ``prodseg.match:<job>:<index>``, ``prodseg.finalize:<job>``."""
    return f"{task}:{job}" if index is None else f"{task}:{job}:{index}"


def task_label(task: str, job: str, image: str | None = None) -> str:
    """What a task is for, as Flower and the worker's log lines name it (Celery's
    ``shadow`` name): ``prodseg.match <job> <image id>``, ``prodseg.finalize <job>``."""
    return f"{task} {job}" if image is None else f"{task} {job} {image}"


INTERACTIVE_QUEUE: Final = "interactive"
"""Reference tasks and previews: a person waits for them."""
BATCH_QUEUE: Final = "batch"
"""Per-target candidates and matching, a job's track and resolve steps, finalisation."""

JobState = Literal["queued", "running", "done", "failed", "cancelled", "unknown"]
QUEUED: Final = "queued"
RUNNING: Final = "running"
DONE: Final = "done"
FAILED: Final = "failed"
CANCELLED: Final = "cancelled"
UNKNOWN: Final = "unknown"
ENDED: Final = (DONE, FAILED, CANCELLED)
"""The final states: nothing of the job runs any more."""
