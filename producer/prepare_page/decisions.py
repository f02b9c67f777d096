"""The operator's decisions on a prepared catalog file, each written to the file at once.

A file ``catalog prepare`` wrote holds one row per product with its proposed prompt
(``point`` or ``box``, ``prompt_source`` ``proposed``, ``prompt_confidence``). On the
prepare page each product gets one decision:

- accepted: the proposal as it was; ``prompt_source`` becomes ``confirmed``;
- corrected: another prompt or another reference view; ``confirmed`` too;
- skipped: left as proposed, to be used as is or decided later.

The decision itself is kept in the free-text column ``#prepare`` (the catalog reader
ignores ``#`` columns), so running the page again opens the first product without one.
The file also declares its catalog id in the ``catalog`` column (``catalog_id``), chosen
once, so products submitted as they are confirmed keep the id the finished file gives.

Every write replaces the whole file atomically (a temporary file beside it, flushed,
then renamed over it): a reader, or a page killed mid-write, never sees half a file.
``decide``, ``progress`` and ``first_open`` are pure; ``PreparedFile`` does the I/O.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prodseg.errors import InputError
from prodseg.jsonio import dumps

DECISION_COLUMN = "#prepare"
CATALOG_COLUMN = "catalog"
ACCEPTED, CORRECTED, SKIPPED = "accepted", "corrected", "skipped"
DECISIONS = (ACCEPTED, CORRECTED, SKIPPED)
CONFIRMED = "confirmed"
PROMPT_COLUMNS = ("point", "neg_point", "box")

Row = dict[str, Any]


@dataclass(frozen=True)
class Decision:
    """What the operator did with one product.

    Attributes:
        action: ``"accept"`` (the prompt below, proposed or corrected) or ``"skip"``.
        reference: the reference's location as the file writes it.
        points: ``(x, y)`` clicks on the product, in the reference's pixels.
        neg_points: ``(x, y)`` clicks on what is not the product.
        box: ``(x0, y0, x1, y1)`` around the product, or None.
    """

    action: str
    reference: str = ""
    points: tuple[tuple[float, float], ...] = ()
    neg_points: tuple[tuple[float, float], ...] = ()
    box: tuple[float, float, float, float] | None = None


def decide(row: Row, decision: Decision) -> Row:
    """The row after ``decision`` (pure; ``row`` is not changed).

    Args:
        row: one product's row, as read.
        decision: the operator's decision.

    Returns:
        A new row: for an accept, the prompt columns, ``reference``, ``prompt_source``
        (``confirmed``) and ``#prepare`` (``accepted`` when nothing changed, else
        ``corrected``); for a skip, ``#prepare`` alone.

    Raises:
        InputError: an unknown action, or an accept without a point or a box.
    """
    new = dict(row)
    if decision.action == "skip":
        new[DECISION_COLUMN] = SKIPPED
        return new
    if decision.action != "accept":
        raise InputError(f"unknown decision {decision.action!r}: accept or skip")
    if not decision.points and decision.box is None:
        raise InputError(f"{row.get('product_id')}: an accepted prompt needs a click on the "
                         "product or a box")
    written = {"point": format_points(decision.points),
               "neg_point": format_points(decision.neg_points),
               "box": "" if decision.box is None else format_numbers(decision.box),
               "reference": decision.reference or _text(row.get("reference"))}
    changed = any(_text(row.get(k)) != v for k, v in written.items())
    new.update(written)
    new["prompt_source"] = CONFIRMED
    new[DECISION_COLUMN] = CORRECTED if changed else ACCEPTED
    return new


def decision_of(row: Row) -> str | None:
    """The row's decision (``DECISIONS``), or None while it has none (pure)."""
    value = _text(row.get(DECISION_COLUMN))
    return value if value in DECISIONS else None


def progress(rows: Sequence[Row]) -> dict[str, int]:
    """How many products there are, decided, and by decision (pure)."""
    counts = {d: 0 for d in DECISIONS}
    for row in rows:
        found = decision_of(row)
        if found is not None:
            counts[found] += 1
    return {"products": len(rows), "decided": sum(counts.values()), **counts}


def first_open(rows: Sequence[Row], start: int = 0) -> int | None:
    """The index of the first product without a decision at or after ``start``, then from
    the top; None when every product has one (pure)."""
    n = len(rows)
    for k in range(n):
        index = (start + k) % n
        if decision_of(rows[index]) is None:
            return index
    return None


def format_points(points: Sequence[Sequence[float]]) -> str:
    """``X,Y;X,Y`` as the catalog reader reads it."""
    return ";".join(format_numbers(p) for p in points)


