"""Single reference, prototype bank and spin tracking on rendered spin sets.

Each spin set is a carton turning on a shelf between other products, its four sides with
different artwork, plus shelf photos without it (``prodseg.producer.samples.scene``). With the
deterministic classic backbones, every configuration runs ``prodseg run``'s pipeline from
the same click on view 0. Prints recall (views showing the product whose best match has
IoU >= 0.5 with the truth), precision (of the views with a match, those correct) and
the mean IoU of the correct matches, per configuration over all seeds.

    python benchmarks/bench_capture.py --seeds 0 1 2 3 4 --views 12
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

CONFIGS: dict[str, dict[str, object]] = {
    "single reference": {},
    "prototype bank": {"bank_size": 8, "bank_add_threshold": 0.75, "bank_margin": 0.05},
    "tracking": {"propagation": "track"},
    "tracking, chained": {"propagation": "track", "propagation_step_threshold": 0.7},
    "tracking + bank": {"propagation": "track", "bank_size": 8, "bank_add_threshold": 0.75,
                        "bank_margin": 0.05},
}


def evaluate(root: Path, seed: int, views: int, settings: dict[str, object]
             ) -> tuple[int, int, int, list[float]]:
    """``(hits, wrong, present, IoUs of hits)`` of one configuration on one spin set."""
    from prodseg.producer.samples.scene import render_spin_set, write_sample_set
    from prodseg.settings import load_settings
    from prodseg.workers.classic.backbone import ColourTextureBackbone
    from prodseg.workers.classic.segmenter import ContourSegmenter
    from prodseg.workers.embed.ffa_embedder import FFAEmbedder
    from prodseg.workers.ops.masks import mask_iou
    from prodseg.workers.plan.pipeline import ProductSegmentationPipeline

    spin = render_spin_set(n_views=views, height=240, width=320, n_distractor_only=2,
                           seed=seed)
    folder = root / f"seed{seed}"
    if not folder.exists():
        write_sample_set(folder, spin)
    images = sorted((folder / "images").glob("*.jpg"))
    pipeline = ProductSegmentationPipeline(
        load_settings(backend="classic", capture="spin", **settings),
        ContourSegmenter(), FFAEmbedder(ColourTextureBackbone()))
    result = pipeline.run(images, folder / "images" / "view_000.jpg",
                          reference_point=spin.reference_point)
    truth = {f"view_{i:03d}": v.mask for i, v in enumerate(spin.views)}
    hits = wrong = present = 0
    ious: list[float] = []
    for r in result:
        mask = truth.get(r.image_id)
        shown = mask is not None and bool(mask.any())
        present += shown
        if not r.matches:
            continue
        iou = mask_iou(r.matches[0].mask, mask) if shown and mask is not None else 0.0
        if iou >= 0.5:
            hits += 1
            ious.append(iou)
        else:
            wrong += 1
    return hits, wrong, present, ious


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--views", type=int, default=12)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="prodseg-capture-"))
    print(f"{'configuration':<18} {'recall':>7} {'precision':>10} {'mean IoU':>9}")
    for name, settings in CONFIGS.items():
        totals = np.zeros(3, dtype=int)
        ious: list[float] = []
        for seed in args.seeds:
            hits, wrong, present, found = evaluate(root, seed, args.views, settings)
            totals += (hits, wrong, present)
            ious += found
        hits, wrong, present = (int(v) for v in totals)
        recall, precision = hits / present, hits / max(hits + wrong, 1)
        miou = float(np.mean(ious)) if ious else 0.0
        print(f"{name:<18} {recall:>7.2f} {precision:>10.2f} {miou:>9.3f}")
        print(json.dumps({"configuration": name, "seeds": args.seeds, "views": args.views,
                          "recall": recall, "precision": precision, "mean_iou": miou,
                          "hits": hits, "wrong": wrong, "views_with_product": present}))


if __name__ == "__main__":
    main()
