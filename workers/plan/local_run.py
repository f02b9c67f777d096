"""The local executor of the step list (``plan.step_list``): ``prodseg run`` in one process.

It walks the plan's steps in order, one method per step: reference (the click, the
lookalikes, the prompted views), track, view (candidates in batches whose whole-image
DINOv2 passes run together; resolved at once unless the bank grows, else kept
bit-packed), resolve (in capture order, each image read again only for its cutouts) and
finalize. Outputs go to the store as each view is done and ``results.json`` last.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np

from prodseg.job_spec import JobSpec
from prodseg.prompts import Prompt
from prodseg.results import ImageResult, JobResult, results_meta
from prodseg.storage.base import ObjectStore
from prodseg.storage.layout import JobLayout
from prodseg.workers.match.candidates import ViewCandidates, select_view
from prodseg.workers.match.instances import mask_shape
from prodseg.workers.plan.job_models import JobModels
from prodseg.workers.plan.job_plan import JobPlan, resolve_in_order
from prodseg.workers.plan.propose import segment_reference
from prodseg.workers.plan.step_list import steps_of
from prodseg.workers.plan.view_prompts import prompted_views
from prodseg.workers.plan.views import (
    batch_candidates,
    cutout_alpha,
    file_head,
    file_loader,
    read_for_cutouts,
    track_spin,
    view_size,
    write_view_outputs,
)


def execute_run(pipeline: JobModels, spec: JobSpec, ref_image: np.ndarray,
                store: ObjectStore | None, layout: JobLayout,
                on_image: Callable[[ImageResult], None] | None,
                output_dir: Path | None,
                read: Callable[[str], np.ndarray] | None = None) -> JobResult:
    """``ProductSegmentationPipeline.run`` once its spec is built and its output
    directory is held: the plan's steps (``step_list.steps_of``), in order, here.

    Args:
        pipeline: the job's settings and models.
        spec: the job (``prodseg.job_spec.build_job_spec``).
        ref_image: the reference's ``(H, W, 3)`` uint8 pixels, decoded by the spec's check.
        store: where outputs go (None: nowhere, results only).
        layout: their keys in ``store``.
        on_image: called with each view's result as it is done.
        output_dir: the output directory, recorded in the result.
        read: a view's pixels from its source, instead of reading a file (a video's
            frames, decoded once).
    """
    run = LocalJob(pipeline, spec, ref_image, store, layout, on_image, read)
    for step in steps_of(run.plan):
        getattr(run, step.name)()
    return JobResult(run.ref, run.results, run.meta, output_dir)


class LocalJob:
    """One job's steps in this process; what a step hands the next is kept in memory."""

    def __init__(self, pipeline: JobModels, spec: JobSpec,
                 ref_image: np.ndarray, store: ObjectStore | None, layout: JobLayout,
                 on_image: Callable[[ImageResult], None] | None,
                 read: Callable[[str], np.ndarray] | None = None) -> None:
        self.pipeline, self.spec, self.plan = pipeline, spec, JobPlan.of(pipeline.settings)
        self.ref_image: np.ndarray | None = ref_image
        self.ref_source = str(Path(spec.reference))
        self.store, self.layout, self.on_image = store, layout, on_image
        self.views = [(image_id, source, file_loader(Path(source), pipeline.settings, read))
                      for image_id, source in zip(spec.ids[1:], spec.targets, strict=True)]
        self.found: dict[int, ImageResult] = {}
        # with a growing bank, each view's (``ViewCandidates.to_bytes()``, best fixed
        # score), bit-packed as a distributed job stores them, for the resolve step
        self.kept: dict[int, tuple[bytes, float]] = {}

    def finish(self, index: int, result: ImageResult, image: np.ndarray | None) -> None:
        """A view is done: its outputs written, its result kept and reported."""
        result = write_view_outputs(self.store, self.layout, self.pipeline.settings, result,
                                    image)
        self.found[index] = result
        if self.on_image is not None:
            self.on_image(result)

    def reference(self) -> None:
        """The click, the lookalikes, the neighbours, and the views the job prompts
        (finished here: their embeddings and lookalikes join the fixed bank)."""
        pipeline, image, source = self.pipeline, self.ref_image, self.ref_source
        assert image is not None
        self.ref = segment_reference(pipeline, image, self.spec.prompt, self.spec.ids[0],
                                     source, [(view, load) for view, _, load in self.views])
        self.prompt = Prompt.from_json(self.ref.prompt)
        negatives = pipeline.embed_distractors(image, self.spec.distractors, source)
        neighbours = pipeline.reference_neighbours(image, self.ref)
        self.shape = mask_shape(self.ref.mask)
        self.capture = self.plan.capture_of(
            (source, (image.shape[1], image.shape[0])), [v[1] for v in self.views],
            lambda: [view_size(file_head(Path(v[1])), v[2]) for v in self.views])
        if self.store is not None:
            from prodseg.storage.exports.documents import write_reference_outputs

            write_reference_outputs(self.store, self.layout, image, self.ref,
                                    cutout_alpha(self.pipeline.settings))
        refs, more = prompted_views(pipeline, self.spec.views, self.views, self.finish)
        self.fixed_bank = functools.partial(self.plan.fixed_bank, self.ref.embedding,
                                            [negatives, *more], refs, neighbours)
        self.fixed = self.bank = self.fixed_bank()

    def track(self) -> None:
        """The spin followed from the click; each accepted view is done."""
        assert self.ref_image is not None
        left = [k for k in range(len(self.views)) if k not in self.found]
        tracked = track_spin(self.pipeline, self.capture, self.prompt, self.fixed, self.shape,
                             (self.ref_source, self.ref_image),
                             [self.views[k] for k in left])
        for k, result in tracked.results.items():
            self.finish(left[k], result, tracked.images[k])

    def view(self) -> None:
        """Every view not done yet: its candidates in batches, resolved at once unless the
        bank grows (then kept, bit-packed, for the resolve step)."""
        self.ref_image = None  # no later step reads it
        remaining = [k for k in range(len(self.views)) if k not in self.found]
        step = max(1, self.pipeline.settings.image_batch_size)
        plan, fixed = self.plan, self.fixed
        for start in range(0, len(remaining), step):
            batch = remaining[start : start + step]
            for index, candidates, image in batch_candidates(self.pipeline, fixed,
                                                             self.views, batch):
                if plan.grows_bank:
                    self.kept[index] = (candidates.to_bytes(),
                                        candidates.best_score(fixed, plan.select))
                else:
                    self.finish(index, select_view(candidates, fixed, plan.select,
                                                   self.shape), image)

    def resolve(self) -> None:
        """The kept views resolved in capture order, the bank growing as it goes."""
        kept, views = self.kept, self.views
        self.bank = self.fixed_bank()
        order = list(kept)
        ranked = self.plan.visit_order(self.capture, self.ref_source,
                                       [views[k][1] for k in order],
                                       [kept[k][1] for k in order])

        def unpacked(position: int) -> ViewCandidates:
            return ViewCandidates.from_bytes(kept[order[position]][0])

        for position, result in resolve_in_order(unpacked, ranked, self.bank,
                                                 self.plan.select, self.shape):
            index = order[position]
            image = None
            if self.store is not None:
                result, image = read_for_cutouts(result, views[index][2])
            self.finish(index, result, image)

    def finalize(self) -> None:
        """``results.json`` and the other documents, last."""
        self.results = [self.found[i] for i in range(len(self.views))]
        video = None if self.spec.video is None else self.spec.video.to_json()
        self.meta = results_meta(self.pipeline.describe(), self.capture, video,
                                 self.plan.bank_record(self.bank))
        if self.store is not None:
            from prodseg.storage.exports.documents import write_job_documents

            write_job_documents(self.store, self.layout, self.ref, self.results, self.meta)
