"""A product's prompt proposed from its views: the models' part of the proposal.

The rule is ``workers.capture.prompt_rule``; this runs the job's segmenter and FFA
embedder on each view (the proposals that matching uses, area-filtered the same way)
and hands the rule what it needs, one view at a time, so no view's masks outlive it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence

import numpy as np

from prodseg.errors import InputError
from prodseg.prompts import Prompt
from prodseg.proposed import ProposedPrompt
from prodseg.results import ReferenceResult
from prodseg.storage.base import ObjectNotFound
from prodseg.workers.capture.prompt_rule import change_map, choose_prompt, view_objects
from prodseg.workers.ops.masks import area_filter
from prodseg.workers.plan.job_models import JobModels

log = logging.getLogger(__name__)


def propose_prompt(views: Sequence[tuple[str, np.ndarray]], models: JobModels,
                   reference: str | None = None) -> ProposedPrompt:
    """The proposed reference view and prompt of one product.

    Args:
        views: ``(view id, (H, W, 3) uint8 RGB)`` of every view of the product.
        models: the job's settings and models (a ``ProductSegmentationPipeline``).
        reference: the view the prompt must be on, when the catalog names one.

    Returns:
        The proposal; its ``reference`` is one of the view ids.

    Raises:
        InputError: no views, ``reference`` not among them, or no candidate object on
            any view.
    """
    if not views:
        raise InputError("no views to propose a prompt on")
    ids = [view for view, _ in views]
    if reference is not None and reference not in ids:
        raise InputError(f"reference {reference!r} is not one of the views")
    s = models.settings
    changed = change_map([image for _, image in views])
    objects = []
    for view, image in views:
        proposals = models.segmenter.propose(image)
        masks = proposals.masks[area_filter(proposals.masks, s.min_mask_area_ratio,
                                            s.max_mask_area_ratio)]
        embeddings = models.embedder.embed(image, masks) if len(masks) else \
            np.zeros((0, 1), np.float32)
        objects.append(view_objects(view, masks, embeddings, changed))
    proposed = choose_prompt(objects, s.similarity_threshold, reference)
    if proposed is None:
        raise InputError(f"no object found on any of the {len(views)} views to propose a "
                         "prompt on")
    return proposed


def segment_reference(models: JobModels, image: np.ndarray, prompt: Prompt | None,
                      image_id: str, source: str,
                      targets: Sequence[tuple[str, Callable[[], np.ndarray]]]
                      ) -> ReferenceResult:
    """The reference step's product: the prompt segmented, or first proposed when the
    job has none; what both executors call.

    Args:
        models: the job's models.
        image: the reference, ``(H, W, 3)`` uint8 RGB.
        prompt: the job's prompt; None to propose one on the reference from every view.
        image_id: the reference's id.
        source: where it came from.
        targets: ``(image id, loader)`` of the other views, read only to propose.

    Returns:
        The reference, its ``prompt_source`` and, when proposed, its ``proposal``.
    """
    if prompt is not None:
        return models.segment_reference(image, prompt, image_id, source)
    views = [(image_id, image)]
    for view, load in targets:
        try:
            views.append((view, load()))
        except (InputError, ObjectNotFound) as exc:  # its view step reports it
            log.warning("%s: left out of the proposal: %s", view, exc)
    proposed = propose_prompt(views, models, reference=image_id)
    del views
    log.info("%s: proposed %s (%s)", source, proposed.to_json(), proposed.why)
    reference = models.segment_reference(image, proposed.prompt(), image_id, source)
    return dataclasses.replace(reference, prompt_source="proposed",
                               proposal=proposed.to_json())


def propose_stored(models: JobModels, image_keys: Sequence[str],
                   read: Callable[[str], np.ndarray]) -> dict[str, object]:
    """A product's proposal on a worker, from its stored images (the ``propose`` task).

    Args:
        models: the worker's models for the request's settings.
        image_keys: keys in the job store, or ``s3://bucket/key`` URLs.
        read: an image's ``(H, W, 3)`` uint8 RGB pixels by its key.

    Returns:
        ``ProposedPrompt.to_json()``, its ``reference`` one of ``image_keys``.

    Raises:
        InputError: an image is unreadable or missing, or no object is found.
    """
    views = []
    for key in image_keys:
        try:
            views.append((key, read(key)))
        except ObjectNotFound:
            raise InputError(f"{key}: not found in storage") from None
    return propose_prompt(views, models).to_json()
