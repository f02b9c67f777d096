"""``prodseg catalog review``'s parts put together: previews (here or on a worker), re-runs,
the reviewers' shared lock, the session and its server."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from prodseg.jsonio import dumps
from prodseg.producer.catalog.client import CatalogClient
from prodseg.producer.catalog.reviews import ProductReview, ReviewBook, redis_lock
from prodseg.producer.review.rerun import rerun_product
from prodseg.producer.review.server import ReviewServer
from prodseg.producer.review.session import Preview, ReviewSession
from prodseg.prompts import Prompt
from prodseg.settings import Settings, recorded
from prodseg.storage.exports.catalog_report import ReviewRules
from prodseg.storage.image_encoding import encode_png
from prodseg.storage.manifest import InputImage

PREVIEW_WHERE = ("worker", "local")


def local_preview(client: CatalogClient | None = None) -> Preview:
    """Masks from a segmenter built in this process (the catalog's settings)."""
    from prodseg.producer.ui.preview import LocalPreview

    built: dict[str, LocalPreview] = {}

    def preview(image: InputImage, pixels: np.ndarray, prompt: Prompt, settings: Settings
                ) -> tuple[np.ndarray, float, float]:
        name = dumps(recorded(settings), sort_keys=True)
        local = built.setdefault(name, LocalPreview(settings))  # one model per job settings
        found = local(Path(image.source), pixels, prompt)
        return found.mask, found.score, found.seconds

    return preview


def worker_preview(client: CatalogClient) -> tuple[Preview, object]:
    """Masks from a worker through the ``interactive`` queue; and what to ``close()``.

    A photo the job stored in the catalog's bucket is segmented where it is; one read
    from elsewhere (an ``s3://`` URL of another bucket, a frame of a video, or a local
    file no job stored: its ``location`` is its ``source``) is uploaded once to
    ``previews/<session>/``, which ``close()`` removes.
    """
    from prodseg.producer.ui.preview import RemotePreview

    remote = RemotePreview(client.jobs)
    uploaded: dict[str, str] = {}

    def preview(image: InputImage, pixels: np.ndarray, prompt: Prompt, settings: Settings
                ) -> tuple[np.ndarray, float, float]:
        start = time.perf_counter()
        key = image.location
        if key.startswith("s3://") or image.frame is not None or key == image.source:
            name = key if image.frame is None else f"{key}#{image.frame.index}"
            if name not in uploaded:
                uploaded[name] = f"previews/{remote.session}/inputs/{len(uploaded)}.png"
                client.store.put(uploaded[name], encode_png(pixels), "image/png")
            key = uploaded[name]
        found = remote.stored(key, prompt, start, settings)
        return found.mask, found.score, found.seconds

    return preview, remote


def review_server(client: CatalogClient, catalog: str, reviewer: str, where: str = "worker",
                  port: int = 0, rules: ReviewRules | None = None
                  ) -> tuple[ReviewServer, object | None]:
    """The review server of ``catalog`` (not yet serving) and what to close after it.

    Args:
        client: the catalog client.
        catalog: the catalog id.
        reviewer: the name decisions are stored under.
        where: ``"worker"`` (previews through the ``interactive`` queue) or ``"local"``.
        port: the port on 127.0.0.1 (0: a free one).
        rules: when the report flags a product.
    """
    lock = redis_lock(client.jobs.board.redis)
    book = ReviewBook(client.store, catalog, lock)
    closing: object | None = None
    if where == "local":
        preview = local_preview(client)
    else:
        preview, closing = worker_preview(client)

    def rerun(product: str, review: ProductReview, by: str) -> str:
        return rerun_product(client, catalog, product, by, book)

    session = ReviewSession(client, catalog, reviewer, preview, rerun, rules, lock)
    return ReviewServer(session, port), closing
