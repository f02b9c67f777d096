"""The ``prodseg`` command line.

``prodseg run`` processes a capture in this process; ``prodseg select`` picks the
reference in a window first; ``prodseg view`` browses results; ``prodseg models`` manages
weights; ``prodseg sample`` renders a sample spin set to try it on. Every setting of
``prodseg.settings.Settings`` is also a flag (``--similarity-threshold 0.7``) that
overrides its ``PRODSEG_*`` environment variable.
"""

from __future__ import annotations

import argparse
import glob
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from prodseg import __version__
from prodseg.errors import InputError, ProdsegError, TransientError
from prodseg.prompts import Prompt
from prodseg.settings import Settings, default_cache_dir, load_settings, setting_flag

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp"}

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2


def parse_pair(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y (two numbers), got {text!r}") from None
    return x, y


def parse_box(text: str) -> tuple[float, float, float, float]:
    try:
        x0, y0, x1, y1 = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected X0,Y0,X1,Y1 (four numbers), got {text!r}"
        ) from None
    return x0, y0, x1, y1


DISTRIBUTED_FLAGS = ("broker_url", "s3_endpoint_url", "s3_bucket", "s3_region")


def add_settings_flags(
    parser: argparse.ArgumentParser, only: Sequence[str] | None = None
) -> None:
    """One flag per setting (or per setting in ``only``); ``Settings`` validates values."""
    group = parser.add_argument_group("settings (each also read from PRODSEG_<NAME>)")
    for name, field in Settings.model_fields.items():
        if only is not None and name not in only:
            continue
        default = field.default if field.default_factory is None else default_cache_dir()
        group.add_argument(
            setting_flag(name),
            dest=f"setting_{name}",
            metavar=name.split("_")[-1].upper(),
            help=f"{field.description} (default: {default})",
        )


