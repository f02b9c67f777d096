"""A nearest-neighbour index over products' reference embeddings (faiss).

FFA embeddings are L2-normalised, so cosine similarity is an inner product. Up to
``EXACT_UP_TO`` products the index is exact (``IndexFlatIP``: a search over 5,000
products of 1,024 dimensions takes well under a millisecond); above it, an HNSW graph
(``IndexHNSWFlat``, 32 links per node, ``efSearch`` 128) keeps searches fast for
store-sized catalogs at a small loss of recall.

The index is stored as two objects: the faiss index itself (``faiss.serialize_index``)
and a JSON document with the product ids in index order and what embedded them (a query
must be embedded by the same model to be comparable).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from prodseg.jsonio import dump_bytes
from prodseg.workers.ops.ffa import l2_normalize

EXACT_UP_TO = 50_000


@dataclass(frozen=True)
class Neighbour:
    """One search hit.

    Attributes:
        product: the product id.
        score: cosine similarity of its reference embedding to the query, in [-1, 1].
    """

    product: str
    score: float


class VectorIndex:
    """Products' reference embeddings, searchable by cosine similarity.

    Args:
        ids: product ids, one per row of ``vectors``, unique.
        vectors: ``(N, D)`` float embeddings (normalised again here).
        meta: what embedded them (e.g. backend, model and embedding mode), kept with
            the index so that a lookup can check its query is comparable.

    Raises:
        ValueError: mismatched or duplicate ids, no vectors, or non-finite values.
    """

    def __init__(self, ids: Sequence[str], vectors: np.ndarray,
                 meta: Mapping[str, Any] | None = None) -> None:
        import faiss

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(ids) != vectors.shape[0] or not len(ids):
            raise ValueError(f"need one vector per id: {len(ids)} ids, vectors "
                             f"{vectors.shape}")
        if len(set(ids)) != len(ids):
            raise ValueError("product ids in an index must be unique")
        if not np.isfinite(vectors).all():
            raise ValueError("embeddings must be finite")
        self.ids = list(ids)
        self.meta = dict(meta or {})
        self.dim = int(vectors.shape[1])
        index: Any
        if len(ids) <= EXACT_UP_TO:
            index = faiss.IndexFlatIP(self.dim)
        else:
            index = faiss.IndexHNSWFlat(self.dim, 32, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efSearch = 128
        index.add(_normalised(vectors))
        self._index: Any = index

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, query: np.ndarray, k: int = 5) -> list[Neighbour]:
        """The ``k`` products most similar to ``query`` (``(D,)``), best first."""
        q = np.asarray(query, dtype=np.float32).reshape(1, -1)
        if q.shape[1] != self.dim:
            raise ValueError(f"query has {q.shape[1]} dimensions, the index {self.dim}")
        scores, rows = self._index.search(_normalised(q), min(k, len(self.ids)))
        return [Neighbour(self.ids[r], float(s))
                for s, r in zip(scores[0], rows[0], strict=True) if r >= 0]

    def to_bytes(self) -> tuple[bytes, bytes]:
        """``(faiss index bytes, JSON document bytes)`` for storage."""
        import faiss

        doc = {"ids": self.ids, "dim": self.dim, "meta": self.meta}
        return (faiss.serialize_index(self._index).tobytes(),
                dump_bytes(doc, indent=1))

    @classmethod
    def from_bytes(cls, index_bytes: bytes, doc_bytes: bytes) -> VectorIndex:
        """The index ``to_bytes`` wrote."""
        import faiss

        doc = json.loads(doc_bytes)
        index = faiss.deserialize_index(np.frombuffer(index_bytes, dtype=np.uint8))
        if index.ntotal != len(doc["ids"]) or index.d != doc["dim"]:
            raise ValueError("the index and its id list do not belong together")
        loaded = cls.__new__(cls)
        loaded.ids, loaded.dim = list(doc["ids"]), int(doc["dim"])
        loaded.meta, loaded._index = dict(doc.get("meta") or {}), index
        return loaded


def _normalised(vectors: np.ndarray) -> np.ndarray:
    if (np.abs(vectors).sum(axis=1) == 0).any():
        raise ValueError("an embedding of length zero cannot be compared")
    return np.ascontiguousarray(l2_normalize(vectors), dtype=np.float32)
