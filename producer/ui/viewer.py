"""``prodseg view DIR``: browse a finished job's results, one photo at a time.

``DIR`` is what ``prodseg run --output DIR`` writes or ``prodseg fetch JOB -o DIR``
downloads. ``load_job`` reads its ``results.json`` into ``ImageView`` records (no
matplotlib needed); ``ResultsViewer`` draws each photo with its matches' masks (one
colour per match), boxes and scores, the reference with its mask, and failed photos
with their error. CLI entry point: ``ResultsViewer(Path(DIR)).show()``.

The original photo is looked for at the ``source`` recorded in ``results.json`` (as
given, then relative to ``DIR``, then by file name in ``image_dirs``); a fetched job
usually has only ``thumbs/``, whose overlay thumbnail is then shown instead, with boxes
and scores drawn on top (its masks are already tinted in).
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np

from prodseg.errors import InputError
from prodseg.producer.ui.canvas import prepare_canvas
from prodseg.producer.ui.selection import ImageLoader
from prodseg.storage.exports.palette import match_colour
from prodseg.storage.images import read_image_file, read_mask_png
from prodseg.storage.layout import RESULTS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.backend_bases import KeyEvent
    from matplotlib.figure import Figure

HELP = "\u2190/\u2192 or p/n: previous/next   s: sort by best score / input order   q, Esc: close"
_OVERLAY_ALPHA = 115  # of 255: masks tinted ~45 %, as in the thumbnails


@dataclass(frozen=True)
class MatchView:
    """One match (or the reference's own mask) as ``results.json`` describes it.

    Attributes:
        bbox: ``(x0, y0, x1, y1)`` in original pixels, upper edges exclusive.
        score: similarity to the reference (for the reference: its mask quality).
        mask: the mask PNG inside the job directory; None when not named or outside it.
    """

    bbox: tuple[int, int, int, int]
    score: float
    mask: Path | None


@dataclass(frozen=True)
class ImageView:
    """One photo of the job.

    Attributes:
        name: the image id (file stem) used in the output keys.
        source: the photo's path or URL when the job ran.
        width: original width in pixels (0 for a photo that could not be read).
        height: original height in pixels.
        status: ``"reference"``, ``"ok"`` or ``"error"``.
        error: why the photo failed; None unless ``status`` is ``"error"``.
        matches: best first; for the reference, its own mask.
        thumbnail: the overlay thumbnail inside the job directory, if named.
    """

    name: str
    source: str
    width: int
    height: int
    status: str
    error: str | None
    matches: tuple[MatchView, ...]
    thumbnail: Path | None

    @property
    def best_score(self) -> float | None:
        """The best match's score; None without matches."""
        return self.matches[0].score if self.matches else None


def load_job(job_dir: Path) -> list[ImageView]:
    """The photos of a finished job: the reference first, then the targets in input order.

    Raises:
        InputError: ``job_dir/results.json`` is missing or not a prodseg results document.
    """
    path = Path(job_dir) / RESULTS
    if not path.is_file():
        raise InputError(f"{path}: no {RESULTS} here; give a directory written by "
                         "`prodseg run --output DIR` or `prodseg fetch JOB -o DIR`")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        reference = document["reference"]
        entries = [_image_view(job_dir, reference, "reference", [
            {"bbox": reference["bbox"], "score": reference["score"], "mask": reference["mask"]}
        ])]
        for item in document["images"]:
            entries.append(_image_view(job_dir, item, item["status"], item["matches"]))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError,
            ValueError) as error:
        raise InputError(f"{path}: not a readable prodseg results document "
                         f"({type(error).__name__}: {error})") from error
    return entries


def order_by_best_score(entries: Sequence[ImageView]) -> list[int]:
    """Indices of ``entries`` with the best matches first.

    The reference comes first, then matched photos by best score (highest first), then
    photos without a match, then failed ones; ties keep the input order.
    """

    def key(index: int) -> tuple[int, float, int]:
        entry = entries[index]
        best = entry.best_score
        if entry.status in ("reference", "ok"):
            rank = 0 if entry.status == "reference" else 1 if best is not None else 2
        else:
            rank = 3
        return rank, -(best or 0.0), index

    return sorted(range(len(entries)), key=key)


