"""``prodseg run``: process a capture in this process, outputs into a directory."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from prodseg.errors import InputError
from prodseg.producer.cli.options import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    SubParsers,
    add_json_flag,
    expand_images,
)
from prodseg.producer.cli.prompt_flags import (
    add_lookalike_flag,
    add_prompt_flags,
    lookalikes_from_args,
    reference_from_refs,
    reference_prompt_from_args,
    views_from_args,
)
from prodseg.producer.cli.setting_flags import RUN_SETTINGS, add_settings_flags, settings_from_args
from prodseg.storage.video import is_video


def register(sub: SubParsers) -> None:
    """Add ``prodseg run``."""
    run = sub.add_parser(
        "run",
        help="process a capture in this process and write the outputs to a directory",
        description="Segment the product on the reference image from a click or a box, then "
        "find it on every other image. Writes results.json, coco.json, gallery.html, "
        "gallery.png, reference/, masks/ and cutouts/ to --output.",
    )
    add_prompt_flags(run)
    run.add_argument("--output", "-o", required=True, type=Path, metavar="DIR",
                     help="output directory")
    run.add_argument("--force", action="store_true",
                     help="write into a directory that holds other files too")
    add_lookalike_flag(run)
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_json_flag(run, "the summary")
    add_settings_flags(run, only=RUN_SETTINGS)
    run.set_defaults(handler=cmd_run, extras=("worker",))


def cmd_run(args: argparse.Namespace) -> int:
    from prodseg.producer.cli.report import print_summary, progress_bar, summary_document

    settings = settings_from_args(args)
    images = expand_images(args.images)
    if not images:
        raise InputError(f"no images found in {' '.join(args.images)}")
    reference_from_refs(args, [str(p) for p in images])
    prompt = reference_prompt_from_args(args)
    from prodseg.workers.plan.pipeline import ProductSegmentationPipeline

    pipeline = ProductSegmentationPipeline(settings)
    if settings.weights == "random" and settings.backend == "sam2-dinov2":
        from prodseg.workers.models.weights import RANDOM_WEIGHTS_WARNING

        print(f"WARNING: {RANDOM_WEIGHTS_WARNING}", file=sys.stderr)
    ref_real = os.path.realpath(args.reference)
    targets: int | None = sum(os.path.realpath(p) != ref_real for p in images)
    if any(is_video(str(p)) for p in images):
        targets = None  # the frames taken are known once the video is read
    with progress_bar(targets, disable=args.no_progress) as advance:
        result = pipeline.run(
            images, args.reference, prompt=prompt, output_dir=args.output, on_image=advance,
            distractor_points=lookalikes_from_args(args), force=args.force,
            views=views_from_args(args), propose=prompt is None,
        )
    if args.json:
        from prodseg.jsonio import dumps

        print(dumps(summary_document(result, args.output)))
    else:
        print_summary(result, args.output)
    return EXIT_SOME_FAILED if result.failed else EXIT_OK


