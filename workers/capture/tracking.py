"""Tracking the product through an ordered spin set from the reference click, verified by FFA.

A spin set is 12 to 72 photos taken in order while walking around the product. A
``Tracker`` carries the product's mask from the reference frame to its neighbours, forward
and backward: SAM2's video predictor (``capture.sam2_video``) in production,
``classic.tracker.ContourTracker`` in logic tests. Trackers drift: where the product leaves
the frame the mask may jump to a neighbouring product and stay there. ``verify_track``
embeds every tracked mask with FFA and rejects the frames whose mask no longer looks like
the product.

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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from prodseg.prompts import Prompt
from prodseg.workers.embed.ffa_embedder import FFAEmbedder
from prodseg.workers.match.scoring import cosine_similarity

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


def check_frames(frames: Sequence[np.ndarray], ref_index: int) -> None:
    if not frames:
        raise ValueError("no frames to track through")
    if not 0 <= ref_index < len(frames):
        raise ValueError(f"reference index {ref_index} is outside 0..{len(frames) - 1}")


def present(mask: np.ndarray | None) -> np.ndarray | None:
    """The mask as ``(H, W)`` bool, or None if it is missing or empty."""
    if mask is None:
        return None
    mask = np.asarray(mask, dtype=bool)
    return mask if mask.any() else None


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
        kept = present(mask)
        out.append(None if kept is None else embedder.embed(frame, kept[None])[0])
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
    check_frames(frames, ref_index)
    forward, backward = paths = tracking_paths(len(frames), ref_index, circular)
    order = [*reversed(backward), ref_index, *forward]
    tracked = tracker.track([frames[i] for i in order], len(backward), prompt)
    if len(tracked) != len(order):
        raise ValueError(f"the tracker returned {len(tracked)} masks for {len(order)} frames")
    masks: list[np.ndarray | None] = [None] * len(frames)
    for position, i in enumerate(order):
        masks[i] = present(tracked[position])
    scores, accepted = _verify(masks, frames, embedder, bank, threshold, ref_index, paths,
                               recover_margin, step_threshold)
    return [TrackedView(i, mask, 0.0 if score is None else score, ok)
            for i, (mask, score, ok) in enumerate(zip(masks, scores, accepted, strict=True))]
