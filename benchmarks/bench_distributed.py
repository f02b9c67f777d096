"""In-process `prodseg run` against the distributed path, per matching mode, in one run.

Starts its own redis-server and S3 server (SeaweedFS) on loopback, and real
`prodseg worker` processes (``local_services``). For each matching mode it times, on the
same rendered spin set, the in-process pipeline (`prodseg run`'s code path) and the
distributed path, with models already built on both sides, and prints seconds per image
(the reference included: every image is worked on) and the distributed overhead per
image (uploads, broker round trips, storage and bookkeeping): distributed seconds per
image minus in-process seconds per image. Uploads count: the clock starts at submission.

Modes (``--modes``): ``grid`` (SAM2's full prompt grid on every target), ``guided``
(prompts at the peaks of the reference's similarity map; the grid where they find no
match), ``guided-bank`` (guided, with a growing prototype bank) and ``tracking`` (SAM2's
video predictor follows the click around the spin; views it loses get the grid).

Worker configurations (``--workers``, ``--threads``): each entry of ``--workers`` is a
number of worker processes (one child each); ``--threads`` gives each process's torch
threads (OMP_NUM_THREADS), one value for all or one per entry, by default the cores
divided among the processes. ``--workers 1 2 --threads 2 1`` compares 1 worker x 2
threads with 2 workers x 1 thread. The in-process run takes the first configuration's
threads, and the overhead columns compare it with that configuration.

    python benchmarks/bench_distributed.py --views 8 --points-per-side 8 --size 640x480
    python benchmarks/bench_distributed.py --backend classic --workers 1 2 --threads 2 1

``--set NAME=VALUE`` adds job settings to every mode: with random weights a guided view
finds no match and also runs the grid, unless ``similarity_threshold`` lets it match.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from local_services import LocalServices

SMALL = {"PRODSEG_SAM2_CHECKPOINT": "hiera_tiny",
         "PRODSEG_DINOV2_MODEL": "vit_small_patch14_dinov2", "PRODSEG_WEIGHTS": "random"}

MODES: dict[str, dict[str, Any]] = {
    "grid": {"proposals": "grid"},
    "guided": {"proposals": "guided"},
    "guided-bank": {"proposals": "guided", "bank_size": 8, "bank_add_threshold": 0.75,
                    "bank_margin": 0.05},
    "tracking": {"propagation": "track"},
}
"""Each mode's job settings (``prodseg.settings``), on top of the environment's."""

WARM_UP: dict[str, Any] = {"proposals": "guided", "reference_neighbours": False}
"""A cheap job that builds every model the modes use (the models are kept per process
whatever the job's settings): SAM2, DINOv2 and, with tracking, SAM2's video predictor."""

Counts = dict[str, int]
"""A count per key: matches per image id (what both paths must agree on), or targets
per way their candidates were found."""


def configurations(workers: list[int], threads: list[int] | None) -> list[tuple[int, int]]:
    """``(worker processes, threads each)`` per entry of ``--workers``."""
    if threads is None:
        threads = [max(1, (os.cpu_count() or 1) // w) for w in workers]
    elif len(threads) == 1:
        threads = threads * len(workers)
    elif len(threads) != len(workers):
        raise SystemExit("--threads takes one value, or one per --workers entry")
    return list(zip(workers, threads, strict=True))


def in_process(pipeline: Any, images: list[Path], point: tuple[int, int],
               out: Path) -> tuple[float, Counts, Counts]:
    """Wall seconds of one `prodseg run` job (outputs written), its match counts, and
    how many targets each way found its candidates (a guided view can fall back to the
    grid, a tracked view can be lost)."""
    start = time.perf_counter()
    result = pipeline.run(images, images[0], reference_point=point, output_dir=out)
    seconds = time.perf_counter() - start
    return (seconds, {r.image_id: len(r.matches) for r in result.images},
            dict(Counter(r.found_by for r in result.images)))


def distributed(client: Any, settings: Any, images: list[Path],
                point: tuple[int, int]) -> tuple[float, Counts]:
    """Wall seconds of one distributed job from submission to its end, and its counts."""
    from prodseg.prompts import Prompt

    start = time.perf_counter()
    job = client.submit(images, images[0], Prompt.from_point(*point), settings=settings)
    status = client.watch(job, interval=0.05)
    seconds = time.perf_counter() - start
    if status.state != "done":
        raise RuntimeError(f"job {job} ended {status.state}: {status.message}")
    doc = json.loads(client.store.get(f"jobs/{job}/results.json"))
    return seconds, {e["image"]: len(e["matches"]) for e in doc["images"]}


def warm_workers(client: Any, settings: Any, images: list[Path], point: tuple[int, int],
                 workers: int) -> None:
    """One warm-up job per worker process, all submitted at once: with one task in hand
    at a time, each idle worker takes a reference task of its own."""
    from prodseg.prompts import Prompt

    jobs = [client.submit(images[:2], images[0], Prompt.from_point(*point), settings=settings)
            for _ in range(workers)]
    for job in jobs:
        client.watch(job, interval=0.05)


def label(workers: int, threads: int) -> str:
    return (f"{workers} worker{'s' if workers > 1 else ''} x "
            f"{threads} thread{'s' if threads > 1 else ''}")


def table(doc: dict[str, Any]) -> str:
    """The figures as a Markdown table: one row per mode."""
    configs = [label(c["workers"], c["threads"]) for c in doc["configurations"]]
    head = ["mode", "in-process s/image", f"distributed s/image ({configs[0]})",
            "overhead s", "overhead %"]
    head += [f"distributed s/image ({c})" for c in configs[1:]] + ["targets found by"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in doc["modes"]:
        dist = [f"{d['s_per_image']:.3f}" for d in row["distributed"]]
        cells = [row["mode"], f"{row['in_process_s_per_image']:.3f}", dist[0],
                 f"{row['overhead_s_per_image']:+.3f}", f"{row['overhead_pct']:+.1f}",
                 *dist[1:], ", ".join(f"{k} {v}" for k, v in sorted(row["found_by"].items()))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=8, help="views rendered (1 is the reference)")
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--points-per-side", type=int, default=8)
    parser.add_argument("--backend", choices=["sam2-dinov2", "classic"], default="sam2-dinov2")
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    parser.add_argument("--workers", type=int, nargs="+", default=[1],
                        help="worker processes, one configuration per entry (e.g. 1 2)")
    parser.add_argument("--threads", type=int, nargs="+",
                        help="threads per worker process: one, or one per --workers entry")
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                        help="job settings for every mode, e.g. similarity_threshold=0")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.set)
    configs = configurations(args.workers, args.threads)
    modes = list(dict.fromkeys(args.modes))  # each once, in the order given

    tmp = Path(tempfile.mkdtemp(prefix="prodseg-bench-"))
    env = {**os.environ, **SMALL, "PRODSEG_BACKEND": args.backend,
           "PRODSEG_SAM2_POINTS_PER_SIDE": str(args.points_per_side),
           "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
           "AWS_DEFAULT_REGION": "us-east-1", "PRODSEG_S3_BUCKET": "bench",
           "PRODSEG_MODEL_CACHE_DIR": str(tmp / "models"), "PYTHONUNBUFFERED": "1"}
    services = LocalServices(tmp, env)
    try:
        services.start_broker_and_store()

        import torch

        from prodseg.producer.client import JobClient
        from prodseg.producer.samples.scene import render_spin_set, write_sample_set
        from prodseg.settings import load_settings
        from prodseg.workers.models.factory import build_backends
        from prodseg.workers.plan.pipeline import ProductSegmentationPipeline

        width, height = (int(v) for v in args.size.split("x"))
        spin = render_spin_set(n_views=args.views, height=height, width=width,
                               n_distractor_only=0, seed=0)
        write_sample_set(tmp / "sample", spin)
        images = sorted((tmp / "sample" / "images").glob("*.jpg"))
        point, n = spin.reference_point, len(images)
        warm = {**WARM_UP, "propagation": "track" if "tracking" in modes else "off"}
        settings = {mode: load_settings(**{**MODES[mode], **extra}) for mode in modes}

        torch.set_num_threads(configs[0][1])
        segmenter, embedder, described = build_backends(load_settings())  # built once
        ProductSegmentationPipeline(load_settings(**warm), segmenter, embedder).run(
            images[:2], images[0], reference_point=point)
        local: dict[str, tuple[float, Counts, Counts]] = {}
        for mode in modes:
            pipeline = ProductSegmentationPipeline(settings[mode], segmenter, embedder)
            local[mode] = in_process(pipeline, images, point, tmp / "local" / mode)

        client = JobClient(load_settings())
        remote: dict[str, list[tuple[float, Counts]]] = {mode: [] for mode in modes}
        for c, (workers, threads) in enumerate(configs):
            for w in range(workers):
                services.worker(f"c{c}w{w}", threads)
            warm_workers(client, load_settings(**warm), images, point, workers)
            for mode in modes:
                remote[mode].append(distributed(client, settings[mode], images, point))
            services.stop(first=2)  # the workers; redis and S3 stay

        rows = []
        for mode in modes:
            local_s = local[mode][0] / n
            dist = [{"workers": w, "threads": t, "s_per_image": round(s / n, 4),
                     "same_match_counts": counts == local[mode][1]}
                    for (w, t), (s, counts) in zip(configs, remote[mode], strict=True)]
            over = dist[0]["s_per_image"] - local_s
            rows.append({"mode": mode, "settings": {**MODES[mode], **extra},
                         "in_process_s_per_image": round(local_s, 4), "distributed": dist,
                         "found_by": local[mode][2],
                         "overhead_s_per_image": round(over, 4),
                         "overhead_pct": round(100 * over / local_s, 1)})
        doc = {"backend": args.backend, "models": described, "image": args.size,
               "points_per_side": args.points_per_side, "views": args.views, "images": n,
               "cpus": os.cpu_count(), "in_process_threads": configs[0][1],
               "configurations": [{"workers": w, "threads": t} for w, t in configs],
               "modes": rows}
        print(table(doc))
        for row in rows:
            for d in row["distributed"]:
                if not d["same_match_counts"]:
                    print(f"warning: {row['mode']}, {label(d['workers'], d['threads'])}: "
                          "match counts differ from in-process")
        print(json.dumps(doc))
        if args.json:
            args.json.write_text(json.dumps(doc, indent=2) + "\n")
    finally:
        services.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
