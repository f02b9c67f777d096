"""``prodseg catalog``: submit, resume and status of a store catalog; its other steps
registered from ``cli.catalog_results`` and ``cli.prepare``."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from prodseg.errors import InputError
from prodseg.producer.catalog.client import CatalogClient
from prodseg.producer.catalog.lock import exclusive
from prodseg.producer.catalog.products import Product, product_job, resubmit_conflict
from prodseg.producer.catalog.status import CatalogStatus
from prodseg.producer.cli.catalog_results import register_results
from prodseg.producer.cli.options import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    SubParsers,
    add_json_flag,
    catalog_client,
    catalog_id_arg,
    count_arg,
    expand_sources,
)
from prodseg.producer.cli.prepare import register_prepare
from prodseg.producer.cli.prepare_page import add_prepare_page_flags, then_review_submit
from prodseg.producer.cli.setting_flags import (
    SUBMIT_SETTINGS,
    add_settings_flags,
    setting_overrides,
)
from prodseg.settings import CONNECTION, MACHINE_SETTINGS, settings_with
from prodseg.tasks.names import CANCELLED, FAILED


@contextmanager
def _bar(total: int, disable: bool, desc: str) -> Iterator[Callable[[int], None]]:
    """A count bar on stderr (stdout stays clean for the catalog id)."""
    from tqdm import tqdm

    with tqdm(total=total, unit="product", desc=desc, disable=disable, file=sys.stderr,
              dynamic_ncols=True) as bar:
        yield bar.update


def _products(catalog_path: Path, skip_invalid: bool,
              flags: dict[str, str]) -> tuple[str, list[Product]]:
    """The catalog's id and its valid products, local image patterns expanded.

    ``flags`` (setting flags given to ``submit``, machine ones left out) become part of
    each product's settings, under the product's own overrides, so that ``resume`` runs
    the same jobs without them.
    """
    from prodseg.producer.catalog.file import catalog_id, read_catalog

    catalog = read_catalog(catalog_path)
    if catalog.problems and not skip_invalid:
        catalog.raise_if_invalid()
    for problem in catalog.problems:
        print(f"prodseg: skipped {problem}", file=sys.stderr)
    if not catalog.products:
        raise InputError(f"{catalog_path}: no valid products to submit")
    cid = catalog_id(catalog.products)
    products = []
    for p in catalog.products:
        images = expand_sources(p.images)
        reference = p.reference or (images[0] if images else "")  # proposed: on the first
        products.append(Product(p.product_id, product_job(cid, p.product_id), p.line,
                                tuple(images), reference,
                                None if p.prompt is None else p.prompt.to_json(),
                                {**flags, **p.settings}, p.distractors, p.views,
                                p.prompt_source, p.prompt_confidence))
    return cid, products


def _enqueue(client: CatalogClient, catalog: str, todo: list[Product], max_inflight: int,
             no_progress: bool) -> int:
    """Submit ``todo`` with a progress bar; returns how many were refused."""
    refused = 0
    with _bar(len(todo), no_progress, "enqueued") as advance:
        def done(product: Product, error: str | None) -> None:
            nonlocal refused
            if error is not None:
                refused += 1
                print(f"prodseg: refused {error}", file=sys.stderr)
            advance(1)

        client.run(catalog, todo, max_inflight, on_enqueued=done)
    return refused


def cmd_submit(args: argparse.Namespace) -> int:
    client = catalog_client(args)
    flags = {k: v for k, v in setting_overrides(args).items() if k not in MACHINE_SETTINGS}
    cid, products = _products(args.catalog, args.skip_invalid, flags)
    with exclusive(client.jobs.board, cid, "prodseg catalog submit"):
        if client.create(products, cid, str(args.catalog)):
            todo = products
        else:
            conflict = resubmit_conflict(client.products(cid), products)
            if conflict is not None:
                raise InputError(f"catalog {cid} was submitted before, differently "
                                 f"({conflict}); 'prodseg catalog resume {cid}' goes on as it "
                                 "started, and other settings go in the file's settings "
                                 "column (a new catalog)")
            print(f"prodseg: catalog {cid} was submitted before: going on where it stopped",
                  file=sys.stderr)
            client.update(products, cid, str(args.catalog))  # a prepared file's undecided rows
            todo, resumed = client.resume(cid)
            _print_resumed(resumed)
        refused = _enqueue(client, cid, todo, args.max_inflight, args.no_progress)
    print(cid, flush=True)
    if args.watch:
        return _watch(client, cid, args.no_progress)
    return EXIT_SOME_FAILED if refused else EXIT_OK


def cmd_resume(args: argparse.Namespace) -> int:
    client = catalog_client(args)
    with exclusive(client.jobs.board, args.catalog_id, "prodseg catalog resume"):
        todo, resumed = client.resume(args.catalog_id)
        _print_resumed(resumed)
        print(f"{args.catalog_id}: {len(todo)} products to submit, {len(resumed)} jobs "
              "resumed")
        _enqueue(client, args.catalog_id, todo, args.max_inflight, args.no_progress)
    if args.watch:
        return _watch(client, args.catalog_id, args.no_progress)
    return EXIT_OK


def _print_resumed(jobs: list[str]) -> None:
    for job in jobs:
        print(f"resumed job {job}", file=sys.stderr)


def cmd_status(args: argparse.Namespace) -> int:
    client = catalog_client(args)
    if args.watch:
        return _watch(client, args.catalog_id, args.no_progress)
    status = client.status(args.catalog_id)
    if args.json:
        from prodseg.jsonio import dumps

        print(dumps(catalog_document(status)))
    else:
        print(_line(status))
    return EXIT_OK


def catalog_document(status: CatalogStatus) -> dict[str, object]:
    """A catalog's status as the JSON object ``catalog status --json`` prints."""
    from prodseg.producer.cli.jobs import status_document

    return {"catalog": status.catalog, "products": status.products,
            "ended": status.ended, "states": dict(status.states), "images": status.images,
            "images_finished": status.images_finished,
            "jobs": {product: None if job is None else status_document(job)
                     for product, job in status.jobs.items()},
            "refused": dict(status.refused)}


