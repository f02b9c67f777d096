"""A job is one list of steps: this module is the only place that orders them.

Each step says what it is per (the job, or each view), what it needs, what it writes,
whether a job's plan takes it, and how to tell from storage that it is done. Three
walkers read the list:

- ``prodseg run`` (``plan.local_run``) runs the plan's steps in order in one process;
- the Celery tasks (``tasks.job_tasks``) run a step and enqueue the next (``next_step``);
- ``prodseg resume`` (``producer.resume``) enqueues the first step not done for each
  unit (``first_pending``).

A new step, or a change of order, is made here and acts in all three. The "done" tests
are functions of storage (``StoredJob``) that anyone may call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from prodseg.job_spec import ViewPrompts
from prodseg.storage.base import ObjectStore
from prodseg.storage.job_state import BANK, REFERENCE, JobState, record_status
from prodseg.storage.manifest import JobManifest
from prodseg.tasks.names import DONE
from prodseg.workers.plan.job_plan import JobPlan

Per = Literal["job", "view"]


@dataclass
class StoredJob:
    """One job as storage holds it: its manifest, plan and bookkeeping.

    Attributes:
        manifest: the job.
        plan: its plan (``JobPlan.of_manifest``).
        state: its ``_state/`` objects.
    """

    manifest: JobManifest
    plan: JobPlan
    state: JobState
    _views: ViewPrompts | None = field(default=None, repr=False)

    @classmethod
    def load(cls, store: ObjectStore, job: str) -> StoredJob:
        """Read the job's manifest (``ObjectNotFound`` when there is no such job)."""
        manifest = JobManifest.load(store, job)
        return cls.of(store, manifest)

    @classmethod
    def of(cls, store: ObjectStore, manifest: JobManifest) -> StoredJob:
        """The stored job of ``manifest``."""
        return cls(manifest, JobPlan.of_manifest(manifest.settings), manifest.state(store))

    @property
    def views(self) -> ViewPrompts:
        """The prompts on the job's target views."""
        if self._views is None:
            self._views = ViewPrompts.from_json(self.manifest.views)
        return self._views

    def view_record(self, image_id: str) -> dict[str, object] | None:
        """The record that makes a view done: its result, or with a growing bank its
        candidates (the resolve step then writes its result); None when neither is
        stored."""
        record = self.state.image_record(image_id)
        if record is None and self.plan.grows_bank:
            record = self.state.candidates_record(image_id)
        return record

    def finished_views(self) -> dict[str, bool]:
        """image id -> whether it went well, for every view whose view step is done."""
        found: dict[str, bool] = {}
        for image in self.manifest.images:
            record = self.view_record(image.image_id)
            if record is not None:
                found[image.image_id] = record_status(record)
        return found


@dataclass(frozen=True)
class Step:
    """One step of a job.

    Attributes:
        name: ``reference``, ``track``, ``view``, ``resolve`` or ``finalize``.
        per: ``job`` (once) or ``view`` (once per target view).
        needs: what it reads, in words.
        writes: what it writes, its record last.
        applies: whether a job with this plan takes the step.
        done: whether storage holds the step's outputs (for a ``view`` step, of the view
            with this image id; ``""`` for a ``job`` step).
    """

    name: str
    per: Per
    needs: str
    writes: str
    applies: Callable[[JobPlan], bool]
    done: Callable[[StoredJob, str], bool]


def _always(plan: JobPlan) -> bool:
    return True


def _finalized(job: StoredJob, _: str) -> bool:
    end = job.state.end()
    return (end is not None and end.get("state") == DONE
            and job.state.store.exists(job.manifest.layout.results))


STEPS: tuple[Step, ...] = (
    Step("reference", "job", "the reference image and its prompt; the prompted views",
         "reference/, the prompted views' outputs and records, negatives, prototypes, "
         "neighbours; then the reference's record",
         _always, lambda job, _: job.state.has(REFERENCE)),
    Step("track", "job", "the reference record; the spin's images",
         "each tracked view's outputs and record; then the track's record",
         lambda plan: plan.tracks, lambda job, _: job.state.tracked() is not None),
    Step("view", "view", "the fixed bank; the view's image",
         "the view's outputs and record, or with a growing bank its candidates and their "
         "record", _always, lambda job, image_id: job.view_record(image_id) is not None),
    Step("resolve", "job", "every view's candidates record",
         "every resolved view's outputs and record; then the bank's record",
         lambda plan: plan.grows_bank, lambda job, _: job.state.has(BANK)),
    Step("finalize", "job", "every view's record",
         "coco.json, the gallery, results.json; then the job's end", _always, _finalized),
)
"""The steps of every job, in order."""

STEP_NAMES = tuple(step.name for step in STEPS)


def steps_of(plan: JobPlan) -> list[Step]:
    """The steps a job with this plan takes, in order."""
    return [step for step in STEPS if step.applies(plan)]


def step_named(name: str) -> Step:
    """The step called ``name``."""
    return STEPS[STEP_NAMES.index(name)]


def next_step(plan: JobPlan, after: str) -> Step | None:
    """The step this plan takes after the step ``after``; None after the last."""
    later = STEPS[STEP_NAMES.index(after) + 1:]
    return next((step for step in later if step.applies(plan)), None)


def pending_views(job: StoredJob, step: Step) -> list[int]:
    """Indices of the target views whose ``step`` is not done."""
    return [k for k, image in enumerate(job.manifest.images)
            if not step.done(job, image.image_id)]


def first_pending(job: StoredJob) -> tuple[Step, list[int]] | None:
    """The first step not done, with the views it is not done for (none for a ``job``
    step); None when every step of the job is done."""
    for step in steps_of(job.plan):
        if step.per == "job":
            if not step.done(job, ""):
                return step, []
            continue
        pending = pending_views(job, step)
        if pending:
            return step, pending
    return None
