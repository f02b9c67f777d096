"""Which object a capture is of: the rule that proposes a product's reference and click.

A capture of one product is a spin (a turntable, or a walk around the product): the
product is the object present in every view, and on a turntable the only object that
changes from view to view, while the shelf, its neighbours and lookalikes stay put.
Operators frame it near the centre, but not exactly (up to a fifth of the frame off).
The rule scores every candidate object of every view (a proposal and its FFA embedding)
by four facts, each in [0, 1]:

- **presence**: the share of the other views that hold the same object: one whose FFA
  embedding matches it (best cosine at or above the job's ``similarity_threshold``), or
  matches such a match on a third view, and so on (a turning product shows other sides
  in other views; each view's side is like its neighbour's);
- **similarity**: the median of those best cosines;
- **change**: the share of its pixels that differ from the capture's per-pixel median
  (the turning product; ``change_map``); 0 everywhere when the views are not aligned
  the same way (a walk around) or all alike, and then it decides nothing;
- **centre**: how near the frame's centre it stands (a broad Gaussian).

``score = similarity * presence * (CHANGE_FLOOR + (1 - CHANGE_FLOOR) * change) * centre``,
and an object touching two opposite borders of the frame (shelf, wall, floor) scores 0.
The best-scoring candidate gives the reference view (its view), the click (its mask's
innermost pixel) and the box (its mask's box). The confidence says whether the choice is
safe: its presence, times how far ahead it is of the
best candidate that is another object (``MARGIN_FULL`` ahead or more counts fully),
times its change factor over the most changing candidate's (an object that stays put
while another turns is not the turntable's).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from prodseg.proposed import CONFIDENT, ProposedPrompt

CHANGE_FLOOR = 0.05
"""What a candidate that does not change at all keeps of its score."""
CENTRE_SIGMA = 0.3
"""The centre prior's spread, as a fraction of the frame (x and y each normalised)."""
MARGIN_FULL = 0.35
"""How far ahead (1 - runner-up / best) the best candidate must be for full confidence."""
CHANGE_SIDE = 160
"""The change map is computed on views shrunk to this long side (speed, and robustness)."""
_MOVING_FLOOR = 8.0  # grey levels: what sensor noise and JPEG never reach


@dataclass(frozen=True)
class ViewObjects:
    """The candidate objects of one view, reduced to what the rule needs (no masks).

    Attributes:
        view: the view's id.
        width: the view's width in pixels.
        height: its height.
        embeddings: ``(N, D)`` float32, L2-normalised FFA embeddings.
        boxes: ``(N, 4)`` float ``(x0, y0, x1, y1)``, exclusive upper edges.
        points: ``(N, 2)`` float, each mask's innermost pixel ``(x, y)``.
        centres: ``(N, 2)`` float, each mask's centroid ``(x, y)``.
        change: ``(N,)`` float, the share of each mask's pixels that change.
        across: ``(N,)`` bool, whether the mask touches two opposite borders.
    """

    view: str
    width: int
    height: int
    embeddings: np.ndarray
    boxes: np.ndarray
    points: np.ndarray
    centres: np.ndarray
    change: np.ndarray
    across: np.ndarray

    def __len__(self) -> int:
        return int(self.embeddings.shape[0])


def change_map(images: Sequence[np.ndarray]) -> np.ndarray | None:
    """Which pixels of a capture change from view to view.

    Args:
        images: the views, ``(H, W, 3)`` uint8 RGB each.

    Returns:
        ``(h, w)`` bool at ``CHANGE_SIDE`` on the long side (resize it to a view's size
        to read it), True where a view differs from the per-pixel median of all views by
        more than the noise of the capture; None when the views differ in size or fewer
        than three are given (no median to tell the still from the moving).
    """
    if len(images) < 3 or len({im.shape for im in images}) != 1:
        return None
    h, w = images[0].shape[:2]
    scale = CHANGE_SIDE / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = np.stack([cv2.resize(im, size, interpolation=cv2.INTER_AREA) for im in images])
    small = small.astype(np.float32)
    deviation = np.abs(small - np.median(small, axis=0)).mean(axis=3)  # (V, h, w)
    moving = deviation.max(axis=0)
    noise = float(np.median(moving))
    return np.asarray(moving > max(3.0 * noise, _MOVING_FLOOR))


def view_objects(view: str, masks: np.ndarray, embeddings: np.ndarray,
                 changed: np.ndarray | None) -> ViewObjects:
    """A view's candidates as the rule's facts.

    Args:
        view: the view's id.
        masks: ``(N, H, W)`` bool, the candidates.
        embeddings: ``(N, D)`` their FFA embeddings.
        changed: ``change_map``'s map of the capture, or None.
    """
    n, h, w = masks.shape
    moving = None if changed is None else cv2.resize(
        changed.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
    boxes, points, centres = np.zeros((n, 4)), np.zeros((n, 2)), np.zeros((n, 2))
    change, across = np.zeros(n), np.zeros(n, bool)
    for i, mask in enumerate(masks):
        ys, xs = np.nonzero(mask)
        if xs.size == 0:
            continue
        boxes[i] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        centres[i] = (xs.mean(), ys.mean())
        inside = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 5)
        y, x = np.unravel_index(int(np.argmax(inside)), inside.shape)
        points[i] = (x - 1, y - 1)
        change[i] = 0.0 if moving is None else float(moving[ys, xs].mean())
        across[i] = bool((xs.min() == 0 and xs.max() == w - 1)
                         or (ys.min() == 0 and ys.max() == h - 1))
    vectors = np.asarray(embeddings, np.float32)
    return ViewObjects(view, w, h, vectors.reshape(n, vectors.shape[-1] if n else 0),
                       boxes, points, centres, change, across)


