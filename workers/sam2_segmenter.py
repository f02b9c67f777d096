"""SAM 2.1 as a ``Segmenter``: prompts through ``SAM2ImagePredictor``, proposals through
``SAM2AutomaticMaskGenerator`` with the settings' grid and quality thresholds.
"""

from __future__ import annotations

import warnings
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import numpy as np
import torch

from prodseg.prompts import Prompt
from workers.backends import Proposals, SegmentedMask


@dataclass(frozen=True)
class ProposalParams:
    """The automatic mask generator's knobs (the design document's table).

    Attributes:
        points_per_side: prompt grid density.
        pred_iou_thresh: minimum predicted IoU.
        stability_score_thresh: minimum stability score.
        points_per_batch: prompts per decoder call (memory, not results).
    """

    points_per_side: int = 32
    pred_iou_thresh: float = 0.86
    stability_score_thresh: float = 0.92
    points_per_batch: int = 64


class Sam2Segmenter:
    """Prompted masks and automatic proposals from one SAM2 model.

    Args:
        model: a ``SAM2Base`` built by ``sam2.build_sam.build_sam2``.
        params: proposal generator settings.
        name: shown in outputs.
    """

    def __init__(self, model: torch.nn.Module, params: ProposalParams, name: str) -> None:
        from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        self.model = model
        self.name = name
        self.device = next(model.parameters()).device
        with warnings.catch_warnings():
            # sam2's transforms use torch.jit.script, which newer torch flags as deprecated.
            warnings.filterwarnings("ignore", message=".*torch.jit.script", category=FutureWarning)
            self.predictor = SAM2ImagePredictor(model)
            self.generator = SAM2AutomaticMaskGenerator(
            model,
                points_per_side=params.points_per_side,
                points_per_batch=params.points_per_batch,
                pred_iou_thresh=params.pred_iou_thresh,
                stability_score_thresh=params.stability_score_thresh,
                output_mode="binary_mask",
            )

    def _autocast(self) -> AbstractContextManager[object]:
        if self.device.type == "cuda":
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            return torch.autocast("cuda", dtype=dtype)
        return nullcontext()

    @torch.inference_mode()
    def segment(self, image: np.ndarray, prompt: Prompt) -> SegmentedMask:
        """Best of SAM2's three candidate masks for the prompt, by predicted IoU.

        Args:
            image: ``(H, W, 3)`` uint8 RGB.
            prompt: points (label 1 positive, 0 negative) and/or a box, image pixels.

        Returns:
            ``(H, W)`` bool mask and its predicted IoU.
        """
        coords = np.asarray(prompt.points, dtype=np.float32) if prompt.points else None
        labels = np.asarray(prompt.labels, dtype=np.int32) if prompt.points else None
        box = np.asarray(prompt.box, dtype=np.float32) if prompt.box is not None else None
        with self._autocast():
            self.predictor.set_image(image)
            masks, ious, _ = self.predictor.predict(
                point_coords=coords, point_labels=labels, box=box, multimask_output=True
            )
        best = int(np.argmax(ious))
        return SegmentedMask(mask=np.asarray(masks[best]) > 0, score=float(ious[best]))

    @torch.inference_mode()
    def propose(self, image: np.ndarray) -> Proposals:
        """Automatic proposals over the point grid, already quality-filtered.

        Args:
            image: ``(H, W, 3)`` uint8 RGB.

        Returns:
            ``(N, H, W)`` bool masks and ``(N,)`` predicted IoUs.
        """
        with self._autocast():
            records = self.generator.generate(image)
        h, w = image.shape[:2]
        if not records:
            return Proposals(np.zeros((0, h, w), bool), np.zeros(0, np.float32))
        masks = np.stack([np.asarray(r["segmentation"], dtype=bool) for r in records])
        scores = np.asarray([r["predicted_iou"] for r in records], dtype=np.float32)
        return Proposals(masks, scores)
