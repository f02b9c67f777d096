"""``prodseg catalog prepare``: a catalog file written from photos, every prompt proposed.

The source is a folder with one sub-folder of photos per product, an ``s3://`` prefix
with one prefix per product, or a catalog file whose rows lack prompts. Each product's
reference view and click are proposed (``workers.plan.propose``; on a worker, or in
this process) and its row written with ``prompt_source=proposed`` and the proposal's
confidence. The file is rewritten atomically after every few products, so a stopped
run leaves a valid catalog, and a second run keeps every row that has a prompt and
proposes the rest.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prodseg.errors import InputError
from prodseg.jsonio import dumps
from prodseg.producer.catalog.fields import FIELDS, PRODUCT_ID
from prodseg.producer.catalog.file import read_catalog
from prodseg.producer.catalog.rows import FORMATS
from prodseg.producer.inputs import expand_inputs, is_s3
from prodseg.proposed import ProposedPrompt
from prodseg.settings import Settings
from prodseg.storage.image_formats import IMAGE_SUFFIXES
from prodseg.storage.local import LocalStore

Row = dict[str, Any]
Proposer = Callable[[Sequence[str]], ProposedPrompt]
"""A product's images (local paths or ``s3://`` URLs) -> its proposal, the reference
being one of them."""
SAVE_EVERY_S = 5.0


@dataclass(frozen=True)
class Pending:
    """A product whose prompt is to be proposed.

    Attributes:
        index: its row's place in the output.
        images: its images, expanded (local paths or ``s3://`` URLs).
        reference: the view the prompt must be on, when the source names one.
    """

    index: int
    images: tuple[str, ...]
    reference: str | None


def source_rows(source: str, out: Path, settings: Settings) -> tuple[list[Row], list[str]]:
    """The rows a source gives (in ``FIELDS`` naming, values as text) and the problems of
    what could not become a row (one line each, naming the place)."""
    if is_s3(source):
        return _prefix_rows(source, settings), []
    path = Path(source)
    if path.is_dir():
        return _folder_rows(path, out)
    if path.suffix.lower() in FORMATS:
        return _catalog_rows(path)
    raise InputError(f"{source}: not a folder, an s3:// prefix or a catalog file "
                     f"({', '.join(FORMATS)})")


def prepare(rows: list[Row], out: Path, settings: Settings, propose: Proposer,
            on_product: Callable[[str, ProposedPrompt | None, str | None], None]) -> int:
    """Propose every row without a prompt, writing ``out`` as it goes; returns how many
    products could not be proposed (their rows are written without a prompt).

    Args:
        rows: the source's rows; rows ``out`` already holds with a prompt replace them.
        out: the catalog file to write (``.csv``, ``.jsonl`` or ``.ndjson``).
        settings: for listing ``s3://`` prefixes.
        propose: the proposer.
        on_product: called after each product with its id and its proposal or error.
    """
    rows = _continued(rows, out)
    base = out.resolve().parent
    pending = [Pending(i, tuple(expand_inputs(_images(r, base), settings)),
                       _located(r["reference"], base) if r.get("reference") else None)
               for i, r in enumerate(rows) if not _prompted(r)]
    failed, saved = 0, time.monotonic()
    _write(out, rows)
    for item in pending:
        row = rows[item.index]
        try:
            images = _with_reference(item)
            proposal = propose(images)
        except InputError as exc:
            failed += 1
            row["#problem"] = str(exc)
            on_product(row["product_id"], None, str(exc))
            continue
        row.pop("#problem", None)
        row.update(proposed_columns(proposal, out))
        on_product(row["product_id"], proposal, None)
        if time.monotonic() - saved >= SAVE_EVERY_S:
            _write(out, rows)
            saved = time.monotonic()
    _write(out, rows)
    return failed


def proposed_columns(proposal: ProposedPrompt, out: Path) -> Row:
    """A proposal as catalog columns: ``reference``, ``point``, ``box``,
    ``prompt_source`` and ``prompt_confidence``."""
    columns: Row = {"reference": _relative(proposal.reference, out),
                    "point": "" if proposal.point is None else _numbers(proposal.point),
                    "box": "" if proposal.box is None else _numbers(proposal.box),
                    "prompt_source": "proposed",
                    "prompt_confidence": f"{proposal.confidence:.3f}",
                    "note": proposal.why}
    return columns


# -- sources ------------------------------------------------------------------------------


def _folder_rows(folder: Path, out: Path) -> tuple[list[Row], list[str]]:
    rows, problems = [], []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        if not any(f.suffix.lower() in IMAGE_SUFFIXES for f in sub.iterdir()):
            problems.append(f"{sub}: no images; left out")
        elif not PRODUCT_ID.fullmatch(sub.name):
            problems.append(f"{sub}: {sub.name!r} is not a valid product id (letters, "
                            "digits, '-', '_', '.'); left out")
        else:
            rows.append({"product_id": sub.name, "images": _relative(str(sub), out)})
    if not rows:
        raise InputError(f"{folder}: no sub-folders with images (one per product)")
    return rows, problems


def _prefix_rows(prefix: str, settings: Settings) -> list[Row]:
    from prodseg.storage.factory import bucket_store
    from prodseg.storage.urls import parse_s3_url

    bucket, key = parse_s3_url(prefix)
    key = key if not key or key.endswith("/") else key + "/"
    products: dict[str, None] = {}
    for found in bucket_store(bucket, settings).list(key):
        name, _, rest = found[len(key):].partition("/")
        if rest and rest.lower().endswith(IMAGE_SUFFIXES) and PRODUCT_ID.fullmatch(name):
            products.setdefault(name)
    if not products:
        raise InputError(f"{prefix}: no prefixes with images under it (one per product)")
    return [{"product_id": name, "images": f"s3://{bucket}/{key}{name}/"}
            for name in sorted(products)]


def _catalog_rows(path: Path) -> tuple[list[Row], list[str]]:
    catalog = read_catalog(path)
    problems = [str(p) for p in catalog.problems]
    raw = _raw_rows(path)
    rows = []
    for product in catalog.products:
        row = dict(raw.get(product.product_id, {}))
        row["images"] = ";".join(product.images)
        if product.reference is not None:
            row["reference"] = product.reference
        rows.append(row)
    return rows, problems


def _raw_rows(path: Path) -> dict[str, Row]:
    """The file's rows by product id, every value as text."""
    text = path.read_text(encoding="utf-8-sig")
    if FORMATS[path.suffix.lower()] == "csv":
        records: Iterator[dict[str, Any]] = csv.DictReader(io.StringIO(text, newline=""))
    else:
        records = (json.loads(line) for line in text.splitlines() if line.strip())
    rows = {}
    for record in records:
        row = {str(k).strip(): _text(v) for k, v in record.items() if k and v not in (None, "")}
        rows[str(row.get("product_id", "")).strip()] = row
    return rows


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ";".join(",".join(map(str, v)) if isinstance(v, list) else str(v)
                        for v in value)
    if isinstance(value, dict):
        return dumps(value)
    return str(value).strip()


# -- rows ---------------------------------------------------------------------------------


def _prompted(row: Row) -> bool:
    return bool(row.get("point") or row.get("box"))


def _images(row: Row, base: Path) -> list[str]:
    """The row's images, local ones relative to ``base`` (the catalog's folder)."""
    from prodseg.producer.cli.options import expand_sources

    items = [i.strip() for i in str(row["images"]).split(";") if i.strip()]
    return expand_sources([_located(i, base) for i in items])


def _located(item: str, base: Path) -> str:
    return item if is_s3(item) else str(base / Path(item).expanduser())


def _with_reference(item: Pending) -> list[str]:
    """The product's images, its fixed reference (when named) first."""
    if item.reference is None:
        return list(item.images)
    return [item.reference, *(i for i in item.images if i != item.reference)]


def _continued(rows: list[Row], out: Path) -> list[Row]:
    """``rows``, each replaced by ``out``'s row of the same product when that has a
    prompt (a previous run proposed it, or a person confirmed it)."""
    if not out.exists():
        return rows
    done = {pid: row for pid, row in _raw_rows(out).items() if _prompted(row)}
    return [done.get(str(r["product_id"]), r) for r in rows]


def _write(out: Path, rows: list[Row]) -> None:
    """The whole catalog, atomically (``LocalStore.put``: a temporary file renamed)."""
    names = [f for f in FIELDS if any(f in r for r in rows)]
    names += sorted({k for r in rows for k in r} - set(names))
    if FORMATS[out.suffix.lower()] == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, names, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        data = buffer.getvalue()
    else:
        data = "".join(dumps({k: r[k] for k in names if k in r}) + "\n" for r in rows)
    LocalStore(out.resolve().parent).put(out.name, data.encode())


def _relative(location: str, out: Path) -> str:
    """A local path relative to the catalog's folder when it lies under it."""
    if is_s3(location):
        return location
    path, base = Path(location).resolve(), out.resolve().parent
    return str(path.relative_to(base)) if path.is_relative_to(base) else str(path)


def _numbers(values: Sequence[float]) -> str:
    return ",".join(f"{v:g}" for v in values)
