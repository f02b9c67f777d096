"""The distributed-mode commands: submit, status, watch, fetch, resume, cancel, worker."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from prodseg.producer.cli.options import (
    EXIT_OK,
    EXIT_RUNNING,
    EXIT_SOME_FAILED,
    SubParsers,
    add_json_flag,
    count_arg,
    expand_sources,
    job_client,
    job_id_arg,
)
from prodseg.producer.cli.prompt_flags import (
    add_lookalike_flag,
    add_prompt_flags,
    lookalikes_from_args,
    reference_from_refs,
    reference_prompt_from_args,
    views_from_args,
)
from prodseg.producer.cli.setting_flags import (
    SUBMIT_SETTINGS,
    add_settings_flags,
    settings_from_args,
)
from prodseg.settings import CONNECTION, settings_with
from prodseg.tasks.names import CANCELLED, DONE

CONNECTION_SETTINGS = settings_with(CONNECTION)
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

if TYPE_CHECKING:
    from prodseg.producer.client import JobClient
    from prodseg.tasks.progress import JobStatus


def _client(args: argparse.Namespace) -> JobClient:
    return job_client(args)


def status_document(status: JobStatus) -> dict[str, object]:
    """A job's status as the JSON object ``--json`` prints (one line)."""
    return {"job": status.job, "state": status.state, "ended": status.ended,
            "total": status.total, "finished": status.finished,
            "failed_images": status.failed_images, "message": status.message}


def _show(status: JobStatus, as_json: bool) -> None:
    """Print a job's status: one line of words, or one line of JSON."""
    from prodseg.jsonio import dumps

    print(dumps(status_document(status)) if as_json else _describe(status))


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
    images = expand_sources(args.images)
    reference_from_refs(args, [str(i) for i in images])
    prompt = reference_prompt_from_args(args)
    with tqdm(total=len(images) + 1, unit="img", desc="uploading", file=sys.stderr,
              disable=args.no_progress) as bar:
        job = client.submit(images, args.reference, prompt, on_upload=lambda _s: bar.update(1),
                            distractor_points=lookalikes_from_args(args),
                            views=views_from_args(args))
    if args.json and not args.watch:
        from prodseg.jsonio import dumps

        print(dumps({"job": job}))
    else:
        print(job, flush=True)
    if args.watch:
        return _watch(client, job, progress=not args.no_progress, as_json=args.json)
    return EXIT_OK


def _watch(client: JobClient, job: str, progress: bool = True, as_json: bool = False) -> int:
    from tqdm import tqdm

    with tqdm(total=None, unit="img", desc=job, file=sys.stderr, disable=not progress) as bar:

        def show(status: JobStatus) -> None:
            if status.total and bar.total != status.total:
                bar.total = status.total
            bar.n = status.finished
            bar.set_postfix(state=status.state, failed=status.failed_images, refresh=False)
            bar.refresh()

        final = client.watch(job, on_change=show, on_outage=lambda note: bar.write(
            f"{job}: {note}", file=sys.stderr))
    _show(final, as_json)
    return state_exit_code(final)


def state_exit_code(status: JobStatus) -> int:
    """``status``'s and ``watch``'s exit code: 0 done with every image, 1 failed, cancelled
    or done with failed images, 3 still queued or running."""
    if not status.ended:
        return EXIT_RUNNING
    return EXIT_OK if status.state == DONE and not status.failed_images else EXIT_SOME_FAILED


def cmd_status(args: argparse.Namespace) -> int:
    status = _client(args).status(args.job)
    _show(status, args.json)
    return state_exit_code(status)


def cmd_watch(args: argparse.Namespace) -> int:
    return _watch(_client_once_up(args), args.job, progress=not args.no_progress,
                  as_json=args.json)


def _client_once_up(args: argparse.Namespace) -> JobClient:
    """``watch``'s client: a broker or store that is away when it starts is waited for,
    saying so, as an outage met later is (``outage_budget_s``); a wrong password or a
    missing bucket is said at once."""
    from prodseg.errors import TransientError
    from prodseg.outages import Backoff, ride_out

    budget = settings_from_args(args).outage_budget_s

    def waiting(error: BaseException, down_s: float, wait_s: float) -> None:
        print(f"{args.job}: waiting for the broker and the store: {error} (down "
              f"{down_s:.0f} s of the {budget} s budget)", file=sys.stderr, flush=True)

    return ride_out(lambda: _client(args), Backoff(budget), (TransientError,), waiting)


def cmd_fetch(args: argparse.Namespace) -> int:
    client = _client(args)
    files = client.fetch(args.job, args.output, force=args.force)
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
    if report.step != "targets" and report.in_flight:
        print(f"{report.job}: its {report.step} step is queued or running already; nothing "
              f"enqueued ({done})")
    elif report.step == "reference":
        print(f"{report.job}: reference enqueued again; it enqueues all "
              f"{report.total} targets ({done})")
    elif report.step == "track":
        print(f"{report.job}: the spin's track enqueued again; it enqueues the views it "
              f"does not track ({done})")
    elif report.step == "resolve":
        print(f"{report.job}: every view's candidates are stored; the resolve step "
              "enqueued again")
    elif report.step == "finalize":
        print(f"{report.job}: every target is stored; finalisation enqueued again")
    else:
        busy = f", {report.in_flight} queued or running" if report.in_flight else ""
        print(f"{report.job}: enqueued {len(report.requeued)} of {report.total} targets "
              f"again ({done}{busy})")
    if args.watch:
        return _watch(client, report.job, progress=not args.no_progress, as_json=args.json)
    return EXIT_OK


