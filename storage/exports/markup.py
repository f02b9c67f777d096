"""HTML text of any value: the one escape of the gallery and the catalog report."""

from __future__ import annotations

import html
from typing import Any


def escape(value: Any) -> str:
    """HTML-escaped text of ``value`` (``str()`` of it), quotes included."""
    return html.escape(str(value), quote=True)