def format_numbers(values: Sequence[float]) -> str:
    """``1,2.5`` (whole numbers without a point, others to 0.01 px)."""
    return ",".join(str(int(v)) if float(v).is_integer() else f"{round(float(v), 2):g}"
                    for v in values)


def new_catalog_id() -> str:
    """A fresh catalog id for a prepared file (``cat-`` and 12 random hex digits)."""
    return "cat-" + secrets.token_hex(6)


class PreparedFile:
    """A prepared catalog file held in memory; every decision rewrites it atomically.

    Args:
        path: a ``.csv`` or ``.jsonl``/``.ndjson`` catalog ``catalog prepare`` wrote.

    Raises:
        InputError: the file is missing, unreadable, empty or not a catalog format.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.jsonl = self.path.suffix.lower() in (".jsonl", ".ndjson")
        if not self.jsonl and self.path.suffix.lower() != ".csv":
            raise InputError(f"{self.path}: a prepared catalog is a .csv or .jsonl file")
        try:
            text = self.path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise InputError(f"{self.path}: no such catalog file; run catalog prepare "
                             "first") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{self.path}: cannot read the catalog: {exc}") from None
        self.header, self.rows = (_jsonl_rows(self.path, text) if self.jsonl
                                  else _csv_rows(self.path, text))
        if not self.rows:
            raise InputError(f"{self.path}: no products in the catalog")
        self.index = {str(r.get("product_id", "")).strip(): k for k, r in enumerate(self.rows)}
        self._lock = threading.Lock()

    @property
    def catalog(self) -> str:
        """The catalog id the file declares (``ensure_catalog`` gives it one)."""
        return _text(self.rows[0].get(CATALOG_COLUMN))

    def ensure_catalog(self) -> str:
        """The file's declared catalog id; a new one, written at once, when it has none."""
        with self._lock:
            declared = {_text(r.get(CATALOG_COLUMN)) for r in self.rows}
            if len(declared) == 1 and "" not in declared:
                return declared.pop()
            if declared - {""}:
                raise InputError(f"{self.path}: the rows name different catalogs "
                                 f"({', '.join(sorted(declared - {''}))}); give every row "
                                 "the same one")
            cid = new_catalog_id()
            self.rows = [{**r, CATALOG_COLUMN: cid} for r in self.rows]
            self._write()
            return cid

    def record(self, product: str, decision: Decision) -> Row:
        """Apply ``decision`` to ``product``'s row and write the file; returns the row.

        Raises:
            InputError: no such product, or ``decide`` refused the decision.
        """
        with self._lock:
            k = self.index.get(product)
            if k is None:
                raise InputError(f"{self.path}: no product {product!r}")
            row = decide(self.rows[k], decision)
            self.rows[k] = row
            self._write()
            return row

    def _write(self) -> None:
        """The file replaced in one rename: a temporary file beside it, synced first."""
        header = list(self.header)
        for name in (*PROMPT_COLUMNS, "prompt_source", CATALOG_COLUMN, DECISION_COLUMN):
            if name not in header and any(_text(r.get(name)) for r in self.rows):
                header.append(name)
        text = _jsonl_text(self.rows) if self.jsonl else _csv_text(header, self.rows)
        self.header = header
        fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temp, 0o644)
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ";".join(format_numbers(v) if isinstance(v, list) else str(v) for v in value)
    return str(value).strip()


def _csv_rows(path: Path, text: str) -> tuple[list[str], list[Row]]:
    try:
        table = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as exc:
        raise InputError(f"{path}: not valid CSV: {exc}") from None
    if not table:
        raise InputError(f"{path}: the catalog is empty")
    header = [h.strip() for h in table[0]]
    rows = [dict(zip(header, (c.strip() for c in cells), strict=False))
            for cells in table[1:] if any(c.strip() for c in cells)]
    return header, rows


def _jsonl_rows(path: Path, text: str) -> tuple[list[str], list[Row]]:
    rows: list[Row] = []
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except ValueError as exc:
            raise InputError(f"{path}:{line}: not valid JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise InputError(f"{path}:{line}: expected a JSON object")
        rows.append(obj)
    return [], rows


def _csv_text(header: list[str], rows: Sequence[Row]) -> str:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_text(row.get(name)) for name in header])
    return out.getvalue()


def _jsonl_text(rows: Sequence[Row]) -> str:
    return "".join(dumps({k: v for k, v in row.items() if v not in ("", None)}) + "\n"
                   for row in rows)
