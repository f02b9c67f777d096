"""Several references in one job: what the views the job prompts (``prodseg.job_spec``
``ViewPrompts``) contribute: their results, embeddings and lookalikes.

Both executors (``plan.local_run`` and ``plan.steps``) call these functions, so a job
with such prompts computes the same in both modes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from prodseg.job_spec import Point, ViewPrompts
from prodseg.prompts import Prompt
from prodseg.results import ImageResult, Match
from prodseg.workers.ops.masks import mask_to_box
from prodseg.workers.plan.job_models import JobModels


def reference_view_result(pipeline: JobModels, image: np.ndarray,
                          prompt: Prompt, image_id: str, source: str) -> ImageResult:
    """A view that is a reference: its prompt's mask as its one match (score 1).

    Raises:
        PromptError: the prompt is outside the image or yields an empty mask.
    """
    found = pipeline.segment_reference(image, prompt, image_id, source)
    h, w = image.shape[:2]
    result = ImageResult(image_id=image_id, source=source, width=w, height=h)
    result.found_by = "reference"
    result.matches = [Match(mask=found.mask, bbox=mask_to_box(found.mask), score=1.0,
                            embedding=found.embedding)]
    return result


def not_here_result(image_id: str, source: str, width: int, height: int) -> ImageResult:
    """A view marked "not the product here": no match, whatever it shows."""
    result = ImageResult(image_id=image_id, source=source, width=width, height=height)
    result.found_by = "not here"
    return result


def prompted_view(pipeline: JobModels, views: ViewPrompts, image_id: str,
                  source: str, load: Callable[[], np.ndarray]
                  ) -> tuple[ImageResult | None, np.ndarray, np.ndarray | None,
                             np.ndarray | None] | None:
    """What a view the job prompts contributes; None for a view it does not name.

    Returns:
        ``(result, pixels, embedding, lookalikes)``: the view's result when it is a
        reference (its prompt's mask) or not the product (no match), else None; its
        ``(H, W, 3)`` pixels; its ``(D,)`` embedding when it is a reference; its
        lookalikes' ``(M, D)`` embeddings, if it has any.

    Raises:
        InputError: the view cannot be read, or its prompt or lookalikes are unusable.
    """
    named = (image_id in views.references or image_id in views.no_match
             or image_id in views.lookalikes)
    if not named:
        return None
    pixels = load()
    views.validate(image_id, pixels.shape[1], pixels.shape[0], source)
    lookalikes = view_negatives(pipeline, pixels, views.lookalikes.get(image_id, ()), source)
    result: ImageResult | None = None
    embedding = None
    if image_id in views.references:
        result = reference_view_result(pipeline, pixels, views.references[image_id],
                                       image_id, source)
        embedding = result.matches[0].embedding
    elif image_id in views.no_match:
        result = not_here_result(image_id, source, pixels.shape[1], pixels.shape[0])
    return result, pixels, embedding, lookalikes


def prompted_views(pipeline: JobModels, views: ViewPrompts,
                   targets: Sequence[tuple[str, str, Callable[[], np.ndarray]]],
                   finish: Callable[[int, ImageResult, np.ndarray], None]
                   ) -> tuple[list[tuple[str, np.ndarray]], list[np.ndarray]]:
    """Every view the job prompts, in target order, as the reference step takes them.

    Args:
        pipeline: the job's models.
        views: the job's view prompts.
        targets: each target's ``(image_id, source, load)``; ``load`` decodes its
            ``(H, W, 3)`` pixels, and is called only for the views the job names.
        finish: called with ``(index, result, pixels)`` for each view prompted as a
            reference or as not the product: it is done here.

    Returns:
        The reference views' ``(image_id, (D,) embedding)``, and each view's lookalikes
        as ``(M, D)`` embeddings.

    Raises:
        InputError: a named view cannot be read, or its prompt or lookalikes are unusable.
    """
    fixed: list[tuple[str, np.ndarray]] = []
    negatives: list[np.ndarray] = []
    for index, (image_id, source, load) in enumerate(targets):
        done = prompted_view(pipeline, views, image_id, source, load)
        if done is None:
            continue
        result, pixels, embedding, lookalikes = done
        if embedding is not None:
            fixed.append((image_id, embedding))
        if lookalikes is not None:
            negatives.append(lookalikes)
        if result is not None:
            finish(index, result, pixels)
    return fixed, negatives


def view_negatives(pipeline: JobModels, image: np.ndarray,
                   points: Sequence[Point], source: str) -> np.ndarray | None:
    """``(M, D)`` embeddings of the lookalikes clicked on one view, or None."""
    return pipeline.embed_distractors(image, list(points), source)
