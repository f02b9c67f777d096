"""The ``prodseg`` command line: one parser, a command group per module.

Each module of ``producer.cli`` registers its commands with ``register(sub)``, which
sets the handler that runs it: ``run`` (in this process), ``windows`` (``select``,
``view``), ``jobs`` (the distributed mode), ``catalog``, ``models``, ``sample``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn

from prodseg import __version__
from prodseg.errors import ProdsegError
from prodseg.producer.cli import catalog, jobs, models, run, sample, windows
from prodseg.producer.cli.options import EXIT_USAGE

COMMAND_GROUPS = (run, windows, jobs, catalog, models, sample)


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors in one line (the full usage is one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command."""
    parser = Parser(
        prog="prodseg",
        description="Segment one product, clicked once, across every photo of a 360° capture.",
    )
    parser.add_argument("--version", action="version", version=f"prodseg {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``prodseg`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        args.run_command = main  # select runs the command it shows
        return int(args.handler(args))
    except ProdsegError as exc:  # bad input, or the broker or the store did not answer
        print(f"prodseg: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("prodseg: interrupted", file=sys.stderr)
        return 130
