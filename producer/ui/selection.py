"""The prompt being chosen in ``prodseg select``, and the command line it stands for.

``PromptEditor`` holds the points, the box, the undo history and which photo is the
reference; it needs no window. ``command_line`` turns a confirmed ``Selection`` into the
equivalent ``prodseg run`` / ``prodseg submit`` command, so a selection can be repeated
in a script.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from prodseg.errors import PromptError
from prodseg.prompts import Prompt

Box = tuple[float, float, float, float]


class MaskPreview(Protocol):
    """What a preview returns; ``prodseg.workers.segment.protocol.SegmentedMask`` fits."""

    @property
    def mask(self) -> np.ndarray:
        """``(H, W)`` bool: the product's pixels."""

    @property
    def score(self) -> float:
        """Quality estimate in [0, 1]."""


PreviewFunction = Callable[[Path, np.ndarray, Prompt], MaskPreview]
ImageLoader = Callable[[Path], np.ndarray]


@dataclass(frozen=True)
class Selection:
    """The confirmed reference.

    Attributes:
        image: the reference photo's path, as given to ``Selector``.
        prompt: points and/or box in that photo's pixels.
        mask: ``(H, W)`` bool preview mask; None when the preview failed.
        score: the preview's quality estimate; None when the preview failed.
        distractors: clicks on lookalikes that are not the product, in the same photo.
    """

    image: Path
    prompt: Prompt
    mask: np.ndarray | None
    score: float | None
    distractors: tuple[tuple[float, float], ...] = ()


class PromptEditor:
    """The prompt being built on photo ``index`` of ``image_count``, with undo.

    Coordinates are rounded to 0.1 px. Each ``add_point``/``set_box`` can be undone,
    newest first; moving to another photo clears the prompt and its history. ``candidate``
    is which of the segmenter's masks for the prompt is wanted, by area (None: its best);
    it stays while points are added and is cleared with the photo.

    Args:
        image_count: how many photos there are (>= 1).
        start: index of the photo shown first.
    """

    def __init__(self, image_count: int, start: int = 0) -> None:
        if image_count < 1:
            raise ValueError("PromptEditor needs at least one image")
        if not 0 <= start < image_count:
            raise IndexError(f"start index {start} is not in [0, {image_count})")
        self.image_count, self.index = image_count, start
        self.points: list[tuple[float, float]] = []
        self.labels: list[int] = []  # 1: the product, 0: not the product
        self.box: Box | None = None
        self.distractors: list[tuple[float, float]] = []  # lookalikes: "not this product"
        self.candidate: int | None = None  # which mask by area, 0 the smallest; None: best
        # "point", "distractor", or the box a new box replaced
        self._history: list[Box | str | None] = []

    def add_point(self, x: float, y: float, positive: bool = True) -> None:
        """Add a click on the product (``positive``) or on what is not the product."""
        self.points.append((round(float(x), 1), round(float(y), 1)))
        self.labels.append(1 if positive else 0)
        self._history.append("point")

    def add_distractor(self, x: float, y: float) -> None:
        """Add a click on a lookalike: another product that is not the one meant."""
        self.distractors.append((round(float(x), 1), round(float(y), 1)))
        self._history.append("distractor")

    def set_box(self, x0: float, y0: float, x1: float, y1: float) -> bool:
        """Set the box from two opposite corners in any order, replacing an earlier box.

        Returns:
            False, changing nothing, when the box has no area after rounding.
        """
        left, right = sorted((round(float(x0), 1), round(float(x1), 1)))
        top, bottom = sorted((round(float(y0), 1), round(float(y1), 1)))
        if right <= left or bottom <= top:
            return False
        self._history.append(self.box)
        self.box = (left, top, right, bottom)
        return True

    def next_candidate(self, shown: int | None, count: int) -> int:
        """Ask for the next larger of ``count`` candidate masks after the one ``shown``
        (wrapping to the smallest); returns the one asked for."""
        current = shown if shown is not None else (self.candidate or 0)
        self.candidate = (current + 1) % max(count, 1)
        return self.candidate

    def undo(self) -> bool:
        """Take back the newest point or box; False when there is nothing to undo."""
        if not self._history:
            return False
        action = self._history.pop()
        if action == "point":
            self.points.pop()
            self.labels.pop()
        elif action == "distractor":
            self.distractors.pop()
        else:
            self.box = action if isinstance(action, tuple) else None
        return True

    def go_to(self, index: int) -> bool:
        """Move to photo ``index`` with an empty prompt; False when already there."""
        if not 0 <= index < self.image_count:
            raise IndexError(f"image index {index} is not in [0, {self.image_count})")
        if index == self.index:
            return False
        self.index, self.box, self.candidate = index, None, None
        self.points.clear()
        self.labels.clear()
        self.distractors.clear()
        self._history.clear()
        return True

    def step(self, delta: int) -> bool:
        """Move ``delta`` photos on, stopping at the ends; False when it did not move."""
        return self.go_to(min(max(self.index + delta, 0), self.image_count - 1))

    @property
    def prompt(self) -> Prompt | None:
        """The prompt so far; None before the first click."""
        if not self.points and self.box is None:
            return None
        return Prompt(points=tuple(self.points), labels=tuple(self.labels), box=self.box,
                      candidate=self.candidate)

    def problem(self, width: int, height: int, source: str = "reference image") -> str | None:
        """Why the prompt is not usable on a ``width`` x ``height`` photo; None if it is."""
        prompt = self.prompt
        if prompt is None:
            return "click on the product (or drag a box around it)"
        try:
            prompt.validate(width, height, source)
        except PromptError as error:
            return str(error)
        return None


