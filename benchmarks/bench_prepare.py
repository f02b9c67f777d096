"""How often the proposed prompt lands on the product, and whether the wrong ones are flagged.

Renders a catalog (``prodseg sample --catalog``: each product a carton turning on its own
shelf between other products, up to ``--max-offset`` of the frame off the centre, every
third one beside a lookalike that stays put), proposes each product's reference and
prompt from its photos alone (``workers.plan.propose``, the rule of
``workers.capture.prompt_rule``) and checks it against the ground truth:

- **on the product**: the click falls inside the product's true mask on the proposed
  reference view, or the proposed box has IoU >= 0.7 with the true box;
- **reference mask IoU**: the mask the backend segments from the proposed prompt against
  the true mask (classic backend; seeded SAM2 weights give no meaningful masks);
- **confusion table**: confident / flagged (confidence below ``prodseg.proposed.CONFIDENT``)
  against right / wrong: the wrong proposals should all be flagged.

    python benchmarks/bench_prepare.py --backend classic --products 60
    python benchmarks/bench_prepare.py --backend classic --products 60 --reference first
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from prodseg.proposed import ProposedPrompt


def box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """IoU of two ``(x0, y0, x1, y1)`` boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def _flagged(proposed: ProposedPrompt | None) -> bool:
    """Whether a person looks at the product: a flagged proposal, or none at all."""
    return proposed is None or proposed.flagged


def main() -> None:
    from prodseg.errors import InputError
    from prodseg.producer.samples.catalog import write_sample_catalog
    from prodseg.settings import load_settings
    from prodseg.storage.images import read_image_file
    from prodseg.workers.ops.masks import mask_iou, mask_to_box
    from prodseg.workers.plan.pipeline import ProductSegmentationPipeline
    from prodseg.workers.plan.propose import propose_prompt

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("classic", "sam2-dinov2"), default="classic")
    parser.add_argument("--weights", choices=("pretrained", "random"), default="pretrained",
                        help="sam2-dinov2: seeded random weights give no meaningful masks; "
                        "they time the proposal only")
    parser.add_argument("--products", type=int, default=60)
    parser.add_argument("--views", type=int, default=8)
    parser.add_argument("--size", default="512x384", metavar="WxH")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-offset", type=float, default=0.2)
    parser.add_argument("--reference", choices=("chosen", "first"), default="chosen",
                        help="chosen: the rule picks the reference view (catalog "
                        "prepare); first: the prompt on the first photo, as a job "
                        "proposes it at run time (--ref-point auto, a row without prompts)")
    parser.add_argument("--catalog", type=Path, metavar="DIR",
                        help="a rendered catalog to use (default: render one)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    settings = load_settings(backend=args.backend, weights=args.weights)
    pipeline = ProductSegmentationPipeline(settings)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.catalog or Path(tmp)
        if args.catalog is None:
            write_sample_catalog(root, args.products, args.views, (width, height), args.seed,
                                 args.max_offset)
        truth = json.loads((root / "truth.json").read_text())["products"]
        rows: list[tuple[str, bool, bool, float, ProposedPrompt | None]] = []
        seconds: list[float] = []
        for pid, product in truth.items():
            views = [(Path(v["image"]).stem, read_image_file(root / v["image"], 10**9, 10**10))
                     for v in product["views"]]
            start = time.perf_counter()
            try:
                on = views[0][0] if args.reference == "first" else None
                proposed = propose_prompt(views, pipeline, reference=on)
            except InputError as exc:  # nothing proposed: a person must click it
                print(f"  {pid}: not proposed: {exc}")
                rows.append((pid, product["lookalike"], False, 0.0, None))
                continue
            finally:
                seconds.append(time.perf_counter() - start)
            index = [view for view, _ in views].index(proposed.reference)
            entry = product["views"][index]
            true = np.asarray(Image.open(root / entry["mask"])) > 127
            x, y = proposed.point or (-1.0, -1.0)
            inside = 0 <= int(y) < true.shape[0] and 0 <= int(x) < true.shape[1] \
                and bool(true[int(y), int(x)])
            boxed = proposed.box is not None and true.any() \
                and box_iou(proposed.box, mask_to_box(true)) >= 0.7
            mask = pipeline.segmenter.segment(views[index][1], proposed.prompt()).mask
            rows.append((pid, bool(product["lookalike"]), bool(inside or boxed),
                         mask_iou(mask, true), proposed))
    right = [r for r in rows if r[2]]
    print(f"backend {args.backend}: {len(rows)} products, {args.views} views of {args.size}, "
          f"up to {args.max_offset:.0%} off-centre, {sum(r[1] for r in rows)} beside a "
          f"lookalike; reference {args.reference}")
    print(f"on the product: {len(right)}/{len(rows)} = {len(right) / len(rows):.1%} "
          "(click inside the true mask, or box IoU >= 0.7)")
    ious = np.array([r[3] for r in rows])
    print(f"reference mask IoU: mean {ious.mean():.3f}, median {np.median(ious):.3f}, "
          f"on the right ones {np.mean([r[3] for r in right] or [0]):.3f}")
    for lookalike in (False, True):
        part = [r for r in rows if r[1] == lookalike]
        if part:
            print(f"  {'beside a lookalike' if lookalike else 'no lookalike':<19}"
                  f"{sum(r[2] for r in part)}/{len(part)} on the product")
    print("confusion (confidence x correctness):")
    print(f"  {'':<10}{'right':>7}{'wrong':>7}")
    for label, flagged in (("confident", False), ("flagged", True)):
        cells = [sum(1 for r in rows if _flagged(r[4]) == flagged and r[2] == ok)
                 for ok in (True, False)]
        print(f"  {label:<10}{cells[0]:>7}{cells[1]:>7}")
    for pid, _, ok, iou, shown in rows:
        if shown is not None and (not ok or shown.flagged):
            print(f"  {pid}: {'right' if ok else 'WRONG'}, confidence "
                  f"{shown.confidence:.2f} ({shown.why}), mask IoU {iou:.2f}")
    print(f"seconds per product (propose): median {np.median(seconds):.2f}, "
          f"max {max(seconds):.2f}")


if __name__ == "__main__":
    main()
