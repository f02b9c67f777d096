"""How long ``prodseg select`` makes a person wait after each click (in-process preview).

Builds SAM 2.1 (seeded random weights: the compute is the same as with real ones) and
times clicks on one rendered photo: the first click of a photo runs the image encoder,
the later ones only the prompt encoder and mask decoder (the features are kept).

    python benchmarks/bench_preview.py --models hiera_tiny hiera_large --size 1024x768
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["hiera_tiny", "hiera_large"])
    parser.add_argument("--size", default="1024x768")
    parser.add_argument("--clicks", type=int, default=10, help="later clicks timed")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    from prodseg.producer.samples.scene import render_spin_set
    from prodseg.producer.ui.preview import LocalPreview
    from prodseg.prompts import Prompt
    from prodseg.settings import load_settings
    from prodseg.workers.models.builders import resolve_device

    width, height = (int(v) for v in args.size.split("x"))
    spin = render_spin_set(n_views=2, height=height, width=width, seed=0)
    image = spin.views[0].image
    x, y = spin.reference_point
    photo = Path("rendered.jpg")  # only named in messages; the pixels are passed
    rng = np.random.default_rng(0)
    print(f"{'model':<12} {'device':<6} {'first click s':>13} {'later click ms':>15}")
    for model in args.models:
        settings = load_settings(sam2_checkpoint=model, weights="random", device=args.device)
        preview = LocalPreview(settings)
        preview(photo, image, Prompt.from_point(x, y))  # builds the model
        other = image.copy()
        other[0, 0, 0] ^= 1  # a new photo as far as the feature cache is concerned
        start = time.perf_counter()
        preview(photo, other, Prompt.from_point(x, y))
        first = time.perf_counter() - start
        later = []
        for _ in range(args.clicks):
            px, py = x + rng.uniform(-20, 20), y + rng.uniform(-20, 20)
            start = time.perf_counter()
            preview(photo, other, Prompt(points=((px, py), (5.0, 5.0)), labels=(1, 0)))
            later.append(time.perf_counter() - start)
        device = str(resolve_device(settings.device))
        median_ms = statistics.median(later) * 1000
        print(f"{model:<12} {device:<6} {first:>13.2f} {median_ms:>15.0f}")
        print(json.dumps({"model": model, "device": device, "size": args.size,
                          "first_click_s": first, "later_click_ms_median": median_ms,
                          "later_click_ms": [t * 1000 for t in later]}))


if __name__ == "__main__":
    main()