def command_line(selection: Selection, images: Sequence[str], output: str | None,
                 submit: bool = False, extra: Sequence[str] = ()) -> str:
    """The shell command that runs (or submits) the job this selection describes.

    Args:
        selection: the confirmed reference and prompt.
        images: the ``--images`` arguments (files, directories or patterns).
        output: the ``--output`` directory: required for ``run``, None for ``submit``.
        submit: ``prodseg submit`` instead of ``prodseg run``.
        extra: arguments appended as they are (e.g. ``["--backend", "classic"]``).

    Returns:
        One line, each argument quoted for a POSIX shell where needed. Lookalike clicks
        become ``--distractor-point``, for ``run`` and ``submit`` alike.

    Raises:
        ValueError: ``output`` is missing for ``run`` or given for ``submit``.
    """
    if submit and output is not None:
        raise ValueError("prodseg submit takes no --output (fetch the job instead)")
    if not submit and output is None:
        raise ValueError("prodseg run needs an --output directory")
    prompt = selection.prompt
    argv = ["prodseg", "submit" if submit else "run",
            "--images", *(_path_argument(p) for p in images),
            "--reference", _path_argument(str(selection.image))]
    for wanted, flag in ((1, "--ref-point"), (0, "--ref-neg-point")):
        for (x, y), label in zip(prompt.points, prompt.labels, strict=True):
            if label == wanted:
                argv += [flag, f"{format_number(x)},{format_number(y)}"]
    if prompt.box is not None:
        argv += ["--ref-bbox", ",".join(format_number(v) for v in prompt.box)]
    if prompt.candidate is not None:
        argv += ["--ref-candidate", str(prompt.candidate)]
    if output is not None:
        argv += ["--output", _path_argument(output)]
    for x, y in selection.distractors:
        argv += ["--distractor-point", f"{format_number(x)},{format_number(y)}"]
    return shlex.join([*argv, *extra])


def format_number(value: float) -> str:
    """``value`` rounded to 0.1 without needless decimals: ``120.0 -> "120"``."""
    text = f"{round(float(value), 1):.1f}".removesuffix(".0")
    return "0" if text == "-0" else text


def _path_argument(path: str) -> str:
    """A path that argparse cannot take for an option (``-x.jpg`` -> ``./-x.jpg``)."""
    return f"./{path}" if path.startswith("-") else path
