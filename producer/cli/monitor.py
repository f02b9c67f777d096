"""``prodseg monitor``: Flower, the Celery dashboard, on prodseg's broker.

It is ``celery -A prodseg.tasks.app flower`` with the connection settings taken like the
other commands' (flags over ``PRODSEG_*``), and with the ``[monitor]`` extra checked
first: without Flower, Celery itself would only say "No such command 'flower'".

Basic auth comes from a file (``--basic-auth-file``) or ``FLOWER_BASIC_AUTH``, never a
flag's value: any process on the machine can read a command line in ``/proc``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from prodseg.errors import InputError
from prodseg.producer.cli.options import SubParsers
from prodseg.producer.cli.setting_flags import add_settings_flags, settings_from_args


def flower_argv(args: argparse.Namespace) -> list[str]:
    """The command line that starts Flower for ``args``."""
    return [sys.executable, "-m", "celery", "-A", "prodseg.tasks.app", "flower",
            f"--port={args.port}", f"--address={args.address}"]


def basic_auth_from_file(path: Path) -> str:
    """``USER:PASSWORD`` pairs, one a line (blank lines and ``#`` comments skipped), as
    Flower's comma-separated ``--basic-auth`` value.

    Raises:
        InputError: the file cannot be read, holds no pair, or a line is not one.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot read the basic-auth file ({error})") from None
    pairs = [line.strip() for line in text.splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    for number, pair in enumerate(pairs, start=1):
        user, colon, password = pair.partition(":")
        if not (user and colon and password) or "," in pair:
            raise InputError(f"{path}: entry {number} is not USER:PASSWORD (no commas)")
    if not pairs:
        raise InputError(f"{path}: no USER:PASSWORD line")
    return ",".join(pairs)


def cmd_monitor(args: argparse.Namespace) -> int:
    # Flags become the environment Flower's Celery app reads its settings from.
    for name, value in vars(args).items():
        if name.startswith("setting_") and value is not None:
            os.environ["PRODSEG_" + name.removeprefix("setting_").upper()] = str(value)
    if args.basic_auth is not None:
        raise InputError("--basic-auth takes no password any more (a command line is "
                         "readable by any local process): use --basic-auth-file FILE or "
                         "FLOWER_BASIC_AUTH")
    if args.basic_auth_file is not None:  # Flower reads it from its environment
        os.environ["FLOWER_BASIC_AUTH"] = basic_auth_from_file(args.basic_auth_file)
    settings_from_args(args)  # a bad setting stops here, in one line
    argv = flower_argv(args)
    sys.stdout.flush()
    os.execv(argv[0], argv)  # Flower takes over the process: its signals, its exit code


def register(sub: SubParsers) -> None:
    """Add ``prodseg monitor``."""
    cmd = sub.add_parser(
        "monitor",
        help="start Flower, the dashboard of the workers and their tasks",
        description="Start Flower on the broker of PRODSEG_BROKER_URL (or --broker-url): "
        "the workers, every task, /api/workers and /api/tasks as JSON, /metrics for "
        "Prometheus. Needs the [monitor] extra.",
        allow_abbrev=False,  # "--basic-auth USER:PW" must not pass for --basic-auth-file
    )
    cmd.add_argument("--port", type=int, default=5555, metavar="PORT", help="default: %(default)s")
    cmd.add_argument("--address", default="127.0.0.1", metavar="HOST",
                     help="the address to listen on (default: %(default)s)")
    cmd.add_argument("--basic-auth-file", type=Path, metavar="FILE",
                     help="ask for a user and password: FILE holds USER:PASSWORD, one a "
                     "line (FLOWER_BASIC_AUTH=USER:PASSWORD does the same); never on the "
                     "command line, where any local process can read it")
    cmd.add_argument("--basic-auth", metavar="USER:PASSWORD",
                     help=argparse.SUPPRESS)  # refused, without echoing it
    add_settings_flags(cmd, only={"broker_url"})  # Flower reads the broker, nothing else
    cmd.set_defaults(handler=cmd_monitor, extras=("monitor",))
