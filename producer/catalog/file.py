"""Store catalogs: many products in one CSV or JSON Lines file, each to become one job.

A CSV catalog has a header row; a ``.jsonl``/``.ndjson`` catalog has one JSON object per
line (blank lines allowed). The fields (CSV columns, JSON keys) are ``product_id``,
``images`` and ``reference`` (required), ``point``, ``neg_point`` and ``box`` (at least a
point or a box) and ``settings`` (per-product overrides; CSV also takes one column per
setting, ``setting.<name>``). Columns starting with ``#`` and ``note``/``notes`` are free
text. Reading is pure: nothing is fetched, globs are not expanded and images are not
opened, so the prompt is checked against the reference's size only at submission.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import hashlib
import io
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prodseg.errors import InputError, PromptError
from prodseg.prompts import Prompt
from prodseg.settings import MACHINE_SETTINGS, Settings, load_settings

FIELDS = ("product_id", "images", "reference", "point", "neg_point", "box", "settings")
REQUIRED = ("product_id", "images", "reference")
SETTING_PREFIX = "setting."
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
PRODUCT_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
_ANY_SIZE = 2**31  # an image size no prompt check can exceed: only the structure is checked

Record = dict[str, Any]


@dataclass(frozen=True)
class CatalogProduct:
    """One valid product of a catalog: what ``JobClient.submit`` needs, and its overrides.

    Attributes:
        line: 1-based line of the product in the catalog (its first line in a CSV).
        product_id: letters, digits, ``-``, ``_`` and ``.``; safe in storage keys.
        images: local paths (absolute, possibly globs or directories) and ``s3://`` URLs.
        reference: an absolute local path or an ``s3://bucket/key`` URL.
        prompt: the click(s) and/or box on the reference, checked except against its size.
        settings: validated setting overrides, JSON-ready, normalised by ``Settings``.
    """

    line: int
    product_id: str
    images: tuple[str, ...]
    reference: str
    prompt: Prompt
    settings: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The product without its line: what ``catalog_id`` hashes."""
        return {"product_id": self.product_id, "images": list(self.images),
                "reference": self.reference, "prompt": self.prompt.to_json(),
                "settings": self.settings}


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
            f"{self.path}: {_count(n, 'problem')} in {_count(rows, 'row')}:\n"
            + "\n".join(lines) + "\nfix them or pass --skip-invalid to submit only the "
            f"{_count(len(self.products), 'valid product')}"
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
    """A stable id of a catalog's products: ``cat-`` and 12 hex digits of a SHA-256.

    The id depends on the products only (not on row order, line numbers or notes), so
    re-reading the same file gives the same id.

    Args:
        products: the products to submit.
    """
    canon = sorted((p.to_json() for p in products), key=lambda d: d["product_id"])
    blob = json.dumps(canon, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
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
        raise InputError(f"{path}:1: column {_names(twice)} appears twice in the header")
    unknown = _unknown(named)
    if unknown:
        raise InputError(f"{path}:1: unknown column {_names(unknown)}{_hint(unknown, FIELDS)};"
                         f" the columns are {', '.join(FIELDS)}, setting.<name>, note, #...")
    wrong = _setting_names_problem([h[len(SETTING_PREFIX):] for h in named
                                    if h.startswith(SETTING_PREFIX)])
    if wrong:
        raise InputError(f"{path}:1: column {wrong}")
    missing = [f for f in REQUIRED if f not in named]
    if missing:
        raise InputError(f"{path}:1: the header lacks the required column "
                         f"{_names(missing)} (it has {', '.join(named) or 'no names'})")


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
            yield line, obj, [f"unknown key {_names(u)}{_hint(u, FIELDS)}; the keys are "
                              f"{', '.join(FIELDS)}, note, #..." for u in [_unknown(obj)] if u]
        else:
            yield line, None, [f"expected a JSON object {{...}}, got {type(obj).__name__}"]


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ValueError(f"key {_names(twice)} given twice")
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

    pid = field("product_id", _product_id)
    images = field("images", _images, base)
    reference = field("reference", _reference, base)
    before = len(errors)
    pos = field("point", _points, "point") or []
    neg = field("neg_point", _points, "neg_point") or []
    box = field("box", _numbers, 4, "box", "X0,Y0,X1,Y1")
    prompt = None
    if len(errors) == before:
        if not pos and box is None:
            errors.append("neg_point alone does not say which product is meant; add a point "
                          "or a box" if neg else "no prompt: give a point (X,Y) or a box "
                          "(X0,Y0,X1,Y1) on the reference image")
        else:
            prompt = Prompt(tuple(pos + neg), (1,) * len(pos) + (0,) * len(neg), box)
            _try(errors, _check_prompt, prompt)
    given = {k[len(SETTING_PREFIX):]: v for k, v in record.items() if k.startswith(SETTING_PREFIX)}
    settings = _try(errors, _settings, record.get("settings"), given)
    if errors or prompt is None:
        return None
    return CatalogProduct(line, pid, images, reference, prompt, settings or {})


def _try(errors: list[str], fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, or None after appending why it failed to ``errors``."""
    try:
        return fn(*args)
    except (ValueError, InputError) as exc:  # PromptError and SettingsError are InputErrors
        errors.append(str(exc))
        return None


def _product_id(value: Any) -> str:
    if not isinstance(value, str) or not PRODUCT_ID.fullmatch(value.strip()):
        raise ValueError(f"product_id {value!r} is not valid: use 1-128 letters, digits, "
                         "'-', '_' and '.', not starting with '.' (it becomes a storage key)")
    return value.strip()


def _images(value: Any, base: Path) -> tuple[str, ...]:
    if isinstance(value, str):
        items = re.split(r"[;|]", value)
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = value
    else:
        raise ValueError(f"images: expected a path, a glob, an s3:// URL or a list of them, "
                         f"got {value!r}")
    items = [i.strip() for i in items if i.strip()]
    if not items:
        raise ValueError("images is missing")
    return tuple(_location(i, base, "images") for i in items)


def _reference(value: Any, base: Path) -> str:
    if not isinstance(value, str):
        raise ValueError(f"reference: expected one image path or s3:// URL, got {value!r}")
    if any(ch in value for ch in "*?;|"):
        raise ValueError(f"reference {value.strip()!r} is not one image (a pattern or a list)")
    return _location(value.strip(), base, "reference")


def _location(text: str, base: Path, what: str) -> str:
    """An ``s3://`` URL as given (checked), or a local path made absolute against ``base``."""
    if text.startswith("s3://"):
        from prodseg.storage.s3 import parse_s3_url  # on use: boto3

        if what == "reference" and (not parse_s3_url(text)[1] or text.endswith("/")):
            raise ValueError(f"reference {text!r} is not one image; write s3://bucket/key")
        parse_s3_url(text)
        return text
    if "://" in text:
        raise ValueError(f"{what}: {text!r}: only local paths and s3:// URLs are supported")
    return os.path.normpath(base / os.path.expanduser(text))


def _points(value: Any, what: str) -> list[tuple[float, float]]:
    if isinstance(value, str):
        items: list[Any] = [s for s in value.split(";") if s.strip()]
    elif isinstance(value, list) and all(isinstance(v, (list, str)) for v in value):
        items = value
    else:
        items = [value]
    return [(x, y) for x, y in (_numbers(item, 2, what, "X,Y") for item in items)]


def _numbers(value: Any, n: int, what: str, form: str) -> tuple[float, ...]:
    parts = [p.strip() for p in value.split(",")] if isinstance(value, str) else value
    if not isinstance(parts, list) or len(parts) != n:
        raise ValueError(f"{what} {value!r}: expected {form} ({n} numbers)")
    numbers = []
    for part in parts:
        try:
            if isinstance(part, bool) or not isinstance(part, (int, float, str)):
                raise ValueError
            number = float(part)
        except ValueError:
            raise ValueError(f"{what} {value!r}: {part!r} is not a number; expected {form}"
                             ) from None
        if not math.isfinite(number):
            raise ValueError(f"{what} {value!r}: {part!r} is not a finite number")
        numbers.append(number)
    return tuple(numbers)


def _check_prompt(prompt: Prompt) -> None:
    for x, y in prompt.points:
        if x < 0 or y < 0:
            raise PromptError(f"point ({x:g}, {y:g}) has a negative coordinate; points are "
                              "pixels from the reference's top-left corner")
    try:
        prompt.validate(_ANY_SIZE, _ANY_SIZE, "prompt")
    except PromptError as exc:
        size = f", which is {_ANY_SIZE}x{_ANY_SIZE}"
        raise PromptError(str(exc).removeprefix("prompt: ").replace(size, "")) from None


def _settings(value: Any, given: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(value, str) and value:
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ValueError(f"settings: not a JSON object ({exc}); write it as "
                             '{"similarity_threshold": 0.7} or use setting.<name>') from None
    value = {} if value in (None, "") else value
    if not isinstance(value, dict):
        raise ValueError(f"settings: expected a JSON object such as "
                         f'{{"similarity_threshold": 0.7}}, got {value!r}')
    twice = sorted(set(value) & set(given))
    if twice:
        raise ValueError(f"setting {_names(twice)} given twice (settings and setting.<name>)")
    overrides = {k: v for k, v in {**value, **given}.items() if v is not None and v != ""}
    if not overrides:
        return {}
    wrong = _setting_names_problem(list(overrides))
    if wrong:
        raise ValueError(wrong)
    return dict(load_settings(**overrides).model_dump(mode="json", include=set(overrides)))


def _setting_names_problem(names: list[str]) -> str | None:
    if not names:
        return None
    unknown = [n for n in names if n not in Settings.model_fields]
    if unknown:
        return f"unknown setting {_names(unknown)}{_hint(unknown, list(Settings.model_fields))}"
    local = sorted(set(names) & MACHINE_SETTINGS)
    if local:
        return (f"setting {_names(local)} belongs to the machine that runs the jobs, not to "
                "a product; set it on the workers (PRODSEG_<NAME>)")
    return None




# -- wording ------------------------------------------------------------------------------


def _unknown(names: Iterable[str]) -> list[str]:
    return [n for n in names if n not in FIELDS and not n.startswith(SETTING_PREFIX)
            and not n.startswith("#") and n not in ("note", "notes")]


def _names(names: Iterable[str]) -> str:
    return ", ".join(repr(n) for n in names)


def _hint(names: list[str], known: Iterable[str]) -> str:
    close = [m for n in names for m in difflib.get_close_matches(n, list(known), n=1)]
    return f" (did you mean {_names(close)}?)" if close else ""


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"
