"""Several references in one job: prompts on views other than the reference.

A job may carry, besides the reference's prompt, per target view (by image id):

- a prompt (points, negative points, a box): the view is segmented from it, its match is
  that mask (``found_by: "reference"``, score 1), and its embedding joins the prototype
  bank as a fixed reference, so every other view is scored against all the references;
- "not the product here": the view is forced to no match (``found_by: "not here"``);
- lookalike clicks: each is segmented and embedded as a negative, as lookalikes on the
  reference are.

Both executors (``plan.local_run`` and ``plan.steps``) call these functions, so a job
with such prompts computes the same in both modes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from prodseg.errors import PromptError
from prodseg.prompts import Prompt
from prodseg.results import ImageResult, Match
from prodseg.workers.ops.masks import mask_to_box

if TYPE_CHECKING:
    from prodseg.workers.plan.pipeline import ProductSegmentationPipeline


Point = tuple[float, float]


@dataclass(frozen=True)
class ViewPrompts:
    """What a job says about its target views, by image id.

    Attributes:
        references: views that are references too, with the prompt on each.
        no_match: views forced to no match.
        lookalikes: clicks on lookalikes, per view.
    """

    references: Mapping[str, Prompt] = field(default_factory=dict)
    no_match: frozenset[str] = frozenset()
    lookalikes: Mapping[str, tuple[Point, ...]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """Nothing is said about any target view."""
        return not (self.references or self.no_match or self.lookalikes)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form, as the job manifest stores it."""
        return {"references": {k: p.to_json() for k, p in sorted(self.references.items())},
                "no_match": sorted(self.no_match),
                "lookalikes": {k: [list(p) for p in v]
                               for k, v in sorted(self.lookalikes.items())}}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any] | None) -> ViewPrompts:
        """The inverse of ``to_json`` (an empty one for None)."""
        doc = doc or {}
        return cls({str(k): Prompt.from_json(p) for k, p in (doc.get("references") or {}).items()},
                   frozenset(map(str, doc.get("no_match") or [])),
                   {str(k): tuple((float(x), float(y)) for x, y in v)
                    for k, v in (doc.get("lookalikes") or {}).items()})

    def check(self, ids: Sequence[str]) -> None:
        """Raise ``PromptError`` unless every view named is a target and no view is both a
        reference and forced to no match."""
        known = set(ids)
        for name in (*self.references, *self.no_match, *self.lookalikes):
            if name not in known:
                raise PromptError(f"view {name!r} is not one of the job's target images")
        both = sorted(set(self.references) & self.no_match)
        if both:
            raise PromptError(f"view {both[0]!r} has a prompt on the product and is marked "
                              "'not the product here'; give one or the other")

    def validate(self, image_id: str, width: int, height: int, source: str) -> None:
        """Raise ``PromptError`` if this view's prompt or lookalikes leave its image."""
        if image_id in self.references:
            self.references[image_id].validate(width, height, source)
        for x, y in self.lookalikes.get(image_id, ()):
            Prompt.from_point(x, y).validate(width, height, f"{source} (lookalike)")


