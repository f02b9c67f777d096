"""``prodseg catalog``: submit, status, resume, report and lookup of a store catalog."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prodseg.errors import InputError
from prodseg.producer.catalog.client import CatalogClient
from prodseg.producer.catalog.lock import exclusive
from prodseg.producer.catalog.products import Product, product_job, resubmit_conflict
from prodseg.producer.catalog.status import CatalogStatus
from prodseg.producer.cli.export import add_spin_flags, spin_options
from prodseg.producer.cli.options import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    SubParsers,
    add_json_flag,
    catalog_id_arg,
    count_arg,
    expand_sources,
    job_client,
)
from prodseg.producer.cli.prepare import register_prepare
from prodseg.producer.cli.prepare_page import add_prepare_page_flags, then_review_submit
from prodseg.producer.cli.prompt_flags import parse_box, parse_pair, prompt_from_args
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


def _client(args: argparse.Namespace) -> CatalogClient:
    threads = getattr(args, "prepare_threads", 8)
    return CatalogClient(job_client(args), prepare_threads=threads)


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
    client = _client(args)
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
    client = _client(args)
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
    client = _client(args)
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


def cmd_report(args: argparse.Namespace) -> int:
    from prodseg.producer.catalog.report import write_report

    client = _client(args)
    rows, where = write_report(client, args.catalog_id, args.output, args.min_matched,
                               args.score_margin)
    flagged = sum(r.review for r in rows)
    print(f"{args.catalog_id}: {len(rows)} products, {flagged} to review")
    for path in where:
        print(f"  {path}")
    return EXIT_OK


def cmd_review(args: argparse.Namespace) -> int:
    import getpass
    import logging

    from prodseg.producer.review.launch import review_server
    from prodseg.storage.exports.catalog_report import ReviewRules

    client = _client(args)
    reviewer = args.reviewer or getpass.getuser()
    rules = ReviewRules(args.min_matched, args.score_margin)
    server, closing = review_server(client, args.catalog_id, reviewer, args.preview,
                                    args.port, rules)
    logging.getLogger("prodseg.producer.review").setLevel(logging.WARNING)
    print(f"reviewing {args.catalog_id} as {reviewer}; open (Ctrl+C stops):", file=sys.stderr)
    print(server.url, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if closing is not None:
            closing.close()  # type: ignore[attr-defined]
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from prodseg.producer.catalog.export import describe, export_catalog
    from prodseg.storage.exports.catalog_report import ReviewRules

    client = _client(args)
    rules = ReviewRules(args.min_matched, args.score_margin)
    tool = args.format in ("label-studio", "cvat")
    for flag, given, fits in (("--image-url", args.image_url, args.format == "label-studio"),
                              ("--polygons", args.polygons, args.format == "cvat"),
                              ("--only-reviewed", args.only_reviewed, not tool)):
        if given and not fits:
            raise InputError(f"{flag} does not apply to --format {args.format}")
    if args.format == "spin":
        return _export_spins(client, args, rules)
    if tool:
        from prodseg.producer.review.tool_export import export_for_review

        summary = export_for_review(client, args.catalog_id, args.format, args.output, rules,
                                    args.image_url, args.polygons)
    else:
        summary = export_catalog(client, args.catalog_id, args.format, args.output, rules,
                                 args.only_reviewed)
    for product, why in summary.left_out.items():
        print(f"prodseg: left out {product}: {why}", file=sys.stderr)
    print(describe(summary, args.output, args.format))
    for path in summary.files:
        print(f"  {path}")
    return EXIT_OK


def cmd_import_review(args: argparse.Namespace) -> int:
    import getpass

    from prodseg.producer.review.tool_import import import_review

    client = _client(args)
    reviewer = args.reviewer or getpass.getuser()
    summary = import_review(client, args.catalog_id, args.file, reviewer)
    for line in summary.unmapped:
        print(f"prodseg: not mapped: {line}", file=sys.stderr)
    for product, changes in summary.changes.items():
        told = ", ".join(f"{c.view} {c.action}" for c in changes)
        print(f"{product}: {told}")
    count = sum(len(c) for c in summary.changes.values())
    print(f"{args.catalog_id}: {count} decisions stored from {args.file}; "
          f"{len(summary.unmapped)} not mapped")
    return EXIT_OK


def _export_spins(client: CatalogClient, args: argparse.Namespace, rules: Any) -> int:
    from prodseg.producer.catalog.spin import describe, export_catalog_spins

    summary = export_catalog_spins(client, args.catalog_id, args.output, rules,
                                   spin_options(args), args.only_reviewed)
    for product, why in summary.left_out.items():
        print(f"prodseg: left out {product}: {why}", file=sys.stderr)
    for product, views in summary.views_left_out.items():
        for view, why in views.items():
            print(f"prodseg: {product}: left out {view}: {why}", file=sys.stderr)
    print(describe(summary, args.output))
    for product in summary.products:
        print(f"  {args.output / product / 'viewer.html'}")
    return EXIT_OK


def cmd_lookup(args: argparse.Namespace) -> int:
    from prodseg.producer.catalog.lookup import lookup

    client = _client(args)
    hits = lookup(client, args.catalog_id, Path(args.image), prompt_from_args(args), args.k)
    print(f"{'rank':>4}  {'score':>6}  product")
    for rank, hit in enumerate(hits, 1):
        print(f"{rank:>4}  {hit.score:6.3f}  {hit.product}")
    return EXIT_OK


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

    report = commands.add_parser("report", help="CSV and HTML review report")
    report.add_argument("catalog_id", type=catalog_id_arg, help="the id catalog submit printed")
    report.add_argument("--output", "-o", type=Path, metavar="DIR",
                        help="also write them into this folder")

    lookup = commands.add_parser("lookup", help="which catalog product is this?")
    lookup.add_argument("catalog_id", type=catalog_id_arg, help="the id catalog submit printed")
    lookup.add_argument("image", help="a photo with the product on it")
    lookup.add_argument("--point", dest="ref_point", type=parse_pair, action="append",
                        metavar="X,Y", help="a click on the product (repeatable)")
    lookup.add_argument("--neg-point", dest="ref_neg_point", type=parse_pair,
                        action="append", metavar="X,Y", help="a click on what it is not")
    lookup.add_argument("--box", dest="ref_bbox", type=parse_box, metavar="X0,Y0,X1,Y1",
                        help="a box around the product")
    lookup.add_argument("-k", type=count_arg(1), default=5, metavar="K",
                        help="how many (default: %(default)s)")

    review = commands.add_parser("review", help="a review page on 127.0.0.1: accept, reject, "
                                 "click missed views, re-run products")
    review.add_argument("catalog_id", type=catalog_id_arg, help="the id catalog submit printed")
    review.add_argument("--port", type=count_arg(0), default=0, metavar="PORT",
                        help="the port on 127.0.0.1 (default: a free one)")
    review.add_argument("--reviewer", metavar="NAME", help="the name decisions are stored under "
                        "(default: your user name)")
    review.add_argument("--preview", choices=("worker", "local"), default="worker",
                        help="where a click's mask is computed: on a worker through the "
                        "interactive queue, or in this process (default: %(default)s)")

    export = commands.add_parser("export", help="the accepted results as one dataset, one "
                                 "class per product")
    export.add_argument("catalog_id", type=catalog_id_arg, help="the id catalog submit printed")
    export.add_argument("--format", choices=("coco", "yolo-seg", "spin", "label-studio", "cvat"),
                        required=True, help="COCO instance segmentation, YOLO segmentation "
                        "labels, storefront spin frames and a 360° viewer per product, or "
                        "every result for review: Label Studio tasks with predictions, CVAT "
                        "for images 1.1 XML")
    export.add_argument("--output", "-o", type=Path, required=True, metavar="DIR",
                        help="a new or empty folder")
    export.add_argument("--only-reviewed", action="store_true",
                        help="only views a reviewer accepted (default: also every view of "
                        "products nobody needed to look at)")
    export.add_argument("--image-url", metavar="PREFIX",
                        help="label-studio: the tasks' image URLs start with PREFIX, then "
                        "images/... (default: /data/local-files/?d=<folder>/); 'stored': "
                        "the photos' s3:// URLs where their jobs stored them")
    export.add_argument("--polygons", action="store_true",
                        help="cvat: outlines as polygons instead of masks")
    imported = commands.add_parser("import-review", help="a Label Studio or CVAT export of "
                                   "the reviewed tasks, back as review decisions")
    imported.add_argument("catalog_id", type=catalog_id_arg,
                          help="the id catalog submit printed")
    imported.add_argument("file", type=Path, help="Label Studio JSON or CVAT 1.1 XML")
    imported.add_argument("--reviewer", metavar="NAME", help="the name decisions are stored "
                          "under (default: your user name)")
    add_spin_flags(export)
    prepare = register_prepare(commands)
    add_prepare_page_flags(prepare)
    prepare.set_defaults(handler=functools.partial(
        then_review_submit, propose=prepare.get_default("handler"), make_client=_client,
        read_products=_products))
    for cmd in (report, review, export):
        cmd.add_argument("--min-matched", type=float, default=0.5, metavar="FRACTION",
                         help="flag products with fewer matched views (default: %(default)s)")
        cmd.add_argument("--score-margin", type=float, default=0.05, metavar="M",
                         help="flag products whose weakest match is within M of the "
                         "threshold (default: %(default)s)")
    for cmd, handler in ((submit, cmd_submit), (resume, cmd_resume), (status, cmd_status),
                         (report, cmd_report), (lookup, cmd_lookup), (review, cmd_review),
                         (export, cmd_export), (imported, cmd_import_review)):
        cmd.set_defaults(handler=handler)
    lookup.set_defaults(extras=("catalog", "worker"))  # faiss, and the models that embed
    for cmd in (status, report, lookup, review, export, imported):
        add_settings_flags(cmd, only=settings_with(CONNECTION) | {"model_cache_dir", "device"})
