"""A rendered cluttered shelf: rows of many products of different sizes, with ground truth.

The spin set (``samples.scene``) shows a few products on one shelf, so a segmenter keeps
a handful of masks on it. A real shelf photo is full: several shelves, each packed with
products of different kinds and sizes, where dozens of masks survive any filter. This
renders such a photo, straight on: a dark shelving wall, shelves of varied height, and on
each shelf product fronts (cans, bottles, cereal and tea boxes, milk cartons) standing
side by side at their own scale. Every product's silhouette is the ground truth. The
artwork is ``samples.artwork``'s; every random choice comes from one
``numpy.random.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from prodseg.producer.samples.artwork import bottle_art, box_art, can_art, carton_art, jitter

# (height cm, width cm) of each product's front
_FRONTS = {"can": (12.2, 6.6), "bottle": (24.0, 7.6), "corn": (24.0, 13.0),
           "tea": (13.5, 8.0), "carton": (19.0, 7.0)}
_PX_PER_CM = 8.0  # artwork resolution before it is scaled onto the photo


@dataclass(frozen=True)
class ClutteredShelf:
    """A rendered shelf photo and its products.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB.
        labels: ``(H, W)`` int32, ``k + 1`` on the pixels of product ``k``, 0 elsewhere.
        kinds: the kind of each product (``can``, ``bottle``, ``corn``, ``tea``,
            ``carton``), in label order.
    """

    image: np.ndarray
    labels: np.ndarray
    kinds: list[str]

    @property
    def masks(self) -> np.ndarray:
        """``(K, H, W)`` bool, one silhouette per product."""
        return self.labels[None] == np.arange(1, len(self.kinds) + 1)[:, None, None]


def _front(rng: np.random.Generator, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """A product's front: ``(h, w, 3)`` float32 RGB and ``(h, w)`` float32 coverage."""
    height_cm, width_cm = _FRONTS[kind]
    if kind == "can":
        art, _ = can_art(rng, 3.3, height_cm, _PX_PER_CM)
    elif kind == "bottle":
        art, _ = bottle_art(rng, 3.8, height_cm, _PX_PER_CM)
    elif kind == "carton":
        art = carton_art(rng, width_cm, width_cm, height_cm, 0.45 * width_cm, _PX_PER_CM)["front"]
    else:
        art = box_art(rng, "corn" if kind == "corn" else "tea", width_cm, 5.0, height_cm,
                      _PX_PER_CM)["front"]
    size = (round(width_cm * _PX_PER_CM), round(height_cm * _PX_PER_CM))
    art = cv2.resize(art, size, interpolation=cv2.INTER_AREA)
    # Each product its own brand: the artwork's hues turned by a random angle.
    hsv = cv2.cvtColor(np.clip(art, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV)
    hsv[..., 0] = (hsv[..., 0].astype(np.int32) + int(rng.integers(180))) % 180
    art = np.asarray(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), np.float32)
    th, tw = int(art.shape[0]), int(art.shape[1])
    alpha = np.ones((th, tw), np.float32)
    if kind == "bottle":  # a narrower neck above the shoulder
        half = np.where(np.arange(th) / th < 0.3, 0.22, 0.5)[:, None]
        cols = np.abs((np.arange(tw) + 0.5) / tw - 0.5)[None, :]
        alpha = (cols <= half).astype(np.float32)
    return art, alpha


def render_cluttered_shelf(height: int = 768, width: int = 1024, shelves: int = 3,
                           seed: int = 0) -> ClutteredShelf:
    """Render a shelving wall packed with products of different sizes.

    Args:
        height: image height in pixels.
        width: image width in pixels.
        shelves: shelf rows; each gets a random share of the height.
        seed: seeds the ``numpy.random.Generator`` behind every random choice.

    Returns:
        The photo and every product's silhouette.
    """
    if shelves < 1 or min(height, width) < 32 * shelves:
        raise ValueError("need shelves >= 1 and at least 32 pixels of height per shelf")
    rng = np.random.default_rng(seed)
    wall = np.array(jitter(rng, (38, 36, 40), 6), np.float32)
    colour = np.ones((height, width, 3), np.float32) * wall
    labels = np.zeros((height, width), np.int32)
    kinds: list[str] = []
    shares = rng.dirichlet(np.full(shelves, 4.0))
    tops = np.concatenate([[0], np.cumsum(np.round(shares * height).astype(int))[:-1]])
    bottoms = np.append(tops[1:], height)
    plank = np.array(jitter(rng, (190, 190, 194), 5), np.float32)
    for top, bottom in zip(tops, bottoms, strict=True):
        floor = bottom - max(3, round(0.06 * (bottom - top)))  # the plank's front edge
        colour[floor:bottom] = plank
        tallest = 0.9 * (floor - top)  # px for the tallest product on this shelf
        x = rng.uniform(0.0, 0.03) * width
        while True:
            kind = str(rng.choice(list(_FRONTS)))
            art, alpha = _front(rng, kind)
            scale = tallest * rng.uniform(0.55, 1.0) / _FRONTS["bottle"][0] / _PX_PER_CM
            h_px, w_px = (max(4, round(s * scale)) for s in alpha.shape)
            if x + w_px > width:
                break
            art = cv2.resize(art, (w_px, h_px), interpolation=cv2.INTER_AREA)
            alpha = cv2.resize(alpha, (w_px, h_px), interpolation=cv2.INTER_AREA)
            y0, x0 = floor - h_px, round(x)
            window = (slice(y0, floor), slice(x0, x0 + w_px))
            a = alpha[..., None]
            colour[window] = art * a + colour[window] * (1 - a)
            labels[window][alpha >= 0.5] = len(kinds) + 1
            kinds.append(kind)
            x += w_px + rng.uniform(0.004, 0.02) * width
    blurred = cv2.GaussianBlur(colour, (0, 0), 0.0012 * width)
    noisy = blurred + 2.5 * rng.standard_normal(colour.shape, dtype=np.float32)
    image = np.clip(noisy + 0.5, 0, 255).astype(np.uint8)
    return ClutteredShelf(image, labels, kinds)
