"""Store catalogs: many products in one CSV or JSON Lines file, each to become one job.

A CSV catalog has a header row; a ``.jsonl``/``.ndjson`` catalog has one JSON object per
line (blank lines allowed). The fields (CSV columns, JSON keys) are ``product_id``,
``images`` (required), ``reference``, ``point``, ``neg_point`` and ``box`` (a reference
with a point or a box; without them the prompt is proposed at run time), ``prompt_source``
and ``prompt_confidence`` (where the prompt came from: ``prodseg.proposed``) and
``settings`` (per-product overrides; CSV also takes one column per setting,
``setting.<name>``). Columns starting with ``#`` and ``note``/``notes`` are free
text. Reading is pure: nothing is fetched, globs are not expanded and images are not
opened, so the prompt is checked against the reference's size only at submission.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from prodseg.errors import InputError
from prodseg.jsonio import dumps
from prodseg.producer.catalog.fields import PRODUCT_ID, count
from prodseg.producer.catalog.row import CatalogProduct, row_product
from prodseg.producer.catalog.rows import FORMATS, csv_rows, jsonl_rows, read_text


@dataclass(frozen=True)
class RowProblem:
    """Why one row of a catalog cannot become a job.

    Attributes:
        line: 1-based line of the row.
        product_id: the row's product id as written, if it has one.
        message: what is wrong and how to write it instead.
        source: the catalog file, as given.
    """

    line: int
    product_id: str | None
    message: str
    source: str = ""

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.source else f"line {self.line}"
        who = f" ({self.product_id})" if self.product_id else ""
        return f"{where}{who}: {self.message}"


@dataclass(frozen=True)
class Catalog:
    """A catalog read in full: its valid products and the problems of the other rows."""

    path: Path
    products: tuple[CatalogProduct, ...]
    problems: tuple[RowProblem, ...]

    def raise_if_invalid(self, limit: int = 20) -> None:
        """Raise ``InputError`` listing the problems (at most ``limit``), if there are any."""
        if not self.problems:
            return
        n, rows = len(self.problems), len({p.line for p in self.problems})
        lines = [f"  {p}" for p in self.problems[:limit]]
        if n > limit:
            lines.append(f"  ... and {n - limit} more")
        raise InputError(
            f"{self.path}: {count(n, 'problem')} in {count(rows, 'row')}:\n"
            + "\n".join(lines) + "\nfix them or pass --skip-invalid to submit only the "
            f"{count(len(self.products), 'valid product')}"
        )


def read_catalog(path: Path) -> Catalog:
    """Read a catalog, collecting the problems of every row.

    Args:
        path: a ``.csv``, ``.jsonl`` or ``.ndjson`` file; relative image paths in it are
            relative to its directory.

    Raises:
        InputError: the file as a whole is unusable (missing, not UTF-8, unknown suffix,
            empty, a CSV header lacking a required column or naming an unknown one); the
            message names the file.
    """
    path = Path(path)
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise InputError(f"{path}: unknown catalog format {path.suffix!r}; use .csv (with a "
                         "header row), .jsonl or .ndjson (one JSON object per line)")
    text = read_text(path)
    rows = list(csv_rows(path, text) if kind == "csv" else jsonl_rows(text))
    if not rows:
        raise InputError(f"{path}: no products in the catalog, only its header")
    base = Path(os.path.abspath(path)).parent
    products: list[CatalogProduct] = []
    problems: list[RowProblem] = []
    lines_of: dict[str, list[int]] = {}
    for line, record, errors in rows:
        pid = (record or {}).get("product_id")
        label = pid.strip() if isinstance(pid, str) and pid.strip() else None
        product = row_product(line, record, base, errors) if record is not None else None
        problems.extend(RowProblem(line, label, m, str(path)) for m in errors)
        if product is not None:
            products.append(product)
        if label is not None and PRODUCT_ID.fullmatch(label):
            lines_of.setdefault(label, []).append(line)
    for pid, lines in lines_of.items():
        if len(lines) > 1:
            where = ", ".join(map(str, lines))
            problems.extend(RowProblem(line, pid, f"product_id {pid!r} is on lines {where}; "
                                       "each product needs its own id", str(path))
                            for line in lines)
    duplicated = {pid for pid, lines in lines_of.items() if len(lines) > 1}
    return Catalog(path, tuple(p for p in products if p.product_id not in duplicated),
                   tuple(sorted(problems, key=lambda p: p.line)))


def catalog_id(products: Iterable[CatalogProduct]) -> str:
    """A stable id of a catalog's products: ``cat-`` and 12 hex digits of a SHA-256, or
    the id the file declares.

    The id depends on the products only (not on row order, line numbers or notes), so
    re-reading the same file gives the same id. A file ``catalog prepare`` wrote declares
    its id in the ``catalog`` column instead: the products ``--submit`` submitted as they
    were confirmed, while the rest of the file was still undecided, keep the id that
    ``catalog submit`` of the finished file gives.

    Args:
        products: the products to submit.

    Raises:
        InputError: some products declare a catalog and others another one, or none.
    """
    products = list(products)
    declared = {p.catalog for p in products}
    if len(declared) == 1 and None not in declared:
        return str(declared.pop())
    if declared - {None}:
        lines = ", ".join(str(p.line) for p in products if p.catalog is None)
        raise InputError(f"the rows name {count(len(declared - {None}), 'catalog')} in the "
                         f"catalog column ({', '.join(sorted(str(d) for d in declared - {None}))})"
                         f"; give every row the same one"
                         f"{f' (none on lines {lines})' if lines else ''}")
    canon = sorted((p.to_json() for p in products), key=lambda d: d["product_id"])
    blob = dumps(canon, sort_keys=True, compact=True)
    return "cat-" + hashlib.sha256(blob.encode()).hexdigest()[:12]
