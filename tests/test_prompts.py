"""Reference prompts are checked before any heavy work starts."""

from __future__ import annotations

import pytest

from prodseg.errors import PromptError
from prodseg.prompts import Prompt
from tests.outcomes import record


def test_valid_prompts_pass() -> None:
    Prompt.from_point(10, 20).validate(100, 50)
    Prompt.from_box(0, 0, 100, 50).validate(100, 50)
    Prompt(points=((1, 1), (5, 5)), labels=(1, 0), box=(0, 0, 10, 10)).validate(100, 50)


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
