"""The distributed-mode commands: submit, status, watch, fetch, resume, cancel, worker."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from producer.cli import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    expand_images,
    prompt_from_args,
    settings_from_args,
)

if TYPE_CHECKING:
    from producer.client import JobClient, JobStatus


def _client(args: argparse.Namespace) -> JobClient:
    from producer.client import JobClient

    return JobClient(settings_from_args(args))


def _describe(status: JobStatus) -> str:
    text = f"{status.job}: {status.state}"
    if status.total:
        text += f", {status.finished}/{status.total} images"
    if status.failed_images:
        text += f", {status.failed_images} failed"
    if status.message:
        text += f" ({status.message})"
    return text


def cmd_submit(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    client = _client(args)
    prompt = prompt_from_args(args)
    if client.settings.bank_size > 1:
        print("prodseg: warning: the prototype bank (bank_size) is used by prodseg run; a "
              "distributed job matches every view against the clicked reference",
              file=sys.stderr)
    images = [str(p) for p in expand_images([i for i in args.images if not i.startswith("s3://")])]
    images += [i for i in args.images if i.startswith("s3://")]
    with tqdm(total=len(images) + 1, unit="img", desc="uploading", file=sys.stderr,
              disable=args.no_progress) as bar:
        job = client.submit(images, args.reference, prompt, on_upload=lambda _s: bar.update(1))
    print(job)
    if args.watch:
        return _watch(client, job, progress=not args.no_progress)
    return EXIT_OK


def _watch(client: JobClient, job: str, progress: bool = True) -> int:
    from tqdm import tqdm

    with tqdm(total=None, unit="img", desc=job, file=sys.stderr, disable=not progress) as bar:

        def show(status: JobStatus) -> None:
            if status.total and bar.total != status.total:
                bar.total = status.total
            bar.n = status.finished
            bar.set_postfix(state=status.state, failed=status.failed_images, refresh=False)
            bar.refresh()

        final = client.watch(job, on_change=show)
    print(_describe(final))
    if final.state == "done":
        return EXIT_SOME_FAILED if final.failed_images else EXIT_OK
    return EXIT_SOME_FAILED


def cmd_status(args: argparse.Namespace) -> int:
    print(_describe(_client(args).status(args.job)))
    return EXIT_OK


def cmd_watch(args: argparse.Namespace) -> int:
    return _watch(_client(args), args.job)


def cmd_fetch(args: argparse.Namespace) -> int:
    client = _client(args)
    files = client.fetch(args.job, args.output)
    print(f"fetched {len(files)} files into {args.output}")
    print(f"gallery: {args.output / 'gallery.html'}")
    return EXIT_OK


def cmd_resume(args: argparse.Namespace) -> int:
    client = _client(args)
    report = client.resume(args.job)
    done = f"{report.stored} of {report.total} targets already stored"
    if report.step == "nothing":
        print(f"{report.job}: already complete ({done}); nothing to do")
        return EXIT_OK
    if report.step == "reference":
        print(f"{report.job}: reference enqueued again; it enqueues all "
              f"{report.total} targets ({done})")
    elif report.step == "finalize":
        print(f"{report.job}: every target is stored; finalisation enqueued again")
    else:
        print(f"{report.job}: enqueued {len(report.requeued)} of {report.total} targets "
              f"again ({done})")
    if args.watch:
        return _watch(client, report.job, progress=not args.no_progress)
    return EXIT_OK


def cmd_cancel(args: argparse.Namespace) -> int:
    print(_describe(_client(args).cancel(args.job)))
    return EXIT_OK


def cmd_worker(args: argparse.Namespace) -> int:
    from workers.bootstrap import run_worker

    # Flags become the environment the worker's children read their settings from.
    for name, value in vars(args).items():
        if name.startswith("setting_") and value is not None:
            os.environ["PRODSEG_" + name.removeprefix("setting_").upper()] = str(value)
    settings_from_args(args)  # validate before starting anything
    gpus = [g for g in (args.gpus or "").split(",") if g.strip()]
    if args.gpus is None:
        gpus = _visible_gpus()
    queues = [q for q in args.queues.split(",") if q]
    return run_worker(gpus, queues, args.concurrency, args.loglevel, args.name)


def _visible_gpus() -> list[str]:
    """GPU indices from CUDA_VISIBLE_DEVICES or nvidia-smi, without touching CUDA.

    The worker's parent must not initialise CUDA: its children are forked from it.
    """
    import shutil
    import subprocess

    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g.strip() for g in visible.split(",") if g.strip() and g.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    done = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                          capture_output=True, text=True, check=False)
    return [line.strip() for line in done.stdout.splitlines() if line.strip()]
