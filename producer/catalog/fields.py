"""The fields of a catalog row: each value parsed and checked, or a ValueError naming it.

``producer.catalog.rows`` reads the rows and ``producer.catalog.row`` puts a row's values
together; these functions turn each value into a product id, image list, reference,
prompt numbers and settings overrides, and word the problems (with "did you mean" for
misspelt names).
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from prodseg.errors import PromptError
from prodseg.prompts import Prompt
from prodseg.proposed import PROMPT_SOURCES, PromptSource
from prodseg.settings import MACHINE_SETTINGS, Settings, load_settings

FIELDS = ("product_id", "images", "reference", "point", "neg_point", "box",
          "prompt_source", "prompt_confidence", "distractor_point", "ref", "not_here",
          "capture", "settings", "catalog")
CAPTURES = ("auto", "spin", "unordered", "panorama")
SETTING_PREFIX = "setting."
PRODUCT_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
CATALOG_ID = re.compile(r"cat-[0-9a-f]{12}")
_ANY_SIZE = 2**31  # an image size no prompt check can exceed: only the structure is checked


def product_id(value: Any) -> str:
    if not isinstance(value, str) or not PRODUCT_ID.fullmatch(value.strip()):
        raise ValueError(f"product_id {value!r} is not valid: use 1-128 letters, digits, "
                         "'-', '_' and '.', not starting with '.' (it becomes a storage key)")
    return value.strip()


def declared_catalog(value: Any) -> str:
    """The ``catalog`` column: the catalog id a prepared file declares (``cat-`` and 12
    lowercase hex digits), the same on every row."""
    text = value.strip() if isinstance(value, str) else value
    if not isinstance(text, str) or not CATALOG_ID.fullmatch(text):
        raise ValueError(f"catalog {value!r} is not a catalog id: expected cat- and 12 "
                         "lowercase hex digits, as catalog prepare writes it")
    return text


def image_list(value: Any, base: Path) -> tuple[str, ...]:
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
    return tuple(location(i, base, "images") for i in items)


def reference_location(value: Any, base: Path) -> str:
    if not isinstance(value, str):
        raise ValueError(f"reference: expected one image path or s3:// URL, got {value!r}")
    if any(ch in value for ch in "*?;|"):
        raise ValueError(f"reference {value.strip()!r} is not one image (a pattern or a list)")
    return location(value.strip(), base, "reference")


def location(text: str, base: Path, what: str) -> str:
    """An ``s3://`` URL as given (checked), or a local path made absolute against ``base``."""
    if text.startswith("s3://"):
        from prodseg.storage.urls import parse_s3_url  # on use: boto3

        if what == "reference" and (not parse_s3_url(text)[1] or text.endswith("/")):
            raise ValueError(f"reference {text!r} is not one image; write s3://bucket/key")
        parse_s3_url(text)
        return text
    if "://" in text:
        raise ValueError(f"{what}: {text!r}: only local paths and s3:// URLs are supported")
    return os.path.normpath(base / os.path.expanduser(text))


def points(value: Any, what: str) -> list[tuple[float, float]]:
    if isinstance(value, str):
        items: list[Any] = [s for s in value.split(";") if s.strip()]
    elif isinstance(value, list) and all(isinstance(v, (list, str)) for v in value):
        items = value
    else:
        items = [value]
    return [(x, y) for x, y in (numbers(item, 2, what, "X,Y") for item in items)]


def numbers(value: Any, n: int, what: str, form: str) -> tuple[float, ...]:
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


def check_prompt(prompt: Prompt) -> None:
    for x, y in prompt.points:
        if x < 0 or y < 0:
            raise PromptError(f"point ({x:g}, {y:g}) has a negative coordinate; points are "
                              "pixels from the reference's top-left corner")
    try:
        prompt.validate(_ANY_SIZE, _ANY_SIZE, "prompt")
    except PromptError as exc:
        size = f", which is {_ANY_SIZE}x{_ANY_SIZE}"
        raise PromptError(str(exc).removeprefix("prompt: ").replace(size, "")) from None


def prompt_source(value: Any) -> PromptSource:
    """The ``prompt_source`` column: ``clicked``, ``proposed`` or ``confirmed``."""
    text = value.strip().lower() if isinstance(value, str) else value
    for source in PROMPT_SOURCES:
        if text == source:
            return source
    raise ValueError(f"prompt_source {value!r} is not one of {', '.join(PROMPT_SOURCES)}"
                     f"{hint([str(value)], PROMPT_SOURCES)}")


