"""What the reference photo shows besides the product: known other products.

The person clicked one product on the reference photo; everything else it shows (the
shelf neighbours, the turntable, a hand) is, by that click, not the product. A growing
bank holds sides of the product the person never saw, and a neighbour may resemble one
of them just enough to pass the threshold on a view where the product shows a side the
bank lacks. A proposal that looks at least as much like one of these neighbours as like
the bank is that neighbour, so it is no match (``PrototypeBank.neighbours``).

Left out are the product itself (its parts, and any proposal holding it) and copies of
it (two cartons side by side): a proposal that matches the reference is no neighbour.
Functions are pure; masks are bool arrays, ``(N, H, W)``.
"""

from __future__ import annotations

import numpy as np

from prodseg.workers.ops.ffa import l2_normalize


def reference_neighbours(masks: np.ndarray, embeddings: np.ndarray, product: np.ndarray,
                         reference: np.ndarray, threshold: float) -> np.ndarray:
    """The embeddings of the reference photo's proposals that are something else.

    Args:
        masks: ``(N, H, W)`` the reference photo's proposals, area-filtered.
        embeddings: ``(N, D)`` their FFA embeddings.
        product: ``(H, W)`` the clicked product's mask.
        reference: ``(D,)`` its embedding.
        threshold: ``similarity_threshold``: a proposal this like the reference is a copy
            of the product, not a neighbour.

    Returns:
        ``(M, D)`` float32 unit embeddings, ``M <= N`` (``(0, D)`` when there are none):
        the proposals overlapping the product by less than half of the smaller of the
        two areas and less like the reference than ``threshold``.
    """
    if len(masks) == 0:
        return np.zeros((0, len(reference)), dtype=np.float32)
    flat = masks.reshape(len(masks), -1)
    inter = (flat & product.reshape(-1)).sum(axis=1).astype(np.float64)
    smaller = np.minimum(flat.sum(axis=1), int(product.sum())).astype(np.float64)
    overlap = np.divide(inter, smaller, out=np.ones_like(inter), where=smaller > 0)
    units = l2_normalize(np.asarray(embeddings, dtype=np.float32))
    alike = units @ l2_normalize(np.asarray(reference, dtype=np.float32))
    return units[(overlap < 0.5) & (alike < threshold)].astype(np.float32)