def choose_prompt(views: Sequence[ViewObjects], similarity_threshold: float,
                  reference: str | None = None) -> ProposedPrompt | None:
    """The proposed reference and prompt of a capture, or None when no view has a
    candidate.

    Args:
        views: every view's candidates.
        similarity_threshold: the job's match threshold: the same object by FFA.
        reference: only this view may be the reference (the catalog named it).
    """
    scores, presence = _scores(views, similarity_threshold)
    allowed = [reference is None or v.view == reference for v in views]
    flat = [(float(s), vi, ci) for vi, v in enumerate(views) if allowed[vi]
            for ci, s in enumerate(scores[vi])]
    if not flat:
        return None
    best, vi, ci = max(flat)
    view = views[vi]
    rival = max((s for s, vj, cj in flat if _another_object(views, vi, ci, vj, cj,
                                                            similarity_threshold)),
                default=0.0)
    margin = 1.0 - rival / best if best > 0 else 0.0
    seen = float(presence[vi][ci])
    turning = _change_factor(view.change[ci]) / max(
        _change_factor(v.change.max()) for v in views if len(v))
    confidence = float(np.clip(seen * min(1.0, margin / MARGIN_FULL) * turning, 0, 1))
    others = max(len(views) - 1, 0)
    found = round(seen * others)
    if seen < CONFIDENT:
        why = f"low: not in every view (in {found} of {others} others)"
    elif turning < CONFIDENT:
        why = "low: it stays put while another object turns"
    elif confidence < CONFIDENT:
        why = f"low: another object is almost as likely (ahead by {margin:.0%})"
    else:
        why = f"high: the same object in {found} of {others} other views, ahead by " \
              f"{margin:.0%}"
    x, y = (float(v) for v in view.points[ci])
    x0, y0, x1, y1 = (float(v) for v in view.boxes[ci])
    return ProposedPrompt(view.view, (x, y), (x0, y0, x1, y1), confidence, why)


def _scores(views: Sequence[ViewObjects],
            threshold: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each candidate's score and presence, per view (``(N_v,)`` float each)."""
    best_match = _best_matches(views, threshold)
    scores, presence = [], []
    for vi, view in enumerate(views):
        best = [(view.embeddings @ other.embeddings.T).max(axis=1) if len(other) else
                np.full(len(view), -1.0) for vj, other in enumerate(views) if vj != vi]
        sims = np.stack(best, axis=1) if best else np.ones((len(view), 1))
        others = max(len(views) - 1, 1)
        seen = np.array([(len(_reached(best_match, vi, ci)) - 1) / others
                         for ci in range(len(view))]) if len(views) > 1 else np.ones(len(view))
        direct = (sims >= threshold).mean(axis=1)
        similarity = np.clip(np.median(sims, axis=1), 0.0, 1.0)
        change = _change_factor(view.change)
        offset = (view.centres / [view.width, view.height]) - 0.5
        centre = np.exp(-0.5 * (offset ** 2).sum(axis=1) / CENTRE_SIGMA ** 2)
        score = similarity * direct * change * centre * ~view.across
        scores.append(score if len(view) else np.zeros(0))
        presence.append(seen)
    return scores, presence


def _change_factor(change: np.ndarray) -> np.ndarray:
    """What the share of changing pixels leaves of a score (``CHANGE_FLOOR`` to 1)."""
    return CHANGE_FLOOR + (1.0 - CHANGE_FLOOR) * change


Matches = dict[tuple[int, int], list[tuple[int, int]]]


def _best_matches(views: Sequence[ViewObjects], threshold: float) -> Matches:
    """For each candidate ``(view, index)``, its best match on each other view, where that
    match reaches ``threshold``."""
    matches: Matches = {}
    for vi, view in enumerate(views):
        for vj, other in enumerate(views):
            if vi == vj or not len(view) or not len(other):
                continue
            sims = view.embeddings @ other.embeddings.T
            best = sims.argmax(axis=1)
            for ci, cj in enumerate(best):
                if sims[ci, cj] >= threshold:
                    matches.setdefault((vi, ci), []).append((vj, int(cj)))
    return matches


def _reached(matches: Matches, vi: int, ci: int) -> set[int]:
    """The views reached from candidate ``(vi, ci)`` through chains of best matches that
    never return to a view already reached (each view is entered once, by its first
    chain)."""
    reached, frontier = {vi}, [(vi, ci)]
    while frontier:
        step = []
        for node in frontier:
            for vj, cj in matches.get(node, []):
                if vj not in reached:
                    reached.add(vj)
                    step.append((vj, cj))
        frontier = step
    return reached


def _another_object(views: Sequence[ViewObjects], vi: int, ci: int, vj: int, cj: int,
                    threshold: float) -> bool:
    """Whether candidate ``cj`` of view ``vj`` is another object than ``ci`` of ``vi``:
    on the same view, one not overlapping it (a lookalike too); on another view, one not
    the same by its FFA embedding."""
    if vi == vj:
        return _box_overlap(views[vi].boxes[ci], views[vj].boxes[cj]) < 0.25
    return float(views[vi].embeddings[ci] @ views[vj].embeddings[cj]) < threshold


def _box_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over the smaller box's area."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return float(w * h / smaller) if smaller > 0 else 0.0
