"""Which of nested proposals stands for the instance: the candidate rules compared.

On rendered spin sets with the classic backend, every view's proposals are embedded and
scored against the click on view 0 (single reference, threshold 0.65, NMS 0.5, top 3),
then selected by each rule:

- ``none``: threshold, NMS, top-K, as before the nested-instance rule;
- ``outermost m``: of the proposals nested with a match (intersection over the smaller
  area >= 0.8), the largest whose score is within ``m`` of the match's;
- ``union m``: the union of those nested proposals when its own FFA scores within ``m``
  of the match, else the match;
- ``shape``: the one closest to the reference mask in area and box aspect (the rule
  ``prodseg.workers.match.instances`` implements; run through ``select_matches``).

Scenarios: the spin views; two identical cartons side by side; the same with one more
proposal holding both (SAM2 may propose a pair as one object); a green-tinted lookalike
beside the carton; and the views zoomed in 1.5x and out 0.6x. Columns per rule: matches
per view with a match, instances found whole (a kept mask with IoU >= 0.85, over all
instances), views where a kept mask is a part (IoU < 0.7, 80 % inside the product) while a
proposal had IoU >= 0.9, and the mean IoU of the kept masks on a product.

    python benchmarks/bench_nested.py --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image

THRESHOLD, NMS, TOP_K, CONTAINMENT = 0.65, 0.5, 3, 0.8
Selector = Callable[[np.ndarray, np.ndarray, np.ndarray], list[np.ndarray]]


@dataclass
class Row:
    """Counts of one rule on one scenario."""

    views: int = 0
    matches: int = 0
    instances: int = 0
    whole: int = 0
    part_views: int = 0
    ious: list[float] = field(default_factory=list)


def jpeg(image: np.ndarray) -> np.ndarray:
    """The image as ``prodseg run`` reads it back from a JPEG of quality 92."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=92)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def zoom(image: np.ndarray, mask: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """The view zoomed about its centre: cropped and enlarged (> 1) or shrunk and padded
    with its border (< 1); the mask alike."""
    h, w = mask.shape
    m8 = mask.astype(np.uint8)
    if factor > 1:
        ch, cw = int(h / factor), int(w / factor)
        y0, x0 = (h - ch) // 2, (w - cw) // 2
        return (cv2.resize(image[y0:y0 + ch, x0:x0 + cw], (w, h)),
                cv2.resize(m8[y0:y0 + ch, x0:x0 + cw], (w, h), interpolation=cv2.INTER_NEAREST) > 0)
    sh, sw = int(h * factor), int(w * factor)
    y0, x0 = (h - sh) // 2, (w - sw) // 2
    pad = (y0, h - sh - y0, x0, w - sw - x0)
    small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    out = cv2.copyMakeBorder(small, *pad, cv2.BORDER_REPLICATE)
    shrunk = cv2.resize(m8, (sw, sh), interpolation=cv2.INTER_NEAREST)
    return out, cv2.copyMakeBorder(shrunk, *pad, cv2.BORDER_CONSTANT, value=0) > 0


def scenarios(seeds: list[int]) -> Iterator[tuple[str, int, np.ndarray, list[np.ndarray],
                                                   np.ndarray | None]]:
    """``(scenario, seed, image, instance masks, extra proposal)`` for every test view."""
    from prodseg.producer.samples.scene import render_spin_set
    from prodseg.producer.samples.twins import beside

    for seed in seeds:
        spin = render_spin_set(n_views=12, height=240, width=320, n_distractor_only=0,
                               seed=seed)
        for view in spin.views[1:]:
            yield "spin views", seed, view.image, [view.mask], None
        for i in (1, 2, 3, 9, 10, 11):
            view = spin.views[i]
            twin, copy = beside(view.image, view.mask)
            yield "two cartons", seed, twin, [view.mask, copy], None
            rows = np.flatnonzero(view.mask.any(axis=1))
            pair = view.mask | copy
            cols = np.flatnonzero(pair.any(axis=0))
            pair[rows[len(rows) // 3]:rows[2 * len(rows) // 3], cols[0]:cols[-1]] = True
            yield "two cartons + pair mask", seed, twin, [view.mask, copy], pair
            tinted, copy = beside(view.image, view.mask, green=0.85)
            yield "lookalike beside", seed, tinted, [view.mask, copy], None
            for factor in (1.5, 0.6):
                image, mask = zoom(view.image, view.mask, factor)
                yield f"zoom {factor:g}x", seed, image, [mask], None


def outermost(margin: float) -> Selector:
    def select(masks: np.ndarray, ranked: np.ndarray, _: np.ndarray) -> list[np.ndarray]:
        areas = masks.reshape(len(masks), -1).sum(axis=1)
        return _grouped(masks, ranked, lambda group, seed: max(
            (j for j in group if ranked[j] >= ranked[seed] - margin), key=lambda j: areas[j]))
    return select


def _grouped(masks: np.ndarray, ranked: np.ndarray,
             choose: Callable[[np.ndarray, int], int | np.ndarray]) -> list[np.ndarray]:
    """``nested_instances``' loop with another choice of the kept mask (an index, or a
    new mask), then NMS and top-K."""
    from prodseg.workers.match.instances import containment_row
    from prodseg.workers.ops.masks import mask_nms

    areas = masks.reshape(len(masks), -1).sum(axis=1)
    order = [int(i) for i in np.argsort(-ranked, kind="stable") if ranked[i] >= THRESHOLD]
    free, used = set(order), set()
    kept, scores = [], []
    for seed in order:
        if seed not in free:
            continue
        row = containment_row(masks, areas, seed)
        group = np.array([j for j in np.flatnonzero(row >= CONTAINMENT) if j not in used])
        choice = choose(group, seed)
        mask = masks[choice] if isinstance(choice, int | np.integer) else choice
        stacked = np.concatenate([masks, mask[None]])
        nested = containment_row(stacked, np.append(areas, mask.sum()), len(masks))
        joined = {j for j in free if nested[j] >= CONTAINMENT} | {seed}
        free -= joined
        used |= joined
        kept.append(mask)
        scores.append(ranked[seed])
    if not kept:
        return []
    stack = np.stack(kept)
    return [stack[k] for k in mask_nms(stack, np.array(scores), NMS)[:TOP_K]]


def union(margin: float, embed: Callable[[np.ndarray], float]) -> Selector:
    def select(masks: np.ndarray, ranked: np.ndarray, image: np.ndarray) -> list[np.ndarray]:
        def choose(group: np.ndarray, seed: int) -> int | np.ndarray:
            whole = masks[group].any(axis=0)
            return whole if embed(whole) >= ranked[seed] - margin else seed
        return _grouped(masks, ranked, choose)
    return select


def main() -> None:
    from prodseg.producer.samples.scene import render_spin_set
    from prodseg.prompts import Prompt
    from prodseg.workers.classic.backbone import ColourTextureBackbone
    from prodseg.workers.classic.segmenter import ContourSegmenter
    from prodseg.workers.embed.ffa_embedder import FFAEmbedder
    from prodseg.workers.match.instances import MaskShape, mask_shape
    from prodseg.workers.match.scoring import MatchParams, cosine_similarity, select_matches
    from prodseg.workers.ops.masks import area_filter, mask_iou_matrix, mask_nms

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    segmenter, embedder = ContourSegmenter(), FFAEmbedder(ColourTextureBackbone())
    references = {}
    for seed in args.seeds:
        spin = render_spin_set(n_views=12, height=240, width=320, n_distractor_only=0,
                               seed=seed)
        image = jpeg(spin.views[0].image)
        mask = segmenter.segment(image, Prompt.from_point(*spin.reference_point)).mask
        references[seed] = (embedder.embed(image, mask[None])[0], mask_shape(mask))
    table: dict[tuple[str, str], Row] = {}
    for name, seed, raw, truths, extra in scenarios(args.seeds):
        image = jpeg(raw)
        masks = segmenter.propose(image).masks
        masks = masks[area_filter(masks, 0.001, 0.5)]
        if extra is not None:
            masks = np.concatenate([masks, extra[None]])
        embedding, shape = references[seed]
        ranked = cosine_similarity(embedder.embed(image, masks), embedding)

        def ffa(mask: np.ndarray, image: np.ndarray = image,
                embedding: np.ndarray = embedding) -> float:
            return float(cosine_similarity(embedder.embed(image, mask[None]), embedding)[0])

        def none(masks: np.ndarray, ranked: np.ndarray, _: np.ndarray) -> list[np.ndarray]:
            c = np.flatnonzero(ranked >= THRESHOLD)
            return [masks[i] for i in c[mask_nms(masks[c], ranked[c], NMS)][:TOP_K]]

        def by_shape(masks: np.ndarray, ranked: np.ndarray, _: np.ndarray,
                     shape: MaskShape = shape) -> list[np.ndarray]:
            params = MatchParams(THRESHOLD, NMS, TOP_K, CONTAINMENT, shape)
            return [masks[f.kept] for f in select_matches(masks, ranked, params)]

        rules: dict[str, Selector] = {
            "none": none, "outermost 0.1": outermost(0.1), "outermost 0.3": outermost(0.3),
            "outermost": outermost(np.inf), "union 0.1": union(0.1, ffa),
            "union 0.3": union(0.3, ffa), "shape": by_shape}
        best_proposal = mask_iou_matrix(masks, np.stack(truths)).max(axis=0)
        for rule, select in rules.items():
            row = table.setdefault((name, rule), Row())
            kept = select(masks, ranked, image)
            row.instances += len(truths)
            if not kept:
                continue
            row.views += 1
            row.matches += len(kept)
            stack = np.stack(kept)
            iou = mask_iou_matrix(stack, np.stack(truths))  # (K, T)
            row.whole += int((iou.max(axis=0) >= 0.85).sum())
            part = False
            for t, truth in enumerate(truths):
                inter = (stack & truth).sum(axis=(1, 2))
                areas = stack.sum(axis=(1, 2))
                on = inter >= 0.5 * np.minimum(areas, truth.sum())
                row.ious += [float(v) for v in iou[on, t]]
                inside = (iou[:, t] < 0.7) & (inter >= 0.8 * areas) & (areas < truth.sum())
                part |= bool(best_proposal[t] >= 0.9 and inside.any())
            row.part_views += part
    print(f"{'scenario':<24} {'rule':<14} {'matches/view':>12} {'whole':>9} "
          f"{'part views':>11} {'kept IoU':>9}")
    for (name, rule), row in table.items():
        print(f"{name:<24} {rule:<14} {row.matches / max(row.views, 1):>12.2f} "
              f"{row.whole:>4}/{row.instances:<4} {row.part_views:>5}/{row.views:<5} "
              f"{np.mean(row.ious) if row.ious else 0.0:>9.3f}")


if __name__ == "__main__":
    main()