def _line(status: CatalogStatus) -> str:
    counts = ", ".join(f"{n} {s}" for s, n in status.states.items() if n)
    return (f"{status.catalog}: {status.ended}/{status.products} products ended ({counts}); "
            f"{status.images_finished}/{status.images} images")


def _watch(client: CatalogClient, catalog: str, no_progress: bool) -> int:
    first = client.status(catalog)
    with _bar(first.products, no_progress, "products ended") as advance:
        shown = 0

        def update(status: CatalogStatus) -> None:
            nonlocal shown
            advance(status.ended - shown)
            shown = status.ended

        status = client.watch(catalog, on_change=update)
    print(_line(status))
    bad = sum(status.states.get(s, 0) for s in ("refused", FAILED, CANCELLED))
    return EXIT_SOME_FAILED if bad else EXIT_OK


def register(sub: SubParsers) -> None:
    """``prodseg catalog ...`` and its subcommands."""
    catalog = sub.add_parser("catalog", help="store catalogs: one job per product",
                             description="Submit a catalog (CSV or JSON Lines: product_id, "
                             "images, reference, point/neg_point/box, settings), follow it, "
                             "resume it, get its review report, and look products up.")
    commands = catalog.add_subparsers(dest="catalog_command", required=True, metavar="STEP")

    submit = commands.add_parser("submit", help="validate every row, then enqueue one job "
                                 "per product; prints the catalog id")
    submit.add_argument("catalog", type=Path, help="a .csv, .jsonl or .ndjson file")
    submit.add_argument("--skip-invalid", action="store_true",
                        help="submit the valid rows and list the others (default: refuse)")
    resume = commands.add_parser("resume", help="enqueue what storage shows missing")
    resume.add_argument("catalog_id", type=catalog_id_arg, help="the id catalog submit printed")
    for cmd in (submit, resume):
        cmd.add_argument("--max-inflight", type=count_arg(1), default=32, metavar="N",
                         help="at most N of the catalog's jobs queued or running "
                         "(default: %(default)s)")
        cmd.add_argument("--prepare-threads", type=count_arg(1), default=8, metavar="N",
                         help="products uploaded and checked at once (default: %(default)s)")
        cmd.add_argument("--watch", action="store_true", help="then watch it until it ends")
        cmd.add_argument("--no-progress", action="store_true", help="no progress bar")
        add_settings_flags(cmd, only=SUBMIT_SETTINGS)

    status = commands.add_parser("status", help="products per state, images done")
    status.add_argument("catalog_id", type=catalog_id_arg, help="the id catalog submit printed")
    status.add_argument("--watch", action="store_true", help="a progress bar until it ends")
    status.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_json_flag(status, "the catalog's status (without --watch)")

    register_results(commands)
    prepare = register_prepare(commands)
    add_prepare_page_flags(prepare)
    prepare.set_defaults(handler=functools.partial(
        then_review_submit, propose=prepare.get_default("handler"), make_client=catalog_client,
        read_products=_products))
    for cmd, handler in ((submit, cmd_submit), (resume, cmd_resume), (status, cmd_status)):
        cmd.set_defaults(handler=handler)
    add_settings_flags(status, only=settings_with(CONNECTION) | {"model_cache_dir", "device"})
