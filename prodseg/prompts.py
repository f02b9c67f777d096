"""The reference prompt: the click(s) or the box that say which product is meant."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from prodseg.errors import PromptError

MAX_CANDIDATES = 3  # SAM2's multimask output: subpart, part, whole


@dataclass(frozen=True)
class Prompt:
    """Positive/negative points and/or a box, in original image pixels.

    Attributes:
        points: ``(x, y)`` pairs, pixel coordinates (x right, y down).
        labels: one per point: 1 for "this is the product", 0 for "not the product".
        box: ``(x0, y0, x1, y1)`` or None.
        candidate: which of the segmenter's candidate masks to take, by area, 0 the
            smallest (SAM2 gives three: subpart, part, whole); None takes the one with
            the best predicted IoU.
    """

    points: tuple[tuple[float, float], ...] = field(default_factory=tuple)
    labels: tuple[int, ...] = field(default_factory=tuple)
    box: tuple[float, float, float, float] | None = None
    candidate: int | None = None

    def __post_init__(self) -> None:
        numbers = [v for point in self.points for v in point] + list(self.box or ())
        if not all(isinstance(v, int | float) and math.isfinite(v) for v in numbers):
            shown = ", ".join(f"{v:g}" if isinstance(v, int | float) else repr(v)
                              for v in numbers)
            raise PromptError(f"every number of a prompt must be finite, got {shown}")

    @classmethod
    def from_point(cls, x: float, y: float) -> Prompt:
        """One positive click."""
        return cls(points=((float(x), float(y)),), labels=(1,))

    @classmethod
    def from_box(cls, x0: float, y0: float, x1: float, y1: float) -> Prompt:
        """A box around the product."""
        return cls(box=(float(x0), float(y0), float(x1), float(y1)))

    def validate(self, width: int, height: int, source: str = "reference image") -> None:
        """Raise ``PromptError`` unless the prompt describes a region of a W x H image.

        Args:
            width: image width in pixels.
            height: image height in pixels.
            source: image name used in the message.
        """
        if not self.points and self.box is None:
            raise PromptError(f"{source}: give a point or a box to say which product is meant")
        if len(self.points) != len(self.labels):
            raise PromptError(f"{source}: {len(self.points)} points but {len(self.labels)} labels")
        for label in self.labels:
            if label not in (0, 1):
                raise PromptError(f"{source}: point label must be 0 or 1, got {label}")
        if self.candidate is not None and not 0 <= self.candidate < MAX_CANDIDATES:
            raise PromptError(f"{source}: candidate {self.candidate} is not one of SAM2's "
                              f"{MAX_CANDIDATES} masks (0: the smallest .. "
                              f"{MAX_CANDIDATES - 1}: the largest)")
        if self.points and 1 not in self.labels and self.box is None:
            raise PromptError(f"{source}: at least one point must be positive (label 1)")
        for x, y in self.points:
            if not (0 <= x < width and 0 <= y < height):
                raise PromptError(
                    f"{source}: point ({x:g}, {y:g}) is outside the image, "
                    f"which is {width}x{height} (x in [0, {width}), y in [0, {height}))"
                )
        if self.box is not None:
            x0, y0, x1, y1 = self.box
            if x1 <= x0 or y1 <= y0:
                raise PromptError(
                    f"{source}: box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) is inverted or has zero "
                    "area; write it as X0,Y0,X1,Y1 with X1 > X0 and Y1 > Y0"
                )
            if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
                raise PromptError(
                    f"{source}: box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) lies outside the image, "
                    f"which is {width}x{height}"
                )

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Prompt:
        """The inverse of ``to_json``."""
        box = doc.get("box")
        candidate = doc.get("candidate")
        return cls(
            points=tuple((float(x), float(y)) for x, y in doc.get("points") or []),
            labels=tuple(int(v) for v in doc.get("labels") or []),
            box=(float(box[0]), float(box[1]), float(box[2]), float(box[3])) if box else None,
            candidate=int(candidate) if candidate is not None else None,
        )

    def to_json(self) -> dict[str, object]:
        """JSON-ready form, as stored in ``results.json`` (``candidate`` only when set)."""
        doc: dict[str, object] = {
            "points": [list(p) for p in self.points],
            "labels": list(self.labels),
            "box": list(self.box) if self.box is not None else None,
        }
        if self.candidate is not None:
            doc["candidate"] = self.candidate
        return doc
