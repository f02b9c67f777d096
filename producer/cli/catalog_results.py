"""``prodseg catalog`` on a catalog's results: report, review, export, import-review, lookup.

The commands that start and follow a catalog are ``cli.catalog``'s, which registers these
with ``register_results``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from prodseg.errors import InputError
from prodseg.producer.catalog.client import CatalogClient
from prodseg.producer.cli.export import add_spin_flags, spin_options
from prodseg.producer.cli.options import (
    EXIT_OK,
    SubParsers,
    catalog_client,
    catalog_id_arg,
    count_arg,
)
from prodseg.producer.cli.prompt_flags import parse_box, parse_pair, prompt_from_args
from prodseg.producer.cli.setting_flags import add_settings_flags
from prodseg.settings import CONNECTION, settings_with


def cmd_report(args: argparse.Namespace) -> int:
    from prodseg.producer.catalog.report import write_report

    client = catalog_client(args)
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

    client = catalog_client(args)
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

    client = catalog_client(args)
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

    client = catalog_client(args)
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

    client = catalog_client(args)
    hits = lookup(client, args.catalog_id, Path(args.image), prompt_from_args(args), args.k)
    print(f"{'rank':>4}  {'score':>6}  product")
    for rank, hit in enumerate(hits, 1):
        print(f"{rank:>4}  {hit.score:6.3f}  {hit.product}")
    return EXIT_OK


def register_results(commands: SubParsers) -> None:
    """``prodseg catalog report``, ``lookup``, ``review``, ``export`` and ``import-review``."""
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
    for cmd in (report, review, export):
        cmd.add_argument("--min-matched", type=float, default=0.5, metavar="FRACTION",
                         help="flag products with fewer matched views (default: %(default)s)")
        cmd.add_argument("--score-margin", type=float, default=0.05, metavar="M",
                         help="flag products whose weakest match is within M of the "
                         "threshold (default: %(default)s)")
    for cmd, handler in ((report, cmd_report), (lookup, cmd_lookup), (review, cmd_review),
                         (export, cmd_export), (imported, cmd_import_review)):
        cmd.set_defaults(handler=handler)
    lookup.set_defaults(extras=("catalog", "worker"))  # faiss, and the models that embed
    for cmd in (report, lookup, review, export, imported):
        add_settings_flags(cmd, only=settings_with(CONNECTION) | {"model_cache_dir", "device"})
