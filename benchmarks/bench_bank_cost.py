"""What a growing prototype bank costs per view, and what the one job plan stopped
recomputing.

- bank: with ``bank_size > 1`` each view's candidates are stored (``ViewCandidates.
  to_bytes``), read back for the resolve step (``from_bytes``) and the image decoded again
  for its cutouts; this prints each, for ``--proposals`` masks at ``--size`` with
  ``--dim``-dimensional embeddings. It does not depend on the models.
- saved: ordering an unordered capture used to take one extra DINOv2 whole-image pass per
  view (its best patch similarity); now it reads each view's best candidate score. This
  prints that pass's time for each ``--dinov2`` model, seeded weights, on this machine.

    python benchmarks/bench_bank_cost.py --dinov2 vit_small_patch14_dinov2 \
        vit_large_patch14_reg4_dinov2
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def median_s(fn: Callable[[], object], runs: int) -> float:
    """Median wall seconds of ``runs`` calls of ``fn`` (after one not counted)."""
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def bank_overhead(width: int, height: int, proposals: int, dim: int,
                  runs: int) -> dict[str, float]:
    """Seconds per view of storing, reading back and decoding again, and the bytes stored."""
    from PIL import Image

    from prodseg.storage.images import decode_image
    from prodseg.workers.match.candidates import ViewCandidates

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:height, :width]
    masks = np.stack([(yy - rng.integers(0, height)) ** 2 + (xx - rng.integers(0, width)) ** 2
                      < rng.integers(20, 150) ** 2 for _ in range(proposals)])
    view = ViewCandidates("v", "v.jpg", width, height, masks,
                          rng.standard_normal((proposals, dim)).astype(np.float32))
    photo = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(photo, "JPEG")
    blob = view.to_bytes()
    return {
        "to_bytes_s": median_s(view.to_bytes, runs),
        "from_bytes_s": median_s(lambda: ViewCandidates.from_bytes(blob), runs),
        "decode_again_s": median_s(lambda: decode_image(photo.getvalue(), "v.jpg", 10**9), runs),
        "stored_bytes": float(len(blob)),
    }


def whole_image_pass(model: str, width: int, height: int, runs: int) -> float:
    """Seconds of one DINOv2 whole-image pass (``FFAEmbedder.image_tokens``)."""
    import torch

    from prodseg.workers.embed.dinov2 import DinoV2Backbone
    from prodseg.workers.embed.ffa_embedder import FFAEmbedder
    from prodseg.workers.models.builders import build_dinov2_model

    with tempfile.TemporaryDirectory() as cache:
        dino = build_dinov2_model(model, "random", Path(cache), "cpu", 0, False)
    embedder = FFAEmbedder(DinoV2Backbone(dino, torch.device("cpu"), model))
    image = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    return median_s(lambda: embedder.image_tokens(image), runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="640x480", help="WIDTHxHEIGHT of a view")
    parser.add_argument("--proposals", type=int, default=64)
    parser.add_argument("--dim", type=int, default=1024, help="embedding size (ViT-L: 1024)")
    parser.add_argument("--dinov2", nargs="*", default=["vit_small_patch14_dinov2"],
                        metavar="MODEL", help="DINOv2 models to time a whole-image pass of")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    bank = bank_overhead(width, height, args.proposals, args.dim, max(args.runs, 10))
    total = bank["to_bytes_s"] + bank["from_bytes_s"] + bank["decode_again_s"]
    print(f"bank, per view of {args.proposals} proposals at {args.size}: store "
          f"{bank['to_bytes_s'] * 1e3:.1f} ms, read back {bank['from_bytes_s'] * 1e3:.1f} ms, "
          f"decode again {bank['decode_again_s'] * 1e3:.1f} ms: {total * 1e3:.1f} ms; "
          f"{bank['stored_bytes'] / 1e3:.0f} kB stored")
    print(json.dumps({"what": "bank per view", "size": args.size,
                      "proposals": args.proposals, **bank, "total_s": total}))
    for model in args.dinov2:
        seconds = whole_image_pass(model, width, height, args.runs)
        print(f"saved per view of an unordered capture with a bank: one {model} whole-image "
              f"pass, {seconds:.3f} s")
        print(json.dumps({"what": "saved per view", "model": model, "size": args.size,
                          "seconds": seconds}))


if __name__ == "__main__":
    main()
