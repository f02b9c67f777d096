"""A catalog as storage holds it: its keys, each product's record, what a resubmit keeps.

Everything of a catalog lives under ``catalogs/<id>/`` (``catalog_key``); its description,
``catalog.json``, lists every product as a ``Product``: what that product's job needs, so
``prodseg catalog resume`` needs nothing but the id.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from prodseg.jsonio import dumps
from prodseg.storage.manifest import validate_job_id

CATALOGS_PREFIX = "catalogs/"


def catalog_key(catalog: str, name: str) -> str:
    """``catalogs/<catalog>/<name>``."""
    return f"{CATALOGS_PREFIX}{validate_job_id(catalog)}/{name}"


def product_job(catalog: str, product: str) -> str:
    """The job id of one product: ``<catalog>-<product>`` (stable, so resumable)."""
    return validate_job_id(f"{catalog}-{product}")


@dataclass(frozen=True)
class Product:
    """One product as stored in ``catalog.json``: what its job needs.

    Attributes:
        product: the product id.
        job: its job id.
        line: its line in the catalog file.
        images: local paths (absolute) or ``s3://`` URLs.
        reference: the reference image.
        prompt: ``Prompt.to_json()`` form; None to have it proposed when the job runs.
        settings: per-product setting overrides.
        distractors: ``(x, y)`` clicks on lookalikes on the reference.
        views: prompts on other views and views not the product (``ViewPrompts.to_json``).
        prompt_source: where the prompt came from (``prodseg.proposed``).
        prompt_confidence: a proposal's confidence, as the catalog file gave it.
    """

    product: str
    job: str
    line: int
    images: tuple[str, ...]
    reference: str
    prompt: dict[str, Any] | None
    settings: dict[str, Any]
    distractors: tuple[tuple[float, float], ...] = ()
    views: dict[str, Any] = field(default_factory=dict)
    prompt_source: str = "clicked"
    prompt_confidence: float | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"product": self.product, "job": self.job, "line": self.line,
                "images": list(self.images), "reference": self.reference,
                "prompt": self.prompt, "settings": self.settings,
                "distractors": [list(p) for p in self.distractors], "views": self.views,
                "prompt_source": self.prompt_source,
                "prompt_confidence": self.prompt_confidence}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Product:
        """The inverse of ``to_json``."""
        return cls(str(doc["product"]), str(doc["job"]), int(doc["line"]),
                   tuple(doc["images"]), str(doc["reference"]),
                   None if doc["prompt"] is None else dict(doc["prompt"]),
                   dict(doc.get("settings") or {}),
                   tuple((float(x), float(y)) for x, y in doc.get("distractors") or []),
                   dict(doc.get("views") or {}), str(doc.get("prompt_source", "clicked")),
                   doc.get("prompt_confidence"))


def resubmit_conflict(stored: Sequence[Product], given: Sequence[Product]) -> str | None:
    """Why a catalog submitted again cannot go on as it started (pure).

    The catalog id follows the file's products, not the setting flags given to
    ``submit``; so a second submit with other flags would go on at the settings the
    first one stored. It is refused instead.

    Args:
        stored: the products the first submit stored.
        given: the products this submit would store.

    Returns:
        What differs, for one product, in one line; None when nothing does.
    """
    before = {p.product: p for p in stored}
    for product in given:
        old = before.get(product.product)
        if old is None:
            continue
        then, now = dict(old.settings), jsonable(product.settings)
        changed = sorted(k for k in then.keys() | now.keys() if then.get(k) != now.get(k))
        if changed:
            said = ", ".join(f"{k} {then.get(k, 'unset')} then, {now.get(k, 'unset')} now"
                             for k in changed)
            return f"{product.product}: {said}"
    return None


def jsonable(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` as storing it and reading it back gives it."""
    return dict(json.loads(dumps(doc)))