def resolve_views(views: ViewPrompts, sources: Sequence[str], ids: Sequence[str],
                  identity: Callable[[str], str]) -> ViewPrompts:
    """``views`` keyed by image id, from keys naming images as the user did.

    A key names the image whose id, source, file name or identity (``identity``: a real
    path, an ``s3://`` URL) it equals; ``sources[0]``/``ids[0]`` is the reference.

    Raises:
        PromptError: a key names no image, several, or the reference.
    """

    def which(key: str) -> str:
        hits = [i for i, src in zip(ids, sources, strict=True)
                if key in (i, src, src.rsplit("/", 1)[-1]) or identity(key) == identity(src)]
        hits = list(dict.fromkeys(hits))
        if not hits:
            raise PromptError(f"view {key!r} is not one of the images; name it by its path, "
                              "file name or image id")
        if len(hits) > 1:
            raise PromptError(f"view {key!r} names {len(hits)} images ({', '.join(hits)}); "
                              "give its path")
        if hits[0] == ids[0]:
            raise PromptError(f"view {key!r} is the reference image; give its clicks with "
                              "--ref-point, --ref-neg-point, --ref-bbox and "
                              "--distractor-point X,Y")
        return hits[0]

    references: dict[str, Prompt] = {}
    for key, prompt in views.references.items():
        name = which(key)
        old = references.get(name)
        references[name] = prompt if old is None else _joined(old, prompt, name)
    lookalikes: dict[str, tuple[Point, ...]] = {}
    for key, points in views.lookalikes.items():
        name = which(key)
        lookalikes[name] = (*lookalikes.get(name, ()), *points)
    resolved = ViewPrompts(references, frozenset(which(k) for k in views.no_match), lookalikes)
    resolved.check(ids[1:])
    return resolved


def _joined(a: Prompt, b: Prompt, view: str) -> Prompt:
    if a.box is not None and b.box is not None:
        raise PromptError(f"view {view!r} has two boxes; give one")
    return Prompt(a.points + b.points, a.labels + b.labels, a.box or b.box)


def reference_view_result(pipeline: ProductSegmentationPipeline, image: np.ndarray,
                          prompt: Prompt, image_id: str, source: str) -> ImageResult:
    """A view that is a reference: its prompt's mask as its one match (score 1).

    Raises:
        PromptError: the prompt is outside the image or yields an empty mask.
    """
    found = pipeline.segment_reference(image, prompt, image_id, source)
    h, w = image.shape[:2]
    result = ImageResult(image_id=image_id, source=source, width=w, height=h)
    result.found_by = "reference"
    result.matches = [Match(mask=found.mask, bbox=mask_to_box(found.mask), score=1.0,
                            embedding=found.embedding)]
    return result


def not_here_result(image_id: str, source: str, width: int, height: int) -> ImageResult:
    """A view marked "not the product here": no match, whatever it shows."""
    result = ImageResult(image_id=image_id, source=source, width=width, height=height)
    result.found_by = "not here"
    return result


def prompted_view(pipeline: ProductSegmentationPipeline, views: ViewPrompts, image_id: str,
                  source: str, load: Callable[[], np.ndarray]
                  ) -> tuple[ImageResult | None, np.ndarray, np.ndarray | None,
                             np.ndarray | None] | None:
    """What a view the job prompts contributes; None for a view it does not name.

    Returns:
        ``(result, pixels, embedding, lookalikes)``: the view's result when it is a
        reference (its prompt's mask) or not the product (no match), else None; its
        ``(H, W, 3)`` pixels; its ``(D,)`` embedding when it is a reference; its
        lookalikes' ``(M, D)`` embeddings, if it has any.

    Raises:
        InputError: the view cannot be read, or its prompt or lookalikes are unusable.
    """
    named = (image_id in views.references or image_id in views.no_match
             or image_id in views.lookalikes)
    if not named:
        return None
    pixels = load()
    views.validate(image_id, pixels.shape[1], pixels.shape[0], source)
    lookalikes = view_negatives(pipeline, pixels, views.lookalikes.get(image_id, ()), source)
    result: ImageResult | None = None
    embedding = None
    if image_id in views.references:
        result = reference_view_result(pipeline, pixels, views.references[image_id],
                                       image_id, source)
        embedding = result.matches[0].embedding
    elif image_id in views.no_match:
        result = not_here_result(image_id, source, pixels.shape[1], pixels.shape[0])
    return result, pixels, embedding, lookalikes


def view_negatives(pipeline: ProductSegmentationPipeline, image: np.ndarray,
                   points: Sequence[Point], source: str) -> np.ndarray | None:
    """``(M, D)`` embeddings of the lookalikes clicked on one view, or None."""
    return pipeline.embed_distractors(image, list(points), source)
