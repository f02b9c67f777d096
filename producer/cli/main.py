"""The ``prodseg`` command line: one parser, a command group per module.

Each module of ``producer.cli`` registers its commands with ``register(sub)``, which
sets the handler that runs it and the extras it needs: ``run`` (in this process),
``windows`` (``select``, ``view``), ``jobs`` (the distributed mode), ``catalog``, ``export``,
``models``, ``monitor``, ``sample`` and ``completion``. ``-v`` and ``-q`` are taken anywhere
on the line: every parser of the tree has them. Output into a pipe that closes early
(``prodseg models list | head -1``) ends the command quietly.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from prodseg import __version__
from prodseg.errors import ProdsegError
from prodseg.extras import missing_extra, require
from prodseg.producer.cli import (
    catalog,
    completion,
    export,
    jobs,
    models,
    monitor,
    run,
    sample,
    windows,
)
from prodseg.producer.cli.options import EXIT_USAGE

COMMAND_GROUPS = (run, windows, jobs, catalog, export, models, monitor, sample, completion)
EXIT_PIPE_CLOSED = 141
"""The exit code when stdout's reader went away: a shell's for a command that SIGPIPE ended."""


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors in one line (the full usage is one ``--help`` away),
    and ``-v``/``-q`` on every parser, so that they work before or after a command."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # SUPPRESS: a subcommand's parser leaves unset what an earlier -v or -q set.
        self.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                          help="log more (-vv: debug)")
        self.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                          help="errors only: no progress bars, no warnings logged")

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command."""
    parser = Parser(
        prog="prodseg",
        description="Segment one product, clicked once, across every photo of a 360° capture.",
    )
    parser.add_argument("--version", action="version", version=f"prodseg {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


def log_level(args: argparse.Namespace) -> int:
    """The logging level ``-v``, ``-vv`` and ``-q`` ask for (WARNING without them)."""
    if getattr(args, "quiet", False):
        return logging.ERROR
    verbose = getattr(args, "verbose", 0)
    return logging.WARNING if not verbose else logging.INFO if verbose == 1 else logging.DEBUG


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``prodseg`` console script; returns the exit code.

    When the reader of stdout goes away (``| head -1``), the rest of the output is
    dropped and the command ends with :data:`EXIT_PIPE_CLOSED`, without a traceback.
    SIGPIPE itself stays ignored, as Python sets it: a broker or S3 connection that
    closes must raise an error, not end the process.
    """
    try:
        try:
            return _main(argv)
        finally:  # also after --help or a usage error (SystemExit)
            sys.stdout.flush()
    except BrokenPipeError:
        # Python flushes stdout once more on exit; point it at /dev/null for that.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_PIPE_CLOSED


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=log_level(args), format="%(levelname)s %(name)s: %(message)s")
    if getattr(args, "quiet", False) and hasattr(args, "no_progress"):
        args.no_progress = True
    what = "prodseg " + " ".join(
        str(getattr(args, key))
        for key in ("command", "catalog_command", "export_command", "models_command")
        if getattr(args, key, None))
    try:
        for extra in getattr(args, "extras", ()):
            require(extra, what)
        args.run_command = main  # select runs the command it shows
        args.parser = parser  # completion writes its script from it
        return int(args.handler(args))
    except ProdsegError as exc:  # bad input, or the broker or the store did not answer
        print(f"prodseg: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ModuleNotFoundError as exc:  # an extra's package imported on the way
        lacking = missing_extra(exc, what)
        if lacking is None:
            raise
        print(f"prodseg: error: {lacking}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("prodseg: interrupted", file=sys.stderr)
        return 130
