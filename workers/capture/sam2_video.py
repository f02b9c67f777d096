"""SAM 2.1's video predictor as a ``Tracker``, fed frames from memory."""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from prodseg.prompts import Prompt
from prodseg.workers.capture.tracking import check_frames, present
from prodseg.workers.models.builders import autocast_for, build_with_weights


@functools.lru_cache(maxsize=2)
def build_sam2_video_model(size: str, weights: str, cache_dir: Path, device: str,
                           seed: int = 0) -> torch.nn.Module:
    """SAM 2.1's video predictor (``SAM2VideoPredictor``), eval mode, on ``device``; cached.

    Same conventions as ``models.builders.build_sam2_model``: the official checkpoint from
    ``cache_dir``, or seeded random weights (the same seed gives the same weights as the
    image model). SAM2's hole filling of low-resolution masks is switched off: it needs the
    compiled ``sam2._C`` extension (without it SAM2 warns on every frame and skips it), and
    ``Sam2Segmenter`` does not fill holes either.

    Args:
        size: ``hiera_tiny``, ``hiera_small``, ``hiera_base_plus`` or ``hiera_large``.
        weights: ``"pretrained"`` or ``"random"``.
        cache_dir: the model cache directory.
        device: a torch device string.
        seed: seed of random weights.

    Raises:
        WeightsError: pretrained weights are not in the cache (names the download command).
    """
    from sam2.build_sam import build_sam2_video_predictor

    model = build_with_weights(build_sam2_video_predictor, size, weights, cache_dir, device,
                               seed)
    model.fill_hole_area = 0
    return model


class _PreparedFrames:
    """The frames as SAM2's video predictor indexes them: ``(3, S, S)`` float32, on demand.

    Made by the image predictor's own ``SAM2Transforms``, so the reference frame's features
    equal ``Sam2Segmenter``'s; one frame at a time instead of SAM2's ``(N, 3, S, S)``
    tensor (0.9 GB for 72 frames).
    """

    def __init__(self, frames: Sequence[np.ndarray], transforms: Any) -> None:
        self.frames = frames
        self.transforms = transforms

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.transforms(np.ascontiguousarray(self.frames[index]))


_LOADER_LOCK = threading.Lock()


class Sam2VideoTracker:
    """SAM2's video predictor as a ``Tracker``: memory-conditioned tracking from one prompt.

    Frames are handed to SAM2 from memory: ``init_state`` only reads a JPEG folder or an
    MP4 file, so while it runs, its frame loader is swapped (under a lock) for one that
    returns ``_PreparedFrames``; nothing is written to disk and no JPEG loss is added. Frames
    keep the orientation they are given in. The state's video size is the reference
    frame's; logits of a frame of another size are resized to that frame before the
    threshold at 0. ``init_state`` encodes frame 0 once more than needed (its warm-up).
    For one click the reference mask is ``Sam2Segmenter``'s (best of three by predicted
    IoU); for a box or several points SAM2's video predictor decodes a single mask, so
    the two may differ there.

    Args:
        model: a ``SAM2VideoPredictor`` (``build_sam2_video_model``).
        name: shown in outputs.
    """

    def __init__(self, model: torch.nn.Module, name: str = "sam2-video") -> None:
        from sam2.utils.transforms import SAM2Transforms

        self.model: Any = model
        self.name = name
        self.device = next(model.parameters()).device
        self.transforms = SAM2Transforms(resolution=self.model.image_size, mask_threshold=0.0)

    @classmethod
    def build(cls, size: str, weights: str, cache_dir: Path, device: str,
              seed: int = 0) -> Sam2VideoTracker:
        """A tracker on ``build_sam2_video_model(size, weights, cache_dir, device, seed)``."""
        return cls(build_sam2_video_model(size, weights, cache_dir, device, seed),
                   f"sam2.1_{size}-video")

    def track(self, frames: Sequence[np.ndarray], ref_index: int,
              prompt: Prompt) -> list[np.ndarray | None]:
        """Prompt SAM2 on the reference frame, then propagate forward and backward.

        Args:
            frames: ``(H_i, W_i, 3)`` uint8 RGB images in capture order.
            ref_index: the frame the prompt belongs to.
            prompt: points and/or box in the reference frame's pixels.

        Returns:
            ``(H_i, W_i)`` bool masks (logits > 0), None where SAM2 reports the object
            absent or its mask is empty.
        """
        check_frames(frames, ref_index)
        height, width = frames[ref_index].shape[:2]
        points = np.asarray(prompt.points, np.float32) if prompt.points else None
        labels = np.asarray(prompt.labels, np.int32) if prompt.points else None
        box = np.asarray(prompt.box, np.float32) if prompt.box is not None else None
        out: list[np.ndarray | None] = [None] * len(frames)
        with autocast_for(self.device):
            state = self._init_state(frames, height, width)
            self.model.add_new_points_or_box(state, frame_idx=ref_index, obj_id=1,
                                             points=points, labels=labels, box=box)
            for reverse in (False, True):
                for index, _, logits in self.model.propagate_in_video(
                        state, start_frame_idx=ref_index, reverse=reverse):
                    out[index] = _threshold(logits[:1].float(), frames[index].shape[:2])
        return out

    def _init_state(self, frames: Sequence[np.ndarray], height: int,
                    width: int) -> dict[str, Any]:
        import sam2.sam2_video_predictor as video_module

        prepared = _PreparedFrames(frames, self.transforms)

        def load_from_memory(**_: object) -> tuple[_PreparedFrames, int, int]:
            return prepared, height, width

        with _LOADER_LOCK:
            original = video_module.load_video_frames
            video_module.load_video_frames = load_from_memory
            try:
                state: dict[str, Any] = self.model.init_state(video_path="<frames in memory>")
            finally:
                video_module.load_video_frames = original
        return state


def _threshold(logits: torch.Tensor, size: tuple[int, int]) -> np.ndarray | None:
    """``(1, 1, h, w)`` mask logits -> ``(H, W)`` bool at ``size``, None if empty."""
    if tuple(logits.shape[-2:]) != tuple(size):
        logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
    return present((logits[0, 0] > 0).cpu().numpy())
