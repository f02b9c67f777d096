"""Result records of one job: what was found on each image.

Plain dataclasses over numpy arrays, so that ``storage`` can export them without torch.
Coordinates are always pixels of the original image as displayed (EXIF orientation
applied); boxes are ``[x0, y0, x1, y1]`` with ``x1``/``y1`` exclusive pixel edges.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

Status = Literal["ok", "error"]
FoundBy = Literal["grid", "guided", "guided+grid", "tracked", "reference", "not here"]


@dataclass(frozen=True)
class Match:
    """One found instance of the product on one image.

    Attributes:
        mask: ``(H, W)`` bool, True on the product.
        bbox: ``(x0, y0, x1, y1)`` ints, the mask's tight box, exclusive upper edges.
        score: cosine similarity of the proposal's embedding to the reference (to the
            prototype bank when there is one; a margin over lookalikes when some were
            marked). When parts were merged, the score of the instance's best-scoring
            proposal, which need not be the mask kept.
        embedding: ``(D,)`` the FFA embedding of the proposal that scored ``score``, when
            kept (not exported).
        wrapped_bbox: for a panorama mask that crosses the left/right seam, its box on
            the circle: ``x0`` on the right part, ``x1 = W + `` the right edge on the
            left part (so ``x1 > W``); ``bbox`` then spans the full width.
        absorbed: how many other matching proposals this match stands for: parts of the
            product, or wholes holding it, merged into one instance
            (``prodseg.workers.match.instances``), and duplicates.
        edge_residue: the share of the mask's rim that shows the background
            (``prodseg.workers.ops.edge_residue``), once measured on the image; None
            before, or when it cannot tell.
    """

    mask: np.ndarray
    bbox: tuple[int, int, int, int]
    score: float
    embedding: np.ndarray | None = field(default=None, repr=False, compare=False)
    wrapped_bbox: tuple[int, int, int, int] | None = None
    absorbed: int = 0
    edge_residue: float | None = None


@dataclass
class ImageResult:
    """What the pipeline found on one target image (or why it could not look).

    Attributes:
        image_id: unique, file-name-safe id of the image within the job (used in keys).
        source: where the image came from (a local path or an object key).
        width: image width in pixels, 0 when it could not be read.
        height: image height in pixels, 0 when it could not be read.
        status: ``"ok"`` or ``"error"``.
        error: the reason, naming the file, when ``status == "error"``.
        matches: best first, at most top-K.
        num_proposals: how many proposals were compared with the reference.
        found_by: how the candidates were found: ``"grid"`` (SAM2 prompted over the whole
            grid), ``"guided"`` (at the reference's similarity peaks), ``"guided+grid"``
            (the peaks found no match, so the full grid was run too), ``"tracked"`` (the
            spin tracker's verified mask), ``"reference"`` (a view the job prompts: its
            prompt's mask) or ``"not here"`` (a view the job forces to no match).
        runner_up_score: the best score of a proposal that overlaps the best match less
            than half (-1 if none); tells an unambiguous match (not exported).
    """

    image_id: str
    source: str
    width: int = 0
    height: int = 0
    status: Status = "ok"
    error: str | None = None
    matches: list[Match] = field(default_factory=list)
    num_proposals: int = 0
    found_by: FoundBy = "grid"
    runner_up_score: float = field(default=-1.0, repr=False, compare=False)

    def _match(self, k: int) -> Match:
        if not 0 <= k < len(self.matches):
            raise IndexError(f"{self.source}: no match #{k} (found {len(self.matches)})")
        return self.matches[k]

    def save_mask(self, path: str | os.PathLike[str], k: int = 0) -> None:
        """Write match ``k``'s mask as an 8-bit PNG (255 = product)."""
        _save_mask(path, self._match(k).mask)

    def save_cutout(
        self, path: str | os.PathLike[str], k: int = 0, image: np.ndarray | None = None
    ) -> None:
        """Write match ``k``'s transparent RGBA cutout, cropped to its box.

        Args:
            path: the PNG to write.
            k: which match, 0 = best.
            image: the ``(H, W, 3)`` uint8 pixels; read again from ``source`` if None.
        """
        match = self._match(k)
        _save_cutout(path, self.source, image, match.mask, match.bbox)


@dataclass
class ReferenceResult:
    """The clicked product on the reference image.

    Attributes:
        image_id: id of the reference image within the job.
        source: where the reference image came from.
        width: image width in pixels.
        height: image height in pixels.
        mask: ``(H, W)`` bool, the product as segmented from the prompt.
        bbox: the mask's tight box ``(x0, y0, x1, y1)``.
        score: the segmenter's own quality estimate of the mask (predicted IoU).
        embedding: ``(D,)`` float32, L2-normalised FFA embedding.
        prompt: the prompt as given, in original image pixels (JSON-ready).
        candidate_areas: the pixel areas of the segmenter's candidate masks for the prompt,
            smallest first (SAM2: subpart, part, whole); empty when it does not say.
        candidate_scores: their quality estimates, in the same order.
        candidate: which of them ``mask`` is; None when the segmenter does not say.
        prompt_source: ``clicked``, ``proposed`` or ``confirmed`` (``prodseg.proposed``).
        proposal: for a prompt proposed at run time, ``ProposedPrompt.to_json()``; None
            otherwise.
    """

    image_id: str
    source: str
    width: int
    height: int
    mask: np.ndarray
    bbox: tuple[int, int, int, int]
    score: float
    embedding: np.ndarray
    prompt: dict[str, object]
    candidate_areas: tuple[int, ...] = ()
    candidate_scores: tuple[float, ...] = ()
    candidate: int | None = None
    prompt_source: str = "clicked"
    proposal: dict[str, object] | None = None

    def save_mask(self, path: str | os.PathLike[str]) -> None:
        """Write the reference mask as an 8-bit PNG (255 = product)."""
        _save_mask(path, self.mask)

    def save_cutout(self, path: str | os.PathLike[str], image: np.ndarray | None = None) -> None:
        """Write the reference cutout (RGBA, cropped to the box)."""
        _save_cutout(path, self.source, image, self.mask, self.bbox)


def _save_mask(path: str | os.PathLike[str], mask: np.ndarray) -> None:
    from prodseg.storage.images import mask_png

    Path(path).write_bytes(mask_png(mask))


def _save_cutout(
    path: str | os.PathLike[str],
    source: str,
    image: np.ndarray | None,
    mask: np.ndarray,
    bbox: tuple[int, int, int, int],
) -> None:
    from prodseg.storage.image_encoding import cutout_png
    from prodseg.storage.images import read_image_file

    pixels = image if image is not None else read_image_file(Path(source))
    Path(path).write_bytes(cutout_png(pixels, mask, bbox))


def results_meta(described: Mapping[str, object], capture: str,
                 video: Mapping[str, object] | None,
                 bank: Mapping[str, object] | None) -> dict[str, object]:
    """``results.json``'s ``meta`` as both executors write it: the models' description
    (``describe()``), then the capture mode, the video the views came from, and the
    prototype bank (``JobPlan.bank_record``), each only where the job has one."""
    meta = {**described, "capture": capture}
    if video:
        meta["video"] = dict(video)
    if bank is not None:
        meta["prototype_bank"] = dict(bank)
    return meta


@dataclass
class JobResult:
    """Everything one run found.

    Iterating yields the per-image results of the target images, in input order.

    Attributes:
        reference: the clicked product on the reference image.
        images: one result per target image (the reference image is never a target).
        meta: what produced it (models, weights, settings) as written to ``results.json``.
        output_dir: where the outputs were written, if anywhere.
    """

    reference: ReferenceResult
    images: list[ImageResult]
    meta: dict[str, object]
    output_dir: Path | None = None

    def __iter__(self) -> Iterator[ImageResult]:
        return iter(self.images)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def failed(self) -> list[ImageResult]:
        """Images that could not be processed."""
        return [r for r in self.images if r.status == "error"]
