"""A proposed prompt: JSON round trip, its prompt, and what is flagged."""

from __future__ import annotations

import json

import pytest

from prodseg.prompts import Prompt
from prodseg.proposed import CONFIDENT, ProposedPrompt


def test_json_round_trip_and_prompt() -> None:
    proposed = ProposedPrompt("view_003", (12.5, 40.0), (2.0, 3.0, 30.0, 80.0), 0.82,
                              "high: the same object in 11 of 11 other views")
    doc = json.loads(json.dumps(proposed.to_json()))
    assert doc == {"reference": "view_003", "point": [12.5, 40.0],
                   "box": [2.0, 3.0, 30.0, 80.0], "confidence": 0.82,
                   "why": "high: the same object in 11 of 11 other views"}
    assert ProposedPrompt.from_json(doc) == proposed
    assert proposed.prompt() == Prompt(((12.5, 40.0),), (1,), (2.0, 3.0, 30.0, 80.0))
    point_only = ProposedPrompt("a.jpg", (1.0, 2.0), None, 0.1, "low: not in every view")
    assert point_only.prompt() == Prompt.from_point(1.0, 2.0)
    assert ProposedPrompt.from_json(point_only.to_json()) == point_only


def test_low_confidence_is_flagged() -> None:
    def at(confidence: float) -> ProposedPrompt:
        return ProposedPrompt("v", (1.0, 1.0), None, confidence, "")

    assert at(CONFIDENT - 0.01).flagged and not at(CONFIDENT).flagged and not at(1.0).flagged


@pytest.mark.parametrize(("point", "box", "confidence", "message"), [
    (None, None, 0.5, "needs a point or a box"),
    ((1.0, 1.0), None, 1.2, "not in"),
    ((1.0, 1.0), None, float("nan"), "not in"),
])
def test_invalid_proposals_are_refused(point: tuple[float, float] | None,
                                       box: tuple[float, float, float, float] | None,
                                       confidence: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ProposedPrompt("v", point, box, confidence, "")
