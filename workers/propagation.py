"""Tracking the product through an ordered spin set from the reference click, verified by FFA.

A spin set is 12 to 72 photos taken in order while walking around the product. A
``Tracker`` carries the product's mask from the reference frame to its neighbours, forward
and backward: SAM2's video predictor (``Sam2VideoTracker``) in production, ``ContourTracker``
in logic tests. Trackers drift: where the product leaves the frame the mask may jump to a
neighbouring product and stay there. ``verify_track`` embeds every tracked mask with FFA
and rejects the frames whose mask no longer looks like the product.

Order of visits (``tracking_paths``). Without wrapping, the two paths out of the reference
are the video's directions. With ``circular=True`` (a spin set closes its loop: the last
view neighbours the first) each frame is reached the shorter way round, forward up to
``n // 2`` steps and backward up to ``n - 1 - n // 2``. ``propagate`` hands the tracker the
frames rotated into that order; trackers only ever see a linear sequence.

Verification rule (``accept_track``), per path, walking outward from the reference. A frame
is accepted if and only if it has a mask and one of these holds:

* the previous frame on its path (the reference, for the first) was accepted, and the
  mask's best cosine similarity to the bank is at least ``threshold``;
* the previous frame was rejected or lost, and the best cosine is at least
  ``threshold + recover_margin``: after a drift the track is trusted again only on clear
  evidence, so a distractor scoring just above the threshold cannot restart it;
* optional chaining (``step_threshold`` set): the previous frame was accepted and this
  mask's embedding has cosine >= ``step_threshold`` to the previous frame's. The product
  may then turn to sides unlike the bank one step at a time; a jump to another object
  breaks the chain, and a chain never restarts from a rejected frame.

The reference frame is held to the first rule (its "previous frame" counts as accepted).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from prodseg.prompts import Prompt
from workers.backends import Segmenter
from workers.classic import ContourSegmenter
from workers.embedding import FFAEmbedder
from workers.matching import cosine_similarity
from workers.models import autocast_for, build_with_weights

__all__ = [
    "ContourTracker", "Sam2VideoTracker", "TrackedView", "Tracker", "accept_track",
    "build_sam2_video_model", "propagate", "tracking_paths", "verify_track",
]

Paths = tuple[Sequence[int], Sequence[int]]


class Tracker(Protocol):
    """Carries one object's mask through an ordered sequence of frames."""

    def track(self, frames: Sequence[np.ndarray], ref_index: int,
              prompt: Prompt) -> list[np.ndarray | None]:
        """Segment the prompted object on the reference frame and follow it both ways.

        Args:
            frames: ``(H, W, 3)`` uint8 RGB images in capture order.
            ref_index: index of the frame the prompt belongs to.
            prompt: points and/or box in the reference frame's pixels.

        Returns:
            One ``(H_i, W_i)`` bool mask per frame, in order; None where the object is lost
            (an empty mask).
        """
        ...


@dataclass(frozen=True)
class TrackedView:
    """One frame of a verified track.

    Attributes:
        index: the frame's index in the sequence given to ``propagate``.
        mask: ``(H, W)`` bool tracked mask, or None where the tracker lost the object.
        score: best cosine similarity of the mask's FFA embedding to the bank, in [-1, 1];
            0.0 where there is no mask.
        accepted: whether verification kept the frame (see the module docstring).
    """

    index: int
    mask: np.ndarray | None
    score: float
    accepted: bool


def _check_frames(frames: Sequence[np.ndarray], ref_index: int) -> None:
    if not frames:
        raise ValueError("no frames to track through")
    if not 0 <= ref_index < len(frames):
        raise ValueError(f"reference index {ref_index} is outside 0..{len(frames) - 1}")


def _present(mask: np.ndarray | None) -> np.ndarray | None:
    """The mask as ``(H, W)`` bool, or None if it is missing or empty."""
    if mask is None:
        return None
    mask = np.asarray(mask, dtype=bool)
    return mask if mask.any() else None


