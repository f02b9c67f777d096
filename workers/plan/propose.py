"""A product's prompt proposed from its views: the models' part of the proposal.

The rule is ``workers.capture.prompt_rule``; this runs the job's segmenter and FFA
embedder on each view (the proposals that matching uses, area-filtered the same way)
and hands the rule what it needs, one view at a time, so no view's masks outlive it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from prodseg.errors import InputError
from prodseg.proposed import ProposedPrompt
from prodseg.workers.capture.prompt_rule import change_map, choose_prompt, view_objects
from prodseg.workers.ops.masks import area_filter
from prodseg.workers.plan.job_models import JobModels


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
