"""The mask preview of an interactive selection, computed on a worker.

``prodseg select --submit`` sends each click through the ``interactive`` queue: the
worker reads the image the selector uploaded (``previews/<session>/inputs/...``),
segments it with the job's SAM2 model (the image features stay cached between clicks on
the same image), and writes the mask as a PNG next to it. Only keys and numbers travel
through the broker.
"""

from __future__ import annotations

import time
from typing import Any

from prodseg.prompts import Prompt
from prodseg.storage.base import ObjectStore
from prodseg.storage.images import decode_image, mask_png
from prodseg.workers.segment.protocol import Segmenter


def preview_step(store: ObjectStore, segmenter: Segmenter, image_key: str,
                 prompt_doc: dict[str, Any], mask_key: str,
                 max_pixels: int) -> dict[str, Any]:
    """Segment the prompt on the stored image and store the mask.

    Args:
        store: where the image is and the mask goes.
        segmenter: the worker's segmenter.
        image_key: the uploaded image.
        prompt_doc: ``Prompt.to_json()`` form, in the image's (displayed) pixels.
        mask_key: where to write the ``(H, W)`` mask, 8-bit PNG, 255 = product.
        max_pixels: the image size limit (``max_image_pixels``).

    Returns:
        ``{"mask": mask_key, "score": float, "area": int, "seconds": float,
        "candidate_areas": [int, ...], "candidate": int | None}``; seconds is the
        segmentation time on the worker, image read and mask write excluded; the
        candidates are the segmenter's masks for the prompt, smallest first.

    Raises:
        InputError: unreadable image or a prompt outside it.
    """
    image = decode_image(store.get(image_key), store.describe(image_key), max_pixels)
    prompt = Prompt.from_json(prompt_doc)
    prompt.validate(image.shape[1], image.shape[0], store.describe(image_key))
    start = time.perf_counter()
    segmented = segmenter.segment(image, prompt)
    seconds = time.perf_counter() - start
    store.put(mask_key, mask_png(segmented.mask), "image/png")
    return {"mask": mask_key, "score": float(segmented.score),
            "area": int(segmented.mask.sum()), "seconds": seconds,
            "candidate_areas": [int(a) for a in segmented.candidate_areas],
            "candidate": segmented.candidate}
