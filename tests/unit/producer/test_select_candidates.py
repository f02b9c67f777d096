"""``prodseg select``: ``c`` cycles through the segmenter's masks for the prompt (SAM2's
three: subpart, part, whole), and the choice travels as ``--ref-candidate``."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from prodseg.producer.cli.prompt_flags import prompt_from_args
from prodseg.producer.ui.preview import PreviewMask
from prodseg.producer.ui.select import Selector
from prodseg.producer.ui.selection import PromptEditor, command_line
from prodseg.prompts import Prompt
from tests.unit.producer.test_select import click, parse, photos, press_key  # noqa: F401

SIDES = (4, 10, 24)  # three nested squares around the click, smallest first


class NestedPreview:
    """Three nested squares around the first point; the best-scoring is the middle one,
    ``prompt.candidate`` picks another by area."""

    def __init__(self) -> None:
        self.prompts: list[Prompt] = []

    def __call__(self, path: Path, image: np.ndarray, prompt: Prompt) -> PreviewMask:
        self.prompts.append(prompt)
        x, y = (int(v) for v in prompt.points[0])
        k = 1 if prompt.candidate is None else prompt.candidate
        side = SIDES[k]
        mask = np.zeros(image.shape[:2], dtype=bool)
        mask[max(0, y - side):y + side, max(0, x - side):x + side] = True
        areas = tuple((2 * s) ** 2 for s in SIDES)
        return PreviewMask(mask, 0.9, 0.01, areas, k)


def test_the_editor_asks_for_the_next_larger_mask_and_wraps() -> None:
    editor = PromptEditor(image_count=2)
    editor.add_point(10, 10)
    assert editor.next_candidate(shown=1, count=3) == 2
    assert editor.prompt is not None and editor.prompt.candidate == 2
    assert editor.next_candidate(shown=2, count=3) == 0
    editor.add_point(20, 20)  # the choice of size stays while the prompt grows
    assert editor.prompt.candidate == 0
    editor.go_to(1)
    assert editor.candidate is None


def test_c_cycles_the_masks_and_enter_runs_the_chosen_one(photos: list[Path]) -> None:  # noqa: F811
    preview = NestedPreview()
    selector = Selector(photos, preview)
    try:
        click(selector, 60, 50)
        assert preview.prompts[-1].candidate is None
        assert "mask 2 of 3 by size (64 / 400 / 2,304 px; c: next)" in selector.status_text
        press_key(selector, "c")
        assert preview.prompts[-1].candidate == 2
        assert "mask 3 of 3" in selector.status_text
        press_key(selector, "enter")
        selection = selector.result
        assert selection is not None and selection.mask is not None
        assert int(selection.mask.sum()) == 48 * 48
        command = command_line(selection, ["a.jpg"], "out")
        assert "--ref-candidate 2" in command
        assert prompt_from_args(parse(command)).candidate == 2
    finally:
        plt.close(selector.figure)


def test_without_candidates_c_asks_the_segmenter_for_the_next_of_three(
        photos: list[Path]) -> None:  # noqa: F811
    calls: list[Prompt] = []

    def plain(path: Path, image: np.ndarray, prompt: Prompt) -> PreviewMask:
        calls.append(prompt)
        return PreviewMask(np.ones(image.shape[:2], dtype=bool), 0.8, 0.01)

    selector = Selector(photos, plain)
    try:
        click(selector, 60, 50)
        assert "by size" not in selector.status_text
        press_key(selector, "c")
        press_key(selector, "c")
        assert [p.candidate for p in calls] == [None, 1, 2]
    finally:
        plt.close(selector.figure)
