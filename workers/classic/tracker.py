"""A deterministic ``Tracker`` for logic tests, on the classic contour segmenter."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from prodseg.prompts import Prompt
from prodseg.workers.capture.tracking import check_frames, present, tracking_paths
from prodseg.workers.classic.segmenter import ContourSegmenter
from prodseg.workers.segment.protocol import Segmenter


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
        check_frames(frames, ref_index)
        out: list[np.ndarray | None] = [None] * len(frames)
        out[ref_index] = present(self.segmenter.segment(frames[ref_index], prompt).mask)
        for path in tracking_paths(len(frames), ref_index, circular=False):
            last, last_shape = out[ref_index], frames[ref_index].shape[:2]
            for i in path:
                if last is None:
                    break
                ys, xs = np.nonzero(last)
                h, w = frames[i].shape[:2]
                x = (float(xs.mean()) + 0.5) * w / last_shape[1] - 0.5
                y = (float(ys.mean()) + 0.5) * h / last_shape[0] - 0.5
                mask = present(self.segmenter.segment(frames[i], Prompt.from_point(x, y)).mask)
                if mask is not None:
                    out[i], last, last_shape = mask, mask, (h, w)
        return out
