"""``prodseg catalog prepare``'s ``--review`` and ``--submit``: the prepare page on the
written catalog file, and each confirmed product submitted at once."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

from prodseg.producer.catalog.client import CatalogClient
from prodseg.producer.catalog.products import Product
from prodseg.producer.cli.options import EXIT_OK, EXIT_SOME_FAILED, count_arg
from prodseg.producer.cli.setting_flags import setting_overrides
from prodseg.settings import MACHINE_SETTINGS

MakeClient = Callable[[argparse.Namespace], CatalogClient]
"""The catalog client of the command's settings (``catalog``'s own)."""
ReadProducts = Callable[[Path, bool, dict[str, str]], tuple[str, list[Product]]]
"""``read(file, skip_invalid, setting flags) -> (catalog id, products)``, as ``catalog
submit`` reads a file."""


def then_review_submit(args: argparse.Namespace, propose: Callable[[argparse.Namespace], int],
                       make_client: MakeClient, read_products: ReadProducts) -> int:
    """``catalog prepare``: the file written by ``propose`` (every prompt proposed), then
    ``--review``/``--submit`` on it; the exit code is ``propose``'s when it is not 0."""
    proposed = propose(args)
    if not (args.review or args.submit):
        return proposed
    done = prepare_review_submit(args, args.output, make_client, read_products)
    return proposed or done


def prepare_review_submit(args: argparse.Namespace, output: Path, make_client: MakeClient,
                          read_products: ReadProducts) -> int:
    """``catalog prepare --review`` and ``--submit`` on the written file ``output``.

    ``--review`` serves the prepare page until Ctrl+C; ``--submit`` submits each product as
    it is confirmed there (without ``--review``: every product, as the file has it).
    """
    import logging

    from prodseg.producer.cli.setting_flags import settings_from_args
    from prodseg.producer.prepare_page.decisions import PreparedFile
    from prodseg.producer.prepare_page.launch import prepare_page

    if not (args.review or args.submit):
        return EXIT_OK
    flags = {k: v for k, v in setting_overrides(args).items() if k not in MACHINE_SETTINGS}
    client = make_client(args) if args.submit or args.preview == "worker" else None
    settings = client.jobs.settings if client is not None else settings_from_args(args)

    def load() -> tuple[str, list[Product]]:
        return read_products(output, True, flags)

    def told(product: str, error: str | None) -> None:
        if error is not None:
            print(f"prodseg: refused {error}", file=sys.stderr)

    page = prepare_page(output, settings, client, args.preview, args.port,
                        load if args.submit else None, args.max_inflight, told)
    try:
        if not args.review:
            assert page.submitter is not None
            for row in PreparedFile(output).rows:
                page.submitter.confirmed(str(row.get("product_id")))
            page.submitter.finish()
            print(page.server.session.catalog, flush=True)
            return EXIT_SOME_FAILED if page.submitter.refused else EXIT_OK
        logging.getLogger("prodseg.producer.review").setLevel(logging.WARNING)
        print(f"preparing {output} (catalog {page.server.session.catalog}); open (Ctrl+C "
              "stops, every decision is saved):", file=sys.stderr)
        print(page.server.url, flush=True)
        with suppress(KeyboardInterrupt):
            page.server.serve_forever()
    finally:
        page.close()
    if args.submit:
        print(page.server.session.catalog, flush=True)
    return EXIT_OK


def add_prepare_page_flags(prepare: argparse.ArgumentParser) -> None:
    """``catalog prepare``'s ``--review`` and ``--submit`` and what goes with them."""
    prepare.add_argument("--review", action="store_true",
                         help="confirm each proposal on a page on 127.0.0.1: Enter accepts, a "
                         "click, shift+click or drag corrects, V picks another reference "
                         "view, S skips; every decision is saved at once")
    prepare.add_argument("--submit", action="store_true",
                         help="submit each product as it is confirmed (without --review: "
                         "every product), under the catalog id catalog submit gives the file")
    prepare.add_argument("--preview", choices=("worker", "local"), default="worker",
                         help="where the page's masks are computed: on a worker through the "
                         "interactive queue, or in this process (default: %(default)s)")
    prepare.add_argument("--port", type=count_arg(0), default=0, metavar="PORT",
                         help="the page's port on 127.0.0.1 (default: a free one)")
    prepare.add_argument("--max-inflight", type=count_arg(1), default=32, metavar="N",
                         help="with --submit: at most N of the catalog's jobs queued or "
                         "running (default: %(default)s)")
