"""Cutout edge modes against a known soft alpha: SAD, gradient error and seconds per view.

The sample renderer draws hard edges, so a known soft alpha comes from supersampling:
each view is rendered ``--factor`` times larger and shrunk by area averaging, the
photo and its mask alike. The shrunk mask is the true alpha (each pixel's coverage);
the mask a perfect segmenter would give is that alpha >= 0.5. Each mode then makes the
cutout's alpha from the shrunk photo and that mask, cropped to the mask's box as
``prodseg run`` writes it, and is compared with the truth over the whole image:

- SAD: the sum of absolute differences of the alphas (alpha in 0..1), per view;
- gradient error: the sum of squared differences of the alphas' gradient magnitudes
  (Gaussian derivatives, sigma 1.4, as Rhemann et al.'s matting benchmark), per view;
- ms/view: the mode's time per view (the first call of ``matte``, which compiles
  pymatting's kernels once per process, left out);

and, for ``feather``, the same at each ``--feather-widths`` ramp width.

    python benchmarks/bench_cutout_edges.py --views 6 --seeds 0 1 --size 640x480 --factor 4
"""

from __future__ import annotations

import argparse
import json
import time

import cv2
import numpy as np


def gradient_magnitude(alpha: np.ndarray, sigma: float = 1.4) -> np.ndarray:
    """``|grad alpha|`` by Gaussian derivatives of ``sigma`` pixels."""
    smooth = cv2.GaussianBlur(alpha.astype(np.float64), (0, 0), sigma)
    gx = cv2.Sobel(smooth, cv2.CV_64F, 1, 0, ksize=3) / 8
    gy = cv2.Sobel(smooth, cv2.CV_64F, 0, 1, ksize=3) / 8
    return np.hypot(gx, gy)


def errors(alpha: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """SAD and gradient error of ``alpha`` against ``truth`` (both 0..1, same shape)."""
    sad = float(np.abs(alpha - truth).sum())
    grad = float(((gradient_magnitude(alpha) - gradient_magnitude(truth)) ** 2).sum())
    return sad, grad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--views", type=int, default=6)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--size", default="640x480", help="the photos' size WxH")
    parser.add_argument("--factor", type=int, default=4, help="supersampling factor")
    parser.add_argument("--feather-widths", type=float, nargs="*", default=[1.5, 2.0, 3.0])
    args = parser.parse_args()
    from prodseg.producer.samples.scene import render_spin_set
    from prodseg.workers.ops.edges import EDGE_MODES, edge_alpha, feather_alpha
    from prodseg.workers.ops.masks import mask_to_box

    width, height = (int(v) for v in args.size.split("x"))
    totals: dict[str, list[tuple[float, float, float]]] = {}
    warmed = False
    for seed in args.seeds:
        spin = render_spin_set(n_views=args.views, height=height * args.factor,
                               width=width * args.factor, n_distractor_only=0, seed=seed)
        for view in spin.views:
            image = cv2.resize(view.image, (width, height), interpolation=cv2.INTER_AREA)
            truth = cv2.resize(view.mask.astype(np.float32), (width, height),
                               interpolation=cv2.INTER_AREA).astype(np.float64)
            mask = truth >= 0.5
            x0, y0, x1, y1 = (int(v) for v in mask_to_box(mask))
            if not warmed:  # pymatting compiles its kernels on its first call
                edge_alpha("matte", image, mask, (x0, y0, x1, y1))
                warmed = True
            for mode in EDGE_MODES:
                start = time.perf_counter()
                crop = edge_alpha(mode, image, mask, (x0, y0, x1, y1))
                seconds = time.perf_counter() - start
                alpha = np.zeros_like(truth)
                alpha[y0:y1, x0:x1] = crop / 255.0
                totals.setdefault(mode, []).append((*errors(alpha, truth), seconds))
            for ramp in args.feather_widths:
                start = time.perf_counter()
                full = feather_alpha(image, mask, ramp)
                seconds = time.perf_counter() - start
                alpha = np.zeros_like(truth)
                alpha[y0:y1, x0:x1] = np.rint(full[y0:y1, x0:x1] * 255) / 255.0
                totals.setdefault(f"feather {ramp:g} px", []).append(
                    (*errors(alpha, truth), seconds))
    hard_sad = float(np.mean([t[0] for t in totals["hard"]]))
    print(f"{len(totals['hard'])} views of {args.size}, supersampled {args.factor}x")
    print(f"{'mode':<16} {'SAD/view':>9} {'vs hard':>8} {'grad err/view':>14} {'ms/view':>8}")
    for mode, rows in totals.items():
        sad, grad, seconds = (float(np.mean([r[k] for r in rows])) for k in range(3))
        print(f"{mode:<16} {sad:>9.1f} {sad / hard_sad:>8.2f} {grad:>14.2f} "
              f"{1000 * seconds:>8.2f}")
        print(json.dumps({"bench": "cutout_edges", "mode": mode, "views": len(rows),
                          "size": args.size, "factor": args.factor, "sad": sad,
                          "gradient_error": grad, "ms_per_view": 1000 * seconds}))


if __name__ == "__main__":
    main()
