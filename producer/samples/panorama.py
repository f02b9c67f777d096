"""A rendered 360° aisle: an equirectangular panorama with the milk carton on a shelf.

It stands in for a 360° camera's capture wherever none is at hand (tests, demos). The
panorama follows ``prodseg.workers.ops.panorama``'s convention (column ``x`` -> yaw
``(x + 0.5) / W · 360° − 180°``, row ``y`` -> pitch ``90° − (y + 0.5) / H · 180°``), but
its projection is written out here on its own, so the ground truth does not come from
the code it checks. The aisle is a plain wall with shelves as horizontal bands; products
are flat billboards facing the camera, drawn through the inverse gnomonic projection, so
they bend as a real panorama bends them. The product is a carton photographed by
``prodseg.producer.samples.scene.render_spin_set`` (one of its views, cut out by its mask); the
reference photo is another view of the same carton, with the click. Every random choice
comes from one ``numpy.random.Generator``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from prodseg.jsonio import dump_bytes
from prodseg.producer.samples.artwork import bottle_art, box_art, can_art, jitter
from prodseg.producer.samples.scene import render_spin_set

_CARTON_CM = 28.0  # the carton's height with its roof, for the other products' scale
# (height cm, width cm) of the other products, as flat fronts
_OTHERS = {"can": (12.2, 6.6), "bottle": (24.0, 7.6), "corn": (24.0, 13.0), "tea": (13.5, 8.0)}


@dataclass(frozen=True)
class PanoramaScene:
    """A rendered panorama, its ground truth and the reference photo.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB equirectangular panorama (``W = 2 H``).
        mask: ``(H, W)`` bool, the product's pixels (two pieces when it is on the seam).
        reference: ``(h, w, 3)`` uint8 RGB perspective photo of the product on a shelf.
        reference_mask: ``(h, w)`` bool, the product on the reference photo.
        reference_point: ``(x, y)`` click on the product on the reference photo.
        product_yaw_deg: where the product's centre is, degrees (180 = on the seam).
        product_pitch_deg: where the product's centre is, degrees.
    """

    image: np.ndarray
    mask: np.ndarray
    reference: np.ndarray
    reference_mask: np.ndarray
    reference_point: tuple[int, int]
    product_yaw_deg: float
    product_pitch_deg: float


def billboard_coords(shape: tuple[int, int], yaw_deg: float, pitch_deg: float
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tangent-plane coordinates of every panorama pixel for a plane facing the camera.

    The plane touches the unit sphere at ``(yaw, pitch)``; its x axis is horizontal
    (right) and its y axis up, so a billboard there is upright.

    Args:
        shape: ``(H, W)`` of the panorama.
        yaw_deg: the plane's centre, degrees.
        pitch_deg: the plane's centre, degrees.

    Returns:
        ``a`` (right) and ``b`` (up), ``(H, W)`` float64 tangents, and ``(H, W)`` bool for
        the pixels in front (the others' ``a`` and ``b`` are meaningless).
    """
    h, w = shape
    theta = (np.arange(w) + 0.5) / w * 2 * np.pi - np.pi - math.radians(yaw_deg)
    phi = np.pi / 2 - (np.arange(h) + 0.5) / h * np.pi
    x = np.cos(phi)[:, None] * np.sin(theta)[None, :]  # the direction, turned to yaw 0
    y = np.sin(phi)[:, None] * np.ones(w)
    z = np.cos(phi)[:, None] * np.cos(theta)[None, :]
    p = math.radians(pitch_deg)  # then tilted so that the centre is straight ahead
    y, z = y * math.cos(p) - z * math.sin(p), y * math.sin(p) + z * math.cos(p)
    front = z > 1e-6
    safe = np.where(front, z, 1.0)
    return x / safe, y / safe, front


