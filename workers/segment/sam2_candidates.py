"""What a proposal candidate is, and which candidates survive.

A candidate is one of SAM2's masks still as the decoder's ``(256, 256)`` logits. The
filters are those of SAM2's automatic mask generator, decided on the logits: predicted
IoU, stability (the IoU of the full-size mask thresholded at ``mask_threshold +/-
offset``, bounded exactly by ``sam2_mixed_cells``), box NMS, and the area-ratio filter on the
survivors, the only masks ever upsampled to the image's size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torchvision.ops import batched_nms

from prodseg.workers.segment.protocol import Proposals
from prodseg.workers.segment.sam2_boxes import exact_boxes
from prodseg.workers.segment.sam2_lowres import bilinear_taps, exact_areas, upsample
from prodseg.workers.segment.sam2_mixed_cells import tight_area_bounds


@dataclass(frozen=True)
class ProposalParams:
    """The generator's knobs: the design document's table plus SAM2's fixed defaults.

    Attributes:
        points_per_side: prompt grid density (``n * n`` points).
        pred_iou_thresh: keep candidates whose predicted IoU is above this (0: all).
        stability_score_thresh: keep candidates whose stability is at least this (0: all).
        points_per_batch: prompts per decoder call (memory and speed, not results).
        box_nms_thresh: box IoU above which the lower-scored candidate is a duplicate.
        stability_score_offset: logit offset of the stability score.
        mask_threshold: logit above which a pixel is in the mask.
        min_area_ratio: drop proposals smaller than this fraction of the image.
        max_area_ratio: drop proposals larger than this fraction of the image.
    """

    points_per_side: int = 32
    pred_iou_thresh: float = 0.86
    stability_score_thresh: float = 0.92
    points_per_batch: int = 64
    box_nms_thresh: float = 0.7
    stability_score_offset: float = 1.0
    mask_threshold: float = 0.0
    min_area_ratio: float = 0.0
    max_area_ratio: float = 1.0


def point_grid(points_per_side: int, height: int, width: int) -> np.ndarray:
    """SAM2's prompt grid: cell centres of an ``n x n`` grid over the image.

    Returns:
        ``(n * n, 2)`` float32 ``(x, y)`` pixel coordinates, row by row.
    """
    offset = 1.0 / (2 * points_per_side)
    ticks = np.linspace(offset, 1 - offset, points_per_side)
    xs = np.tile(ticks[None, :], (points_per_side, 1))
    ys = np.tile(ticks[:, None], (1, points_per_side))
    grid = np.stack([xs, ys], axis=-1).reshape(-1, 2)
    return (grid * np.array([width, height])).astype(np.float32)


@dataclass
class Candidates:
    """Decoded candidates still at the decoder's resolution.

    Attributes:
        logits: ``(N, h, w)`` float32 mask logits.
        scores: ``(N,)`` float32 predicted IoU.
    """

    logits: torch.Tensor
    scores: torch.Tensor

    @staticmethod
    def empty(device: torch.device) -> Candidates:
        return Candidates(torch.zeros((0, 256, 256), device=device), torch.zeros(0, device=device))

    def take(self, index: torch.Tensor) -> Candidates:
        return Candidates(self.logits[index], self.scores[index])

    @staticmethod
    def cat(parts: list[Candidates], device: torch.device) -> Candidates:
        if not parts:
            return Candidates.empty(device)
        return Candidates(torch.cat([p.logits for p in parts]),
                          torch.cat([p.scores for p in parts]))


def stability_keep(logits: torch.Tensor, params: ProposalParams,
                   size: tuple[int, int]) -> torch.Tensor:
    """Which candidates reach ``stability_score_thresh`` at full resolution.

    Decided from area bounds (``sam2_mixed_cells.tight_area_bounds``, which leave open only the
    few pixels within rounding of a level) where they settle it; the rare rest are
    upsampled and counted.

    Args:
        logits: ``(N, h, w)``.
        params: thresholds.
        size: ``(H, W)`` of the image.

    Returns:
        ``(N,)`` bool.
    """
    h, w = logits.shape[1:]
    thresh = params.stability_score_thresh
    levels = (params.mask_threshold + params.stability_score_offset,
              params.mask_threshold - params.stability_score_offset)
    rows = bilinear_taps(h, size[0], logits.device)
    cols = bilinear_taps(w, size[1], logits.device)
    (inter_lo, union_lo), (inter_hi, union_hi) = tight_area_bounds(logits, levels, rows, cols)
    one = torch.ones_like(union_hi)
    sure_pass = (union_hi > 0) & (inter_lo.float() / union_hi.clamp(min=1).float() >= thresh)
    sure_fail = (union_hi == 0) | (
        (union_lo > 0) & (inter_hi.float() / torch.maximum(union_lo, one).float() < thresh)
    )
    keep = sure_pass.clone()
    open_ = torch.nonzero(~sure_pass & ~sure_fail).flatten()
    if len(open_):
        inter, union = exact_areas(logits[open_], levels, size)
        keep[open_] = (inter.int() / union.int()) >= thresh  # NaN (empty) fails, as in SAM2
    return keep


def filter_candidates(cands: Candidates, params: ProposalParams,
                      size: tuple[int, int]) -> Candidates:
    """Predicted-IoU and stability filters of one decoded batch."""
    if params.pred_iou_thresh > 0.0:
        cands = cands.take(torch.nonzero(cands.scores > params.pred_iou_thresh).flatten())
    if params.stability_score_thresh > 0.0 and len(cands.scores):
        cands = cands.take(torch.nonzero(stability_keep(cands.logits, params, size)).flatten())
    return cands


def candidate_boxes(cands: Candidates, params: ProposalParams,
                    size: tuple[int, int]) -> torch.Tensor:
    """``(N, 4)`` float32 XYXY boxes of the candidates' full-resolution masks, from logits."""
    return exact_boxes(cands.logits, params.mask_threshold, size).float()