# -- trackers ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=2)
def build_sam2_video_model(size: str, weights: str, cache_dir: Path, device: str,
                           seed: int = 0) -> torch.nn.Module:
    """SAM 2.1's video predictor (``SAM2VideoPredictor``), eval mode, on ``device``; cached.

    Same conventions as ``workers.models.build_sam2_model``: the official checkpoint from
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
        _check_frames(frames, ref_index)
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
    return _present((logits[0, 0] > 0).cpu().numpy())


class ContourTracker:
    """A deterministic ``Tracker`` for logic tests: re-prompt at the last mask's centroid.

    On each next frame along a path, the segmenter is prompted with one positive point at
    the centroid of the last non-empty mask (scaled if the frame sizes differ). Like a
    real tracker it follows the object while it looks alike from frame to frame, and
    drifts when the object vanishes: the point then lands on whatever stands there.

    Args:
        segmenter: any ``Segmenter``; ``ContourSegmenter()`` by default.
    """

    def __init__(self, segmenter: Segmenter | None = None) -> None:
        self.segmenter: Segmenter = segmenter if segmenter is not None else ContourSegmenter()

    def track(self, frames: Sequence[np.ndarray], ref_index: int,
              prompt: Prompt) -> list[np.ndarray | None]:
        """See ``Tracker.track``."""
        _check_frames(frames, ref_index)
        out: list[np.ndarray | None] = [None] * len(frames)
        out[ref_index] = _present(self.segmenter.segment(frames[ref_index], prompt).mask)
        for path in tracking_paths(len(frames), ref_index, circular=False):
            last, last_shape = out[ref_index], frames[ref_index].shape[:2]
            for i in path:
                if last is None:
                    break
                ys, xs = np.nonzero(last)
                h, w = frames[i].shape[:2]
                x = (float(xs.mean()) + 0.5) * w / last_shape[1] - 0.5
                y = (float(ys.mean()) + 0.5) * h / last_shape[0] - 0.5
                mask = _present(self.segmenter.segment(frames[i], Prompt.from_point(x, y)).mask)
                if mask is not None:
                    out[i], last, last_shape = mask, mask, (h, w)
        return out


# -- verification ------------------------------------------------------------------------


def tracking_paths(n_frames: int, ref_index: int, circular: bool) -> tuple[list[int], list[int]]:
    """The two walks out of the reference frame, nearest frame first.

    Args:
        n_frames: frames in the sequence.
        ref_index: the reference frame.
        circular: wrap around (the last frame neighbours the first).

    Returns:
        ``(forward, backward)`` frame indices; together with the reference they hold every
        frame once. Circular: ``forward`` has ``n // 2`` frames, ``backward`` the rest.
    """
    if not 0 <= ref_index < n_frames:
        raise ValueError(f"reference index {ref_index} is outside 0..{n_frames - 1}")
    if not circular:
        return list(range(ref_index + 1, n_frames)), list(range(ref_index - 1, -1, -1))
    ahead = n_frames // 2
    behind = n_frames - 1 - ahead
    return ([(ref_index + k) % n_frames for k in range(1, ahead + 1)],
            [(ref_index - k) % n_frames for k in range(1, behind + 1)])


def _embed(masks: Sequence[np.ndarray | None], frames: Sequence[np.ndarray],
           embedder: FFAEmbedder) -> list[np.ndarray | None]:
    """``(D,)`` float32 FFA embedding of each mask; None where the mask is None or empty."""
    out: list[np.ndarray | None] = []
    for mask, frame in zip(masks, frames, strict=True):
        present = _present(mask)
        out.append(None if present is None else embedder.embed(frame, present[None])[0])
    return out


def _bank_scores(embeddings: Sequence[np.ndarray | None],
                 bank: np.ndarray) -> list[float | None]:
    """Best cosine of each ``(D,)`` embedding to the ``(K, D)`` bank's rows; None stays None."""
    rows = np.atleast_2d(np.asarray(bank, np.float32))
    if rows.shape[0] == 0:
        raise ValueError("the bank is empty")
    return [None if e is None else float(cosine_similarity(rows, e).max()) for e in embeddings]


def _step_scores(embeddings: Sequence[np.ndarray | None], ref_index: int,
                 paths: Paths) -> list[float | None]:
    """Cosine of each frame's embedding to the previous frame's on its path.

    None for the reference, frames on no path and where either embedding is None.
    """
    out: list[float | None] = [None] * len(embeddings)
    for path in paths:
        previous = ref_index
        for i in path:
            a, b = embeddings[i], embeddings[previous]
            out[i] = None if a is None or b is None else float(cosine_similarity(a[None], b)[0])
            previous = i
    return out


