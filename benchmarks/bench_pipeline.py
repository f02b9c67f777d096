"""CPU (or GPU) cost of `prodseg run` per image, by stage, with random weights.

Renders a sample spin set, runs the in-process pipeline on it and prints a table and one
JSON line: seconds per target image (process CPU and wall) split into proposals,
embedding and the rest (decoding, matching, writing), plus model build and reference time.

    python benchmarks/bench_pipeline.py --models small --views 4
    python benchmarks/bench_pipeline.py --models default --views 2 --size 1024x768
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

MODELS = {
    "small": {"sam2_checkpoint": "hiera_tiny", "dinov2_model": "vit_small_patch14_dinov2"},
    "default": {"sam2_checkpoint": "hiera_large",
                "dinov2_model": "vit_large_patch14_reg4_dinov2"},
}


class Clock:
    """Accumulates wall and process-CPU seconds per stage."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)

    def wrap(self, obj: Any, method: str, stage: str) -> None:
        inner = getattr(obj, method)

        def timed(*args: Any, **kwargs: Any) -> Any:
            w, c = time.perf_counter(), time.process_time()
            try:
                return inner(*args, **kwargs)
            finally:
                self.wall[stage] += time.perf_counter() - w
                self.cpu[stage] += time.process_time() - c

        setattr(obj, method, timed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", choices=sorted(MODELS), default="small")
    parser.add_argument("--views", type=int, default=4, help="views rendered (1 is the reference)")
    parser.add_argument("--size", default="1024x768")
    parser.add_argument("--points-per-side", type=int, default=32)
    parser.add_argument("--embedding-mode", choices=["full", "crop"], default="full")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    import torch

    from prodseg.producer.samples.scene import render_spin_set, write_sample_set
    from prodseg.settings import load_settings
    from prodseg.workers.models.factory import build_backends
    from prodseg.workers.plan.pipeline import ProductSegmentationPipeline

    width, height = (int(v) for v in args.size.split("x"))
    settings = load_settings(weights="random", device=args.device,
                             sam2_points_per_side=args.points_per_side,
                             embedding_mode=args.embedding_mode, **MODELS[args.models])
    clock = Clock()
    w0, c0 = time.perf_counter(), time.process_time()
    segmenter, embedder, described = build_backends(settings)
    build = (time.perf_counter() - w0, time.process_time() - c0)
    clock.wrap(segmenter, "propose", "proposals")
    clock.wrap(segmenter, "segment", "reference_segment")
    clock.wrap(embedder, "embed", "embedding")
    pipeline = ProductSegmentationPipeline(settings, segmenter, embedder)

    with tempfile.TemporaryDirectory() as tmp:
        spin = render_spin_set(n_views=args.views, height=height, width=width,
                               n_distractor_only=0, seed=0)
        write_sample_set(Path(tmp), spin)
        images = sorted((Path(tmp) / "images").glob("*.jpg"))
        w0, c0 = time.perf_counter(), time.process_time()
        result = pipeline.run(images, images[0], reference_point=spin.reference_point,
                              output_dir=Path(tmp) / "out")
        total = (time.perf_counter() - w0, time.process_time() - c0)

    n = len(result.images)
    # Per-image figures spread the reference's work (one segment + one embed) over the
    # targets, as a real run does.
    per_target = {
        stage: (clock.wall[stage] / n, clock.cpu[stage] / n) for stage in ("proposals", "embedding")
    }
    staged_wall = sum(clock.wall.values())
    staged_cpu = sum(clock.cpu.values())
    other = ((total[0] - staged_wall) / n, (total[1] - staged_cpu) / n)
    row = {
        "models": f"sam2.1_{settings.sam2_checkpoint} + {settings.dinov2_model}",
        "device": described["device"],
        "torch_threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "image": f"{width}x{height}",
        "points_per_side": args.points_per_side,
        "embedding_mode": args.embedding_mode,
        "targets": n,
        "build_s": round(build[0], 2),
        "reference_segment_s": round(clock.wall["reference_segment"], 2),
        "per_image_wall_s": round(total[0] / n, 2),
        "per_image_cpu_s": round(total[1] / n, 2),
        "proposals_wall_s": round(per_target["proposals"][0], 2),
        "embedding_wall_s": round(per_target["embedding"][0], 2),
        "other_wall_s": round(other[0], 2),
        "proposals_per_image": round(sum(r.num_proposals for r in result.images) / n, 1),
    }
    print(f"{'stage':<24}{'wall s':>10}")
    for key in ("build_s", "reference_segment_s", "proposals_wall_s", "embedding_wall_s",
                "other_wall_s", "per_image_wall_s", "per_image_cpu_s"):
        print(f"{key:<24}{row[key]:>10}")
    print(json.dumps(row))


if __name__ == "__main__":
    main()
