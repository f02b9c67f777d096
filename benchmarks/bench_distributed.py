"""In-process `prodseg run` against the distributed path, on the same images, in one run.

Starts its own redis-server and S3 endpoint (moto's server mode) on loopback, and real
`prodseg worker` processes. Prints images/s for the in-process pipeline and for the
distributed path with one and with two worker processes, and the distributed overhead
per image (broker, storage, uploads and bookkeeping): distributed seconds per image
minus in-process seconds per image, with models already built on both sides.

    python benchmarks/bench_distributed.py --views 12 --points-per-side 8
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from local_services import LocalServices

SMALL = {"PRODSEG_SAM2_CHECKPOINT": "hiera_tiny",
         "PRODSEG_DINOV2_MODEL": "vit_small_patch14_dinov2", "PRODSEG_WEIGHTS": "random"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=12)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--points-per-side", type=int, default=8)
    parser.add_argument("--backend", choices=["sam2-dinov2", "classic"], default="sam2-dinov2")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="prodseg-bench-"))
    env = {**os.environ, **SMALL, "PRODSEG_BACKEND": args.backend,
           "PRODSEG_SAM2_POINTS_PER_SIDE": str(args.points_per_side),
           "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
           "AWS_DEFAULT_REGION": "us-east-1", "PRODSEG_S3_BUCKET": "bench",
           "PRODSEG_MODEL_CACHE_DIR": str(tmp / "models"), "PYTHONUNBUFFERED": "1"}
    services = LocalServices(tmp, env)
    try:
        services.start_broker_and_store()

        from prodseg.producer.client import JobClient
        from prodseg.producer.samples.scene import render_spin_set, write_sample_set
        from prodseg.settings import load_settings
        from prodseg.workers.plan.pipeline import ProductSegmentationPipeline

        settings = load_settings()
        width, height = (int(v) for v in args.size.split("x"))
        spin = render_spin_set(n_views=args.views, height=height, width=width,
                               n_distractor_only=0, seed=0)
        write_sample_set(tmp / "sample", spin)
        images = sorted((tmp / "sample" / "images").glob("*.jpg"))
        ref, point = images[0], spin.reference_point
        n = len(images)  # the reference plus the targets: every image is worked on

        from prodseg.prompts import Prompt

        pipeline = ProductSegmentationPipeline(settings)
        pipeline.run(images[:2], ref, reference_point=point)  # builds and warms the models
        t0 = time.perf_counter()
        pipeline.run(images, ref, reference_point=point, output_dir=tmp / "local")
        local_s = (time.perf_counter() - t0) / n
        rows = [{"mode": "in-process", "workers": 0, "images": n,
                 "s_per_image": round(local_s, 3), "images_per_s": round(1 / local_s, 3)}]

        client = JobClient(settings)
        for workers in (1, 2):
            # The cores are shared between the worker processes, as on a real machine.
            env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))
            for w in range(workers):
                services.worker(f"b{workers}{w}")
            for _ in range(workers):  # warm-up: every worker builds its models
                client.watch(client.submit(images[:2], ref, Prompt.from_point(*point)))
            t0 = time.perf_counter()
            job = client.submit(images, ref, Prompt.from_point(*point))
            client.watch(job, interval=0.05)
            dist_s = (time.perf_counter() - t0) / n
            rows.append({"mode": "distributed", "workers": workers, "images": n,
                         "s_per_image": round(dist_s, 3), "images_per_s": round(1 / dist_s, 3),
                         "overhead_s_per_image": round(dist_s - local_s, 3) if workers == 1
                         else None,
                         "overhead_pct": round(100 * (dist_s - local_s) / local_s, 1)
                         if workers == 1 else None})
            services.stop(first=2)  # the workers; redis and S3 stay
        print(f"{'mode':<12}{'workers':>8}{'s/image':>10}{'images/s':>10}{'overhead':>10}")
        for r in rows:
            over = r.get("overhead_pct")
            print(f"{r['mode']:<12}{r['workers']:>8}{r['s_per_image']:>10}"
                  f"{r['images_per_s']:>10}{'' if over is None else f'{over}%':>10}")
        for r in rows:
            print(json.dumps({**r, "backend": args.backend, "image": args.size,
                              "points_per_side": args.points_per_side,
                              "cpus": os.cpu_count()}))
    finally:
        services.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
