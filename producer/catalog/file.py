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

import codecs
import csv
import hashlib
import io
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any

from prodseg.errors import InputError
from prodseg.jsonio import dumps
from prodseg.producer.catalog.fields import (
    FIELDS,
    PRODUCT_ID,
    SETTING_PREFIX,
    capture_mode,
    check_prompt,
    count,
    declared_catalog,
    hint,
    image_list,
    lookalike_points,
    numbers,
    points,
    product_id,
    product_settings,
    prompt_confidence,
    prompt_source,
    quoted,
    reference_location,
    reference_views,
    setting_names_problem,
    unknown_columns,
    views_not_here,
)
from prodseg.prompts import Prompt
from prodseg.proposed import PromptSource

REQUIRED = ("product_id", "images")
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}

Record = dict[str, Any]


@dataclass(frozen=True)
class CatalogProduct:
    """One valid product of a catalog: what ``JobClient.submit`` needs, and its overrides.

    Attributes:
        line: 1-based line of the product in the catalog (its first line in a CSV).
        product_id: letters, digits, ``-``, ``_`` and ``.``; safe in storage keys.
        images: local paths (absolute, possibly globs or directories) and ``s3://`` URLs.
        reference: an absolute local path or an ``s3://bucket/key`` URL; None when the
            prompt is to be proposed and no view is named.
        prompt: the click(s) and/or box on the reference, checked except against its size;
            None when it is to be proposed at run time.
        settings: validated setting overrides, JSON-ready, normalised by ``Settings`` (the
            ``capture`` column among them).
        distractors: ``(x, y)`` clicks on lookalikes on the reference (``distractor_point``).
        views: prompts on other views (``ref``) and views that are not the product
            (``not_here``), in ``ViewPrompts.to_json`` form; empty without them.
        prompt_source: ``clicked``, ``proposed`` or ``confirmed`` (``prodseg.proposed``).
        prompt_confidence: a proposal's confidence in [0, 1], if the row gives one.
        catalog: the catalog id the file declares (``catalog`` column), or None: then the
            id is a hash of the products (``catalog_id``).
    """

    line: int
    product_id: str
    images: tuple[str, ...]
    reference: str | None
    prompt: Prompt | None
    settings: dict[str, Any]
    distractors: tuple[tuple[float, float], ...] = ()
    views: dict[str, Any] = dataclass_field(default_factory=dict)
    prompt_source: PromptSource = "clicked"
    prompt_confidence: float | None = None
    catalog: str | None = None

    @property
    def to_propose(self) -> bool:
        """Whether the prompt is proposed at run time (the row has none)."""
        return self.prompt is None

    def to_json(self) -> dict[str, Any]:
        """The product without its line: what ``catalog_id`` hashes.

        The prompt's provenance (``prompt_source``, ``prompt_confidence``) is left out: it
        does not change what the job computes, so a proposal confirmed unchanged keeps the
        catalog's id.
        """
        doc: dict[str, Any] = {"product_id": self.product_id, "images": list(self.images),
                               "reference": self.reference,
                               "prompt": None if self.prompt is None else self.prompt.to_json(),
                               "settings": self.settings}
        if self.distractors:
            doc["distractors"] = [list(p) for p in self.distractors]
        if self.views:
            doc["views"] = self.views
        return doc


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
    text = _read_text(path)
    rows = list(_csv_rows(path, text) if kind == "csv" else _jsonl_rows(text))
    if not rows:
        raise InputError(f"{path}: no products in the catalog, only its header")
    base = Path(os.path.abspath(path)).parent
    products: list[CatalogProduct] = []
    problems: list[RowProblem] = []
    lines_of: dict[str, list[int]] = {}
    for line, record, errors in rows:
        pid = (record or {}).get("product_id")
        label = pid.strip() if isinstance(pid, str) and pid.strip() else None
        product = _product(line, record, base, errors) if record is not None else None
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


# -- reading the file ---------------------------------------------------------------------


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: catalog file not found") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a catalog file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the catalog: {exc.strerror}") from None
    start = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[start:].decode("utf-8")
    except UnicodeDecodeError as exc:
        at = start + exc.start
        line = data[:at].count(b"\n") + 1
        raise InputError(
            f"{path}:{line}: not UTF-8 text (byte {data[at]:#04x} at offset {at}); save the "
            "catalog as UTF-8 (in Excel: CSV UTF-8)"
        ) from None
    if not text.strip():
        raise InputError(f"{path}: the catalog is empty")
    return text