def deduplicate(scores: torch.Tensor, boxes: torch.Tensor, params: ProposalParams
                ) -> torch.Tensor:
    """Box NMS over the full-resolution boxes, best predicted IoU first (SAM2's order).

    Args:
        scores: ``(N,)`` predicted IoUs of the candidates that passed the filters.
        boxes: ``(N, 4)`` their boxes (``candidate_boxes``).
        params: the NMS threshold.

    Returns:
        ``(M,)`` int64 indices of the survivors, best first.
    """
    if len(scores) == 0:
        return torch.zeros(0, dtype=torch.long, device=scores.device)
    classes = torch.zeros_like(scores, dtype=torch.long)
    return batched_nms(boxes, scores.float(), classes, iou_threshold=params.box_nms_thresh)


def take_across(parts: list[Candidates], index: torch.Tensor, device: torch.device
                ) -> Candidates:
    """The candidates at ``index`` of the parts laid end to end, in that order, without
    laying the parts' logits end to end (only the taken ones are copied)."""
    if len(index) == 0:
        return Candidates.empty(device)
    sizes = torch.tensor([len(p.scores) for p in parts], dtype=torch.long)
    ends = torch.cumsum(sizes, 0)
    flat = index.cpu()
    part = torch.searchsorted(ends, flat, right=True)
    local = flat - (ends - sizes)[part]
    pairs = list(zip(part.tolist(), local.tolist(), strict=True))
    return Candidates(torch.stack([parts[b].logits[i] for b, i in pairs]),
                      torch.stack([parts[b].scores[i] for b, i in pairs]))


def to_proposals(cands: Candidates, params: ProposalParams, size: tuple[int, int],
                 chunk: int = 32) -> Proposals:
    """Upsample the survivors and apply the area-ratio filter.

    Returns:
        ``Proposals``: ``(M, H, W)`` bool masks and their ``(M,)`` predicted IoUs, in
        NMS order (best first).
    """
    height, width = size
    masks: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    lo = params.min_area_ratio * height * width
    hi = params.max_area_ratio * height * width
    for start in range(0, len(cands.scores), chunk):
        full = upsample(cands.logits[start : start + chunk], size) > params.mask_threshold
        area = full.flatten(1).sum(1)
        ok = (area >= lo) & (area <= hi) & (area > 0)
        masks.append(full[ok].cpu().numpy())
        scores.append(cands.scores[start : start + chunk][ok].float().cpu().numpy())
    if not masks:
        return Proposals(np.zeros((0, height, width), bool), np.zeros(0, np.float32))
    return Proposals(np.concatenate(masks), np.concatenate(scores).astype(np.float32))
