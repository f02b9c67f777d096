"""The pipeline: reference prompt -> FFA embedding -> matches on every image.

``ProductSegmentationPipeline`` is the Python API (the design document's Scenario C) and
what ``prodseg run`` drives. Its steps, ``segment_reference``, ``embed_distractors`` and
``view_candidates``, are what both executors of the job plan (``plan.job_plan``) call:
``plan.local_run`` for ``run``, which checks its inputs first, and the distributed tasks.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from prodseg.errors import InputError, PromptError
from prodseg.job_spec import ViewPrompts, build_job_spec
from prodseg.prompts import Prompt
from prodseg.results import FoundBy, ImageResult, JobResult, ReferenceResult
from prodseg.settings import Settings, load_settings
from prodseg.storage.base import ObjectStore
from prodseg.storage.images import read_file_bytes, read_image_file
from prodseg.storage.layout import JobLayout
from prodseg.workers.capture.video_frames import video_inputs
from prodseg.workers.embed.ffa_embedder import FFAEmbedder
from prodseg.workers.match.bank import PrototypeBank
from prodseg.workers.match.candidates import ViewCandidates, any_match, select_view
from prodseg.workers.match.instances import MaskShape
from prodseg.workers.match.neighbours import reference_neighbours
from prodseg.workers.ops.masks import area_filter, mask_to_box
from prodseg.workers.plan.job_plan import JobPlan
from prodseg.workers.segment.guided import guided_prompts, similarity_map
from prodseg.workers.segment.protocol import Proposals, Segmenter

log = logging.getLogger(__name__)


class ProductSegmentationPipeline:
    """Find one product, clicked once, on every other image.

    Args:
        settings: configuration; read from ``PRODSEG_*`` environment variables if None.
        segmenter: prompt segmentation and proposals; built from the settings if None.
        embedder: FFA embedder; built from the settings if None.

    The models are built on first use, once, and reused for every image and run.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        segmenter: Segmenter | None = None,
        embedder: FFAEmbedder | None = None,
    ) -> None:
        self.settings = settings if settings is not None else load_settings()
        self._segmenter = segmenter
        self._embedder = embedder
        self._models: dict[str, object] = {}

    # -- models -------------------------------------------------------------------------

    def _ensure_models(self) -> tuple[Segmenter, FFAEmbedder]:
        if self._segmenter is None or self._embedder is None:
            from prodseg.workers.models.factory import build_backends

            segmenter, embedder, described = build_backends(self.settings)
            self._segmenter = self._segmenter or segmenter
            self._embedder = self._embedder or embedder
            self._models = described
        return self._segmenter, self._embedder

    @property
    def segmenter(self) -> Segmenter:
        """The segmenter (built from the settings on first use)."""
        return self._ensure_models()[0]

    @property
    def embedder(self) -> FFAEmbedder:
        """The FFA embedder (built from the settings on first use)."""
        return self._ensure_models()[1]

    @property
    def uses_image_tokens(self) -> bool:
        """Whether a view's whole-image DINOv2 pass is used (full embedding mode, guided
        prompting): then views batched together share one pass."""
        s = self.settings
        return s.embedding_mode == "full" or s.proposals == "guided"

    def describe(self) -> dict[str, object]:
        """Models, weights and settings, as recorded in ``results.json``."""
        from prodseg.workers.models.factory import describe_run

        self._ensure_models()
        return describe_run(self.settings, self._models, self._segmenter, self._embedder)

    # -- the two steps --------------------------------------------------------------------

    def segment_reference(
        self, image: np.ndarray, prompt: Prompt, image_id: str, source: str
    ) -> ReferenceResult:
        """Segment the clicked product and embed it.

        Args:
            image: ``(H, W, 3)`` uint8 RGB reference image.
            prompt: points and/or box in the image's pixels.
            image_id: the image's id within the job.
            source: where the image came from (for messages).

        Raises:
            PromptError: the prompt is outside the image or yields an empty mask.
        """
        h, w = image.shape[:2]
        prompt.validate(w, h, source)
        segmenter, embedder = self._ensure_models()
        segmented = segmenter.segment(image, prompt)
        if not segmented.mask.any():
            raise PromptError(
                f"{source}: the prompt {prompt.to_json()} yields an empty mask; click on the "
                "product itself or draw a box around it"
            )
        embedding = embedder.embed(image, segmented.mask[None])[0]
        return ReferenceResult(
            image_id=image_id,
            source=source,
            width=w,
            height=h,
            mask=segmented.mask,
            bbox=mask_to_box(segmented.mask),
            score=segmented.score,
            embedding=embedding,
            prompt=prompt.to_json(),
            candidate_areas=segmented.candidate_areas,
            candidate_scores=segmented.candidate_scores,
            candidate=segmented.candidate,
        )

    def view_candidates(self, image: np.ndarray, fixed: PrototypeBank, image_id: str,
                        source: str, tokens: np.ndarray | None = None) -> ViewCandidates:
        """One view's proposals, area-filtered, and their FFA embeddings: everything of a
        view that takes a model, computed once whatever the bank does later.

        Args:
            image: ``(H, W, 3)`` uint8 RGB.
            fixed: the references known before any view (``JobPlan.fixed_bank``): guided
                prompting looks at the reference's similarity peaks, and falls back to the
                full grid when no proposal there passes against this bank.
            image_id: the image's id within the job.
            source: where the image came from.
            tokens: the image's whole-image patch grid, if already computed (batched).
        """
        s = self.settings
        segmenter, embedder = self._ensure_models()
        h, w = image.shape[:2]
        if s.proposals == "guided":
            tokens = tokens if tokens is not None else embedder.image_tokens(image)
            positives, negatives = guided_prompts(
                similarity_map(tokens, fixed.reference), (h, w), s.guided_points,
                s.guided_negatives)
            guided = self._embedded(image, segmenter.propose_at(image, positives, negatives),
                                    tokens, image_id, source, "guided")
            if any_match(guided, fixed, JobPlan.of(s).select):
                return guided
            # no match at the peaks: look everywhere
            return self._embedded(image, segmenter.propose(image), tokens, image_id, source,
                                  "guided+grid")
        return self._embedded(image, segmenter.propose(image), tokens, image_id, source,
                              "grid")

    def _embedded(self, image: np.ndarray, proposals: Proposals, tokens: np.ndarray | None,
                  image_id: str, source: str, found_by: FoundBy) -> ViewCandidates:
        """``proposals`` area-filtered and embedded.

        Args:
            tokens: the image's patch grid when already computed (reused in full mode).
        """
        s = self.settings
        _, embedder = self._ensure_models()
        masks = proposals.masks[area_filter(proposals.masks, s.min_mask_area_ratio,
                                            s.max_mask_area_ratio)]
        h, w = image.shape[:2]
        if masks.shape[0] == 0:
            embeddings = np.zeros((0, 0), dtype=np.float32)
        else:
            embeddings = np.asarray(embedder.embed(image, masks, tokens), dtype=np.float32)
        return ViewCandidates(image_id, source, w, h, masks, embeddings, found_by)

    def match_image(self, image: np.ndarray, bank: PrototypeBank, image_id: str, source: str,
                    *, shape: MaskShape) -> ImageResult:
        """One target image matched against ``bank`` (a bank of one for the reference
        alone: ``JobPlan.of(settings).fixed_bank(embedding)``).

        Args:
            image: ``(H, W, 3)`` uint8 RGB.
            bank: the prototypes and lookalikes; also what guided prompting follows.
            image_id: the image's id within the job.
            source: where the image came from.
            shape: the reference mask's shape (``mask_shape``): of the proposals nested in
                one another, the one closest to it is kept.
        """
        candidates = self.view_candidates(image, bank, image_id, source)
        return select_view(candidates, bank, JobPlan.of(self.settings).select, shape)

    # -- the whole job ----------------------------------------------------------------------

    def run(
        self,
        image_paths: Sequence[str | os.PathLike[str]],
        reference_image: str | os.PathLike[str],
        reference_point: tuple[float, float] | None = None,
        reference_bbox: tuple[float, float, float, float] | None = None,
        *,
        prompt: Prompt | None = None,
        output_dir: str | os.PathLike[str] | None = None,
        store: ObjectStore | None = None,
        layout: JobLayout | None = None,
        on_image: Callable[[ImageResult], None] | None = None,
        distractor_points: Sequence[tuple[float, float]] = (),
        force: bool = False,
        views: ViewPrompts | None = None,
        propose: bool = False,
    ) -> JobResult:
        """Segment the product on the reference and find it on every other image.

        Args:
            image_paths: the capture's images; the reference may be among them (it is
                never matched against itself). Or one video: its frames are the images
                (``workers.capture.video_frames``).
            reference_image: the image the prompt refers to (of a video: a frame's view
                id, position or time, ``VideoCapture.named``).
            reference_point: one positive click ``(x, y)`` in the reference's pixels.
            reference_bbox: a box ``(x0, y0, x1, y1)`` around the product.
            prompt: several positive/negative points and/or a box, instead of the above.
            output_dir: write the output layout here (a local directory, held by the rule
                of ``storage.output_dir``: locked, the previous run's outputs removed
                first, ``results.json`` last).
            store: or write it to this object store (under ``layout``'s prefix).
            layout: key layout in ``store``; the job root by default.
            on_image: called after each target image (progress reporting).
            distractor_points: clicks on lookalikes on the reference image ("not this");
                each is segmented and embedded as a negative.
            force: write into an ``output_dir`` that holds other files too.
            views: prompts on other views (references too), views that are not the
                product, lookalikes on views (``plan.view_prompts``); keyed by the
                image's path, file name or id.
            propose: no prompt is given: propose one on the reference from every view
                (``plan.propose``; recorded in ``results.json`` as proposed).

        Returns:
            The reference and one result per target image; an image that cannot be read
            has ``status == "error"`` and the others go on.

        Raises:
            InputError: no images, an unreadable reference, a bad prompt or an unusable
                output directory; raised before any model is built.
        """
        chosen = None if propose else _make_prompt(reference_point, reference_bbox, prompt)
        if propose and (reference_point, reference_bbox, prompt) != (None, None, None):
            raise PromptError("give a prompt or propose=True, not both")
        if output_dir is not None and store is not None:
            raise InputError("give output_dir or store, not both")
        s = self.settings

        images, reference = [str(Path(p)) for p in image_paths], str(Path(reference_image))
        video = video_inputs(images, str(reference_image), s,
                             lambda path: read_file_bytes(Path(path), s.max_image_bytes))
        read = None if video is None else video.read
        if video is not None:  # its frames stand for it
            images, reference = video.images, video.reference

        @functools.cache
        def decode(source: str) -> np.ndarray:
            if read is not None:
                return read(source)
            return read_image_file(Path(source), s.max_image_pixels, s.max_image_bytes)

        spec = build_job_spec(images, reference, chosen,
                              identity=os.path.realpath, decode=decode,
                              distractors=distractor_points, views=views)
        if video is not None:
            spec = dataclasses.replace(spec, video=video.capture)
        ref_image = decode(spec.reference)
        decode.cache_clear()  # the prompted views are read again when their step runs
        layout = layout or JobLayout()
        from prodseg.workers.plan.local_run import execute_run

        if output_dir is None:
            return execute_run(self, spec, ref_image, store, layout, on_image, None, read)
        from prodseg.storage.output_dir import OutputDir

        with OutputDir(Path(output_dir), force=force) as out:
            return execute_run(self, spec, ref_image, out.store, layout, on_image, out.path,
                               read)

    def reference_neighbours(self, image: np.ndarray,
                             reference: ReferenceResult) -> np.ndarray | None:
        """``(K, D)`` embeddings of what the reference photo shows besides the product
        (``prodseg.workers.match.neighbours``), from a full grid of proposals on it; None
        when ``reference_neighbours`` is off."""
        s = self.settings
        if not JobPlan.of(s).neighbours:
            return None
        candidates = self._embedded(image, self.segmenter.propose(image), None,
                                    reference.image_id, reference.source, "grid")
        neighbours = reference_neighbours(candidates.masks, candidates.embeddings,
                                          reference.mask, reference.embedding,
                                          s.similarity_threshold)
        log.info("%s: %d other objects besides the product (neighbours)", reference.source,
                 len(neighbours))
        return neighbours

    def embed_distractors(self, image: np.ndarray, points: Sequence[tuple[float, float]],
                           source: str) -> np.ndarray | None:
        """``(M, D)`` embeddings of the lookalikes clicked on the reference, or None."""
        if not points:
            return None
        segmenter, embedder = self._ensure_models()
        masks = []
        for x, y in points:
            prompt = Prompt.from_point(x, y)
            prompt.validate(image.shape[1], image.shape[0], f"{source} (distractor)")
            mask = segmenter.segment(image, prompt).mask
            if not mask.any():
                raise PromptError(f"{source}: the distractor click ({x:g}, {y:g}) yields an "
                                  "empty mask; click on the lookalike itself")
            masks.append(mask)
        return embedder.embed(image, np.stack(masks))

def _make_prompt(
    point: tuple[float, float] | None,
    bbox: tuple[float, float, float, float] | None,
    prompt: Prompt | None,
) -> Prompt:
    given = sum(x is not None for x in (point, bbox, prompt))
    if given != 1:
        raise PromptError("give exactly one of reference_point, reference_bbox or prompt")
    if prompt is not None:
        return prompt
    if point is not None:
        return Prompt.from_point(*point)
    assert bbox is not None
    return Prompt.from_box(*bbox)