class ResultsViewer:
    """A window showing a job's photos one at a time with their matches.

    Args:
        job_dir: the job's output directory (holds ``results.json``).
        figure: draw into this figure instead of a new pyplot one (tests, embedding).
        loader: path to ``(H, W, 3)`` uint8 RGB (default: ``read_image_file``).
        image_dirs: more folders to look in for the original photos, by file name.

    Attributes:
        entries: every photo, in input order (reference first).
        by_score: whether the photos are browsed by best score instead of input order.
        position: where the shown photo is in the current order.
        closed: whether the window was closed with q or Esc.
        axes: the axes showing the photo.

    Raises:
        InputError: no readable ``results.json`` in ``job_dir``.
    """

    def __init__(self, job_dir: Path, figure: Figure | None = None,
                 loader: ImageLoader = read_image_file, image_dirs: Sequence[Path] = ()) -> None:
        self.job_dir = Path(job_dir)
        self.entries = load_job(self.job_dir)
        self.by_score = False
        self.position = 0
        self.closed = False
        self._loader = loader
        self._image_dirs = [Path(d) for d in image_dirs]
        if figure is None:
            import matplotlib.pyplot as plt

            figure = plt.figure(figsize=(11, 8.5))
        self.figure = figure
        figure.text(0.5, 0.985, HELP, ha="center", va="top", fontsize=9)
        self.axes = figure.add_axes((0.03, 0.1, 0.94, 0.82))
        self._info = figure.text(0.5, 0.075, "", ha="center", va="top", fontsize=10)
        prepare_canvas(figure, f"prodseg view {self.job_dir}")
        figure.canvas.mpl_connect("key_press_event", self._on_key)
        self._draw()

    def show(self, block: bool = True) -> None:
        """Show the window; with ``block``, return when it is closed."""
        import matplotlib.pyplot as plt

        plt.show(block=block)

    @property
    def order(self) -> list[int]:
        """Indices into ``entries`` in browsing order."""
        if self.by_score:
            return order_by_best_score(self.entries)
        return list(range(len(self.entries)))

    @property
    def current(self) -> ImageView:
        """The photo shown."""
        return self.entries[self.order[self.position]]

    @property
    def title_text(self) -> str:
        """The photo's title: name, position and order."""
        return str(self.axes.get_title())

    @property
    def info_text(self) -> str:
        """The line under the photo: scores, the error, or which pixels are shown."""
        return str(self._info.get_text())

    def step(self, delta: int) -> None:
        """Show the photo ``delta`` places on in the current order (stops at the ends)."""
        self.position = min(max(self.position + delta, 0), len(self.entries) - 1)
        self._draw()

    def toggle_sort(self) -> None:
        """Switch between input order and best score first, staying on the same photo."""
        shown = self.order[self.position]
        self.by_score = not self.by_score
        self.position = self.order.index(shown)
        self._draw()

    def close(self) -> None:
        """Close the window."""
        import matplotlib.pyplot as plt

        self.closed = True
        plt.close(self.figure)

    def _on_key(self, event: KeyEvent) -> None:
        if event.key in ("right", "n"):
            self.step(1)
        elif event.key in ("left", "p"):
            self.step(-1)
        elif event.key == "s":
            self.toggle_sort()
        elif event.key in ("q", "escape"):
            self.close()

    def _draw(self) -> None:
        entry, ax = self.current, self.axes
        ax.clear()
        ax.set_xticks([])
        ax.set_yticks([])
        order = "by best score" if self.by_score else "input order"
        ax.set_title(f"{entry.name}   ({self.position + 1} of {len(self.entries)}, {order})")
        pixels, shown = self._pixels(entry)
        notes = [_summary(entry)]
        if pixels is None:
            message = entry.error or "no image or thumbnail to show"
            ax.text(0.5, 0.5, textwrap.fill(message, 70), ha="center", va="center",
                    color="firebrick", fontsize=11, transform=ax.transAxes)
        else:
            width, height = entry.width or pixels.shape[1], entry.height or pixels.shape[0]
            ax.imshow(pixels, extent=(0, width, height, 0))
            if shown == "original":
                notes += self._draw_masks(ax, entry, pixels.shape[:2])
            else:
                notes.append(f"showing {shown}")
            self._draw_boxes(ax, entry)
        self._info.set_text("\n".join(textwrap.fill(note, 140) for note in notes))
        self.figure.canvas.draw_idle()

    def _pixels(self, entry: ImageView) -> tuple[np.ndarray | None, str]:
        """The original photo, else its thumbnail, else None; with a word on which it is."""
        for candidate in self._originals(entry):
            try:
                pixels = self._loader(candidate)
            except Exception:  # e.g. the file changed since the run: try the next
                continue
            if pixels.shape[:2] == (entry.height, entry.width):
                return pixels, "original"
        if entry.thumbnail is not None and entry.thumbnail.is_file():
            try:
                return self._loader(entry.thumbnail), "the thumbnail (original not found)"
            except Exception:  # shown as "nothing": the info line still gives the status
                pass
        return None, "nothing"

    def _originals(self, entry: ImageView) -> list[Path]:
        """Where the original photo may be, most likely first."""
        if entry.status == "error":
            return []
        candidates = []
        if "://" not in entry.source:  # an s3:// URL has no local copy at its source
            source = Path(entry.source)
            candidates += [source] if source.is_absolute() else [source, self.job_dir / source]
        name = PurePosixPath(entry.source.replace("\\", "/")).name
        candidates += [folder / name for folder in self._image_dirs]
        return [path for path in candidates if path.is_file()]

    def _draw_masks(self, ax: Axes, entry: ImageView, shape: tuple[int, ...]) -> list[str]:
        """Tint every match's mask in its colour; notes on masks that could not be read."""
        overlay = np.zeros((*shape[:2], 4), dtype=np.uint8)
        notes = []
        for k, match in reversed(list(enumerate(entry.matches))):  # best drawn last, on top
            try:
                if match.mask is None:
                    raise FileNotFoundError("not named in results.json")
                mask = read_mask_png(match.mask.read_bytes())
                if mask.shape != overlay.shape[:2]:
                    raise ValueError(f"mask is {mask.shape}, the photo {overlay.shape[:2]}")
            except (OSError, ValueError) as error:
                notes.append(f"mask {k + 1} not shown: {error}")
                continue
            overlay[mask] = (*match_colour(k, entry.status == "reference"), _OVERLAY_ALPHA)
        if entry.matches:
            ax.imshow(overlay, extent=(0, shape[1], shape[0], 0))
        return notes

    def _draw_boxes(self, ax: Axes, entry: ImageView) -> None:
        from matplotlib.patches import Rectangle

        for k, match in reversed(list(enumerate(entry.matches))):  # best drawn on top
            colour = tuple(c / 255 for c in match_colour(k, entry.status == "reference"))
            x0, y0, x1, y1 = match.bbox
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=colour,
                                   linewidth=2))
            label = (f"REF {match.score:.3f}" if entry.status == "reference"
                     else f"#{k + 1} {match.score:.3f}")
            ax.text(x0, y0, label, color="white", fontsize=9, va="bottom",
                    bbox={"facecolor": colour, "edgecolor": "none", "pad": 1.5})


