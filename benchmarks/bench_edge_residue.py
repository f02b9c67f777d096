"""Background along a cutout's edge (``workers.ops.edge_residue``) on rendered spins: the
residue of the true masks, of masks grown by 1, 2 and 3 pixels all round (a halo) and
shrunk by 2, and the measurement's cost per view.

    python benchmarks/bench_edge_residue.py --views 8 --seeds 0 1 --size 640x480
"""

from __future__ import annotations

import argparse
import json
import time

import cv2
import numpy as np


def grown(mask: np.ndarray, pixels: int) -> np.ndarray:
    """``mask`` dilated (``pixels`` > 0) or eroded (< 0) by that many 3x3 steps."""
    kernel = np.ones((3, 3), np.uint8)
    step = cv2.dilate if pixels > 0 else cv2.erode
    return step(mask.astype(np.uint8), kernel, iterations=abs(pixels)).astype(bool)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--views", type=int, default=8)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--size", default="640x480", help="the photos' size WxH")
    args = parser.parse_args()
    from prodseg.producer.samples.scene import render_spin_set
    from prodseg.producer.spin_quality import RESIDUE_LIMIT
    from prodseg.workers.ops.edge_residue import edge_residue

    width, height = (int(v) for v in args.size.split("x"))
    masks = {"true": 0, "halo 1 px": 1, "halo 2 px": 2, "halo 3 px": 3, "shrunk 2 px": -2}
    found: dict[str, list[float]] = {name: [] for name in masks}
    seconds = []
    for seed in args.seeds:
        spin = render_spin_set(n_views=args.views, height=height, width=width,
                               n_distractor_only=0, seed=seed)
        for view in spin.views:
            for name, pixels in masks.items():
                mask = view.mask if pixels == 0 else grown(view.mask, pixels)
                start = time.perf_counter()
                residue = edge_residue(view.image, mask)
                seconds.append(time.perf_counter() - start)
                if residue is not None:
                    found[name].append(residue)
    rows = {name: {"views": len(v), "min": round(min(v), 3), "max": round(max(v), 3),
                   "flagged": sum(r > RESIDUE_LIMIT for r in v)}
            for name, v in found.items() if v}
    print(f"{args.size}, {args.views} views x seeds {args.seeds}; flagged above "
          f"{RESIDUE_LIMIT}")
    print("| mask | views | residue min | residue max | flagged |")
    print("|---|---|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {row['views']} | {row['min']} | {row['max']} | {row['flagged']} |")
    ms = 1000 * float(np.median(seconds))
    print(f"median {ms:.1f} ms per measurement")
    print(json.dumps({"size": args.size, "rows": rows, "ms_per_view": round(ms, 2)}))


if __name__ == "__main__":
    main()
