"""``prodseg select``: click the product on one photo, see SAM2's mask, confirm.

``Selector`` draws the window, turns mouse and key events into calls of
``prodseg.producer.ui.selection.PromptEditor`` (the prompt being built, with undo) and previews the
mask after each change. ``prodseg.producer.ui.selection.command_line`` turns the confirmed
``Selection`` into the equivalent ``prodseg run``/``submit`` command.
CLI entry point: ``Selector(images, preview).run()`` (None when cancelled).

Coordinates are original image pixels as SAM2 reads them: the centre of the pixel in
column ``i``, row ``j`` is ``(i, j)`` (matplotlib's default ``imshow`` extent, so an
event's ``xdata``/``ydata`` is such a coordinate). Clicks are clamped at 0, box corners
onto ``[0, W] x [0, H]``, which ``Prompt.validate`` accepts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from prodseg.producer.ui.canvas import (
    add_rectangle,
    candidates_note,
    draw_prompt,
    draw_thumbnail,
    mask_overlay,
    prepare_canvas,
    thumbnail,
)
from prodseg.producer.ui.selection import (
    ImageLoader,
    MaskPreview,
    PreviewFunction,
    PromptEditor,
    Selection,
)
from prodseg.prompts import MAX_CANDIDATES, Prompt
from prodseg.storage.images import read_image_file

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.backend_bases import KeyEvent, MouseEvent
    from matplotlib.figure import Figure

DRAG_THRESHOLD_PX = 5.0  # press and release farther apart (display pixels) draw a box
MAX_THUMBNAILS = 12
HELP = ("left click: product   right click: not the product   drag: box   "
        "shift+click or middle click: a lookalike   c: next mask (part/whole)   u: undo   "
        "\u2190/\u2192 or thumbnail: other photo   Enter: confirm   Esc: cancel")



class Selector:
    """A window to choose the reference photo and click the product on it.

    Args:
        images: the photos to choose from (at least one).
        preview: ``preview(path, image, prompt)`` segments ``image`` (``(H, W, 3)`` uint8
            RGB) for a valid prompt; called after every change to the prompt.
        start: index of the photo shown first.
        figure: draw into this figure instead of a new pyplot one (tests, embedding).
        loader: path to ``(H, W, 3)`` uint8 RGB (default: ``read_image_file``, EXIF-aware).
        on_done: called with the ``Selection`` (None when cancelled) when it is known.

    Attributes:
        editor: the prompt state.
        done: whether the user has confirmed or cancelled.
        result: the confirmed ``Selection``; None before that and after a cancel.
        main_axes: the axes showing the current photo.
        thumbnail_axes: the strip of thumbnails under it, left to right.
    """

    def __init__(self, images: Sequence[Path], preview: PreviewFunction, start: int = 0,
                 figure: Figure | None = None, loader: ImageLoader = read_image_file,
                 on_done: Callable[[Selection | None], None] | None = None) -> None:
        self.images = [Path(p) for p in images]
        if not self.images:
            raise ValueError("Selector needs at least one image")
        self.editor = PromptEditor(len(self.images), start)
        self.done = False
        self.result: Selection | None = None
        self._preview, self._loader, self._on_done = preview, loader, on_done
        self._image: np.ndarray | None = None  # the current photo; None if unreadable
        self._preview_result: MaskPreview | None = None
        self._thumbnails: dict[int, np.ndarray | None] = {}
        self._press: tuple[float, float, float, float] | None = None  # display x, y; image x, y
        self._prompt_artists: list[Artist] = []  # markers, box and mask overlay
        self._drag_artist: Artist | None = None
        if figure is None:
            import matplotlib.pyplot as plt

            figure = plt.figure(figsize=(11, 8.5))
        self.figure = figure
        self._build_layout()
        self._show_image()

    def run(self, block: bool = True) -> Selection | None:
        """Show the window; with ``block``, wait until it is confirmed or cancelled.

        Returns:
            The ``Selection``; None when cancelled (or, without ``block``, not done yet).
        """
        import matplotlib.pyplot as plt

        plt.show(block=block)
        if block and not self.done:  # the window went away without a close event
            self._finish(None)
        return self.result

    def confirm(self) -> bool:
        """Accept the prompt (as Enter does); False, with the reason shown, if not valid."""
        path = self.images[self.editor.index]
        if self._image is None:
            self._status.set_text(f"{path.name} could not be read; choose another photo")
            return False
        height, width = self._image.shape[:2]
        problem, prompt = self.editor.problem(width, height, path.name), self.editor.prompt
        if problem is not None or prompt is None:
            self._status.set_text(f"cannot confirm: {problem}")
            return False
        shown = self._preview_result
        self._finish(Selection(
            image=path, prompt=prompt,
            mask=None if shown is None else np.asarray(shown.mask, dtype=bool),
            score=None if shown is None else float(shown.score),
            distractors=tuple(self.editor.distractors)))
        return True

    def next_candidate(self) -> None:
        """Show the segmenter's next larger mask for the prompt (as ``c`` does): SAM2
        gives three, from a part to the whole product; after the largest, the smallest."""
        shown = self._preview_result
        if shown is None:
            return
        areas = tuple(getattr(shown, "candidate_areas", ()))
        self.editor.next_candidate(getattr(shown, "candidate", None),
                                   len(areas) or MAX_CANDIDATES)
        self._prompt_changed()

    def cancel(self) -> None:
        """Give up without a selection (as Esc and closing the window do)."""
        self._finish(None)

    @property
    def status_text(self) -> str:
        """The line under the photo: mask score, preview errors or what is missing."""
        return str(self._status.get_text())

    @property
    def title_text(self) -> str:
        """The photo's title: file name and position."""
        return str(self.main_axes.get_title())

    def _build_layout(self) -> None:
        fig = self.figure
        fig.text(0.5, 0.985, HELP, ha="center", va="top", fontsize=9)
        self.main_axes = fig.add_axes((0.03, 0.25, 0.94, 0.68))
        self._status = fig.text(0.5, 0.215, "", ha="center", va="top", fontsize=10)
        slots = min(len(self.images), MAX_THUMBNAILS)
        width = 0.94 / slots
        self.thumbnail_axes = [fig.add_axes((0.034 + k * width, 0.02, width - 0.008, 0.15))
                               for k in range(slots)]
        prepare_canvas(fig, "prodseg select: click the product")
        fig.canvas.mpl_connect("button_press_event", self._on_press)
        fig.canvas.mpl_connect("motion_notify_event", self._on_motion)
        fig.canvas.mpl_connect("button_release_event", self._on_release)
        fig.canvas.mpl_connect("key_press_event", self._on_key)
        fig.canvas.mpl_connect("close_event", lambda _event: self._finish(None))

    def _show_image(self) -> None:
        """Load and draw the current photo with an empty prompt; redraw the thumbnails."""
        index = self.editor.index
        path = self.images[index]
        ax = self.main_axes
        ax.clear()
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{path.name}   ({index + 1} of {len(self.images)})")
        self._prompt_artists, self._drag_artist, self._press = [], None, None
        self._preview_result = None
        try:
            self._image = self._loader(path)
        except Exception as error:  # an unreadable photo must leave the window usable
            self._image = None
            self._status.set_text(f"cannot read {path.name}: {error}")
        if self._image is not None:
            height, width = self._image.shape[:2]
            ax.imshow(self._image)
            ax.set_autoscale_on(False)  # markers and boxes must not move the view
            self._status.set_text(self.editor.problem(width, height) or "")
        first = self._first_thumbnail()
        for slot, thumb_axes in enumerate(self.thumbnail_axes):
            self._draw_thumbnail(thumb_axes, first + slot)
        self.figure.canvas.draw_idle()

    def _draw_thumbnail(self, ax: Axes, index: int) -> None:
        if index not in self._thumbnails:
            try:
                image = self._loader(self.images[index])
            except Exception:  # shown as "unreadable"; the main view gives the reason
                self._thumbnails[index] = None
            else:
                self._thumbnails[index] = thumbnail(image)
        draw_thumbnail(ax, self._thumbnails[index], self.images[index].name,
                       index == self.editor.index)

    def _first_thumbnail(self) -> int:
        """Index of the photo in the first thumbnail slot (the strip follows the current)."""
        slots = len(self.thumbnail_axes)
        return min(max(self.editor.index - slots // 2, 0), len(self.images) - slots)

    def _prompt_changed(self) -> None:
        """Redraw points and box, run the preview and show its mask and score."""
        for artist in self._prompt_artists:
            artist.remove()
        self._prompt_artists, self._preview_result = [], None
        if self._image is None:
            return
        self._prompt_artists = draw_prompt(self.main_axes, self.editor.points,
                                           self.editor.labels, self.editor.distractors,
                                           self.editor.box)
        height, width = self._image.shape[:2]
        problem, prompt = self.editor.problem(width, height), self.editor.prompt
        if problem is None and prompt is not None:
            self._run_preview(self._image, prompt)
        else:
            self._status.set_text(problem or "")
        self.figure.canvas.draw_idle()

    def _run_preview(self, image: np.ndarray, prompt: Prompt) -> None:
        # The first preview may wait for models to load (or for a worker): say so.
        self._status.set_text("segmenting ...")
        self.figure.canvas.draw_idle()
        self.figure.canvas.flush_events()
        try:
            result = self._preview(self.images[self.editor.index], image, prompt)
            mask = np.asarray(result.mask, dtype=bool)
            if mask.shape != image.shape[:2]:
                raise ValueError(f"mask is {mask.shape}, the photo {image.shape[:2]}")
        except Exception as error:  # a failing segmenter must not close the window
            self._status.set_text(f"preview failed: {type(error).__name__}: {error}")
            return
        self._preview_result = result
        self._prompt_artists.append(self.main_axes.imshow(mask_overlay(mask), zorder=3))
        seconds = getattr(result, "seconds", None)  # prodseg.producer.ui.preview's masks are timed
        took = f", {seconds:.2f} s" if isinstance(seconds, float) else ""
        self._status.set_text(f"mask score {float(result.score):.3f}, {int(mask.sum())} px"
                              f"{took}{candidates_note(result)}   (Enter: confirm, u: undo)")

    def _on_press(self, event: MouseEvent) -> None:
        toolbar = self.figure.canvas.toolbar
        if self.done or (toolbar is not None and toolbar.mode):  # zoom/pan own the clicks
            return
        for slot, thumb_axes in enumerate(self.thumbnail_axes):
            if event.inaxes is thumb_axes:
                if event.button == 1 and self.editor.go_to(self._first_thumbnail() + slot):
                    self._show_image()
                return
        point = self._pixel(event, clamp=False)
        if point is None:
            return
        if event.button == 2 or (event.button == 1 and event.key == "shift"):
            self.editor.add_distractor(*point)
            self._prompt_changed()
        elif event.button == 3:
            self.editor.add_point(*point, positive=False)
            self._prompt_changed()
        elif event.button == 1:
            self._press = (event.x, event.y, *point)

    def _on_motion(self, event: MouseEvent) -> None:
        if self._press is None or not _is_drag(self._press, event):
            return
        if self._drag_artist is not None:
            self._drag_artist.remove()
        corner = self._pixel(event, clamp=True)
        assert corner is not None
        box = (*self._press[2:], *corner)
        self._drag_artist = add_rectangle(self.main_axes, box, "--")
        self.figure.canvas.draw_idle()

    def _on_release(self, event: MouseEvent) -> None:
        press, self._press = self._press, None
        if press is None:
            return
        if self._drag_artist is not None:
            self._drag_artist.remove()
            self._drag_artist = None
        corner = self._pixel(event, clamp=True)
        if not _is_drag(press, event) or corner is None:
            self.editor.add_point(press[2], press[3], positive=True)
        elif not self.editor.set_box(*press[2:], *corner):
            self.figure.canvas.draw_idle()  # a box without area: only the drag is erased
            return
        self._prompt_changed()

    def _on_key(self, event: KeyEvent) -> None:
        if self.done:
            return
        if event.key in ("u", "ctrl+z") and self.editor.undo():
            self._prompt_changed()
        elif event.key == "c" and self._preview_result is not None:
            self.next_candidate()
        elif event.key in ("left", "right") and self.editor.step(-1 if event.key == "left"
                                                                 else 1):
            self._show_image()
        elif event.key == "escape":
            self.cancel()
        elif event.key == "enter" and not self.confirm():
            self.figure.canvas.draw_idle()

    def _finish(self, selection: Selection | None) -> None:
        if self.done:
            return
        self.done, self.result = True, selection
        if self._on_done is not None:
            self._on_done(selection)
        import matplotlib.pyplot as plt

        plt.close(self.figure)  # lets a blocking plt.show() return; no-op if not pyplot's

    def _pixel(self, event: MouseEvent, clamp: bool) -> tuple[float, float] | None:
        """Image coordinates of the event; None when off the photo or none is readable.

        With ``clamp`` (box corners), a point off the photo is moved onto ``[0, W] x [0, H]``
        instead.
        """
        if self._image is None:
            return None
        height, width = self._image.shape[:2]
        x, y = (float(v) for v in self.main_axes.transData.inverted().transform(
            (event.x, event.y)))
        if clamp:
            return min(max(x, 0.0), float(width)), min(max(y, 0.0), float(height))
        if event.inaxes is not self.main_axes:
            return None
        if not (-0.5 <= x < width - 0.5 and -0.5 <= y < height - 0.5):
            return None
        return max(x, 0.0), max(y, 0.0)  # the first pixel's outer half counts as 0


def _is_drag(press: tuple[float, float, float, float], event: MouseEvent) -> bool:
    """Whether the pointer moved more than ``DRAG_THRESHOLD_PX`` since the press."""
    return math.hypot(event.x - press[0], event.y - press[1]) > DRAG_THRESHOLD_PX