def _image_view(job_dir: Path, item: dict[str, Any], status: str,
                matches: list[dict[str, Any]]) -> ImageView:
    """An ``ImageView`` from one ``results.json`` entry (KeyError/TypeError if malformed)."""
    return ImageView(
        name=str(item["image"]), source=str(item.get("source") or item["image"]),
        width=int(item.get("width") or 0), height=int(item.get("height") or 0),
        status=status, error=item.get("error"),
        matches=tuple(MatchView(bbox=(int(m["bbox"][0]), int(m["bbox"][1]), int(m["bbox"][2]),
                                      int(m["bbox"][3])),
                                score=float(m["score"]), mask=_inside(job_dir, m.get("mask")))
                      for m in matches),
        thumbnail=_inside(job_dir, item.get("thumbnail")),
    )


def _inside(job_dir: Path, relative: str | None) -> Path | None:
    """``job_dir / relative``, or None when not given or it would leave ``job_dir``."""
    if not relative:
        return None
    path = (job_dir / relative).resolve()
    return path if path.is_relative_to(job_dir.resolve()) else None




def _summary(entry: ImageView) -> str:
    """One line on the photo: its status, matches and scores."""
    if entry.status == "reference":
        return f"reference ({entry.source}), mask quality {entry.best_score or 0:.3f}"
    if entry.status != "ok":
        return f"ERROR: {entry.error or 'unknown error'}"
    if not entry.matches:
        return f"{entry.source}: no match"
    scores = ", ".join(f"#{k + 1} {m.score:.3f}" for k, m in enumerate(entry.matches))
    return f"{entry.source}: {len(entry.matches)} match(es): {scores}"