def paint_billboard(colour: np.ndarray, sprite: np.ndarray, sprite_alpha: np.ndarray,
                    yaw_deg: float, pitch_deg: float,
                    height_deg: float) -> np.ndarray:
    """Draw an upright picture facing the camera over a panorama, in place.

    Args:
        colour: ``(H, W, 3)`` float32 RGB panorama, drawn on.
        sprite: ``(h, w, 3)`` float32 RGB picture.
        sprite_alpha: ``(h, w)`` float32 coverage in [0, 1].
        yaw_deg: the picture's centre, degrees.
        pitch_deg: the picture's centre, degrees.
        height_deg: the picture's angular height through its centre, degrees.

    Returns:
        ``(H, W)`` float32, the picture's coverage of each panorama pixel.
    """
    sh, sw = sprite_alpha.shape
    a, b, front = billboard_coords(colour.shape[:2], yaw_deg, pitch_deg)
    half_h = math.tan(math.radians(height_deg) / 2)
    half_w = half_h * sw / sh
    map_x = np.where(front, (a / half_w + 1) / 2 * sw - 0.5, -10).astype(np.float32)
    map_y = np.where(front, (1 - b / half_h) / 2 * sh - 0.5, -10).astype(np.float32)
    rgba = np.dstack([sprite * sprite_alpha[..., None], sprite_alpha]).astype(np.float32)
    drawn = cv2.remap(rgba, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                      borderValue=0)
    cover = np.clip(drawn[..., 3], 0, 1)
    colour *= 1 - cover[..., None]
    colour += drawn[..., :3]
    return cover


def _band(image: np.ndarray, top_deg: float, bottom_deg: float, colour: np.ndarray) -> None:
    """Fill the rows between two pitches (degrees, top above bottom)."""
    h = image.shape[0]
    r0, r1 = (round((90 - p) / 180 * h) for p in (top_deg, bottom_deg))
    image[max(r0, 0):max(r1, 0)] = colour


def _aisle(rng: np.random.Generator, shape: tuple[int, int], shelf_tops: list[float]
           ) -> np.ndarray:
    """Wall, floor, ceiling and shelves with price labels: ``(H, W, 3)`` float32."""
    h, w = shape
    pitch = 90 - (np.arange(h) + 0.5) / h * 180
    wall = np.array(jitter(rng, (198, 190, 176), 6), np.float32)
    image = wall * (0.85 + 0.15 * np.cos(np.radians(pitch)))[:, None, None] * np.ones((1, w, 1))
    yaw = (np.arange(w) + 0.5) / w * 2 * np.pi  # smooth blotches, continuous across the seam
    noise = sum(rng.normal() * np.cos(k * yaw[None, :] + j * np.radians(pitch)[:, None]
                                      + rng.uniform(0, 2 * np.pi))
                for k in range(1, 7) for j in range(1, 4))
    image += (4 / math.sqrt(18)) * np.asarray(noise, np.float32)[..., None]
    _band(image, -38, -90, np.array(jitter(rng, (200, 200, 204), 5), np.float32))
    _band(image, 90, 55, np.array(jitter(rng, (225, 225, 222), 5), np.float32))
    rail = np.array(jitter(rng, (55, 58, 62), 5), np.float32)
    plank = np.array(jitter(rng, (205, 205, 208), 4), np.float32)
    for top in shelf_tops:
        _band(image, top, top - 2.0, plank)
        _band(image, top - 2.0, top - 5.0, rail)
        x = rng.uniform(0, 0.05) * w
        while x < w:  # price labels on the rail
            r0, r1 = (round((90 - p) / 180 * h) for p in (top - 2.6, top - 4.4))
            image[r0:r1, round(x):round(x + 0.012 * w)] = 238
            x += rng.uniform(0.04, 0.08) * w
    return image


def _free_yaw(rng: np.random.Generator, taken: list[tuple[float, float]], half: float) -> float:
    """A yaw whose ``±half`` interval misses every taken ``(yaw, half)`` on the circle."""
    for _ in range(200):
        yaw = float(rng.uniform(-180, 180))
        if all(abs((yaw - y + 180) % 360 - 180) > half + hy + 2 for y, hy in taken):
            return yaw
    raise ValueError("no room left on the shelf for another product")