def prompt_confidence(value: Any) -> float:
    """The ``prompt_confidence`` column: a proposal's confidence, a number in [0, 1]."""
    (number,) = numbers(value if isinstance(value, str) else [value], 1,
                        "prompt_confidence", "a number in [0, 1]")
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"prompt_confidence {value!r} is not in [0, 1]")
    return number


def capture_mode(value: Any) -> str:
    """The ``capture`` column: the product's capture mode (its ``capture`` setting)."""
    text = value.strip().lower() if isinstance(value, str) else value
    if text not in CAPTURES:
        raise ValueError(f"capture {value!r} is not one of {', '.join(CAPTURES)}")
    return str(text)


def lookalike_points(value: Any) -> list[tuple[float, float]]:
    """The ``distractor_point`` column: clicks on lookalikes on the reference ("not this"),
    ``X,Y`` each, ``;`` between them."""
    found = points(value, "distractor_point")
    for x, y in found:
        if x < 0 or y < 0:
            raise ValueError(f"distractor_point ({x:g}, {y:g}) has a negative coordinate; "
                             "points are pixels from the reference's top-left corner")
    return found


def reference_views(value: Any) -> dict[str, dict[str, Any]]:
    """The ``ref`` column: more reference views, ``VIEW:X,Y`` (a click) or
    ``VIEW:X0,Y0,X1,Y1`` (a box) each, ``;`` between them; a view named by its file name,
    path or image id. Returns each view's prompt in ``Prompt.to_json`` form."""
    items = value if isinstance(value, list) else str(value).split(";")
    clicks: dict[str, list[tuple[float, float]]] = {}
    boxes: dict[str, tuple[float, ...]] = {}
    for item in (str(i).strip() for i in items):
        if not item:
            continue
        view, _, values = item.rpartition(":")
        n = values.count(",") + 1
        if not view.strip() or n not in (2, 4):
            raise ValueError(f"ref {item!r}: expected VIEW:X,Y or VIEW:X0,Y0,X1,Y1")
        numbers_ = numbers(values, n, "ref", "X,Y" if n == 2 else "X0,Y0,X1,Y1")
        if n == 4:
            if view in boxes:
                raise ValueError(f"ref {view!r}: two boxes on one view; give one")
            boxes[view.strip()] = numbers_
        else:
            clicks.setdefault(view.strip(), []).append((numbers_[0], numbers_[1]))
    prompts = {}
    for view in {*clicks, *boxes}:
        pos = clicks.get(view, [])
        box = boxes.get(view)
        prompt = Prompt(tuple(pos), (1,) * len(pos),
                        None if box is None else (box[0], box[1], box[2], box[3]))
        check_prompt(prompt)
        prompts[view] = prompt.to_json()
    return dict(sorted(prompts.items()))


def views_not_here(value: Any) -> list[str]:
    """The ``not_here`` column: views that do not show the product (forced to no match),
    ``;`` between them."""
    items = value if isinstance(value, list) else str(value).split(";")
    return sorted({str(i).strip() for i in items if str(i).strip()})


def product_settings(value: Any, given: Mapping[str, Any]) -> dict[str, Any]:
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
        raise ValueError(f"setting {quoted(twice)} given twice (settings and setting.<name>)")
    overrides = {k: v for k, v in {**value, **given}.items() if v is not None and v != ""}
    if not overrides:
        return {}
    wrong = setting_names_problem(list(overrides))
    if wrong:
        raise ValueError(wrong)
    return dict(load_settings(**overrides).model_dump(mode="json", include=set(overrides)))


def setting_names_problem(names: list[str]) -> str | None:
    if not names:
        return None
    unknown = [n for n in names if n not in Settings.model_fields]
    if unknown:
        return f"unknown setting {quoted(unknown)}{hint(unknown, list(Settings.model_fields))}"
    local = sorted(set(names) & MACHINE_SETTINGS)
    if local:
        return (f"setting {quoted(local)} belongs to the machine that runs the jobs, not to "
                "a product; set it on the workers (PRODSEG_<NAME>)")
    return None




# -- wording ------------------------------------------------------------------------------


def unknown_columns(names: Iterable[str]) -> list[str]:
    return [n for n in names if n not in FIELDS and not n.startswith(SETTING_PREFIX)
            and not n.startswith("#") and n not in ("note", "notes")]


def quoted(names: Iterable[str]) -> str:
    return ", ".join(repr(n) for n in names)


def hint(names: list[str], known: Iterable[str]) -> str:
    close = [m for n in names for m in difflib.get_close_matches(n, list(known), n=1)]
    return f" (did you mean {quoted(close)}?)" if close else ""


def count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"
