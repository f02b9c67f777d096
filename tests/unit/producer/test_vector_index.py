"""The catalog's nearest-neighbour index (faiss): exact cosine search, storage round trip."""

from __future__ import annotations

import numpy as np
import pytest

import prodseg.producer.catalog.vector_index as vi
from prodseg.producer.catalog.vector_index import VectorIndex


def _vectors(n: int, d: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def test_search_is_exact_cosine_best_first() -> None:
    vectors = _vectors(300, 64)
    ids = [f"p{i}" for i in range(300)]
    index = VectorIndex(ids, vectors * 7.0)  # lengths do not matter: cosine
    query = vectors[42] + 0.05 * _vectors(1, 64, seed=1)[0]
    hits = index.search(query, k=5)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosine = unit @ (query / np.linalg.norm(query))
    expected = np.argsort(-cosine)[:5]
    assert [h.product for h in hits] == [ids[i] for i in expected]
    np.testing.assert_allclose([h.score for h in hits], cosine[expected], atol=1e-5)
    assert hits[0].product == "p42" and hits[0].score > 0.99


def test_k_larger_than_the_catalog_returns_every_product() -> None:
    index = VectorIndex(["a", "b"], _vectors(2, 8))
    assert sorted(h.product for h in index.search(_vectors(1, 8)[0], k=10)) == ["a", "b"]


def test_round_trip_through_bytes_keeps_ids_scores_and_meta() -> None:
    vectors = _vectors(50, 16)
    index = VectorIndex([f"id-{i}" for i in range(50)], vectors, {"embedder": "x"})
    loaded = VectorIndex.from_bytes(*index.to_bytes())
    assert loaded.ids == index.ids and loaded.meta == {"embedder": "x"} and len(loaded) == 50
    query = vectors[7]
    assert loaded.search(query, 3) == index.search(query, 3)


def test_large_catalogs_use_hnsw_with_high_recall(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vi, "EXACT_UP_TO", 100)
    vectors = _vectors(2000, 32)
    index = VectorIndex([str(i) for i in range(2000)], vectors)
    assert type(index._index).__name__ == "IndexHNSWFlat"
    found = sum(index.search(vectors[i], 1)[0].product == str(i) for i in range(0, 2000, 10))
    assert found >= 198  # each vector finds itself: recall@1 of at least 99 %


@pytest.mark.parametrize(
    ("ids", "vectors", "words"),
    [
        (["a"], np.zeros((2, 4)), "one vector per id"),
        ([], np.zeros((0, 4)), "one vector per id"),
        (["a", "a"], np.ones((2, 4)), "unique"),
        (["a"], np.full((1, 4), np.nan), "finite"),
        (["a"], np.zeros((1, 4)), "length zero"),
    ],
)
def test_bad_inputs_are_refused(ids: list[str], vectors: np.ndarray, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        VectorIndex(ids, vectors)


def test_query_of_another_dimension_is_refused() -> None:
    with pytest.raises(ValueError, match="query has 3 dimensions, the index 4"):
        VectorIndex(["a"], np.ones((1, 4))).search(np.ones(3))
