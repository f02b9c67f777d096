"""``prodseg export``: a finished job in a form other tools take (``spin``: storefront frames)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from prodseg.errors import InputError
from prodseg.producer.cli.options import EXIT_OK, SubParsers, job_id_arg
from prodseg.producer.cli.setting_flags import add_settings_flags
from prodseg.settings import CONNECTION, settings_with


def add_spin_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of how spin frames look (``export spin``, ``catalog export --format spin``)."""
    from prodseg.storage.exports.spin_frames import DEFAULT_FILL, DEFAULT_SIZE

    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, metavar="PX",
                        help="the frames' side in pixels (default: %(default)s)")
    parser.add_argument("--fill", type=float, default=DEFAULT_FILL, metavar="SHARE",
                        help="the share of the frame the product's largest extent takes "
                        "(default: %(default)s)")
    parser.add_argument("--frame-format", choices=("jpeg", "png", "webp"), default="jpeg",
                        help="frame files (default: %(default)s)")
    parser.add_argument("--background", choices=("white", "transparent"), default=None,
                        help="default: white for JPEG, transparent for PNG and WebP")


def spin_options(args: argparse.Namespace) -> Any:
    """The ``SpinOptions`` the spin flags ask for."""
    from prodseg.producer.spin_export import SpinOptions

    fmt = args.frame_format
    background = args.background or ("white" if fmt == "jpeg" else "transparent")
    return SpinOptions(size=args.size, fill=args.fill, image_format=fmt,
                       transparent=background == "transparent")


def cmd_spin(args: argparse.Namespace) -> int:
    import json

    from prodseg.producer.spin_export import VIEWER, empty_output, export_spin
    from prodseg.storage.base import ObjectNotFound
    from prodseg.storage.layout import RESULTS, JobLayout
    from prodseg.storage.local import LocalStore
    from prodseg.storage.manifest import job_layout

    options = spin_options(args)
    source = Path(args.source)
    if source.is_dir():
        store: Any = LocalStore(source)
        layout, title = JobLayout(), source.resolve().name
        if not (source / RESULTS).is_file():
            raise InputError(f"{source}: no {RESULTS}; give a finished prodseg run folder")
    else:
        from prodseg.producer.cli.options import job_client

        job = job_id_arg(args.source)
        store, layout, title = job_client(args).store, job_layout(job), job
    try:
        doc = json.loads(store.get(layout.key(RESULTS)))
    except ObjectNotFound:
        raise InputError(f"{args.source}: no {RESULTS} yet; is the job finished?") from None
    out = empty_output(args.output)
    summary = export_spin(store, layout, doc, out, title, options)
    for view, why in summary.left_out.items():
        print(f"prodseg: left out {view}: {why}", file=sys.stderr)
    print(f"spin: {len(summary.frames)} frames of {options.size}px in {args.output}; "
          f"{len(summary.left_out)} views left out")
    for path in summary.files:
        print(f"  {path}")
    if source.is_dir():  # the run folder's gallery links to the viewer
        from prodseg.storage.exports.documents import link_spin_viewer

        viewer = Path(os.path.relpath(out.root / VIEWER, source.resolve())).as_posix()
        link_spin_viewer(store, layout, viewer)
        print(f"gallery: {source / 'gallery.html'} links to {viewer}")
    return EXIT_OK


def register(sub: SubParsers) -> None:
    """``prodseg export ...`` and its formats."""
    export = sub.add_parser("export", help="a finished job in other forms: spin frames",
                            description="Export a finished job: a prodseg run folder, or a "
                            "distributed job's id.")
    formats = export.add_subparsers(dest="export_command", required=True, metavar="FORMAT")
    spin = formats.add_parser(
        "spin", help="square storefront frames in rotation order, a zip and a 360° viewer",
        description="One crop for the whole spin, centred on the rotation axis and scaled so "
        "that the product fills --fill of the frame; frames/, spin.zip, viewer.html and "
        "spin.json in a new or empty folder. Views without a match are left out and listed.")
    spin.add_argument("source", metavar="RESULT_DIR_OR_JOB",
                      help="a prodseg run output folder, or a job id (distributed mode)")
    spin.add_argument("--output", "-o", type=Path, required=True, metavar="DIR",
                      help="a new or empty folder")
    add_spin_flags(spin)
    add_settings_flags(spin, only=settings_with(CONNECTION))
    spin.set_defaults(handler=cmd_spin)
