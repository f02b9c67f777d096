"""``prodseg completion SHELL``: the shell completion script, generated from the parser.

shtab writes a static script from the argparse tree once (``prodseg completion bash >
~/.local/share/bash-completion/completions/prodseg``), so a Tab press runs no Python, and
the script always matches the installed version's commands and flags.
"""

from __future__ import annotations

import argparse

from prodseg.producer.cli.options import EXIT_OK, SubParsers

SHELLS = ("bash", "zsh", "tcsh")


def register(sub: SubParsers) -> None:
    """Add ``prodseg completion``."""
    cmd = sub.add_parser(
        "completion", help="print the shell completion script (bash, zsh or tcsh)",
        description="Print a completion script for SHELL, e.g. prodseg completion bash > "
        "~/.local/share/bash-completion/completions/prodseg",
    )
    cmd.add_argument("shell", choices=SHELLS, help="the shell to complete for")
    cmd.set_defaults(handler=cmd_completion)


def cmd_completion(args: argparse.Namespace) -> int:
    import shtab

    print(shtab.complete(args.parser, shell=args.shell))
    return EXIT_OK
