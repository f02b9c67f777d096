"""Result records of one job: what was found on each image.

Plain dataclasses over numpy arrays, so that ``storage`` can export them without torch.
Coordinates are always pixels of the original image as displayed (EXIF orientation
applied); boxes are ``[x0, y0, x1, y1]`` with ``x1``/``y1`` exclusive pixel edges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Status = Literal["ok", "error"]


@dataclass(frozen=True)
class Match:
    """One found instance of the product on one image.

    Attributes:
        mask: ``(H, W)`` bool, True on the product.
        bbox: ``(x0, y0, x1, y1)`` ints, the mask's tight box, exclusive upper edges.
        score: cosine similarity of the proposal's embedding to the reference.
    """

    mask: np.ndarray
    bbox: tuple[int, int, int, int]
    score: float


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
    """

    image_id: str
    source: str
    width: int = 0
    height: int = 0
    status: Status = "ok"
    error: str | None = None
    matches: list[Match] = field(default_factory=list)
    num_proposals: int = 0


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