def setting_overrides(args: argparse.Namespace) -> dict[str, str]:
    """The setting flags given on the command line, by setting name (values as typed)."""
    return {
        key.removeprefix("setting_"): value
        for key, value in vars(args).items()
        if key.startswith("setting_") and value is not None
    }


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from the environment with the given flags on top."""
    return load_settings(**setting_overrides(args))


def expand_images(items: Sequence[str]) -> list[Path]:
    """Files, directories (their images, sorted) and glob patterns, in the order given.

    A path that does not exist is kept, so that it is reported as a failed image.
    """
    out: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES))
        elif any(ch in item for ch in "*?[") and not path.exists():
            out.extend(Path(p) for p in sorted(glob.glob(item)))
        else:
            out.append(path)
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prodseg",
        description="Segment one product, clicked once, across every photo of a 360° capture.",
    )
    parser.add_argument("--version", action="version", version=f"prodseg {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="process a capture in this process and write the outputs to a directory",
        description="Segment the product on the reference image from a click or a box, then "
        "find it on every other image. Writes results.json, coco.json, gallery.html, "
        "gallery.png, reference/, masks/ and cutouts/ to --output.",
    )
    add_prompt_flags(run)
    run.add_argument("--output", "-o", required=True, type=Path, help="output directory")
    run.add_argument(
        "--distractor-point", type=parse_pair, action="append", metavar="X,Y", default=[],
        help="a click on a lookalike on the reference image that is NOT the product; "
        "matches must then look more like the product than like it (repeatable)",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_settings_flags(run)

    models = sub.add_parser("models", help="download and list model weights")
    msub = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    dl = msub.add_parser(
        "download",
        help="fetch official checkpoints into the cache (resumes, verifies SHA-256)",
        description="Fetch official checkpoints. With no MODEL, fetches the configured "
        "SAM 2.1 size and DINOv2 model (PRODSEG_SAM2_CHECKPOINT, PRODSEG_DINOV2_MODEL).",
    )
    dl.add_argument("model", nargs="*", help="e.g. hiera_tiny vit_small_patch14_dinov2")
    dl.add_argument("--all", action="store_true", help="every published checkpoint")
    dl.add_argument("--cache-dir", type=Path, help="overrides PRODSEG_MODEL_CACHE_DIR")
    ls = msub.add_parser("list", help="show which checkpoints are in the cache")
    ls.add_argument("--cache-dir", type=Path, help="overrides PRODSEG_MODEL_CACHE_DIR")

    submit = sub.add_parser(
        "submit",
        help="submit a capture to the workers (distributed mode); prints the job id",
        description="Upload local images (s3:// URLs and prefixes are used in place), write "
        "the job manifest and enqueue the job. Same arguments as `prodseg run`, without "
        "--output; the job id is printed on stdout.",
    )
    add_prompt_flags(submit)
    submit.add_argument("--no-progress", action="store_true", help="no upload progress bar")
    submit.add_argument("--watch", action="store_true", help="then watch it until it ends")
    add_settings_flags(submit)
    for name, text in (("status", "print a job's state"),
                       ("watch", "a live progress bar until the job ends"),
                       ("cancel", "cancel a job: queued work is dropped")):
        cmd = sub.add_parser(name, help=text, description=text)
        cmd.add_argument("job", help="the job id printed by submit")
        add_settings_flags(cmd, only=DISTRIBUTED_FLAGS)
    resume = sub.add_parser(
        "resume",
        help="enqueue again what storage says a job lacks (lost messages, outages)",
        description="Storage is the source of truth: re-enqueue the reference if its "
        "outputs are missing, else every target without a stored result, else "
        "finalisation. Safe to repeat.",
    )
    resume.add_argument("job", help="the job id printed by submit")
    resume.add_argument("--watch", action="store_true", help="then watch it until it ends")
    resume.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_settings_flags(resume, only=DISTRIBUTED_FLAGS)
    fetch = sub.add_parser(
        "fetch", help="download a finished job, in the output layout of `prodseg run`"
    )
    fetch.add_argument("job")
    fetch.add_argument("--output", "-o", required=True, type=Path)
    add_settings_flags(fetch, only=DISTRIBUTED_FLAGS)
    worker = sub.add_parser(
        "worker",
        help="run a worker: one process per GPU, both models built once per process",
        description="Start a Celery worker consuming the interactive and batch queues. "
        "With --gpus 0,1 one worker process runs per GPU (CUDA_VISIBLE_DEVICES set for each); "
        "without a GPU, one worker runs on the CPU with --concurrency child processes.",
    )
    worker.add_argument("--gpus", help="comma-separated GPU indices (default: all visible, "
                        "or the CPU when there is none)")
    worker.add_argument("--queues", default="interactive,batch", help="default: %(default)s")
    worker.add_argument("--concurrency", type=int, default=1,
                        help="child processes per worker (default 1: one model copy each)")
    worker.add_argument("--loglevel", default="info")
    worker.add_argument("--name", help="node name, e.g. gpu-box-1@%%h")
    add_settings_flags(worker)

    select = sub.add_parser(
        "select",
        help="click the product on a photo, see its mask, confirm; then run or submit the job",
        description="Opens a window on the photos. Left click: the product; right click: "
        "not the product; drag: a box; u: undo; arrow keys or the thumbnails: another "
        "photo; Enter: confirm; Esc or closing the window: cancel (no job). On Enter the "
        "equivalent prodseg run/submit command is printed and run.",
    )
    select.add_argument("--images", "-i", nargs="+", required=True, metavar="IMAGE",
                        help="image files, directories or glob patterns")
    select.add_argument("--reference", "-r", type=Path, help="the photo to start on "
                        "(default: the first)")
    select.add_argument("--output", "-o", type=Path, help="run the job here, into this "
                        "directory")
    select.add_argument("--submit", action="store_true", help="submit the job to the "
                        "workers instead; previews come from a worker too")
    select.add_argument("--watch", action="store_true", help="with --submit: then watch it")
    select.add_argument("--print-only", action="store_true",
                        help="print the equivalent command and stop")
    add_settings_flags(select)

    view = sub.add_parser("view", help="browse a finished job's results in a window",
                          description="Left/Right (or n/p): previous/next photo; s: sort "
                          "by score or input order; q or Esc: close.")
    view.add_argument("dir", type=Path, help="a prodseg run --output or prodseg fetch "
                      "directory")
    view.add_argument("--images", nargs="+", type=Path, metavar="DIR",
                      help="where the original photos are, when not where the job read them")

    from producer.catalog_cmd import add_catalog_parser

    add_catalog_parser(sub)

    sample = sub.add_parser(
        "sample",
        help="render a sample spin set (a carton on a shelf) with ground truth",
        description="Render a product spin set: a carton whose four sides carry different "
        "artwork, photographed at N angles on a shelf with distractor products, plus "
        "shelf-only photos. Writes images/, ground_truth/ and sample.json.",
    )
    sample.add_argument("--output", "-o", required=True, type=Path)
    sample.add_argument("--views", type=int, default=12, help="angles around the product")
    sample.add_argument("--shelf-only", type=int, default=2, help="photos without the product")
    sample.add_argument("--size", default="1024x768", help="WIDTHxHEIGHT (default 1024x768)")
    sample.add_argument("--seed", type=int, default=0)
    return parser


def add_prompt_flags(parser: argparse.ArgumentParser) -> None:
    """The images and the reference prompt (shared by ``run`` and later ``submit``)."""
    parser.add_argument(
        "--images", "-i", nargs="+", required=True, metavar="IMAGE",
        help="image files, directories or glob patterns",
    )
    parser.add_argument("--reference", "-r", required=True, help="the image you clicked on")
    parser.add_argument(
        "--ref-point", type=parse_pair, action="append", metavar="X,Y",
        help="a click on the product, in the reference's pixels (repeatable)",
    )
    parser.add_argument(
        "--ref-neg-point", type=parse_pair, action="append", metavar="X,Y",
        help="a click on what is NOT the product, to refine the mask (repeatable)",
    )
    parser.add_argument(
        "--ref-bbox", type=parse_box, metavar="X0,Y0,X1,Y1", help="a box around the product"
    )


def prompt_from_args(args: argparse.Namespace) -> Prompt:
    """The reference prompt the flags describe."""
    pos = [tuple(p) for p in (args.ref_point or [])]
    neg = [tuple(p) for p in (args.ref_neg_point or [])]
    if not pos and args.ref_bbox is None:
        raise InputError("give --ref-point X,Y or --ref-bbox X0,Y0,X1,Y1 on the reference image")
    return Prompt(
        points=tuple(pos + neg),
        labels=tuple([1] * len(pos) + [0] * len(neg)),
        box=tuple(args.ref_bbox) if args.ref_bbox is not None else None,
    )


def cmd_run(args: argparse.Namespace) -> int:
    from producer.report import print_summary, progress_bar

    settings = settings_from_args(args)
    prompt = prompt_from_args(args)
    images = expand_images(args.images)
    if not images:
        raise InputError(f"no images found in {' '.join(args.images)}")
    from workers.pipeline import ProductSegmentationPipeline

    pipeline = ProductSegmentationPipeline(settings)
    if settings.weights == "random" and settings.backend == "sam2-dinov2":
        from workers.weights import RANDOM_WEIGHTS_WARNING

        print(f"WARNING: {RANDOM_WEIGHTS_WARNING}", file=sys.stderr)
    ref_real = os.path.realpath(args.reference)
    targets = sum(os.path.realpath(p) != ref_real for p in images)
    with progress_bar(targets, disable=args.no_progress) as advance:
        result = pipeline.run(
            images, args.reference, prompt=prompt, output_dir=args.output, on_image=advance,
            distractor_points=[tuple(p) for p in args.distractor_point],
        )
    print_summary(result, args.output)
    return EXIT_SOME_FAILED if result.failed else EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    from producer.models_cmd import download_models, list_models

    settings = load_settings(model_cache_dir=args.cache_dir)
    if args.models_command == "list":
        return list_models(settings.model_cache_dir)
    names = args.model or [settings.sam2_checkpoint, settings.dinov2_model]
    return download_models(names, settings.model_cache_dir, every=args.all)


def cmd_sample(args: argparse.Namespace) -> int:
    from producer.sample_scene import render_spin_set, write_sample_set

    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise InputError(f"--size: expected WIDTHxHEIGHT, got {args.size!r}") from None
    spin = render_spin_set(
        n_views=args.views, height=height, width=width,
        n_distractor_only=args.shelf_only, seed=args.seed,
    )
    manifest = write_sample_set(args.output, spin)
    x, y = spin.reference_point
    ref = args.output / "images" / Path(spin_reference_name(manifest)).name
    print(f"rendered {len(spin.views)} images into {args.output / 'images'}")
    print("try:")
    print(f"  prodseg run --images {args.output / 'images'} --reference {ref} "
          f"--ref-point {x},{y} --output {args.output / 'results'}")
    return EXIT_OK


def spin_reference_name(manifest: Path) -> str:
    """The reference image named in a sample set's ``sample.json``."""
    import json

    return str(json.loads(manifest.read_text())["reference"])


