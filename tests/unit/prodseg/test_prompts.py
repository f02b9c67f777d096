"""Reference prompts are checked before any heavy work starts."""

from __future__ import annotations

import pytest

from prodseg.errors import PromptError
from prodseg.prompts import Prompt
from tests.support.outcomes import record


@pytest.mark.parametrize(
    ("inside", "outside"),
    [
        (Prompt.from_point(99.9, 49.9), Prompt.from_point(100, 49.9)),
        (Prompt.from_point(0, 0), Prompt.from_point(-0.1, 0)),
        (Prompt.from_box(99, 49, 150, 80), Prompt.from_box(100, 0, 150, 50)),
        (Prompt(points=((1, 1), (5, 5)), labels=(1, 0), box=(0, 0, 10, 10)),
         Prompt(points=((1, 1), (5, 50)), labels=(1, 0), box=(0, 0, 10, 10))),
    ],
)
def test_prompts_are_valid_up_to_the_image_edge(inside: Prompt, outside: Prompt) -> None:
    """Each pair is one step apart: the first passes, the second is refused (a box
    passes while it overlaps the image)."""
    inside.validate(100, 50)
    with pytest.raises(PromptError, match="outside the image"):
        outside.validate(100, 50)


@pytest.mark.parametrize(
    ("prompt", "words"),
    [
        (Prompt.from_point(100, 20), "outside the image"),
        (Prompt.from_point(-1, 20), "outside the image"),
        (Prompt.from_point(10, 50), "outside the image"),
        (Prompt.from_box(50, 10, 20, 40), "inverted or has zero area"),
        (Prompt.from_box(10, 10, 10, 40), "inverted or has zero area"),
        (Prompt.from_box(200, 100, 300, 200), "outside the image"),
        (Prompt(), "give a point or a box"),
        (Prompt(points=((1, 1),), labels=(0,)), "at least one point must be positive"),
        (Prompt(points=((1, 1),), labels=(2,)), "label must be 0 or 1"),
    ],
)
def test_bad_prompts_are_clear(prompt: Prompt, words: str) -> None:
    with pytest.raises(PromptError) as err:
        prompt.validate(100, 50, "ref.jpg")
    assert words in str(err.value)
    assert "ref.jpg" in str(err.value)
    if prompt in (Prompt.from_point(100, 20), Prompt.from_box(50, 10, 20, 40),
                  Prompt.from_box(10, 10, 10, 40)):
        what = "point outside the image" if prompt.points else "inverted or zero-area box"
        record("bad input", f"reference {what}: {prompt.box or prompt.points[0]}",
               str(err.value))


def test_json_form() -> None:
    p = Prompt(points=((1.0, 2.0),), labels=(1,), box=(0.0, 0.0, 5.0, 5.0))
    assert p.to_json() == {"points": [[1.0, 2.0]], "labels": [1], "box": [0.0, 0.0, 5.0, 5.0]}
    assert Prompt.from_json(p.to_json()) == p
    assert Prompt.from_json({"points": [[3, 4]], "labels": [1]}) == Prompt.from_point(3, 4)
