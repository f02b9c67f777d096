"""Object proposals from SAM2 point prompts, decided on low-resolution logits.

The recipe and parameters are those of SAM2's automatic mask generator: prompt the model
with a grid of single points, three candidate masks each; keep candidates whose predicted
IoU exceeds ``pred_iou_thresh`` and whose stability score (IoU of the mask thresholded
at ``mask_threshold +/- 1``) reaches ``stability_score_thresh``; drop duplicates by box
NMS at ``box_nms_thresh``, best predicted IoU first. What differs is where the work is
done. Every candidate stays a ``(256, 256)`` logits tensor; stability, areas and boxes of
the full-resolution masks are read off the logits exactly (``prodseg.workers.segment.sam2_lowres``);
only the survivors of NMS are upsampled to the image's size; nothing is run-length
encoded. The same filters serve prompts at chosen points (``propose_at``), which
similarity-guided prompting uses.

``ProposalGenerator`` records where its time went (``last_timing``): the image encoder,
the decoder's forward passes, and everything else, split into its stages: the filters,
the boxes, NMS and the survivors' full-resolution masks.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from prodseg.workers.models.builders import autocast_for
from prodseg.workers.segment.lanes import cpu_lanes, in_lanes
from prodseg.workers.segment.protocol import Proposals
from prodseg.workers.segment.sam2_candidates import (
    Candidates,
    ProposalParams,
    candidate_boxes,
    deduplicate,
    filter_candidates,
    point_grid,
    take_across,
    to_proposals,
)
from prodseg.workers.segment.sam2_decoder import decode_points


@dataclass
class Timing:
    """Where one ``propose``/``propose_at`` call spent its time.

    Attributes:
        encoder: seconds in SAM2's image encoder.
        decoder: seconds in the mask decoder's forward passes (and the prompt encoder).
        other: seconds in everything else: the four stages below and the glue between.
        filters: seconds in the predicted-IoU and stability filters.
        boxes: seconds finding the filtered candidates' boxes.
        nms: seconds in box NMS.
        masks: seconds upsampling the survivors and the area-ratio filter.
        prompts: prompts decoded.
        candidates: candidate masks decoded (three per prompt).
        filtered: candidates that passed the filters (the boxes' and NMS' work).
        survivors: proposals returned.
    """

    encoder: float = 0.0
    decoder: float = 0.0
    other: float = 0.0
    filters: float = 0.0
    boxes: float = 0.0
    nms: float = 0.0
    masks: float = 0.0
    prompts: int = 0
    candidates: int = 0
    filtered: int = 0
    survivors: int = 0

    @property
    def total(self) -> float:
        return self.encoder + self.decoder + self.other


class ProposalGenerator:
    """Grid proposals and point-prompted proposals from one SAM2 model.

    Args:
        model: a ``SAM2Base`` (``sam2.build_sam.build_sam2``).
        params: thresholds and grid.
        restructured_decoder: decode with ``sam2_decoder`` (same function, about
            3x faster on a CPU) instead of the stock module; default: on the CPU only,
            where the stock module's batched kernels are not the better choice.
    """

    def __init__(self, model: torch.nn.Module, params: ProposalParams,
                 restructured_decoder: bool | None = None) -> None:
        import warnings

        from sam2.sam2_image_predictor import SAM2ImagePredictor

        self.model: Any = model  # SAM2Base; its submodules are untyped
        self.params = params
        self.device = next(model.parameters()).device
        self.restructured_decoder = (self.device.type == "cpu" if restructured_decoder is None
                                     else restructured_decoder)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*torch.jit.script", category=FutureWarning)
            self.predictor = SAM2ImagePredictor(model)
        self.last_timing = Timing()
        self._encoded: np.ndarray | None = None  # a copy of the image the features are of

    # -- timing --------------------------------------------------------------------------

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @contextmanager
    def _timed(self, timing: Timing, part: str) -> Iterator[None]:
        self._sync()
        start = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            setattr(timing, part, getattr(timing, part) + time.perf_counter() - start)

    # -- the model -----------------------------------------------------------------------

    def set_image(self, image: np.ndarray, timing: Timing | None = None) -> None:
        """Run the image encoder once; every prompt after it reuses the features.

        The same pixels again (the next click of an interactive selection) keep the
        features already computed.

        Args:
            image: ``(H, W, 3)`` uint8 RGB.
        """
        if self._encoded is not None and self._encoded.shape == image.shape \
                and np.array_equal(self._encoded, image):
            return
        self._encoded = None
        with self._timed(timing or Timing(), "encoder"), autocast_for(self.device):
            self.predictor.set_image(image)
        self._encoded = np.array(image, copy=True)

    def decode(self, coords: np.ndarray, labels: np.ndarray) -> Candidates:
        """Three candidate masks per prompt on the image set last.

        Args:
            coords: ``(B, P, 2)`` float32 ``(x, y)`` pixels; each prompt has ``P`` points.
            labels: ``(B, P)`` int, 1 positive and 0 negative.

        Returns:
            ``Candidates`` with ``3 * B`` rows, prompt-major.
        """
        p = self.predictor
        h, w = p._orig_hw[-1]
        points = torch.as_tensor(coords, dtype=torch.float32, device=self.device)
        points = p._transforms.transform_coords(points, normalize=True, orig_hw=(h, w))
        point_labels = torch.as_tensor(labels, dtype=torch.int, device=self.device)
        with autocast_for(self.device):
            sparse, dense = self.model.sam_prompt_encoder(
                points=(points, point_labels), boxes=None, masks=None)
            high_res = [level[-1].unsqueeze(0) for level in p._features["high_res_feats"]]
            embedding = p._features["image_embed"][-1].unsqueeze(0)
            if self.restructured_decoder:
                skip = self.params.pred_iou_thresh if self.params.pred_iou_thresh > 0 else None
                logits, iou = decode_points(self.model, embedding, high_res, sparse, dense,
                                            skip_below=skip)
            else:
                logits, iou, _, _ = self.model.sam_mask_decoder(
                    image_embeddings=embedding,
                    image_pe=self.model.sam_prompt_encoder.get_dense_pe(),
                    sparse_prompt_embeddings=sparse,
                    dense_prompt_embeddings=dense,
                    multimask_output=True,
                    repeat_image=points.shape[0] > 1,
                    high_res_features=high_res,
                )
        return Candidates(logits.flatten(0, 1).float(), iou.flatten(0, 1).float())

    # -- proposals -----------------------------------------------------------------------

    @torch.inference_mode()
    def propose(self, image: np.ndarray) -> Proposals:
        """Proposals from the full prompt grid (the automatic mask generator's job).

        Args:
            image: ``(H, W, 3)`` uint8 RGB.

        Returns:
            ``(N, H, W)`` bool masks and ``(N,)`` predicted IoUs, best first.
        """
        h, w = image.shape[:2]
        grid = point_grid(self.params.points_per_side, h, w)
        return self._run(image, grid[:, None, :], np.ones((len(grid), 1), np.int64))

    @torch.inference_mode()
    def propose_at(self, image: np.ndarray, positives: np.ndarray,
                   negatives: np.ndarray | None = None) -> Proposals:
        """Proposals from one prompt per positive point, each with all negative points.

        Args:
            image: ``(H, W, 3)`` uint8 RGB.
            positives: ``(P, 2)`` ``(x, y)`` pixels.
            negatives: ``(Q, 2)`` ``(x, y)`` pixels shared by every prompt, or None.
        """
        positives = np.asarray(positives, np.float32).reshape(-1, 2)
        negs = np.zeros((0, 2), np.float32) if negatives is None else np.asarray(
            negatives, np.float32).reshape(-1, 2)
        n = len(positives)
        coords = np.concatenate(
            [positives[:, None, :], np.broadcast_to(negs, (n, *negs.shape))], axis=1)
        labels = np.concatenate(
            [np.ones((n, 1), np.int64), np.zeros((n, len(negs)), np.int64)], axis=1)
        return self._run(image, coords, labels)

    def _run(self, image: np.ndarray, coords: np.ndarray, labels: np.ndarray) -> Proposals:
        size = (int(image.shape[0]), int(image.shape[1]))
        timing = Timing(prompts=len(coords))
        self.set_image(image, timing)
        start = time.perf_counter()
        step = max(1, self.params.points_per_batch)
        batches = [slice(begin, begin + step) for begin in range(0, len(coords), step)]
        lanes = cpu_lanes(self.device, len(batches))
        def filter_and_box(cands: Candidates) -> tuple[Candidates, torch.Tensor, float]:
            t0 = time.perf_counter()
            kept = filter_candidates(cands, self.params, size)
            t1 = time.perf_counter()
            # boxes per batch, where the batch's candidates are: one thread per lane
            return kept, candidate_boxes(kept, self.params, size), t1 - t0

        if lanes == 1:
            done: list[tuple[Candidates, torch.Tensor, int, float, float, float]] = []
            for batch in batches:
                with self._timed(timing, "decoder"):
                    cands = self.decode(coords[batch], labels[batch])
                t0 = time.perf_counter()
                kept, boxes, filtering = filter_and_box(cands)
                self._sync()
                done.append((kept, boxes, len(cands.scores), 0.0, filtering,
                             time.perf_counter() - t0 - filtering))
            timing.filters = sum(d[4] for d in done)
            timing.boxes = sum(d[5] for d in done)
        else:  # the CPU's cores take a batch each: decoder, filters, boxes, one thread each
            def decode_filter_box(batch: slice
                                  ) -> tuple[Candidates, torch.Tensor, int, float, float, float]:
                t0 = time.perf_counter()
                cands = self.decode(coords[batch], labels[batch])
                t1 = time.perf_counter()
                kept, boxes, filtering = filter_and_box(cands)
                return (kept, boxes, len(cands.scores), t1 - t0, filtering,
                        time.perf_counter() - t1 - filtering)

            done = in_lanes(decode_filter_box, batches, lanes)
            spent = [sum(d[3] for d in done), sum(d[4] for d in done), sum(d[5] for d in done)]
            # the wall time of the lanes, shared out as their threads spent it
            wall = time.perf_counter() - start
            timing.decoder += wall * spent[0] / max(sum(spent), 1e-9)
            timing.filters = wall * spent[1] / max(sum(spent), 1e-9)
            timing.boxes = wall * spent[2] / max(sum(spent), 1e-9)
        parts = [d[0] for d in done]
        timing.candidates = sum(d[2] for d in done)
        timing.filtered = sum(len(p.scores) for p in parts)
        with self._timed(timing, "nms"):
            scores = torch.cat([p.scores for p in parts])
            order = deduplicate(scores, torch.cat([d[1] for d in done]), self.params)
        with self._timed(timing, "masks"):
            survivors = take_across(parts, order, self.device)
            proposals = to_proposals(survivors, self.params, size)
        timing.survivors = len(proposals)
        self._sync()
        timing.other = time.perf_counter() - start - timing.decoder
        self.last_timing = timing
        return proposals
