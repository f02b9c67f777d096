"""GPU figures of one worker process: SAM 2.1 + DINOv2 with seeded random weights.

What ``benchmarks/gpu.sh`` runs. For each mode (``compile_models`` off/on, and
``image_batch_size`` 1 and 8) it measures, after warm-up runs:

* the SAM2 image encoder per image;
* the mask decoder (prompt encoder included) per 64 point prompts;
* DINOv2's whole-image pass per image (images batched ``image_batch_size`` at a time);
* ``prodseg run`` end to end per target image, on a rendered spin set, for the grid and
  for guided prompting, and the grid's images per second for one worker process;
* peak GPU memory (peak host RSS where there is no GPU).

Timings use CUDA events on a GPU (``time.perf_counter`` on a CPU) around synchronised
work. The models are those of the settings (bf16 autocast on CUDA, full precision on the
CPU). No network: random weights are built locally. The output is a table of figure
lines, ``name  mode  value unit``, then one JSON line with every figure.

    benchmarks/gpu.sh                      # hiera_large + ViT-L/14, 1024x768, 32x32 grid
    benchmarks/gpu.sh --tiny               # hiera_tiny + ViT-S/14, small image, CPU-sized
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

FIGURES = {  # name -> unit
    "encoder_ms_per_image": "ms",
    "decoder_ms_per_64_prompts": "ms",
    "dinov2_ms_per_image": "ms",
    "grid_s_per_image": "s",
    "guided_s_per_image": "s",
    "grid_images_per_s": "img/s",
    "peak_memory_mib": "MiB",
}

# SAM2 encodes every image at 1024x1024 whatever its size: one target view keeps it short.
TINY = {"sam2": "hiera_tiny", "dinov2": "vit_small_patch14_dinov2", "size": "128x96",
        "points_per_side": 4, "views": 2, "iterations": 1, "warmup": 0, "dinov2_input": 112,
        "compile": ["off"], "batch_sizes": [1], "guided_points": 2, "decoder_prompts": 8}


def timer(device: Any) -> Callable[[Callable[[], object], int], float]:
    """``measure(fn, n)``: mean seconds of ``n`` calls of ``fn``, synchronised."""
    import torch

    def measure(fn: Callable[[], object], n: int) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(n):
                fn()
            end.record()
            torch.cuda.synchronize(device)
            return start.elapsed_time(end) / 1000 / n
        t = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - t) / n

    return measure


def peak_memory_mib(device: Any) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def settings_for(args: argparse.Namespace, compiled: bool, batch: int, proposals: str) -> Any:
    from prodseg.settings import load_settings

    return load_settings(
        weights="random", device=args.device, sam2_checkpoint=args.sam2,
        dinov2_model=args.dinov2, dinov2_input_size=args.dinov2_input,
        sam2_points_per_side=args.points_per_side, proposals=proposals,
        guided_points=args.guided_points, sam2_pred_iou_thresh=args.pred_iou_thresh,
        sam2_stability_score_thresh=args.stability_score_thresh,
        compile_models=compiled, image_batch_size=batch, capture="spin")


def model_figures(args: argparse.Namespace, settings: Any, images: list[Any],
                  batch: int) -> dict[str, float]:
    """Encoder, decoder and DINOv2 per call, with the very models ``prodseg run`` builds."""
    import numpy as np

    from prodseg.workers.models.builders import autocast_for, build_sam2_model, resolve_device
    from prodseg.workers.models.factory import build_backends
    from prodseg.workers.segment.sam2_candidates import ProposalParams, point_grid
    from prodseg.workers.segment.sam2_proposals import ProposalGenerator

    device = resolve_device(settings.device)
    s = settings
    sam = build_sam2_model(s.sam2_checkpoint, s.weights, s.model_cache_dir, str(device),
                           s.seed, s.compile_models)  # the factory's call: the same model
    _, embedder, _ = build_backends(settings)
    gen = ProposalGenerator(sam, ProposalParams(points_per_side=args.points_per_side,
                                                pred_iou_thresh=0.0, stability_score_thresh=0.0))
    measure = timer(device)
    image = images[0]
    grid = point_grid(8, *image.shape[:2])[: args.decoder_prompts]  # up to 64 prompts
    coords, labels = grid[:, None, :], np.ones((len(grid), 1), np.int64)

    def encode() -> None:
        with autocast_for(device):
            gen.predictor.set_image(image)

    for _ in range(args.warmup):
        encode()
        gen.decode(coords, labels)
        embedder.image_tokens_batch(images[:batch])
    import torch

    with torch.inference_mode():
        encoder = measure(encode, args.iterations)
        decoder = measure(lambda: gen.decode(coords, labels), args.iterations)
    dinov2 = measure(lambda: embedder.image_tokens_batch(images[:batch]), args.iterations)
    per_64 = 64 / len(grid)  # 1 unless fewer prompts were asked for (--tiny)
    return {"encoder_ms_per_image": 1000 * encoder,
            "decoder_ms_per_64_prompts": 1000 * decoder * per_64,
            "dinov2_ms_per_image": 1000 * dinov2 / batch}


def end_to_end(args: argparse.Namespace, settings: Any, spin_dir: Path,
               reference_point: tuple[float, float]) -> float:
    """Seconds per target image of ``prodseg run`` (warm models), mean of the iterations."""
    from prodseg.workers.plan.pipeline import ProductSegmentationPipeline

    pipeline = ProductSegmentationPipeline(settings)
    images = sorted((spin_dir / "images").glob("*.jpg"))
    spent, targets = 0.0, 0
    with tempfile.TemporaryDirectory() as out:
        for k in range(args.warmup + args.iterations):
            t = time.perf_counter()
            result = pipeline.run(images, images[0], reference_point=reference_point,
                                  output_dir=Path(out) / str(k))
            if k >= args.warmup:
                spent += time.perf_counter() - t
                targets += len(result.images)
    return spent / max(targets, 1)


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    import torch

    from prodseg.producer.samples.scene import render_spin_set, write_sample_set
    from prodseg.workers.models.builders import resolve_device

    torch.manual_seed(0)
    device = resolve_device(args.device)
    width, height = (int(v) for v in args.size.split("x"))
    spin = render_spin_set(n_views=args.views, height=height, width=width,
                           n_distractor_only=0, seed=0)
    images = [v.image for v in spin.views]
    while len(images) < max(args.batch_sizes):
        images = images + images
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        write_sample_set(Path(tmp), spin)
        for compiled in (c == "on" for c in args.compile):
            for batch in args.batch_sizes:
                mode = f"compile={'on' if compiled else 'off'},batch={batch}"
                if time.perf_counter() - started > args.budget_s:
                    print(f"# {mode}: skipped, past the {args.budget_s:.0f} s budget", flush=True)
                    continue
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                grid = settings_for(args, compiled, batch, "grid")
                row: dict[str, Any] = {"mode": mode}
                row.update(model_figures(args, grid, images, batch))
                row["grid_s_per_image"] = end_to_end(args, grid, Path(tmp), spin.reference_point)
                row["guided_s_per_image"] = end_to_end(
                    args, settings_for(args, compiled, batch, "guided"), Path(tmp),
                    spin.reference_point)
                row["grid_images_per_s"] = 1.0 / row["grid_s_per_image"]
                row["peak_memory_mib"] = peak_memory_mib(device)
                for name, unit in FIGURES.items():
                    print(f"{name:<28}{mode:<24}{row[name]:>12.3f} {unit}", flush=True)
                rows.append(row)
    return rows


def describe(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from prodseg.workers.models.builders import resolve_device

    device = resolve_device(args.device)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "none"
    return {"device": str(device), "gpu": gpu, "torch": torch.__version__,
            "autocast": "bf16" if device.type == "cuda" else "none (full precision)",
            "peak_memory": "GPU allocated" if device.type == "cuda" else "host RSS",
            "sam2": args.sam2, "dinov2": args.dinov2, "image": args.size,
            "points_per_side": args.points_per_side, "views": args.views,
            "decoder_prompts": args.decoder_prompts,
            "iterations": args.iterations, "warmup": args.warmup}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true",
                        help="tiny models, image and grid, one iteration: a CPU smoke run")
    parser.add_argument("--sam2", default="hiera_large")
    parser.add_argument("--dinov2", default="vit_large_patch14_reg4_dinov2")
    parser.add_argument("--dinov2-input", type=int, default=518)
    parser.add_argument("--size", default="1024x768", help="WIDTHxHEIGHT of the views")
    parser.add_argument("--points-per-side", type=int, default=32)
    parser.add_argument("--guided-points", type=int, default=8)
    parser.add_argument("--pred-iou-thresh", type=float, default=0.0,
                        help="0: every candidate survives the filter, the most work")
    parser.add_argument("--stability-score-thresh", type=float, default=0.0)
    parser.add_argument("--decoder-prompts", type=int, default=64, choices=range(1, 65),
                        metavar="1..64", help="prompts per timed decoder call; the figure is "
                        "scaled to 64 (--tiny decodes 8)")
    parser.add_argument("--views", type=int, default=9, help="views (one is the reference)")
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--compile", nargs="+", choices=["off", "on"], default=["off", "on"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--budget-s", type=float, default=330.0,
                        help="modes not started by then are skipped (one mode with compiling "
                        "takes a few minutes: 330 s keeps the whole run near 8 minutes)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.tiny:
        defaults = parser.parse_args([])
        for key, value in TINY.items():  # flags given on the command line win
            if getattr(args, key) == getattr(defaults, key):
                setattr(args, key, value)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    info = describe(args)
    print("# " + ", ".join(f"{k}: {v}" for k, v in info.items()), flush=True)
    print(f"{'figure':<28}{'mode':<24}{'value':>12}", flush=True)
    rows = run(args)
    finite = all(math.isfinite(r[name]) for r in rows for name in FIGURES)
    document = {**info, "figures": rows, "all_finite": finite}
    if args.json:
        args.json.write_text(json.dumps(document, indent=1))
    print(json.dumps(document), flush=True)


if __name__ == "__main__":
    main()