def render_panorama(width: int = 2048, product_yaw_deg: float = 180.0,
                    product_pitch_deg: float = 0.0, product_height_deg: float = 30.0,
                    n_distractors: int = 5, product_view: int = 1,
                    reference_size: tuple[int, int] = (480, 640), seed: int = 0
                    ) -> PanoramaScene:
    """Render an aisle panorama with the carton at a chosen place, and its reference photo.

    Args:
        width: panorama width in pixels (its height is half of it); even, at least 64.
        product_yaw_deg: the carton's centre, degrees (180 puts it across the seam).
        product_pitch_deg: the carton's centre, degrees (0 = eye level).
        product_height_deg: the carton's angular height, degrees; sets every product's size.
        n_distractors: other products (cans, bottles, cereal and tea boxes) on the shelves.
        product_view: which of ``render_spin_set``'s 12 views (30° apart) is the carton in
            the panorama; the reference photo is always view 0 (front facing).
        reference_size: ``(height, width)`` of the reference photo.
        seed: seeds the ``numpy.random.Generator`` behind every random choice (the spin
            set's too).

    Returns:
        The panorama, its ground-truth mask, and the reference photo with its click.
    """
    if width < 64 or width % 2:
        raise ValueError(f"panorama width must be even and at least 64, got {width}")
    if not 0 <= product_view < 12:
        raise ValueError(f"product_view must be one of the 12 views, got {product_view}")
    rng = np.random.default_rng(seed)
    shape = (width // 2, width)
    spin = render_spin_set(n_views=12, height=reference_size[0], width=reference_size[1],
                           n_distractor_only=0, seed=seed)
    view = spin.views[product_view]
    rows, cols = np.flatnonzero(view.mask.any(1)), np.flatnonzero(view.mask.any(0))
    window = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    sprite = view.image[window].astype(np.float32)
    sprite_alpha = view.mask[window].astype(np.float32)

    deg_per_cm = product_height_deg / _CARTON_CM
    shelf = product_pitch_deg - product_height_deg / 2  # the product stands on this shelf
    levels = [shelf - 2 * product_height_deg, shelf, shelf + 1.4 * product_height_deg]
    levels = [lv for lv in levels if -35 < lv < 50]
    colour = _aisle(rng, shape, levels)
    half = product_height_deg / 2 * sprite.shape[1] / sprite.shape[0] + 1
    taken = {lv: [(product_yaw_deg, half)] if lv == shelf else [] for lv in levels}
    for _ in range(n_distractors):
        kind = str(rng.choice(list(_OTHERS)))
        height_cm, width_cm = _OTHERS[kind]
        px_per_cm = 8.0
        if kind == "can":
            art, _ = can_art(rng, 3.3, height_cm, px_per_cm)
        elif kind == "bottle":
            art, _ = bottle_art(rng, 3.8, height_cm, px_per_cm)
        else:
            art = box_art(rng, "corn" if kind == "corn" else "tea", width_cm, 5.0, height_cm,
                          px_per_cm)["front"]
        art = cv2.resize(art, (round(width_cm * px_per_cm), round(height_cm * px_per_cm)))
        level = levels[int(rng.integers(len(levels)))]
        size = height_cm * deg_per_cm
        yaw = _free_yaw(rng, taken[level], size / 2 * width_cm / height_cm)
        taken[level].append((yaw, size / 2 * width_cm / height_cm))
        paint_billboard(colour, art, np.ones(art.shape[:2], np.float32), yaw,
                        level + size / 2 + 0.3, size)
    cover = paint_billboard(colour, sprite, sprite_alpha, product_yaw_deg,
                            product_pitch_deg, product_height_deg)
    blurred = cv2.GaussianBlur(colour, (0, 0), 0.0008 * width)
    noisy = blurred + 2.0 * rng.standard_normal(colour.shape, dtype=np.float32)
    image = np.clip(noisy + 0.5, 0, 255).astype(np.uint8)
    ref = spin.views[spin.reference_index]
    return PanoramaScene(image, cover >= 0.5, ref.image, ref.mask, spin.reference_point,
                         product_yaw_deg, product_pitch_deg)


def write_panorama_sample(out_dir: Path, scene: PanoramaScene) -> Path:
    """Write the panorama, the reference and both masks, and a ``sample.json`` index.

    Files: ``images/panorama.png``, ``images/reference.png`` and
    ``ground_truth/{panorama,reference}.png`` (uint8, 0 or 255); ``sample.json`` names
    them (relative to ``out_dir``) with the click and the product's yaw and pitch.

    Args:
        out_dir: the folder to write into; created if missing.
        scene: the rendered panorama.

    Returns:
        The path of ``sample.json``.
    """
    for sub in ("images", "ground_truth"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    for name, image, mask in (("panorama", scene.image, scene.mask),
                              ("reference", scene.reference, scene.reference_mask)):
        Image.fromarray(image).save(out_dir / "images" / f"{name}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(out_dir / "ground_truth" / f"{name}.png")
    index = {"reference": "images/reference.png", "reference_point": list(scene.reference_point),
             "panorama": "images/panorama.png", "mask": "ground_truth/panorama.png",
             "product_yaw_deg": scene.product_yaw_deg,
             "product_pitch_deg": scene.product_pitch_deg}
    path = out_dir / "sample.json"
    path.write_bytes(dump_bytes(index))
    return path
