"""A deterministic stand-in for SAM2: objects as closed outlines, from classic processing.

``ContourSegmenter`` finds objects as closed outlines: edges, closed into shapes, filled.
With ``classic.backbone`` (for DINOv2) it learns nothing and needs no torch; together they
make fast runs and end-to-end tests of the pipeline possible on clean scenes such as
``producer.samples.scene``. Do not expect them to work on cluttered real photos.
"""

from __future__ import annotations

import cv2
import numpy as np

from prodseg.prompts import Prompt
from prodseg.workers.segment.protocol import Proposals, SegmentedMask


def _odd(n: float) -> int:
    """``n`` rounded, then made odd (rounding up) and at least 3: a kernel size."""
    return max(3, round(n) | 1)


def _colour_gradient(
    image: np.ndarray, sigma: float, chroma_weight: float
) -> tuple[np.ndarray, np.ndarray]:
    """Di Zenzo colour gradient of a smoothed image, as Canny's ``dx``, ``dy`` input.

    The gradients of the L, a and b channels (a and b scaled by ``chroma_weight``) are
    combined through their structure tensor, so that a change of hue at equal brightness
    counts as an edge as much as a change of brightness does. The magnitude is multiplied
    by ``sigma`` (a scale-normalised gradient), so that one threshold suits every image
    size when ``sigma`` grows with the image.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        sigma: Gaussian smoothing in pixels.
        chroma_weight: weight of the a and b channels relative to L.

    Returns:
        ``dx`` and ``dy``, each ``(H, W)`` int16.
    """
    lab = cv2.cvtColor(cv2.GaussianBlur(image, (0, 0), sigma), cv2.COLOR_RGB2LAB).astype(np.float32)
    lab[..., 1:] *= chroma_weight
    gx = cv2.Sobel(lab, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(lab, cv2.CV_32F, 0, 1, ksize=3)
    jxx, jyy, jxy = (gx * gx).sum(-1), (gy * gy).sum(-1), (gx * gy).sum(-1)
    magnitude = np.sqrt(0.5 * (jxx + jyy + np.sqrt((jxx - jyy) ** 2 + 4 * jxy * jxy)))
    angle = 0.5 * np.arctan2(2 * jxy, jxx - jyy)
    magnitude *= sigma
    limit = np.iinfo(np.int16).max
    dx = np.clip(magnitude * np.cos(angle), -limit, limit).astype(np.int16)
    dy = np.clip(magnitude * np.sin(angle), -limit, limit).astype(np.int16)
    return dx, dy


def _overlaps(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairwise intersections and areas of ``(N, H, W)`` bool masks, on every other pixel.

    Returns:
        ``(N, N)`` float32 intersections and ``(N,)`` float32 areas.
    """
    flat = masks[:, ::2, ::2].reshape(len(masks), -1).astype(np.float32)
    return flat @ flat.T, flat.sum(axis=1)


def _keep_distinct(masks: np.ndarray, scores: np.ndarray, duplicate_iou: float,
                   fragment_growth: float) -> list[int]:
    """Indices of the proposals that are neither duplicates nor fragments of others.

    A duplicate overlaps a better-scored proposal with IoU >= ``duplicate_iou``. A fragment
    lies (97 %) inside another proposal that is at most ``fragment_growth`` times larger
    and about as compact: the same object, outlined where an edge broke in the fragment.

    Args:
        masks: ``(N, H, W)`` bool, best score first.
        scores: ``(N,)`` solidity scores.
        duplicate_iou: IoU at which the weaker of two proposals is dropped.
        fragment_growth: largest area ratio between an object and its fragment.
    """
    inter, area = _overlaps(masks)
    iou = inter / np.maximum(area[:, None] + area[None, :] - inter, 1.0)
    keep: list[int] = []
    for i in range(len(masks)):
        inside = inter[i] >= 0.97 * area[i]
        larger = (area > 1.02 * area[i]) & (area <= fragment_growth * area[i])
        if np.any(inside & larger & (scores >= scores[i] - 0.02)):
            continue
        if all(iou[i, j] < duplicate_iou for j in keep):
            keep.append(i)
    return keep


def _box_iou(mask: np.ndarray, box: tuple[float, float, float, float]) -> float:
    """IoU of a mask's bounding box with an ``(x0, y0, x1, y1)`` box."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return 0.0
    mx0, my0, mx1, my1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    x0, y0, x1, y1 = box
    iw = max(0.0, min(mx1, x1) - max(mx0, x0))
    ih = max(0.0, min(my1, y1) - max(my0, y0))
    inter = iw * ih
    union = (mx1 - mx0) * (my1 - my0) + (x1 - x0) * (y1 - y0) - inter
    return float(inter / union) if union > 0 else 0.0


class ContourSegmenter:
    """Object masks from closed edge outlines (a ``segment.protocol.Segmenter``).

    Canny edges of the image's colour gradient are found at each threshold pair and
    closed with a round kernel of each size; every outermost closed outline, filled, is a
    proposal. Proposals that nearly repeat a better one, or that are fragments of a
    slightly larger and equally compact one, are dropped. A proposal's score is its
    solidity (area over convex-hull area), so compact objects score high and ragged
    clutter low. All sizes are relative to the image, so results barely depend on its
    resolution.

    Args:
        canny_thresholds: (low, high) Canny thresholds on the scale-normalised colour
            gradient (3x3 Sobel responses on CIELAB, times the smoothing in pixels).
        closing_sizes: closing kernel diameters as fractions of the image's long side.
        smoothing: Gaussian smoothing before edges, as a fraction of the long side.
        min_area: smallest proposal, as a fraction of the image area.
        max_area: largest proposal, as a fraction of the image area.
        duplicate_iou: a proposal overlapping a kept one at least this much is dropped.
        fragment_growth: a proposal inside another one, at most this many times larger and
            about as compact, is a fragment of it (an outline broken by a weak edge) and is
            dropped.
        chroma_weight: weight of colour (CIELAB a, b) against lightness in the gradient.
    """

    def __init__(
        self,
        canny_thresholds: tuple[tuple[int, int], ...] = ((38, 115), (77, 205)),
        closing_sizes: tuple[float, ...] = (0.006, 0.012),
        smoothing: float = 0.002,
        min_area: float = 0.002,
        max_area: float = 0.6,
        duplicate_iou: float = 0.95,
        fragment_growth: float = 1.6,
        chroma_weight: float = 3.0,
    ) -> None:
        self.canny_thresholds = canny_thresholds
        self.closing_sizes = closing_sizes
        self.smoothing = smoothing
        self.min_area = min_area
        self.max_area = max_area
        self.duplicate_iou = duplicate_iou
        self.fragment_growth = fragment_growth
        self.chroma_weight = chroma_weight

    def propose(self, image: np.ndarray) -> Proposals:
        """Candidate object masks.

        Args:
            image: ``(H, W, 3)`` uint8 RGB.

        Returns:
            ``Proposals`` with ``(N, H, W)`` bool masks and ``(N,)`` float32 scores in [0, 1],
            best score first.
        """
        height, width = image.shape[:2]
        long_side = max(height, width)
        dx, dy = _colour_gradient(image, self.smoothing * long_side, self.chroma_weight)
        masks: list[np.ndarray] = []
        scores: list[float] = []
        for low, high in self.canny_thresholds:
            edges = cv2.Canny(dx, dy, low, high, L2gradient=True)
            for size in self.closing_sizes:
                kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (_odd(size * long_side),) * 2)
                closed = cv2.morphologyEx(edges, cv2.MORPH_CLOSE, kernel)
                contours, _ = cv2.findContours(closed, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
                for contour in contours:
                    area = cv2.contourArea(contour)
                    if not self.min_area * height * width <= area <= self.max_area * height * width:
                        continue
                    mask = np.zeros((height, width), np.uint8)
                    cv2.drawContours(mask, [contour], -1, 1, thickness=cv2.FILLED)
                    hull_area = cv2.contourArea(cv2.convexHull(contour))
                    masks.append(mask.astype(bool))
                    scores.append(min(1.0, area / hull_area) if hull_area > 0 else 0.0)
        if not masks:
            return Proposals(np.zeros((0, height, width), bool), np.zeros(0, np.float32))
        order = np.argsort(-np.asarray(scores), kind="stable")
        stack = np.stack(masks)[order]
        ranked = np.asarray(scores, np.float32)[order]
        keep = _keep_distinct(stack, ranked, self.duplicate_iou, self.fragment_growth)
        return Proposals(stack[keep], ranked[keep])

    def propose_at(self, image: np.ndarray, positives: np.ndarray,
                   negatives: np.ndarray) -> Proposals:
        """The proposals holding at least one positive point and no negative point.

        Args:
            image: ``(H, W, 3)`` uint8 RGB.
            positives: ``(P, 2)`` ``(x, y)`` pixels.
            negatives: ``(Q, 2)`` ``(x, y)`` pixels.
        """
        proposals = self.propose(image)
        height, width = image.shape[:2]

        def inside(points: np.ndarray) -> np.ndarray:  # (N, len(points)) bool
            pts = np.asarray(points, np.float64).reshape(-1, 2)
            cols = np.clip(np.round(pts[:, 0]).astype(int), 0, width - 1)
            rows = np.clip(np.round(pts[:, 1]).astype(int), 0, height - 1)
            return proposals.masks[:, rows, cols]

        keep = inside(positives).any(axis=1) & ~inside(negatives).any(axis=1)
        return Proposals(proposals.masks[keep], proposals.scores[keep])

    def segment(self, image: np.ndarray, prompt: Prompt) -> SegmentedMask:
        """The smallest proposal holding every positive point and no negative one.

        With a box and no points, the proposal whose bounding box best overlaps the box;
        with both, the best-overlapping proposal among those that fit the points. Like
        SAM2's three granularities, the candidates are the three smallest fitting
        proposals (with a box, the three best-overlapping); ``prompt.candidate`` picks
        one of them by area.

        Args:
            image: ``(H, W, 3)`` uint8 RGB.
            prompt: points and/or box in the image's pixels.

        Returns:
            The chosen ``(H, W)`` bool mask and its score, with the candidates' areas and
            scores; an empty mask with score 0 when no proposal fits.
        """
        proposals = self.propose(image)
        height, width = image.shape[:2]
        fits = np.ones(len(proposals), bool)
        for (x, y), label in zip(prompt.points, prompt.labels, strict=True):
            col = min(max(round(x), 0), width - 1)
            row = min(max(round(y), 0), height - 1)
            inside = proposals.masks[:, row, col]
            fits &= inside if label == 1 else ~inside
        candidates = np.flatnonzero(fits)
        if len(candidates) == 0:
            return SegmentedMask(np.zeros((height, width), bool), 0.0)
        if prompt.box is not None:
            box = prompt.box
            overlap = np.array([_box_iou(proposals.masks[i], box) for i in candidates])
            chosen = candidates[np.argsort(-overlap, kind="stable")[:3]]
        else:
            areas = proposals.masks[candidates].sum(axis=(1, 2))
            chosen = candidates[np.argsort(areas, kind="stable")[:3]]
        areas = proposals.masks[chosen].sum(axis=(1, 2))
        order = np.argsort(areas, kind="stable")  # smallest first
        # Without a wish, the first chosen: the best-overlapping, or the smallest.
        pick = (int(np.flatnonzero(order == 0)[0]) if prompt.candidate is None
                else min(prompt.candidate, len(order) - 1))
        best = int(chosen[order[pick]])
        return SegmentedMask(proposals.masks[best].copy(), float(proposals.scores[best]),
                             tuple(int(a) for a in areas[order]),
                             tuple(float(proposals.scores[chosen[k]]) for k in order), pick)