def cmd_cancel(args: argparse.Namespace) -> int:
    """Exit 0 when the job is cancelled (now or before), 1 when it had already finished."""
    status = _client(args).cancel(args.job)
    _show(status, args.json)
    return EXIT_OK if status.state == CANCELLED else EXIT_SOME_FAILED


def cmd_worker(args: argparse.Namespace) -> int:
    from prodseg.tasks.worker import check_weights, run_worker

    # Flags become the environment the worker's children read their settings from.
    for name, value in vars(args).items():
        if name.startswith("setting_") and value is not None:
            os.environ["PRODSEG_" + name.removeprefix("setting_").upper()] = str(value)
    check_weights(settings_from_args(args))  # validate before starting anything
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


def register(sub: SubParsers) -> None:
    """Add submit, status, watch, cancel, resume, fetch and worker."""
    submit = sub.add_parser(
        "submit",
        help="submit a capture to the workers (distributed mode); prints the job id",
        description="Upload local images (s3:// URLs and prefixes are used in place), write "
        "the job manifest and enqueue the job. Same arguments as `prodseg run`, without "
        "--output; the job id is printed on stdout.",
    )
    add_prompt_flags(submit)
    add_lookalike_flag(submit)
    submit.add_argument("--no-progress", action="store_true", help="no upload progress bar")
    submit.add_argument("--watch", action="store_true", help="then watch it until it ends")
    add_json_flag(submit, "the job id, or with --watch its final status")
    add_settings_flags(submit, only=SUBMIT_SETTINGS)
    submit.set_defaults(handler=cmd_submit)
    for name, text in (("status", "print a job's state"),
                       ("watch", "a live progress bar until the job ends"),
                       ("cancel", "cancel a job: queued work is dropped")):
        cmd = sub.add_parser(name, help=text, description=text)
        cmd.add_argument("job", type=job_id_arg, help="the job id printed by submit")
        add_json_flag(cmd, "the job's status" if name != "watch" else "its final status")
        if name == "watch":
            cmd.add_argument("--no-progress", action="store_true", help="no progress bar")
        add_settings_flags(cmd, only=CONNECTION_SETTINGS)
        cmd.set_defaults(handler=HANDLERS[name])
    resume = sub.add_parser(
        "resume",
        help="enqueue again what storage says a job lacks (lost messages, outages)",
        description="Storage is the source of truth: re-enqueue the reference if its "
        "outputs are missing, else every target without a stored result, else "
        "finalisation. Safe to repeat.",
    )
    resume.add_argument("job", type=job_id_arg, help="the job id printed by submit")
    resume.add_argument("--watch", action="store_true", help="then watch it until it ends")
    resume.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_json_flag(resume, "with --watch, the final status")
    add_settings_flags(resume, only=CONNECTION_SETTINGS)
    resume.set_defaults(handler=cmd_resume)
    fetch = sub.add_parser(
        "fetch", help="download a finished job, in the output layout of `prodseg run`"
    )
    fetch.add_argument("job", type=job_id_arg, help="the job id printed by submit")
    fetch.add_argument("--output", "-o", required=True, type=Path, metavar="DIR",
                     help="output directory")
    fetch.add_argument("--force", action="store_true",
                       help="write into a directory that holds other files too")
    add_settings_flags(fetch, only=CONNECTION_SETTINGS)
    fetch.set_defaults(handler=cmd_fetch)
    worker = sub.add_parser(
        "worker",
        help="run a worker: one process per GPU, both models built once per process",
        description="Start a Celery worker consuming the interactive and batch queues. "
        "With --gpus 0,1 one worker process runs per GPU (CUDA_VISIBLE_DEVICES set for each); "
        "without a GPU, one worker runs on the CPU with --concurrency child processes.",
    )
    worker.add_argument("--gpus", metavar="0,1,...",
                        help="comma-separated GPU indices (default: all visible, "
                        "or the CPU when there is none)")
    worker.add_argument("--queues", default="interactive,batch", metavar="QUEUE,...",
                        help="default: %(default)s")
    worker.add_argument("--concurrency", type=count_arg(1), default=1, metavar="N",
                        help="child processes per worker (default 1: one model copy each)")
    worker.add_argument("--loglevel", default="info", choices=LOG_LEVELS, type=str.lower,
                        help="the Celery worker's log level (default: %(default)s)")
    worker.add_argument("--name", metavar="NODE", help="node name, e.g. gpu-box-1@%%h")
    add_settings_flags(worker)
    worker.set_defaults(handler=cmd_worker, extras=("worker",))


HANDLERS = {"status": cmd_status, "watch": cmd_watch, "cancel": cmd_cancel}
