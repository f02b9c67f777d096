"""SAM 2.1 as a ``Segmenter``: prompts through ``SAM2ImagePredictor``, proposals through
prodseg's own generator (``sam2_proposals``) with the settings' grid and thresholds.
"""

from __future__ import annotations

import numpy as np
import torch

from prodseg.prompts import Prompt
from prodseg.workers.models.builders import autocast_for
from prodseg.workers.segment.protocol import Proposals, SegmentedMask, from_candidates
from prodseg.workers.segment.sam2_candidates import ProposalParams
from prodseg.workers.segment.sam2_proposals import ProposalGenerator, Timing

__all__ = ["ProposalParams", "Sam2Segmenter"]


class Sam2Segmenter:
    """Prompted masks and automatic proposals from one SAM2 model.

    Args:
        model: a ``SAM2Base`` built by ``sam2.build_sam.build_sam2``.
        params: proposal generator settings.
        name: shown in outputs.
    """

    def __init__(self, model: torch.nn.Module, params: ProposalParams, name: str) -> None:
        self.model = model
        self.name = name
        self.device = next(model.parameters()).device
        self.generator = ProposalGenerator(model, params)
        self.predictor = self.generator.predictor

    @property
    def last_timing(self) -> Timing:
        """Where the last ``propose``/``propose_at`` call spent its time."""
        return self.generator.last_timing

    @torch.inference_mode()
    def segment(self, image: np.ndarray, prompt: Prompt) -> SegmentedMask:
        """One of SAM2's three candidate masks for the prompt (multimask output): the
        one ``prompt.candidate`` names by area, else the best by predicted IoU.

        Args:
            image: ``(H, W, 3)`` uint8 RGB.
            prompt: points (label 1 positive, 0 negative) and/or a box, image pixels.

        Returns:
            ``(H, W)`` bool mask and its predicted IoU, with the three candidates' areas
            and predicted IoUs, smallest first.
        """
        coords = np.asarray(prompt.points, dtype=np.float32) if prompt.points else None
        labels = np.asarray(prompt.labels, dtype=np.int32) if prompt.points else None
        box = np.asarray(prompt.box, dtype=np.float32) if prompt.box is not None else None
        self.generator.set_image(image)
        with autocast_for(self.device):
            masks, ious, _ = self.predictor.predict(
                point_coords=coords, point_labels=labels, box=box, multimask_output=True
            )
        return from_candidates(np.asarray(masks) > 0, np.asarray(ious), prompt.candidate)

    def propose(self, image: np.ndarray) -> Proposals:
        """Proposals over the point grid, quality-filtered and deduplicated.

        Args:
            image: ``(H, W, 3)`` uint8 RGB.

        Returns:
            ``(N, H, W)`` bool masks and ``(N,)`` predicted IoUs, best first.
        """
        return self.generator.propose(image)

    def propose_at(self, image: np.ndarray, positives: np.ndarray,
                   negatives: np.ndarray) -> Proposals:
        """Proposals from prompts at chosen points (similarity-guided prompting).

        Args:
            image: ``(H, W, 3)`` uint8 RGB.
            positives: ``(P, 2)`` ``(x, y)`` pixels, one prompt each.
            negatives: ``(Q, 2)`` ``(x, y)`` pixels added to every prompt as negatives.
        """
        return self.generator.propose_at(image, positives, negatives)
