"""A store catalog end to end, and how fast the producer enqueues.

Starts its own redis-server and S3 server (SeaweedFS) on loopback. Then:

1. Enqueue rate: ``--enqueue-tasks`` match tasks sent through the project's Celery app
   with no worker listening, one by one and in pipelined batches (as a reference task
   enqueues its job's targets); prints tasks/s and Redis memory per queued task.
2. A catalog: ``--products`` rendered spin sets of ``--views`` photos each (different
   seeds), written as a CSV catalog and submitted with ``prodseg catalog submit`` to
   ``--workers`` real worker processes (fast deterministic backend). Prints products/s
   of the submission, images/s from submission to the last product's end, and checks
   that every output is present once.
3. What the catalog cost, beside the wall time (``run_cost``): CPU seconds of the
   workers (pool children included), the Redis server, the S3 server and the client
   commands (``catalog submit``, then ``catalog status --watch``), in all and per
   target image; Redis commands per target, and per command.

    python benchmarks/bench_catalog.py --products 200 --views 12 --workers 2
    python benchmarks/bench_catalog.py --products 1000 --views 4 --leases off  # vs on
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from local_services import CLASSIC_ENV, LocalServices
from run_cost import Meter, children_cpu_s, cost, describe


def enqueue_rate(tasks: int, batched: bool) -> dict[str, float]:
    """Send ``tasks`` match tasks with nobody consuming; tasks/s and bytes per task.

    ``batched``: the way a reference task enqueues its job's targets
    (``prodseg.tasks.app.publishing``); else one publish at a time.
    """
    import redis

    from prodseg.settings import load_settings
    from prodseg.tasks.app import make_app, publishing
    from prodseg.tasks.names import BATCH_QUEUE as BATCH

    settings = load_settings()
    app = make_app(settings)
    r = redis.Redis.from_url(settings.broker_url)
    r.delete(BATCH)
    before = int(r.info("memory")["used_memory"])
    start = time.perf_counter()
    with publishing(app) if batched else app.producer_or_acquire() as producer:
        for index in range(tasks):
            app.send_task("prodseg.match", args=("bench-enqueue-job", index),
                          producer=producer)
    seconds = time.perf_counter() - start
    queued = int(r.llen(BATCH))
    after = int(r.info("memory")["used_memory"])
    r.delete(BATCH)
    return {"tasks": tasks, "queued": queued, "seconds": seconds,
            "tasks_per_s": tasks / seconds, "bytes_per_task": (after - before) / tasks}


def write_catalog(root: Path, products: int, views: int, size: str) -> Path:
    """Render ``products`` spin sets and write a CSV catalog of them."""
    from prodseg.producer.samples.scene import render_spin_set, write_sample_set

    width, height = (int(v) for v in size.split("x"))
    rows = ["product_id,images,reference,point"]
    for k in range(products):
        spin = render_spin_set(n_views=views, height=height, width=width,
                               n_distractor_only=0, seed=k)
        write_sample_set(root / f"p{k}", spin)
        doc = json.loads((root / f"p{k}" / "sample.json").read_text())
        x, y = spin.reference_point
        rows.append(f'sku-{k:04d},p{k}/images,p{k}/{doc["reference"]},"{x},{y}"')
    path = root / "catalog.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def check_outputs(catalog: str, products: int, views: int) -> tuple[int, dict[str, str]]:
    """Every done product's job has one result per target, once.

    Returns:
        The target images processed, and the jobs that failed with their reasons.
    """
    from prodseg.settings import load_settings
    from prodseg.storage.manifest import job_state
    from prodseg.storage.s3 import S3Store

    store = S3Store.from_settings(load_settings())
    jobs = sorted({k.split("/")[1] for k in store.list("jobs/") if catalog in k})
    assert len(jobs) == products, (len(jobs), products)
    images, failed = 0, {}
    for job in jobs:
        end = job_state(store, job).end()
        assert end is not None, f"{job} has not ended"
        if end["state"] != "done":
            failed[job] = f"{end['state']}: {end.get('error')}"
            continue
        doc = json.loads(store.get(f"jobs/{job}/results.json"))
        names = [e["image"] for e in doc["images"]]
        assert len(names) == len(set(names)) == views - 1, job
        images += len(names)
    return images, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=200)
    parser.add_argument("--views", type=int, default=12, help="photos per product")
    parser.add_argument("--size", default="160x120", help="WIDTHxHEIGHT of each photo")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--max-inflight", type=int, default=8)
    parser.add_argument("--enqueue-tasks", type=int, default=20_000)
    parser.add_argument("--leases", choices=("on", "off"), default="on",
                        help="off: workers and submission run through leases_off.py, to "
                        "measure what the leases cost (the product has no such switch)")
    args = parser.parse_args()
    prodseg = (("-m", "prodseg") if args.leases == "on"
               else (str(Path(__file__).with_name("leases_off.py")),))

    tmp = Path(tempfile.mkdtemp(prefix="prodseg-catalog-"))
    env = {**os.environ, **CLASSIC_ENV}
    services = LocalServices(tmp, env)
    try:
        services.start_broker_and_store()
        rates = {}
        for batched in (False, True):
            rate = enqueue_rate(args.enqueue_tasks, batched)
            how = "pipelined batches" if batched else "one by one"
            rates["batched" if batched else "single"] = rate
            print(f"enqueue ({how}): {rate['tasks']:.0f} tasks in {rate['seconds']:.2f} s "
                  f"= {rate['tasks_per_s']:.0f} tasks/s; Redis {rate['bytes_per_task']:.0f} "
                  f"bytes per queued task ({rate['queued']:.0f} queued)")

        start = time.perf_counter()
        path = write_catalog(tmp / "catalog", args.products, args.views, args.size)
        print(f"rendered {args.products} x {args.views} photos in "
              f"{time.perf_counter() - start:.1f} s")
        workers = [services.worker(f"catalog{w}", prodseg=prodseg).pid
                   for w in range(args.workers)]
        time.sleep(2)
        import redis

        meter = Meter(redis.Redis.from_url(env["PRODSEG_BROKER_URL"]), workers,
                      services.servers[1].process.pid)
        before = meter.read()
        start = time.perf_counter()
        submit = subprocess.run(
            [sys.executable, *prodseg, "catalog", "submit", str(path),
             "--max-inflight", str(args.max_inflight), "--no-progress"],
            env=env, capture_output=True, text=True, check=True)
        submitted = time.perf_counter() - start
        submit_cpu_s = children_cpu_s() - before.client_s
        catalog = submit.stdout.strip().splitlines()[0]
        watched = subprocess.run(
            [sys.executable, "-m", "prodseg", "catalog", "status", catalog, "--watch",
             "--no-progress"], env=env, capture_output=True, text=True)
        total = time.perf_counter() - start
        after = meter.read()
        images, failed = check_outputs(catalog, args.products, args.views)
        for job, reason in failed.items():
            print(f"job {job} {reason}")
        result = {"leases": args.leases, "products": args.products, "views": args.views,
                  "size": args.size,
                  "workers": args.workers, "max_inflight": args.max_inflight,
                  "submit_s": submitted, "total_s": total, "images": images,
                  "images_per_s": images / total, "failed_products": len(failed),
                  "load_avg_1m": os.getloadavg()[0], "enqueue": rates,
                  "submit_cpu_s": submit_cpu_s, **cost(before, after, images)}
        print(watched.stdout.strip())
        print(f"catalog: {args.products} products submitted in {submitted:.1f} s "
              f"(uploads included, under --max-inflight {args.max_inflight}); "
              f"{images} target images in {total:.1f} s = {images / total:.1f} images/s; "
              f"{len(failed)} products failed; every output of the others present once")
        print(f"{describe(result)} (client: catalog submit {submit_cpu_s:.1f} s, "
              f"the rest its watch); load average {result['load_avg_1m']:.1f}")
        print(json.dumps(result))
    finally:
        services.stop()
        shutil.rmtree(tmp, ignore_errors=True)  # the photos, the store's and broker's data


if __name__ == "__main__":
    main()
