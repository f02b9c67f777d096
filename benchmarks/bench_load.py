"""A large job on several worker processes: throughput, Redis memory, redeliveries.

Starts its own redis-server and S3 server (SeaweedFS) on loopback and real
`prodseg worker` processes with the fast deterministic backend, renders small photos,
submits one job and waits for it. Prints images/s (from submission to the end, uploads
included), Redis memory before the job and after it ended, how many keys the job left
behind, and how many task deliveries were repeats.

    python benchmarks/bench_load.py --images 500 --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from local_services import CLASSIC_ENV, LocalServices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500, help="target images")
    parser.add_argument("--size", default="160x120", help="WIDTHxHEIGHT of each photo")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="prodseg-load-"))
    env = {**os.environ, **CLASSIC_ENV}
    services = LocalServices(tmp, env)
    try:
        services.start_broker_and_store()

        import redis

        from prodseg.producer.client import JobClient
        from prodseg.producer.samples.scene import render_spin_set, write_sample_set
        from prodseg.prompts import Prompt
        from prodseg.settings import load_settings

        settings = load_settings()
        width, height = (int(v) for v in args.size.split("x"))
        spin = render_spin_set(n_views=args.images + 1, height=height, width=width,
                               n_distractor_only=0, seed=0)
        write_sample_set(tmp / "sample", spin)
        images = sorted((tmp / "sample" / "images").glob("*.jpg"))
        for w in range(args.workers):
            services.worker(f"load{w}")
        time.sleep(2)  # let every worker join before the burst

        r = redis.Redis.from_url(env["PRODSEG_BROKER_URL"])
        memory_before = int(r.info("memory")["used_memory"])
        keys_before = int(r.dbsize())
        client = JobClient(settings)
        start_s = time.perf_counter()
        job = client.submit([str(p) for p in images], str(images[0]),
                            Prompt.from_point(*spin.reference_point))
        submitted_s = time.perf_counter() - start_s
        status = client.watch(job, timeout=3600)
        total_s = time.perf_counter() - start_s
        memory_after = int(r.info("memory")["used_memory"])
        deliveries = [int(v) for v in r.hvals(f"prodseg:job:{job}:deliveries")]
        doc = json.loads(client.store.get(f"jobs/{job}/results.json"))
        targets = len(images) - 1
        row = {
            "targets": targets, "workers": args.workers, "image": args.size,
            "state": status.state, "results": len(doc["images"]),
            "ok": doc["summary"]["ok"], "submit_s": round(submitted_s, 2),
            "total_s": round(total_s, 2), "images_per_s": round(targets / total_s, 2),
            "redis_used_memory_before": memory_before, "redis_used_memory_after": memory_after,
            "redis_keys_before": keys_before, "redis_keys_after": int(r.dbsize()),
            "deliveries": sum(deliveries), "redeliveries": sum(deliveries) - targets,
        }
        print(f"{targets} targets on {args.workers} workers ({args.size}): {row['state']}, "
              f"{row['results']} results ({row['ok']} ok)")
        print(f"  {row['images_per_s']} images/s ({row['total_s']} s, of which upload and "
              f"submit {row['submit_s']} s)")
        print(f"  Redis used_memory {memory_before / 2**20:.2f} MiB before, "
              f"{memory_after / 2**20:.2f} MiB after; keys {keys_before} -> "
              f"{row['redis_keys_after']}")
        print(f"  deliveries {row['deliveries']}, redeliveries {row['redeliveries']}")
        print(json.dumps(row))
    finally:
        services.stop()
        shutil.rmtree(tmp, ignore_errors=True)

if __name__ == "__main__":
    main()