def accept_track(scores: Sequence[float | None], ref_index: int, paths: Paths, threshold: float,
                 recover_margin: float = 0.1, steps: Sequence[float | None] | None = None,
                 step_threshold: float | None = None) -> list[bool]:
    """The verification rule of the module docstring, as a pure function.

    Args:
        scores: best bank similarity per frame; None where the frame has no mask.
        ref_index: the reference frame.
        paths: ``(forward, backward)`` from ``tracking_paths``.
        threshold: least bank similarity while the previous frame is accepted.
        recover_margin: extra similarity needed after a rejected or lost frame.
        steps: per frame, cosine to the previous frame's embedding on its path (None for
            the reference and where either mask is missing); used with ``step_threshold``.
        step_threshold: least similarity to the previous, accepted frame that accepts a
            frame below ``threshold``; None switches chaining off.

    Returns:
        One flag per frame; frames on no path (other than the reference) are rejected.
    """

    def judge(i: int, previous_ok: bool) -> bool:
        score = scores[i]
        if score is None:
            return False
        if score >= threshold + (0.0 if previous_ok else recover_margin):
            return True
        step = steps[i] if steps is not None else None
        return previous_ok and step_threshold is not None and step is not None \
            and step >= step_threshold

    accepted = [False] * len(scores)
    accepted[ref_index] = judge(ref_index, True)
    for path in paths:
        previous_ok = accepted[ref_index]
        for i in path:
            accepted[i] = previous_ok = judge(i, previous_ok)
    return accepted


def verify_track(masks: Sequence[np.ndarray | None], frames: Sequence[np.ndarray],
                 embedder: FFAEmbedder, bank: np.ndarray, threshold: float, ref_index: int, *,
                 circular: bool = True, recover_margin: float = 0.1,
                 step_threshold: float | None = None) -> list[bool]:
    """Which tracked frames to keep: FFA embeddings against the bank, by ``accept_track``.

    Args:
        masks: ``(H_i, W_i)`` bool or None per frame, as a tracker returns them.
        frames: ``(H_i, W_i, 3)`` uint8 RGB, the same order.
        embedder: the FFA embedder (DINOv2 in production).
        bank: ``(K, D)`` float: the product's embeddings (the reference's at least).
        threshold: least best-cosine to the bank.
        ref_index: the reference frame.
        circular: the paths wrap around (as ``propagate`` tracks a spin set).
        recover_margin: see ``accept_track``.
        step_threshold: see ``accept_track``; None: no chaining.

    Returns:
        One flag per frame.
    """
    paths = tracking_paths(len(frames), ref_index, circular)
    return _verify(masks, frames, embedder, bank, threshold, ref_index, paths,
                   recover_margin, step_threshold)[1]


def _verify(masks: Sequence[np.ndarray | None], frames: Sequence[np.ndarray],
            embedder: FFAEmbedder, bank: np.ndarray, threshold: float, ref_index: int,
            paths: Paths, recover_margin: float, step_threshold: float | None,
            ) -> tuple[list[float | None], list[bool]]:
    """Bank scores and acceptance flags per frame (``verify_track``'s arguments)."""
    embeddings = _embed(masks, frames, embedder)
    scores = _bank_scores(embeddings, bank)
    steps = _step_scores(embeddings, ref_index, paths) if step_threshold is not None else None
    return scores, accept_track(scores, ref_index, paths, threshold, recover_margin, steps,
                                step_threshold)


def propagate(frames: Sequence[np.ndarray], ref_index: int, prompt: Prompt, tracker: Tracker,
              embedder: FFAEmbedder, bank: np.ndarray, threshold: float, *,
              circular: bool = True, recover_margin: float = 0.1,
              step_threshold: float | None = None) -> list[TrackedView]:
    """Track the prompted product through the frames and verify every tracked mask.

    The tracker gets the frames in path order (the backward path reversed, the reference,
    the forward path: with ``circular`` the set is rotated so that the reference sits in
    the middle); results come back in the order given.

    Args:
        frames: ``(H_i, W_i, 3)`` uint8 RGB images in capture order.
        ref_index: the frame the prompt belongs to.
        prompt: the reference click(s) or box, in that frame's pixels.
        tracker: the ``Tracker``.
        embedder: the FFA embedder.
        bank: ``(K, D)`` float: the product's embeddings.
        threshold, circular, recover_margin, step_threshold: as for ``verify_track``.

    Returns:
        One ``TrackedView`` per frame, in the order given.
    """
    _check_frames(frames, ref_index)
    forward, backward = paths = tracking_paths(len(frames), ref_index, circular)
    order = [*reversed(backward), ref_index, *forward]
    tracked = tracker.track([frames[i] for i in order], len(backward), prompt)
    if len(tracked) != len(order):
        raise ValueError(f"the tracker returned {len(tracked)} masks for {len(order)} frames")
    masks: list[np.ndarray | None] = [None] * len(frames)
    for position, i in enumerate(order):
        masks[i] = _present(tracked[position])
    scores, accepted = _verify(masks, frames, embedder, bank, threshold, ref_index, paths,
                               recover_margin, step_threshold)
    return [TrackedView(i, mask, 0.0 if score is None else score, ok)
            for i, (mask, score, ok) in enumerate(zip(masks, scores, accepted, strict=True))]
