"""``prodseg catalog prepare SOURCE -o FILE``: a catalog file with every prompt proposed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from prodseg.errors import InputError
from prodseg.producer.cli.options import EXIT_OK, EXIT_SOME_FAILED
from prodseg.producer.cli.setting_flags import (
    RUN_SETTINGS,
    SUBMIT_SETTINGS,
    add_settings_flags,
    settings_from_args,
)
from prodseg.proposed import ProposedPrompt

if TYPE_CHECKING:
    from prodseg.producer.catalog.proposers import LocalProposer, WorkerProposer


def cmd_prepare(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from prodseg.producer.catalog.prepare import prepare, source_rows
    from prodseg.producer.catalog.rows import FORMATS

    out: Path = args.output
    if out.suffix.lower() not in FORMATS:
        raise InputError(f"{out}: use .csv, .jsonl or .ndjson for the catalog file")
    settings = settings_from_args(args)
    rows, problems = source_rows(args.source, out, settings)
    for problem in problems:
        print(f"prodseg: skipped {problem}", file=sys.stderr)
    proposer = _proposer(args)
    flagged = 0
    try:
        with tqdm(total=len(rows), unit="product", desc="proposed", file=sys.stderr,
                  disable=args.no_progress, dynamic_ncols=True) as bar:
            def done(product: str, proposal: ProposedPrompt | None, error: str | None) -> None:
                nonlocal flagged
                if error is not None:
                    print(f"prodseg: {product}: not proposed: {error}", file=sys.stderr)
                elif proposal is not None and proposal.flagged:
                    flagged += 1
                bar.update(1)

            failed = prepare(rows, out, settings, proposer, done)
            bar.update(bar.total - bar.n)  # rows a previous run prepared
    finally:
        proposer.close()
    print(f"{out}: {len(rows)} products, {flagged} proposals to check (low confidence), "
          f"{failed} not proposed")
    return EXIT_SOME_FAILED if failed else EXIT_OK


def _proposer(args: argparse.Namespace) -> LocalProposer | WorkerProposer:
    from prodseg.producer.catalog.proposers import LocalProposer, WorkerProposer

    if args.propose == "local":
        return LocalProposer(settings_from_args(args))
    from prodseg.producer.cli.options import job_client

    return WorkerProposer(job_client(args))


def register_prepare(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """``prodseg catalog prepare``; returns its parser."""
    prepare = commands.add_parser(
        "prepare", help="write a catalog file from photos: every product's reference and "
        "click proposed", description="Propose each product's reference view and click "
        "and write the catalog file (atomically, as it goes; a second run goes on where "
        "the first stopped). SOURCE is a folder with one sub-folder of photos per "
        "product, an s3:// prefix with one prefix per product, or a catalog file whose "
        "rows lack prompts.")
    prepare.add_argument("source", metavar="SOURCE", help="folder, s3:// prefix or catalog")
    prepare.add_argument("--output", "-o", type=Path, required=True, metavar="FILE",
                         help="the catalog file to write (.csv, .jsonl or .ndjson)")
    prepare.add_argument("--propose", choices=("worker", "local"), default="worker",
                         help="where the proposals are computed: on a worker through the "
                         "interactive queue, or in this process (default: %(default)s)")
    prepare.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_settings_flags(prepare, only=SUBMIT_SETTINGS | (RUN_SETTINGS - {"output"}))
    prepare.set_defaults(handler=cmd_prepare)
    return prepare