def _csv_rows(path: Path, text: str) -> Iterator[tuple[int, Record | None, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [h.strip() for h in next(reader)]
        _check_header(path, header)
        previous = reader.line_num
        for cells in reader:
            line, previous = previous + 1, reader.line_num
            if not any(c.strip() for c in cells):
                continue
            record: Record = {}
            errors = []
            if any(c.strip() for c in cells[len(header):]):
                errors.append(f"{len(cells)} values but the header has {len(header)} columns")
            for number, (name, cell) in enumerate(zip(header, cells, strict=False), start=1):
                if cell.strip() and not name:
                    errors.append(f"a value in column {number}, which has no name")
                elif cell.strip():
                    record[name] = cell.strip()
            yield line, record, errors
    except csv.Error as exc:
        raise InputError(f"{path}:{reader.line_num}: not valid CSV: {exc}") from None


def _check_header(path: Path, header: list[str]) -> None:
    named = [h for h in header if h]
    if len(named) == 1 and ";" in named[0]:
        raise InputError(f"{path}:1: the header looks ';'-separated ({named[0]}); save the "
                         "catalog as comma-separated CSV")
    twice = sorted({h for h in named if named.count(h) > 1})
    if twice:
        raise InputError(f"{path}:1: column {quoted(twice)} appears twice in the header")
    unknown = unknown_columns(named)
    if unknown:
        raise InputError(f"{path}:1: unknown column {quoted(unknown)}{hint(unknown, FIELDS)};"
                         f" the columns are {', '.join(FIELDS)}, setting.<name>, note, #...")
    wrong = setting_names_problem([h[len(SETTING_PREFIX):] for h in named
                                    if h.startswith(SETTING_PREFIX)])
    if wrong:
        raise InputError(f"{path}:1: column {wrong}")
    missing = [f for f in REQUIRED if f not in named]
    if missing:
        raise InputError(f"{path}:1: the header lacks the required column "
                         f"{quoted(missing)} (it has {', '.join(named) or 'no names'})")


def _jsonl_rows(text: str) -> Iterator[tuple[int, Record | None, list[str]]]:
    """Each object with the problems of its keys; None for a line that is not an object."""
    for line, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw, object_pairs_hook=_no_repeated_keys)
        except json.JSONDecodeError as exc:
            yield line, None, [f"not valid JSON: {exc.msg} (column {exc.colno})"]
            continue
        except ValueError as exc:
            yield line, None, [str(exc)]
            continue
        if isinstance(obj, dict):
            yield line, obj, [f"unknown key {quoted(u)}{hint(u, FIELDS)}; the keys are "
                              f"{', '.join(FIELDS)}, note, #..."
                              for u in [unknown_columns(obj)] if u]
        else:
            yield line, None, [f"expected a JSON object {{...}}, got {type(obj).__name__}"]


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ValueError(f"key {quoted(twice)} given twice")
    return dict(pairs)


# -- one row ------------------------------------------------------------------------------


def _product(line: int, record: Record, base: Path, errors: list[str]) -> CatalogProduct | None:
    """The row as a product, or None after appending its problems to ``errors``."""

    def field(name: str, parse: Callable[..., Any], *args: Any) -> Any:
        value = record.get(name)
        if value in (None, "", []):
            if name in REQUIRED:
                errors.append(f"{name} is missing")
            return None
        return _try(errors, parse, value, *args)

    pid = field("product_id", product_id)
    images = field("images", image_list, base)
    reference = field("reference", reference_location, base)
    before = len(errors)
    pos = field("point", points, "point") or []
    neg = field("neg_point", points, "neg_point") or []
    box = field("box", numbers, 4, "box", "X0,Y0,X1,Y1")
    source = field("prompt_source", prompt_source)
    confidence = field("prompt_confidence", prompt_confidence)
    prompt = None
    if len(errors) == before:
        if neg and not pos and box is None:
            errors.append("neg_point alone does not say which product is meant; add a point "
                          "or a box")
        elif pos or box is not None:
            prompt = Prompt(tuple(pos + neg), (1,) * len(pos) + (0,) * len(neg), box)
            _try(errors, check_prompt, prompt)
            if reference is None and not record.get("reference"):
                errors.append("reference is missing")
        errors.extend(_provenance_problems(prompt is not None, source, confidence))
    lookalikes = field("distractor_point", lookalike_points) or []
    refs = field("ref", reference_views) or {}
    not_here = field("not_here", views_not_here) or []
    both = sorted(set(refs) & set(not_here))
    if both:
        errors.append(f"view {quoted(both)} is both a reference (ref) and not_here")
    views = {"references": refs, "no_match": not_here, "lookalikes": {}} \
        if refs or not_here else {}
    given = {k[len(SETTING_PREFIX):]: v for k, v in record.items() if k.startswith(SETTING_PREFIX)}
    capture = field("capture", capture_mode)
    if capture is not None:
        if "capture" in given:
            errors.append("capture given twice (the capture column and setting.capture)")
        given["capture"] = capture
    settings = _try(errors, product_settings, record.get("settings"), given)
    declared = field("catalog", declared_catalog)
    if errors:
        return None
    if prompt is None and (lookalikes or refs):
        errors.append("distractor_point and ref need the reference's prompt; without a "
                      "point or a box the prompt is proposed, so leave them out")
        return None
    chosen: PromptSource = source or ("clicked" if prompt is not None else "proposed")
    return CatalogProduct(line, pid, images, reference, prompt, settings or {},
                          tuple(lookalikes), views, chosen, confidence, declared)


def _provenance_problems(prompted: bool, source: str | None,
                         confidence: float | None) -> list[str]:
    """What is wrong with a row's ``prompt_source``/``prompt_confidence``, given whether it
    has a point or a box."""
    if not prompted and source in ("clicked", "confirmed"):
        return [f"prompt_source {source!r} without a point or a box; give the prompt, or "
                "leave both out to have it proposed"]
    if not prompted and confidence is not None:
        return ["prompt_confidence without a point or a box; a proposal's confidence comes "
                "with its prompt"]
    if source in (None, "clicked") and prompted and confidence is not None:
        return ["prompt_confidence on a clicked prompt; it belongs to a proposed or "
                "confirmed one (prompt_source)"]
    return []


def _try(errors: list[str], fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, or None after appending why it failed to ``errors``."""
    try:
        return fn(*args)
    except (ValueError, InputError) as exc:  # PromptError and SettingsError are InputErrors
        errors.append(str(exc))
        return None
