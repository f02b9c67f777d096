"""What every command shares: exit codes, id and count arguments, ``--json``, image
lists, and the distributed-mode client of the flags given.

Setting flags are ``cli.setting_flags``'s; prompt flags ``cli.prompt_flags``'s.
"""

from __future__ import annotations

import argparse
import glob
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from prodseg.errors import InputError
from prodseg.producer.cli.setting_flags import settings_from_args
from prodseg.storage.image_formats import IMAGE_SUFFIXES

if TYPE_CHECKING:
    from prodseg.producer.catalog.client import CatalogClient
    from prodseg.producer.client import JobClient

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_RUNNING = 0, 1, 2, 3
"""Exit codes: 0 done, 1 some images (or the job) failed, 2 nothing could start (usage,
bad input, unknown job, unreachable broker), 3 the job is still queued or running."""

SubParsers = argparse._SubParsersAction  # the type of ``add_subparsers()``


def count_arg(least: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``least``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = least - 1
        if value < least:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {least}, got {text!r}")
        return value

    return parse


def job_client(args: argparse.Namespace) -> JobClient:
    """The distributed-mode client of the settings given, once the broker and the bucket
    have answered.

    The checks take at most a few seconds, so an unreachable broker, a wrong password or
    a missing bucket is said before anything is uploaded or waited for (SeaweedFS would
    create a misspelt bucket on the first upload).
    """
    from prodseg.producer.client import JobClient
    from prodseg.storage.s3 import S3Store
    from prodseg.tasks.progress import ProgressBoard

    settings = settings_from_args(args)
    ProgressBoard.check(settings.broker_url)
    store = S3Store.from_settings(settings)
    store.check_bucket()
    return JobClient(settings, store=store)


def catalog_client(args: argparse.Namespace) -> CatalogClient:
    """The catalog client of the settings given (``job_client``), preparing
    ``--prepare-threads`` products at once where the command has that flag."""
    from prodseg.producer.catalog.client import CatalogClient

    threads = getattr(args, "prepare_threads", 8)
    return CatalogClient(job_client(args), prepare_threads=threads)


def job_id_arg(text: str) -> str:
    """A job id argument, checked as ``storage.manifest.validate_job_id`` checks it."""
    from prodseg.storage.manifest import validate_job_id

    try:
        return validate_job_id(text)
    except InputError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def catalog_id_arg(text: str) -> str:
    """A catalog id argument (the same rules as a job id)."""
    try:
        return job_id_arg(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"invalid catalog id {text!r}: give the id that prodseg catalog submit printed"
        ) from None



def expand_sources(items: Sequence[str]) -> list[str]:
    """Local items expanded (``expand_images``), ``s3://`` URLs and prefixes kept for the
    client to list; in the order given."""
    out: list[str] = []
    for item in items:
        out.extend([item] if item.startswith("s3://") else map(str, expand_images([item])))
    return out


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


def add_json_flag(parser: argparse.ArgumentParser, what: str) -> None:
    """``--json``: print ``what`` as one line of JSON on stdout, for scripts."""
    parser.add_argument("--json", action="store_true",
                        help=f"print {what} as one line of JSON, for scripts")
