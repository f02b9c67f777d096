"""The local executor of the step list (``plan.step_list``): ``prodseg run`` in one process.

It walks the plan's steps in order, one method per step: reference (the click, the
lookalikes, the prompted views), track, view (candidates in batches whose whole-image
DINOv2 passes run together; resolved at once unless the bank grows, else kept
bit-packed), resolve (in capture order, each image read again only for its cutouts) and
finalize. Outputs go to the store as each view is done and ``results.json`` last.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prodseg.job_spec import JobSpec
from prodseg.prompts import Prompt
from prodseg.results import ImageResult, JobResult
from prodseg.storage.base import ObjectStore
from prodseg.storage.images import read_image_file
from prodseg.storage.layout import JobLayout
from prodseg.workers.match.bank import PrototypeBank
from prodseg.workers.match.candidates import ViewCandidates, select_view
from prodseg.workers.match.instances import mask_shape
from prodseg.workers.plan.job_models import JobModels
from prodseg.workers.plan.job_plan import JobPlan, resolve_in_order
from prodseg.workers.plan.propose import segment_reference
from prodseg.workers.plan.step_list import steps_of
from prodseg.workers.plan.view_prompts import prompted_views
from prodseg.workers.plan.views import (
    Loader,
    batch_candidates,
    cutout_alpha,
    file_head,
    load_view,
    track_spin,
    view_size,
    with_edge_residue,
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
        s = pipeline.settings
        self.pipeline, self.ref_path = pipeline, Path(spec.reference)
        self.prompt: Prompt | None = spec.prompt
        self.ref_image: np.ndarray | None = ref_image
        self.store, self.layout, self.on_image = store, layout, on_image
        self.distractor_points, self.prompted = spec.distractors, spec.views
        self.plan = JobPlan.of(s)
        self.ref_id = spec.ids[0]

        self.video = spec.video

        def loader(path: Path) -> Loader:
            if read is not None:
                return lambda: read(str(path))
            return lambda: read_image_file(path, s.max_image_pixels, s.max_image_bytes)

        self.views = [(image_id, source, loader(Path(source)))
                      for image_id, source in zip(spec.ids[1:], spec.targets, strict=True)]
        self.found: dict[int, ImageResult] = {}
        self.kept: dict[int, KeptView] = {}  # with a growing bank: resolved in order
        self.results: list[ImageResult] = []
        self.meta: dict[str, object] = {}

    def finish(self, index: int, result: ImageResult, image: np.ndarray | None) -> None:
        """A view is done: its outputs written, its result kept and reported."""
        result = with_edge_residue(result, image)
        if self.store is not None and image is not None:
            from prodseg.storage.exports.documents import write_image_outputs

            write_image_outputs(self.store, self.layout, image, result,
                                cutout_alpha(self.pipeline.settings))
        self.found[index] = result
        if self.on_image is not None:
            self.on_image(result)

    def reference(self) -> None:
        """The click, the lookalikes, the neighbours, and the views the job prompts
        (finished here: their embeddings and lookalikes join the fixed bank)."""
        pipeline, image, source = self.pipeline, self.ref_image, str(self.ref_path)
        assert image is not None
        self.ref = segment_reference(pipeline, image, self.prompt, self.ref_id, source,
                                     [(view, load) for view, _, load in self.views])
        self.prompt = Prompt.from_json(self.ref.prompt)
        negatives = pipeline.embed_distractors(image, self.distractor_points, source)
        neighbours = pipeline.reference_neighbours(image, self.ref)
        self.shape = mask_shape(self.ref.mask)
        self.capture = self.plan.capture_of(
            (source, (image.shape[1], image.shape[0])), [v[1] for v in self.views],
            lambda: [view_size(file_head(Path(v[1])), v[2]) for v in self.views])
        if self.store is not None:
            from prodseg.storage.exports.documents import write_reference_outputs

            write_reference_outputs(self.store, self.layout, image, self.ref,
                                    cutout_alpha(self.pipeline.settings))
        refs, more = prompted_views(pipeline, self.prompted, self.views, self.finish)

        def fixed_bank() -> PrototypeBank:
            return self.plan.fixed_bank(self.ref.embedding, [negatives, *more], refs,
                                        neighbours)

        self.fixed_bank = fixed_bank
        self.fixed = self.bank = fixed_bank()

    def track(self) -> None:
        """The spin followed from the click; each accepted view is done."""
        assert self.ref_image is not None and self.prompt is not None
        left = [k for k in range(len(self.views)) if k not in self.found]
        tracked = track_spin(self.pipeline, self.capture, self.prompt, self.fixed, self.shape,
                             (str(self.ref_path), self.ref_image),
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
                    self.kept[index] = KeptView(candidates.to_bytes(),
                                                candidates.best_score(fixed, plan.select))
                else:
                    self.finish(index, select_view(candidates, fixed, plan.select,
                                                   self.shape), image)

    def resolve(self) -> None:
        """The kept views resolved in capture order, the bank growing as it goes."""
        kept, views = self.kept, self.views
        self.bank = self.fixed_bank()
        order = list(kept)
        ranked = self.plan.visit_order(self.capture, str(self.ref_path),
                                       [views[k][1] for k in order],
                                       [kept[k].best_score for k in order])

        def unpacked(position: int) -> ViewCandidates:
            return ViewCandidates.from_bytes(kept[order[position]].blob)

        for position, result in resolve_in_order(unpacked, ranked, self.bank,
                                                 self.plan.select, self.shape):
            index = order[position]
            image = None
            if result.status == "ok" and self.store is not None:  # for the cutouts
                image = load_view(views[index][2], views[index][1])[0]
            self.finish(index, result, image)

    def finalize(self) -> None:
        """``results.json`` and the other documents, last."""
        self.results = [self.found[i] for i in range(len(self.views))]
        meta = self.pipeline.describe()
        meta["capture"] = self.capture
        record = self.plan.bank_record(self.bank)
        if record is not None:
            meta["prototype_bank"] = record
        if self.video is not None:
            meta["video"] = self.video.to_json()
        self.meta = meta
        if self.store is not None:
            from prodseg.storage.exports.documents import write_job_documents

            write_job_documents(self.store, self.layout, self.ref, self.results, meta)


@dataclass(frozen=True)
class KeptView:
    """A view's candidates kept for a growing bank: ``ViewCandidates.to_bytes`` (masks
    bit-packed, as a distributed job stores them) and its best fixed score."""

    blob: bytes
    best_score: float
