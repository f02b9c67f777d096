"""``prodseg catalog export --format spin``: every product's spin, one folder each.

Each product's current job (its newest re-run after review) is exported as
``prodseg export spin`` exports a job, into ``<output>/<product>/``, with the views
``producer.catalog.export.product_views`` takes: a view a reviewer rejected has no
frame, and a product flagged for review with nothing accepted is left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from prodseg.errors import InputError
from prodseg.producer.catalog.client import CatalogClient
from prodseg.producer.catalog.export import product_views
from prodseg.producer.catalog.report import report_rows
from prodseg.producer.catalog.reviews import ReviewBook
from prodseg.producer.spin_export import SpinOptions, empty_output, export_spin
from prodseg.storage.exports.catalog_report import ReviewRules
from prodseg.storage.local import LocalStore
from prodseg.storage.manifest import get_json, job_layout


@dataclass
class CatalogSpins:
    """What a catalog's spin export wrote.

    Attributes:
        products: product -> its frames' count, in catalog order.
        left_out: products without a spin, and why.
        views_left_out: product -> its views without a frame, and why.
    """

    products: dict[str, int] = field(default_factory=dict)
    left_out: dict[str, str] = field(default_factory=dict)
    views_left_out: dict[str, dict[str, str]] = field(default_factory=dict)


def export_catalog_spins(client: CatalogClient, catalog: str, output: Path, rules: ReviewRules,
                         options: SpinOptions, only_reviewed: bool = False) -> CatalogSpins:
    """Write ``<output>/<product>/`` for every product with accepted views.

    Raises:
        InputError: ``output`` is a file or a non-empty folder, or no product has a spin.
    """
    empty_output(output)
    rows, _ = report_rows(client, catalog, rules, thumbnails_too=False)
    reviews = ReviewBook(client.store, catalog).all()
    summary = CatalogSpins()
    for row in rows:
        if row.state != "done":
            summary.left_out[row.product] = f"job {row.state}"
            continue
        layout = job_layout(row.job)
        doc = get_json(client.store, layout.results)
        views = product_views(client.store, doc, reviews.get(row.product), row.job,
                              row.review, only_reviewed)
        if not views:
            summary.left_out[row.product] = ("flagged for review and nothing accepted"
                                             if row.review else "nothing accepted")
            continue
        try:
            spin = export_spin(client.store, layout, doc, LocalStore(output / row.product),
                               row.product, options, accepted=set(views))
        except InputError as error:  # a panorama product: the others go on
            summary.left_out[row.product] = str(error)
            continue
        summary.products[row.product] = len(spin.frames)
        if spin.left_out:
            summary.views_left_out[row.product] = spin.left_out
    if not summary.products:
        raise InputError(f"catalog {catalog}: nothing to export (no product has a finished "
                         "job with accepted results); nothing written")
    return summary


def describe(summary: CatalogSpins, output: Path) -> str:
    """One line saying what was exported."""
    return (f"spin: {len(summary.products)} products, {sum(summary.products.values())} "
            f"frames in {output}; {len(summary.left_out)} products left out")
