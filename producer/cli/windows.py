"""``prodseg select`` and ``prodseg view``: the two windows of prodseg.

``select`` shows the photos, takes clicks and a box, previews SAM2's mask after each
change (in this process, or on a worker with ``--submit``), prints the equivalent
``prodseg run`` / ``prodseg submit`` command on Enter and runs it. ``view`` browses a
finished job's directory (``prodseg run --output`` or ``prodseg fetch``).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from prodseg.errors import InputError
from prodseg.extras import require
from prodseg.producer.cli.options import SubParsers, expand_images
from prodseg.producer.cli.setting_flags import (
    RUN_SETTINGS,
    SUBMIT_SETTINGS,
    add_settings_flags,
    setting_overrides,
    settings_from_args,
)
from prodseg.settings import CONNECTION, MACHINE_SETTINGS, Settings, setting_flag, settings_with

EXIT_CANCELLED = 1


def require_display() -> None:
    """Raise ``InputError`` unless matplotlib can open a window here."""
    import matplotlib
    import matplotlib.pyplot as plt  # noqa: F401  (resolves the automatic backend)

    backend = matplotlib.get_backend().lower()
    if backend in {"agg", "pdf", "ps", "svg", "pgf", "cairo", "template"}:
        raise InputError(
            f"no window can be opened here (matplotlib backend {backend!r}; no display?). "
            "Run prodseg on a desktop, or give the prompt as flags: prodseg run --ref-point "
            "X,Y (or --ref-bbox X0,Y0,X1,Y1)")


def settings_argv(given: Sequence[tuple[str, str]], printed: bool) -> list[str]:
    """The flags for ``given`` settings; ``printed`` leaves machine and secret settings out
    (a broker URL may hold a password): the command that runs still gets them."""
    argv: list[str] = []
    for name, value in given:
        if not (printed and name in MACHINE_SETTINGS):
            argv += [setting_flag(name), value]
    return argv


def cmd_select(args: argparse.Namespace) -> int:
    from prodseg.producer.ui.preview import LocalPreview, RemotePreview
    from prodseg.producer.ui.select import Selector
    from prodseg.producer.ui.selection import command_line

    settings: Settings = settings_from_args(args)
    if args.submit and args.output is not None:
        raise InputError("--output is for prodseg run; a submitted job is fetched later "
                         "(prodseg fetch JOB --output DIR)")
    if not args.submit and args.output is None and not args.print_only:
        raise InputError("give --output DIR to run the job here, or --submit to send it to "
                         "the workers")
    if not args.submit:  # the previews run SAM2 here
        require("worker", "prodseg select without --submit")
    images = [p for p in expand_images(args.images) if p.is_file()]
    if not images:
        raise InputError(f"no images found in {' '.join(args.images)}")
    start = 0
    if args.reference is not None:
        wanted = [i for i, p in enumerate(images) if p.samefile(args.reference)] \
            if args.reference.is_file() else []
        if not wanted:
            raise InputError(f"{args.reference}: not among the --images")
        start = wanted[0]
    require_display()
    if args.submit:
        from prodseg.producer.client import JobClient

        preview: LocalPreview | RemotePreview = RemotePreview(JobClient(settings))
    else:
        preview = LocalPreview(settings)
    try:
        selection = Selector(images, preview, start=start).run()
    finally:
        preview.close()
    if selection is None:
        print("prodseg: selection cancelled; no job was started", file=sys.stderr)
        return EXIT_CANCELLED
    output = None if args.submit else str(args.output or "OUTPUT_DIR")
    # Settings the command that runs does not offer (e.g. --device for submit) served the
    # previews only.
    offered = SUBMIT_SETTINGS if args.submit else RUN_SETTINGS
    given = [(n, v) for n, v in setting_overrides(args).items() if n in offered]
    follow = ["--watch"] if args.submit and args.watch else []
    if args.force and not args.submit:
        follow.append("--force")
    line = command_line(selection, args.images, output, submit=args.submit,
                        extra=[*settings_argv(given, printed=True), *follow])
    print(line, flush=True)
    if args.print_only:
        return 0
    return int(args.run_command([*shlex.split(line)[1:], *settings_argv(
        [(n, v) for n, v in given if n in MACHINE_SETTINGS], printed=False)]))


def cmd_view(args: argparse.Namespace) -> int:
    from prodseg.producer.ui.viewer import ResultsViewer

    viewer = ResultsViewer(args.dir, image_dirs=args.images or ())  # checks the directory
    require_display()
    viewer.show()
    return 0


def register(sub: SubParsers) -> None:
    """Add ``prodseg select`` and ``prodseg view``."""
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
    select.add_argument("--reference", "-r", type=Path, metavar="IMAGE",
                        help="the photo to start on "
                        "(default: the first)")
    select.add_argument("--output", "-o", type=Path, metavar="DIR",
                        help="run the job here, into this directory")
    select.add_argument("--submit", action="store_true", help="submit the job to the "
                        "workers instead; previews come from a worker too")
    select.add_argument("--watch", action="store_true", help="with --submit: then watch it")
    select.add_argument("--print-only", action="store_true",
                        help="print the equivalent command and stop")
    select.add_argument("--force", action="store_true",
                        help="with --output: write into a directory that holds other files")
    add_settings_flags(select, only=RUN_SETTINGS | settings_with(CONNECTION))
    select.set_defaults(handler=cmd_select, extras=("gui",))

    view = sub.add_parser("view", help="browse a finished job's results in a window",
                          description="Left/Right (or n/p): previous/next photo; s: sort "
                          "by score or input order; q or Esc: close.")
    view.add_argument("dir", type=Path, help="a prodseg run --output or prodseg fetch "
                      "directory")
    view.add_argument("--images", nargs="+", type=Path, metavar="DIR",
                      help="where the original photos are, when not where the job read them")
    view.set_defaults(handler=cmd_view, extras=("gui",))
