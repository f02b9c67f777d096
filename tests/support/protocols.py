"""Whether an object fills a Protocol: every member present, methods with its parameters.

``isinstance`` on a ``runtime_checkable`` Protocol compares member names only; this also
compares each method's parameter names and kinds, so a renamed or missing argument fails.
"""

from __future__ import annotations

import inspect
from typing import Any


def protocol_members(protocol: type) -> dict[str, Any]:
    """The protocol's own methods and annotated attributes, by name."""
    members: dict[str, Any] = {name: None for name in getattr(protocol, "__annotations__", {})}
    for name, value in vars(protocol).items():
        if not name.startswith("_") and callable(value):
            members[name] = value
    return members


def mismatches(protocol: type, obj: object) -> list[str]:
    """What ``obj`` lacks or does differently from ``protocol`` (empty when it fills it)."""
    problems = []
    for name, method in protocol_members(protocol).items():
        if not hasattr(obj, name):
            problems.append(f"no {name}")
            continue
        if method is None:
            continue
        bound = getattr(obj, name)
        wanted = [(p.name, p.kind) for p in inspect.signature(method).parameters.values()][1:]
        given = [(p.name, p.kind) for p in inspect.signature(bound).parameters.values()]
        if wanted != given:
            problems.append(f"{name}{inspect.signature(bound)} differs from "
                            f"{name}{inspect.signature(method)}")
    return problems
