"""``prodseg monitor``: Flower, the Celery dashboard, on prodseg's broker.

It is ``celery -A prodseg.tasks.app flower`` with the connection settings taken like the
other commands' (flags over ``PRODSEG_*``), and with the ``[monitor]`` extra checked
first: without Flower, Celery itself would only say "No such command 'flower'".
"""

from __future__ import annotations

import argparse
import os
import sys

from prodseg.producer.cli.options import SubParsers, add_settings_flags, settings_from_args


def flower_argv(args: argparse.Namespace) -> list[str]:
    """The command line that starts Flower for ``args``."""
    return [sys.executable, "-m", "celery", "-A", "prodseg.tasks.app", "flower",
            f"--port={args.port}", f"--address={args.address}"]


def cmd_monitor(args: argparse.Namespace) -> int:
    # Flags become the environment Flower's Celery app reads its settings from.
    for name, value in vars(args).items():
        if name.startswith("setting_") and value is not None:
            os.environ["PRODSEG_" + name.removeprefix("setting_").upper()] = str(value)
    if args.basic_auth:  # Flower reads it from there: no password in its command line
        os.environ["FLOWER_BASIC_AUTH"] = args.basic_auth
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
    )
    cmd.add_argument("--port", type=int, default=5555, metavar="PORT", help="default: %(default)s")
    cmd.add_argument("--address", default="127.0.0.1", metavar="HOST",
                     help="the address to listen on (default: %(default)s)")
    cmd.add_argument("--basic-auth", metavar="USER:PASSWORD",
                     help="ask for this user and password (several: comma-separated); "
                     "FLOWER_BASIC_AUTH does the same and keeps it off the command line")
    add_settings_flags(cmd, only={"broker_url"})  # Flower reads the broker, nothing else
    cmd.set_defaults(handler=cmd_monitor, extras=("monitor",))
