"""JSON as prodseg writes it: strict (no NaN or Infinity, which JSON does not have), UTF-8.

Every document prodseg writes goes through ``dumps``, so an out-of-range number fails
where it is written, naming nothing half-written, instead of producing a file that
standard JSON readers refuse.
"""

from __future__ import annotations

import json
from typing import Any


def dumps(document: Any, indent: int | None = None, sort_keys: bool = False,
          compact: bool = False) -> str:
    """``document`` as strict JSON text.

    Args:
        document: JSON-ready values.
        indent: pretty-printing indent, or None for one line.
        sort_keys: sort object keys (canonical forms, cache keys).
        compact: no spaces after separators (canonical forms).

    Raises:
        ValueError: a float is NaN or infinite.
        TypeError: a value is not JSON-ready.
    """
    separators = (",", ":") if compact else None
    return json.dumps(document, indent=indent, sort_keys=sort_keys, separators=separators,
                      ensure_ascii=False, allow_nan=False)


def dump_bytes(document: Any, indent: int | None = 2) -> bytes:
    """``dumps(document, indent)`` plus a final newline, as UTF-8 bytes (a file's content)."""
    return (dumps(document, indent=indent) + "\n").encode("utf-8")
