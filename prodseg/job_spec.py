"""A job spec: what one job is, built from the user's inputs and checked in one place.

``prodseg run`` (``ProductSegmentationPipeline.run``), ``prodseg submit`` and catalogs
(``JobClient.prepare``) all call ``build_job_spec``: the targets are the images less the
reference and less repeats, each gets its id, the prompts on other views are keyed by
those ids, and every prompt is checked against its decoded image, before any model is
built or anything is uploaded.

A job may carry, besides the reference's prompt, per target view (``ViewPrompts``):

- a prompt (points, negative points, a box): the view is segmented from it, its match is
  that mask (``found_by: "reference"``, score 1), and its embedding joins the prototype
  bank as a fixed reference, so every other view is scored against all the references;
- "not the product here": the view is forced to no match (``found_by: "not here"``);
- lookalike clicks: each is segmented and embedded as a negative, as lookalikes on the
  reference are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from prodseg.errors import InputError, PromptError
from prodseg.prompts import Prompt
from prodseg.storage.layout import make_image_ids, once_each
from prodseg.storage.video import VideoCapture

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


@dataclass(frozen=True)
class JobSpec:
    """One job, as the user asked for it, checked.

    Attributes:
        reference: the image the prompt refers to, as the user named it.
        targets: the images to search, the reference and repeats left out, in order.
        ids: the image ids, the reference's first, then one per target.
        prompt: the click(s) or box on the reference, in its pixels; None to have it
            proposed when the job runs (``workers.plan.propose``).
        distractors: clicks on lookalikes on the reference, in its pixels.
        views: prompts on target views, keyed by image id.
        video: the video the images are frames of (``workers.capture.video_frames``),
            or None for stills.
    """

    reference: str
    targets: tuple[str, ...]
    ids: tuple[str, ...]
    prompt: Prompt | None
    distractors: tuple[Point, ...] = ()
    views: ViewPrompts = field(default_factory=ViewPrompts)
    video: VideoCapture | None = None


def build_job_spec(images: Sequence[str], reference: str, prompt: Prompt | None, *,
                   identity: Callable[[str], str], decode: Callable[[str], np.ndarray],
                   distractors: Sequence[Point] = (), views: ViewPrompts | None = None,
                   exists: Callable[[str], bool] | None = None) -> JobSpec:
    """The job these inputs describe, every prompt checked against its decoded image.

    Args:
        images: the capture's images (the reference may be among them).
        reference: the image the prompt refers to.
        prompt: the click(s) or box on the reference; None to propose it when it runs.
        identity: what makes two names one image (a real path, an ``s3://`` URL).
        decode: an image's ``(H, W, 3)`` uint8 pixels; raises ``InputError`` naming it.
            Called for the reference and for each view with a prompt or lookalikes.
        distractors: clicks on lookalikes on the reference.
        views: prompts on target views, keyed as the user named the images.
        exists: when given, every image must pass it (else ``InputError``, "file not
            found") before anything else is read.

    Raises:
        InputError: no images, a missing or unreadable image, a bad prompt or view.
    """
    if not images:
        raise InputError("no images given: pass at least one image to search")
    ref_key = identity(reference)
    targets = once_each([s for s in images if identity(s) != ref_key], identity)
    if exists is not None:
        missing = [s for s in [reference, *targets] if not exists(s)]
        if missing:
            raise InputError(f"{missing[0]}: file not found")
    ids = make_image_ids([reference, *targets])
    named = resolve_views(views or ViewPrompts(), [reference, *targets], ids, identity)
    ref_image = decode(reference)
    height, width = ref_image.shape[:2]
    if prompt is not None:
        prompt.validate(width, height, reference)
    for x, y in distractors:
        Prompt.from_point(x, y).validate(width, height, f"{reference} (lookalike)")
    for image_id, source in zip(ids[1:], targets, strict=True):
        if image_id in named.references or image_id in named.lookalikes:
            pixels = decode(source)
            named.validate(image_id, pixels.shape[1], pixels.shape[0], source)
    return JobSpec(reference, tuple(targets), tuple(ids), prompt,
                   tuple((float(x), float(y)) for x, y in distractors), named)
