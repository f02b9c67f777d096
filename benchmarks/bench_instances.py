"""How alike the instances matched on one photo are: copies of the product, and others.

A photo may show several copies of the product (``top_k_matches`` keeps up to that
many); a further match that does not look like the photo's best one is another product
(``instance_similarity``). This benchmark measures the likeness the rule compares, with
the rule off (``instance_similarity=-1``), classic backend, on rendered spin sets:

- ``copy``: a second, identical carton beside the first (``samples.twins.beside``);
- ``lookalike``: the second carton green-tinted, another flavour of the product;
- ``other product``: the further matches of a growing bank (the settings of
  ``bench_capture.py``'s "prototype bank") on spin sets between other products, when
  the best match is the product;
- ``beside a wrong match``: the same when the best match is not the product (a view the
  bank misses); what the rule then keeps is what looks like that wrong match.

Per kind: how many further matches, and the least, median and largest likeness (cosine
similarity of the further match's kept embedding to the best match's).

    python benchmarks/bench_instances.py --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from prodseg.results import Match

BANK = {"bank_size": 8, "bank_add_threshold": 0.75, "bank_margin": 0.05}


def likeness(matches: list[Match]) -> list[float]:
    """Cosine similarity of each further match's embedding to the first one's."""
    units = np.stack([np.asarray(m.embedding, dtype=np.float64) for m in matches])
    units /= np.maximum(np.linalg.norm(units, axis=1, keepdims=True), 1e-12)
    return [float(v) for v in units[1:] @ units[0]]


def main() -> None:
    from prodseg.producer.samples.scene import render_spin_set, write_sample_set
    from prodseg.producer.samples.twins import beside
    from prodseg.settings import load_settings
    from prodseg.workers.classic.backbone import ColourTextureBackbone
    from prodseg.workers.classic.segmenter import ContourSegmenter
    from prodseg.workers.embed.ffa_embedder import FFAEmbedder
    from prodseg.workers.ops.masks import mask_iou
    from prodseg.workers.plan.pipeline import ProductSegmentationPipeline

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()

    def pipeline(**settings: object) -> ProductSegmentationPipeline:
        s = load_settings(backend="classic", capture="spin", instance_similarity=-1.0,
                          **settings)
        return ProductSegmentationPipeline(s, ContourSegmenter(),
                                           FFAEmbedder(ColourTextureBackbone()))

    kinds: dict[str, list[float]] = {"copy": [], "lookalike": [], "other product": [],
                                     "beside a wrong match": []}
    root = Path(tempfile.mkdtemp(prefix="prodseg-instances-"))
    for seed in args.seeds:
        plain = render_spin_set(n_views=12, height=240, width=320, n_distractor_only=0,
                                seed=seed)
        for kind, green in (("copy", 1.0), ("lookalike", 0.85)):
            folder = root / f"{kind}{seed}"
            folder.mkdir()
            for i, view in enumerate(plain.views):
                if view.mask.any():
                    image, _ = beside(view.image, view.mask, green=green)
                    Image.fromarray(image).save(folder / f"view_{i:03d}.png")
            images = sorted(folder.glob("*.png"))
            for r in pipeline().run(images, images[0], reference_point=plain.reference_point):
                kinds[kind] += likeness(r.matches)
        shelf = render_spin_set(n_views=12, height=240, width=320, n_distractor_only=2,
                                seed=seed)
        folder = root / f"shelf{seed}"
        write_sample_set(folder, shelf)
        images = sorted((folder / "images").glob("*.jpg"))
        truth = {f"view_{i:03d}": v.mask for i, v in enumerate(shelf.views)}
        result = pipeline(**BANK).run(images, folder / "images" / "view_000.jpg",
                                      reference_point=shelf.reference_point)
        for r in result:
            mask = truth.get(r.image_id)
            if len(r.matches) < 2 or mask is None or not mask.any():
                continue
            on_product = mask_iou(r.matches[0].mask, mask) >= 0.5
            kinds["other product" if on_product else "beside a wrong match"] += \
                likeness(r.matches)
    print(f"{'further match':<22} {'count':>6} {'least':>7} {'median':>7} {'largest':>8}")
    for kind, values in kinds.items():
        if values:
            print(f"{kind:<22} {len(values):>6} {min(values):>7.3f} "
                  f"{float(np.median(values)):>7.3f} {max(values):>8.3f}")
        else:
            print(f"{kind:<22} {0:>6}")


if __name__ == "__main__":
    main()
