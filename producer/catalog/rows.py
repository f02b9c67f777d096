"""A catalog file's rows: its text decoded, CSV or JSON Lines records, each with its problems.

A CSV catalog has a header row, checked as a whole (a file with an unusable header stops
here); a ``.jsonl``/``.ndjson`` catalog has one JSON object per line (blank lines
allowed), and a line that is no object is that row's problem. What a row's values mean
is ``catalog.row``'s.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prodseg.errors import InputError
from prodseg.producer.catalog.fields import (
    FIELDS,
    SETTING_PREFIX,
    hint,
    quoted,
    setting_names_problem,
    unknown_columns,
)

REQUIRED = ("product_id", "images")
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}

Record = dict[str, Any]


def read_text(path: Path) -> str:
    """The catalog's text (a UTF-8 BOM dropped), or an ``InputError`` naming the file."""
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


def csv_rows(path: Path, text: str) -> Iterator[tuple[int, Record | None, list[str]]]:
    """Each non-blank row after the header: its line, its non-empty cells by column, and the
    problems of its cells."""
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


def jsonl_rows(text: str) -> Iterator[tuple[int, Record | None, list[str]]]:
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

