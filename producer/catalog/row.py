"""One catalog row as a product: its values parsed and checked together.

Each value is parsed by ``catalog.fields``; here they are put together (a prompt needs a
reference, a proposed prompt takes no lookalikes, provenance goes with a prompt) into a
``CatalogProduct``, or the row's problems.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any

from prodseg.errors import InputError
from prodseg.producer.catalog.fields import (
    SETTING_PREFIX,
    capture_mode,
    check_prompt,
    declared_catalog,
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
    views_not_here,
)
from prodseg.producer.catalog.rows import REQUIRED, Record
from prodseg.prompts import Prompt
from prodseg.proposed import PromptSource


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


def row_product(line: int, record: Record, base: Path,
                errors: list[str]) -> CatalogProduct | None:
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
