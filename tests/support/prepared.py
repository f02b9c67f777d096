"""Prepared catalogs for the prepare page's tests: rendered products with ground truth and
a proposal per product, some of them wrong.

One spin of a carton is rendered (``render_spin_set``) and each product is a folder of a
few of its views, turned by a different amount so products differ; the proposal is a click
in the middle of the product's true mask on its first view, or, for the products marked
wrong, a click on the shelf beside it with a low confidence. The file is written as
``catalog prepare`` writes it: ``point``, ``prompt_source`` ``proposed`` and
``prompt_confidence``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class PreparedSet:
    """A prepared catalog file and what is true about it.

    Attributes:
        path: the catalog file.
        products: product ids, in file order.
        wrong: the products whose proposal is off the product.
        inside: per product, a pixel well inside the product on its first view.
        masks: per product, its true mask on its first view, ``(H, W)`` bool.
        view_masks: per product, its true mask on each of its views.
    """

    path: Path
    products: list[str]
    wrong: set[str]
    inside: dict[str, tuple[int, int]]
    masks: dict[str, np.ndarray]
    view_masks: dict[str, list[np.ndarray]]


def write_prepared(folder: Path, n_products: int, views: int = 3,
                   size: tuple[int, int] = (96, 128), wrong_every: int = 10,
                   name: str = "shelf.csv") -> PreparedSet:
    """Render ``n_products`` products of ``views`` views each under ``folder`` and write the
    prepared catalog ``folder/name`` (every ``wrong_every``-th proposal is wrong)."""
    from prodseg.producer.samples.scene import render_spin_set

    height, width = size
    spin = render_spin_set(n_views=2 * views, height=height, width=width,
                           n_distractor_only=0, seed=0)
    encoded = []
    for view in spin.views:
        path = folder / "_rendered" / f"{len(encoded)}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(view.image).save(path)
        encoded.append((path.read_bytes(), view.mask))
    products: list[str] = []
    wrong: set[str] = set()
    inside: dict[str, tuple[int, int]] = {}
    masks: dict[str, np.ndarray] = {}
    view_masks: dict[str, list[np.ndarray]] = {}
    rows = []
    for k in range(n_products):
        product = f"p{k:04d}"
        shift = k % len(encoded)
        chosen = [encoded[(shift + i) % len(encoded)] for i in range(views)]
        for i, (data, _) in enumerate(chosen):
            out = folder / product / f"view_{i:02d}.png"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
        mask = chosen[0][1]
        x, y = middle(mask)
        if wrong_every and k % wrong_every == wrong_every - 1:
            wrong.add(product)
            (px, py), confidence = outside(mask), 0.21
        else:
            px, py, confidence = x, y, 0.93
        products.append(product)
        inside[product] = (x, y)
        masks[product] = mask
        view_masks[product] = [m for _, m in chosen]
        rows.append([product, product, f"{product}/view_00.png", f"{px},{py}", "proposed",
                     f"{confidence:.2f}"])
    path = folder / name
    with path.open("w", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["product_id", "images", "reference", "point", "prompt_source",
                         "prompt_confidence"])
        writer.writerows(rows)
    return PreparedSet(path, products, wrong, inside, masks, view_masks)


def middle(mask: np.ndarray) -> tuple[int, int]:
    """A pixel well inside a mask: the middle of its middle row."""
    ys, xs = np.nonzero(mask)
    y = int(np.median(ys))
    return int(np.median(xs[ys == y])), y


def outside(mask: np.ndarray) -> tuple[int, int]:
    """A pixel of the shelf, well away from the mask: near a top corner."""
    height, width = mask.shape
    for x, y in ((4, 4), (width - 5, 4), (4, height - 5)):
        if not mask[max(0, y - 3):y + 4, max(0, x - 3):x + 4].any():
            return x, y
    raise AssertionError("the mask reaches every corner")
