"""One product, one mask: proposals nested in one another are one instance.

SAM2 proposes at three granularities per prompt (subpart, part, whole), so one carton
comes back as its top flap, its front panel and the whole box. Mask-IoU NMS cannot see
that they are one object: a part inside a whole has a small IoU with it. Here a proposal
that lies mostly inside another (``containment``: intersection over the smaller area) is
the same instance as it.

Of an instance's proposals the one kept is the one whose size and shape, relative to its
image, are closest to the reference mask's (``shape_distance``): a whole carton when the
reference is the whole carton, and its panel when the person clicked a panel. It may be
a proposal that is not a match on its own: the side of a carton looks nothing like its
clicked front, but the front panel visible beside it matches, and the whole carton holds
it. ``benchmarks/bench_nested.py`` compares this rule with keeping the outermost mask and
with scoring the union.

Masks are bool arrays, ``(H, W)`` for one and ``(N, H, W)`` for many; all functions are
pure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from prodseg.workers.ops.masks import mask_iou_matrix, mask_to_box
from prodseg.workers.ops.seam import seam_box


@dataclass(frozen=True)
class MaskShape:
    """A mask's size and shape relative to its image.

    Attributes:
        area: the mask's pixels over the image's pixels, in (0, 1].
        aspect: its box's width over its height (on a panorama, the box across the seam).
    """

    area: float
    aspect: float


@dataclass(frozen=True)
class Instance:
    """One instance found among the proposals.

    Attributes:
        kept: index of the proposal whose mask stands for the instance.
        best: index of the instance's best-ranked matching proposal: its score is the
            instance's score.
        absorbed: how many other matching proposals (parts, wholes, duplicates) it
            stands for.
    """

    kept: int
    best: int
    absorbed: int


def shape_from_box(area: int, box: tuple[int, int, int, int], width: int,
                   height: int) -> MaskShape:
    """The shape of a mask of ``area`` pixels with tight ``box`` on a ``width`` x
    ``height`` image; zero-sized boxes count as one pixel."""
    x0, y0, x1, y1 = box
    return MaskShape(area / (width * height), max(x1 - x0, 1) / max(y1 - y0, 1))


def mask_shape(mask: np.ndarray) -> MaskShape:
    """Size and shape of an ``(H, W)`` bool mask relative to its image."""
    height, width = mask.shape
    box = seam_box(mask) or mask_to_box(mask)
    return shape_from_box(int(mask.sum()), box, width, height)


def shape_distance(shapes: list[MaskShape], reference: MaskShape) -> np.ndarray:
    """How unlike the reference each shape is: ``|log(area ratio)| + |log(aspect ratio)|``.

    Args:
        shapes: ``N`` shapes.
        reference: the reference mask's shape.

    Returns:
        ``(N,)`` float64, 0 for the reference's own size and shape; the same for twice
        and half the area.
    """
    area = np.array([max(s.area, 1e-12) for s in shapes], dtype=np.float64)
    aspect = np.array([max(s.aspect, 1e-12) for s in shapes], dtype=np.float64)
    return np.abs(np.log(area / max(reference.area, 1e-12))) + np.abs(
        np.log(aspect / max(reference.aspect, 1e-12)))


def containment_row(masks: np.ndarray, areas: np.ndarray, index: int) -> np.ndarray:
    """Intersection over the smaller area of mask ``index`` with every mask.

    Args:
        masks: ``(N, H, W)`` bool.
        areas: ``(N,)`` their pixel counts.
        index: the mask compared with the others.

    Returns:
        ``(N,)`` float64 in [0, 1]; 1 at ``index`` itself (unless empty), 0 for empty masks.
    """
    x0, y0, x1, y1 = mask_to_box(masks[index])
    out = np.zeros(len(masks), dtype=np.float64)
    if x1 <= x0:
        return out
    window = masks[index, y0:y1, x0:x1]
    inter = (masks[:, y0:y1, x0:x1] & window).sum(axis=(1, 2)).astype(np.float64)
    smaller = np.minimum(areas, areas[index]).astype(np.float64)
    np.divide(inter, smaller, out=out, where=smaller > 0)
    return out


def nested_instances(masks: np.ndarray, ranked: np.ndarray, threshold: float,
                     containment: float, reference: MaskShape | None) -> list[Instance]:
    """Group the matching proposals into instances, best first.

    The best-ranked matching proposal not yet taken starts an instance. Its group is every
    proposal (matching or not) nested with it (``containment_row >= containment``) and in
    no earlier instance; the member kept is the one closest to ``reference`` in shape (the
    best-ranked one when ``reference`` is None or on a tie). The starting proposal and
    every matching one nested with the kept one join the instance. So when the starting
    proposal holds two cartons, the carton kept takes its own parts, and the other
    carton starts an instance of its own.

    Args:
        masks: ``(N, H, W)`` bool proposals.
        ranked: ``(N,)`` what matching compares with ``threshold`` (higher is better).
        threshold: the least ``ranked`` of a match.
        containment: intersection over the smaller area from which two masks nest.
        reference: the reference mask's shape.

    Returns:
        Instances in the order of their best proposal's rank.
    """
    areas = masks.reshape(len(masks), -1).sum(axis=1)
    matching = np.flatnonzero(ranked >= threshold)
    order = matching[np.argsort(-ranked[matching], kind="stable")]
    free = np.zeros(len(masks), dtype=bool)  # matching and in no instance yet
    free[order] = True
    used = np.zeros(len(masks), dtype=bool)  # in an instance already, or kept by one
    shapes: dict[int, MaskShape] = {}
    instances = []
    for seed in order:
        if not free[seed]:
            continue
        row = containment_row(masks, areas, int(seed))
        group = np.flatnonzero((row >= containment) & ~used)
        group = group[np.argsort(-ranked[group], kind="stable")]  # the seed first on ties
        kept = int(seed)
        if reference is not None and group.size > 1:
            for j in group:
                shapes.setdefault(int(j), mask_shape(masks[j]))
            distance = shape_distance([shapes[int(j)] for j in group], reference)
            kept = int(group[int(np.argmin(distance))])
        joined = free & (containment_row(masks, areas, kept) >= containment)
        joined[seed] = True
        free &= ~joined
        used |= joined
        used[kept] = True
        instances.append(Instance(kept, int(seed), int(joined.sum()) - int(joined[kept])))
    return instances


def suppress_duplicates(masks: np.ndarray, instances: list[Instance],
                        iou_threshold: float) -> list[Instance]:
    """Greedy mask-IoU NMS over instances, best first; a dropped one joins its keeper.

    Args:
        masks: ``(N, H, W)`` bool proposals the instances index.
        instances: best first.
        iou_threshold: an instance whose kept mask overlaps a better one's by more than
            this is a duplicate.

    Returns:
        The surviving instances, best first, their ``absorbed`` raised by the duplicates
        (and what those had absorbed).
    """
    if not instances:
        return []
    kept = np.array([inst.kept for inst in instances])
    iou = mask_iou_matrix(masks[kept], masks[kept])
    survivors: list[int] = []
    extra = [0] * len(instances)
    for i in range(len(instances)):
        owner = next((j for j in survivors if iou[i, j] > iou_threshold), None)
        if owner is None:
            survivors.append(i)
        else:
            extra[owner] += 1 + instances[i].absorbed
    return [Instance(instances[i].kept, instances[i].best, instances[i].absorbed + extra[i])
            for i in survivors]


def alike_instances(embeddings: np.ndarray, instances: list[Instance],
                    least_similarity: float) -> list[Instance]:
    """The instances that look like the best one: copies of one product.

    Several instances of the product in one photo share its appearance, lighting and
    camera, so each looks like the best instance as much as it looks like the product.
    A proposal that passes the threshold against the bank but not against the product as
    this photo shows it is another product that resembles one side of it (a bank holds
    every side; its back may resemble a neighbour's front). ``bench_instances.py``
    measures the two on rendered shelves: a copy of the carton, or a lookalike in another
    flavour, is 0.75-1.0 alike; the other products that a bank matched, 0.25 or less.

    Args:
        embeddings: ``(N, D)`` the proposals' embeddings.
        instances: best first.
        least_similarity: the least cosine similarity of a further instance's kept
            proposal to the best instance's kept proposal.

    Returns:
        The best instance and the further ones alike enough, in order.
    """
    if len(instances) < 2:
        return instances
    kept = np.stack([embeddings[inst.kept] for inst in instances]).astype(np.float64)
    kept /= np.maximum(np.linalg.norm(kept, axis=1, keepdims=True), 1e-12)
    alike = kept[1:] @ kept[0] >= least_similarity
    return [instances[0], *(inst for inst, a in zip(instances[1:], alike, strict=True) if a)]


def interior_point(mask: np.ndarray) -> tuple[float, float]:
    """``(x, y)`` of the pixel of an ``(H, W)`` bool mask farthest from its outline: a
    prompt that lands on the mask even when it is not convex (the centroid may not)."""
    import cv2

    padded = np.pad(mask, 1).astype(np.uint8)
    depth = cv2.distanceTransform(padded, cv2.DIST_L2, 3)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return float(x), float(y)


def whole_of(mask: np.ndarray, candidates: np.ndarray, containment: float,
             reference: MaskShape) -> int:
    """Which of ``mask`` and ``candidates`` stands for ``mask``'s instance.

    For a mask that comes from elsewhere than the proposals (a tracked view): the same
    rule as ``nested_instances``, with ``mask`` as the one match.

    Args:
        mask: ``(H, W)`` bool.
        candidates: ``(N, H, W)`` bool, e.g. the segmenter's masks at a point inside it.
        containment: intersection over the smaller area from which two masks nest.
        reference: the reference mask's shape.

    Returns:
        0 for ``mask`` itself, ``1 + i`` for ``candidates[i]``.
    """
    masks = np.concatenate([mask[None], candidates.astype(bool)])
    ranked = np.full(len(masks), -np.inf)
    ranked[0] = 0.0
    return nested_instances(masks, ranked, 0.0, containment, reference)[0].kept
