"""``prodseg catalog report``: gather each product's results and write the review report.

The rows and pages are made by ``storage.exports.catalog_report`` (pure); this module reads
the catalog's jobs from storage and writes ``catalogs/<id>/report.csv`` and ``report.html``
(and, when asked, the same two files into a local folder).
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from pathlib import Path
from typing import Any

from prodseg.producer.catalog.client import CatalogClient
from prodseg.producer.catalog.products import catalog_key
from prodseg.producer.catalog.reviews import ProductReview, ReviewBook
from prodseg.producer.spin_quality import storefront_reasons
from prodseg.storage.base import ObjectNotFound
from prodseg.storage.exports.catalog_report import (
    ProductRow,
    ReviewRules,
    product_row,
    report_csv,
    report_html,
)
from prodseg.storage.manifest import get_json, job_layout


def report_rows(client: CatalogClient, catalog: str, rules: ReviewRules,
                thumbnails_too: bool = True,
                ) -> tuple[list[ProductRow], dict[tuple[str, str], bytes]]:
    """One row per product (catalog order) and the thumbnails the page shows.

    A product re-run after review is reported with its newest run, and with who reviewed
    it and when.
    """
    status = client.status(catalog)
    reviews = ReviewBook(client.store, catalog).all()
    rows: list[ProductRow] = []
    thumbnails: dict[tuple[str, str], bytes] = {}
    for product in client.products(catalog):
        job = status.jobs[product.product]
        if job is None:
            state = "refused" if product.product in status.refused else "waiting"
            rows.append(_reviewed(product_row(product.product, "", state, None, rules,
                                              status.refused.get(product.product, ""),
                                              product.prompt_source,
                                              product.prompt_confidence),
                                  reviews.get(product.product)))
            continue
        doc: dict[str, Any] | None = None
        if job.state == "done":
            try:
                doc = get_json(client.store, job_layout(job.job).results)
            except ObjectNotFound:
                doc = None
        row = product_row(product.product, job.job, job.state, doc, rules, job.message,
                          product.prompt_source, product.prompt_confidence)
        if doc is not None:
            row = replace(row, reasons=row.reasons + storefront_reasons(doc))
        row = _reviewed(row, reviews.get(product.product))
        rows.append(row)
        for key in (row.reference_thumbnail, row.weakest_thumbnail) if thumbnails_too else ():
            if key:
                with contextlib.suppress(ObjectNotFound):
                    thumbnails[(job.job, key)] = client.store.get(job_layout(job.job).key(key))
    return rows, thumbnails


def _reviewed(row: ProductRow, review: ProductReview | None) -> ProductRow:
    """``row`` with who reviewed the product, when, and how often it was re-run."""
    if review is None or not review.reviewers:
        return row
    return replace(row, reviewed_by=", ".join(review.reviewers), reviewed_at=review.at,
                   runs=len(review.runs))


def write_report(client: CatalogClient, catalog: str, output: Path | None,
                 min_matched: float, score_margin: float) -> tuple[list[ProductRow], list[str]]:
    """Write the report to storage (and ``output``); returns the rows and where it went."""
    rows, thumbnails = report_rows(client, catalog, ReviewRules(min_matched, score_margin))
    files = {"report.csv": (report_csv(rows), "text/csv"),
             "report.html": (report_html(catalog, rows, thumbnails), "text/html")}
    where = []
    for name, (data, content_type) in files.items():
        key = catalog_key(catalog, name)
        client.store.put(key, data, content_type)
        where.append(client.store.describe(key))
        if output is not None:
            output.mkdir(parents=True, exist_ok=True)
            (output / name).write_bytes(data)
            where.append(str(output / name))
    return rows, where
