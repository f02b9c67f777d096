"""A proposed prompt: the reference view and the click chosen for a product, not by a person.

A catalog row says where its prompt came from (``prompt_source``): ``clicked`` (typed or
clicked by a person, the default for a row with a point or a box), ``proposed`` (chosen by
``workers.plan.propose``, at run time or by ``prodseg catalog prepare``, and used as is)
or ``confirmed`` (proposed, then accepted or corrected by a person). A proposal carries a
confidence in [0, 1]; below ``CONFIDENT`` it is flagged for review.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from prodseg.prompts import Prompt

PromptSource = Literal["clicked", "proposed", "confirmed"]
PROMPT_SOURCES: Final[tuple[PromptSource, ...]] = ("clicked", "proposed", "confirmed")
CONFIDENT: Final = 0.5
"""A proposal with a lower confidence is flagged: the review report lists its product."""


@dataclass(frozen=True)
class ProposedPrompt:
    """The prompt proposed for one product.

    Attributes:
        reference: the reference view: its image id within the product's views, or its
            location (a local path or an ``s3://`` URL) where the caller gave locations.
        point: ``(x, y)`` in the reference's pixels, or None.
        box: ``(x0, y0, x1, y1)`` in the reference's pixels, or None.
        confidence: in [0, 1]; whether the object is the same across the views (by its
            FFA embedding), at a plausible size, and not the background.
        why: a short reason, ``high: ...`` or ``low: ...`` (e.g. ``low: not in every
            view``).
    """

    reference: str
    point: tuple[float, float] | None
    box: tuple[float, float, float, float] | None
    confidence: float
    why: str

    def __post_init__(self) -> None:
        if self.point is None and self.box is None:
            raise ValueError("a proposed prompt needs a point or a box")
        if not (math.isfinite(self.confidence) and 0.0 <= self.confidence <= 1.0):
            raise ValueError(f"confidence {self.confidence!r} is not in [0, 1]")

    @property
    def flagged(self) -> bool:
        """Whether the proposal is too unsure to use without a look (``CONFIDENT``)."""
        return self.confidence < CONFIDENT

    def prompt(self) -> Prompt:
        """The proposal as a reference prompt: a positive click and/or a box."""
        points = (self.point,) if self.point is not None else ()
        return Prompt(points, (1,) * len(points), self.box)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form: ``{"reference", "point", "box", "confidence", "why"}``."""
        return {"reference": self.reference,
                "point": None if self.point is None else list(self.point),
                "box": None if self.box is None else list(self.box),
                "confidence": self.confidence, "why": self.why}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ProposedPrompt:
        """The inverse of ``to_json``."""
        point, box = doc.get("point"), doc.get("box")
        return cls(str(doc["reference"]),
                   None if point is None else (float(point[0]), float(point[1])),
                   None if box is None else (float(box[0]), float(box[1]), float(box[2]),
                                             float(box[3])),
                   float(doc["confidence"]), str(doc["why"]))