def _jobs(name: str) -> Callable[[argparse.Namespace], int]:
    """The distributed-mode commands live in ``producer.jobs_cmd`` (imported on use)."""

    def command(args: argparse.Namespace) -> int:
        from producer import jobs_cmd

        return int(getattr(jobs_cmd, f"cmd_{name}")(args))

    return command


def _catalog(args: argparse.Namespace) -> int:
    from producer.catalog_cmd import cmd_catalog

    return cmd_catalog(args)


def _windows(name: str, args: argparse.Namespace) -> int:
    """``select`` and ``view`` live in ``producer.select_cmd`` (imported on use)."""
    from producer import select_cmd

    return int(getattr(select_cmd, f"cmd_{name}")(args))


COMMANDS = {
    "run": cmd_run, "models": cmd_models, "sample": cmd_sample,
    **{name: _jobs(name)
       for name in ("submit", "status", "watch", "fetch", "resume", "cancel", "worker")},
    "catalog": lambda args: _catalog(args),
    "select": lambda args: _windows("select", args),
    "view": lambda args: _windows("view", args),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``prodseg`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return COMMANDS[args.command](args)
    except InputError as exc:
        print(f"prodseg: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except TransientError as exc:
        print(f"prodseg: error: {exc}", file=sys.stderr)
        return EXIT_SOME_FAILED
    except ProdsegError as exc:
        print(f"prodseg: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("prodseg: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
