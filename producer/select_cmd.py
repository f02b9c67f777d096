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

from prodseg.errors import InputError
from prodseg.settings import Settings, setting_flag

EXIT_CANCELLED = 1
# Machine configuration (and secrets: a broker URL may hold a password) stays out of the
# printed command; the command that runs still gets what was given on this command line.
_NOT_PRINTED = ("broker_url", "s3_endpoint_url", "s3_bucket", "s3_region")


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
    """The flags for ``given`` settings; ``printed`` leaves machine settings out."""
    argv: list[str] = []
    for name, value in given:
        if not (printed and name in _NOT_PRINTED):
            argv += [setting_flag(name), value]
    return argv


def cmd_select(args: argparse.Namespace) -> int:
    from producer.cli import expand_images, main, setting_overrides, settings_from_args
    from producer.preview import LocalPreview, RemotePreview
    from producer.select import Selector
    from producer.selection import command_line

    settings: Settings = settings_from_args(args)
    if args.submit and args.output is not None:
        raise InputError("--output is for prodseg run; a submitted job is fetched later "
                         "(prodseg fetch JOB --output DIR)")
    if not args.submit and args.output is None and not args.print_only:
        raise InputError("give --output DIR to run the job here, or --submit to send it to "
                         "the workers")
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
        from producer.client import JobClient

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
    if args.submit and selection.distractors:
        print("prodseg: warning: lookalike clicks apply to prodseg run; the submitted job "
              "leaves them out", file=sys.stderr)
    given = list(setting_overrides(args).items())
    follow = ["--watch"] if args.submit and args.watch else []
    line = command_line(selection, args.images, output, submit=args.submit,
                        extra=[*settings_argv(given, printed=True), *follow])
    print(line, flush=True)
    if args.print_only:
        return 0
    return main([*shlex.split(line)[1:], *settings_argv(
        [(n, v) for n, v in given if n in _NOT_PRINTED], printed=False)])


def cmd_view(args: argparse.Namespace) -> int:
    from producer.viewer import ResultsViewer

    viewer = ResultsViewer(args.dir, image_dirs=args.images or ())  # checks the directory
    require_display()
    viewer.show()
    return 0
