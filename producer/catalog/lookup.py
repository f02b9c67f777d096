"""``prodseg catalog lookup``: which catalog product is this?

The catalog's index holds each finished product's reference embedding (the FFA of its
clicked reference, ``jobs/<job>/reference/embedding.npy``). It is built on first use and
rebuilt when more products have finished since; it is stored next to the catalog
(``catalogs/<id>/index.faiss`` and ``index.json``). A query is the same FFA of a click
on any photo, computed here with the models the catalog's jobs used.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import numpy as np

from prodseg.errors import InputError
from prodseg.producer.catalog.client import CatalogClient
from prodseg.producer.catalog.products import catalog_key
from prodseg.producer.catalog.vector_index import Neighbour, VectorIndex
from prodseg.prompts import Prompt
from prodseg.storage.base import ObjectNotFound
from prodseg.storage.manifest import JobManifest, job_layout
from prodseg.tasks.names import DONE

log = logging.getLogger(__name__)

# The settings that decide what an embedding means: a query must share them.
EMBEDDER_SETTINGS = ("backend", "dinov2_model", "embedding_mode", "weights", "seed")


def embedder_of(settings: dict[str, Any]) -> dict[str, Any]:
    """The part of a job's settings that decides its embeddings."""
    return {name: settings.get(name) for name in EMBEDDER_SETTINGS}


def build_index(client: CatalogClient, catalog: str) -> VectorIndex:
    """Index every finished product's reference embedding and store the index.

    Products embedded with other models than the first one's are left out, with a
    warning (their scores would not be comparable).

    Raises:
        InputError: no product of the catalog has finished yet.
    """
    store = client.store
    ids, vectors, left_out, meta = [], [], [], None
    for product in client.products(catalog):
        layout = job_layout(product.job)
        try:
            data = store.get(layout.reference_embedding)
            settings = JobManifest.load(store, product.job).settings
        except ObjectNotFound:
            continue  # not finished (or never submitted)
        embedder = embedder_of(settings)
        if meta is None:
            meta = {"embedder": embedder, "job_settings": settings}
        elif embedder != meta["embedder"]:
            log.warning("product %s was embedded with %s, not %s: left out of the index",
                        product.product, embedder, meta["embedder"])
            left_out.append(product.product)
            continue
        ids.append(product.product)
        vectors.append(np.load(io.BytesIO(data)).reshape(-1))
    if meta is None:
        raise InputError(f"catalog {catalog}: no product has finished yet; see prodseg "
                         f"catalog status {catalog}")
    index = VectorIndex(ids, np.stack(vectors), {**meta, "left_out": left_out})
    index_bytes, doc_bytes = index.to_bytes()
    store.put(catalog_key(catalog, "index.faiss"), index_bytes, "application/octet-stream")
    store.put(catalog_key(catalog, "index.json"), doc_bytes, "application/json")
    return index


def load_index(client: CatalogClient, catalog: str) -> VectorIndex:
    """The stored index, rebuilt when it is missing or products finished since."""
    try:
        index = VectorIndex.from_bytes(client.store.get(catalog_key(catalog, "index.faiss")),
                                       client.store.get(catalog_key(catalog, "index.json")))
    except ObjectNotFound:
        return build_index(client, catalog)
    status = client.status(catalog)  # one listing and one Redis round trip
    finished = {p for p, job in status.jobs.items() if job is not None and job.state == DONE}
    known = set(index.ids) | set(index.meta.get("left_out", []))
    return index if finished <= known else build_index(client, catalog)


def embed_query(job_settings: dict[str, Any], image: Path, prompt: Prompt) -> np.ndarray:
    """The FFA embedding (``(D,)`` float32) of the prompted object, with the models the
    catalog's jobs used (built here, from this machine's model cache)."""
    from prodseg.settings import load_settings
    from prodseg.storage.images import read_image_file
    from prodseg.workers.plan.pipeline import ProductSegmentationPipeline

    pipeline = ProductSegmentationPipeline(load_settings(**job_settings))
    pixels = read_image_file(image)
    prompt.validate(pixels.shape[1], pixels.shape[0], str(image))
    reference = pipeline.segment_reference(pixels, prompt, "query", str(image))
    return np.asarray(reference.embedding, dtype=np.float32)


def lookup(client: CatalogClient, catalog: str, image: Path, prompt: Prompt,
           k: int = 5) -> list[Neighbour]:
    """The ``k`` catalog products most like the prompted object on ``image``."""
    index = load_index(client, catalog)
    query = embed_query(index.meta["job_settings"], image, prompt)
    return index.search(query, k)
