"""A rendered spin set: a milk carton turning on a cluttered supermarket shelf, with ground truth.

It stands in for a real capture wherever no photos are at hand (tests, demos, benchmarks).
Lengths in the scene are centimetres; world axes are x right, y up and z towards the camera.
The focal length and camera distance follow from the image size, so the scene looks the same
at any resolution. The carton turns on the spot (a turntable) between other products that
stay put. This module holds the products, the shelf and the shadows (the camera and the painting
of textured faces are ``samples.geometry``); the textures themselves come from
``prodseg.producer.samples.artwork``. Every random choice comes from one ``numpy.random.Generator``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from prodseg.jsonio import dump_bytes
from prodseg.producer.samples.artwork import (
    bottle_art,
    box_art,
    can_art,
    carton_art,
    draw_text,
    jitter,
)
from prodseg.producer.samples.geometry import (
    Camera,
    Prop,
    box_faces,
    look_at,
    paint_faces,
    paint_turned,
)

SIDE_NAMES = ("front", "right", "back", "left")


@dataclass(frozen=True)
class RenderedView:
    """One photo of the spin set and its ground truth.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB.
        mask: ``(H, W)`` bool, the product's silhouette; all False if the product is absent.
        yaw_deg: how far the product is turned, in degrees (at 90 its right side faces the
            camera); None for a view of the shelf without the product.
        visible_sides: side name -> fraction of the visible product area; {} if absent.
    """

    image: np.ndarray
    mask: np.ndarray
    yaw_deg: float | None
    visible_sides: dict[str, float]


@dataclass(frozen=True)
class SpinSet:
    """The views of one capture and the click that says which product is meant.

    Attributes:
        views: the product views in yaw order, then the shelf-only views.
        reference_index: index into ``views`` of the view to click on (front facing).
        reference_point: ``(x, y)`` pixel on the front side's artwork of that view.
    """

    views: list[RenderedView]
    reference_index: int
    reference_point: tuple[int, int]


def _can_radius(t: np.ndarray) -> np.ndarray:
    """Radius in cm of a can at height fractions ``t``."""
    return np.full_like(t, 3.3, dtype=np.float32)


def _bottle_radius(t: np.ndarray) -> np.ndarray:
    """Radius in cm of a bottle at height fractions ``t``: body, shoulder, neck."""
    shoulder = np.clip((t - 0.55) / 0.2, 0, 1)
    return (3.8 - 2.4 * shoulder * shoulder * (3 - 2 * shoulder)).astype(np.float32)


def _distractors(rng: np.random.Generator, px_per_cm: float) -> list[Prop]:
    """Two to four other products, none sharing the carton's blue, sky, yellow or mint."""
    props = []
    for kind in rng.choice(4, size=int(rng.integers(2, 5)), replace=False):
        if kind == 0:  # a cola can
            label, lid = can_art(rng, 3.3, 12.2, px_per_cm)
            props.append(Prop(3.3, 12.2, [], 0.0, label, _can_radius, lid))
        elif kind == 1:  # a berry-juice bottle
            label, lid = bottle_art(rng, 3.8, 24.0, px_per_cm)
            props.append(Prop(3.8, 24.0, [], 0.0, label, _bottle_radius, lid))
        else:  # a cereal box or a tea box
            w, d, h = (13.0, 5.0, 24.0) if kind == 2 else (8.0, 6.0, 13.5)
            art = box_art(rng, "corn" if kind == 2 else "tea", w, d, h, px_per_cm)
            yaw = math.radians(rng.uniform(10, 25) * rng.choice([-1, 1]))
            half = (w * abs(math.cos(yaw)) + d * abs(math.sin(yaw))) / 2
            props.append(Prop(half, h, box_faces(w, d, h, art), yaw))
    return props


def _pack(half_widths: list[float], rng: np.random.Generator) -> np.ndarray:
    """x centres, cm, of objects standing side by side left to right with small gaps."""
    edges = np.cumsum([0.0] + [2 * hw for hw in half_widths])
    gaps = np.concatenate([[0.0], np.cumsum(rng.uniform(1.6, 2.3, len(half_widths) - 1))])
    centres = edges[:-1] + np.asarray(half_widths) + gaps
    return centres - (edges[-1] + gaps[-1]) / 2


def _shelf(rng: np.random.Generator, camera: Camera, size: tuple[int, int], plank_front: float,
           clearance: float) -> np.ndarray:
    """The empty shelf: back wall, shelf floor, price rails, goods on the shelf above.

    Returns:
        ``(H, W, 3)`` float32 RGB in [0, 255].
    """
    height, width = size
    back, front = camera.row(0, -15, height), camera.row(0, plank_front, height)
    rail, up = camera.row(-3.5, plank_front, height), camera.row(clearance, plank_front, height)
    up_rail = camera.row(clearance + 3.5, plank_front, height)
    ys = np.arange(height, dtype=np.float32)[:, None, None]
    noise = cv2.resize(rng.normal(0, 1, (12, 16)).astype(np.float32), (width, height),
                       interpolation=cv2.INTER_CUBIC)
    wall = np.array(jitter(rng, (148, 150, 156), 6), np.float32)
    image = wall * (0.8 + 0.2 * np.clip((ys - up) / (0.25 * height), 0, 1)) + 4 * noise[..., None]
    floor = np.clip((ys - back) / (0.015 * height) + 0.5, 0, 1)  # a soft wall-floor corner
    image = image * (1 - floor) + np.array([204, 204, 207], np.float32) * floor
    rail_colour = np.array(jitter(rng, (55, 58, 62), 5), np.float32)
    image[front:rail] = rail_colour
    image[rail:] = np.linspace(45, 22, height - rail)[:, None, None]
    image[up_rail:up] = rail_colour
    x = rng.uniform(-0.1, 0.05) * width
    while x < width and up_rail > 0:  # the goods standing on the shelf above
        step = rng.uniform(0.07, 0.16) * width
        tone = [(120, 80, 60), (150, 150, 150), (110, 40, 50), (95, 95, 88)][rng.integers(4)]
        image[:up_rail, max(round(x), 0):max(round(x + step), 0)] = jitter(rng, tone, 12)
        x += step + rng.uniform(0.005, 0.02) * width
    for top, bottom in ((front, rail), (up_rail, up)):  # price labels on both rails
        x = rng.uniform(0.02, 0.1) * width
        while x < 0.95 * width:
            y0, y1 = round(top + 0.2 * (bottom - top)), round(top + 0.8 * (bottom - top))
            label = np.full((max(1, y1 - y0), round(0.07 * width), 3), 238, np.uint8)
            price = f"{rng.integers(1, 9)}.{rng.integers(10, 99)}"
            draw_text(label, price, (0.1, 0.1, 0.9, 0.9), (20, 20, 20), 0.12)
            if y1 - y0 >= 4:
                image[y0:y1, round(x):round(x) + label.shape[1]] = label[:, : width - round(x)]
            x += rng.uniform(0.18, 0.3) * width
    return image


def _scene_base(camera: Camera, shelf: np.ndarray, props: list[Prop], centres: np.ndarray,
                light: np.ndarray, product_radius: float | None) -> np.ndarray:
    """The shelf with soft contact shadows and the distractors at ``centres`` (cm along x).

    Returns:
        ``(H, W, 3)`` float32 RGB; the carton's shadow is included when ``product_radius``
        is given, as the carton stands at x = 0.
    """
    footprints = [(float(x), p.half_width) for x, p in zip(centres, props, strict=True)]
    footprints += [(0.0, product_radius)] if product_radius else []
    shade = np.zeros(shelf.shape[:2], np.float32)
    scale = camera.focal / float(-camera.position @ camera.rotation[2])  # px per cm at x = 0
    for x, radius in footprints:
        (cx, cy), = camera.project(np.array([[x, 0.0, 0.0]]))
        axes = (round(1.2 * radius * scale), round(0.5 * radius * scale))
        cv2.ellipse(shade, (round(cx), round(cy)), axes, 0, 0, 360, 0.3, -1)
    blurred = cv2.GaussianBlur(shade, (0, 0), 0.012 * shelf.shape[1])
    image = shelf * (1 - blurred)[..., None]
    colour, alpha = np.zeros_like(image), np.zeros(image.shape[:2], np.float32)
    for x, prop in zip(centres, props, strict=True):
        position = np.array([x, 0.0, 0.0])
        if prop.faces:
            paint_faces(prop.faces, prop.yaw, position, camera, light, colour, alpha)
        else:
            paint_turned(prop, position, camera, light, colour, alpha)
    return _over(image, colour, alpha)


def _over(base: np.ndarray, colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """A premultiplied layer over a ``(H, W, 3)`` float32 image."""
    a = np.minimum(alpha, 1.0)[..., None]
    return colour / np.maximum(alpha, 1.0)[..., None] + base * (1 - a)


def _photo(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Slight lens blur and sensor noise: float32 -> ``(H, W, 3)`` uint8."""
    blurred = cv2.GaussianBlur(image, (0, 0), 0.0012 * image.shape[1])
    noisy = blurred + 2.5 * rng.standard_normal(image.shape, dtype=np.float32)
    return np.clip(noisy + 0.5, 0, 255).astype(np.uint8)


def render_spin_set(n_views: int = 12, height: int = 480, width: int = 640,
                    n_distractor_only: int = 2, seed: int = 0,
                    offset: tuple[float, float] = (0.0, 0.0)) -> SpinSet:
    """Render a milk carton turning on a shelf between other products, with ground truth.

    Args:
        n_views: product views, ``360 / n_views`` degrees apart; view 0 shows the front.
        height: image height in pixels.
        width: image width in pixels.
        n_distractor_only: extra views of the shelf with the other products rearranged and
            no carton.
        seed: seeds the ``numpy.random.Generator`` behind every random choice.
        offset: where the carton stands in the frame, as fractions of the width and the
            height from the centre (x right, y down): the camera looks past it.

    Returns:
        The views (product views first) and a click on the front of view 0.
    """
    if n_views < 1 or n_distractor_only < 0 or min(height, width) < 32:
        raise ValueError("need n_views >= 1, n_distractor_only >= 0 and an image of 32x32 or more")
    rng = np.random.default_rng(seed)
    w = rng.uniform(6.6, 7.4)
    d, h = w * rng.uniform(0.95, 1.05), rng.uniform(18.5, 20.0)
    gable = 0.45 * d
    focal = 1.15 * width
    distance = focal * (h + gable) / (0.5 * height)  # the carton fills half the height
    elevation = math.radians(rng.uniform(11, 16))
    cm_per_px = distance / focal  # at the carton
    target = np.array([-offset[0] * width * cm_per_px,
                       0.55 * (h + gable) + offset[1] * height * cm_per_px, 0.0])
    view_dir = np.array([0.0, math.sin(elevation), math.cos(elevation)])
    camera = look_at(target + distance * view_dir, target, focal, (height, width))
    light = np.array([-0.45 + rng.uniform(-0.1, 0.1), 0.75, 0.55])
    light /= np.linalg.norm(light)
    px_per_cm = 1.5 * focal / distance  # textures a little finer than the screen
    carton = box_faces(w, d, h, carton_art(rng, w, d, h, gable, px_per_cm), gable)
    product_radius = math.hypot(w, d) / 2
    props = _distractors(rng, px_per_cm)
    tallest = max([h + gable] + [p.height for p in props])
    shelf = _shelf(rng, camera, (height, width), product_radius + 6.0, tallest + 2.5)
    n_left = (len(props) + int(rng.integers(0, 2))) // 2
    halves = [p.half_width for p in props]
    centres = _pack([*halves[:n_left], product_radius, *halves[n_left:]], rng)
    centres -= centres[n_left]
    base = _scene_base(camera, shelf, props, np.delete(centres, n_left), light, product_radius)
    views = []
    for k in range(n_views):
        yaw = 360.0 * k / n_views
        colour, alpha = np.zeros_like(base), np.zeros((height, width), np.float32)
        counts = paint_faces(carton, math.radians(yaw), np.zeros(3), camera, light, colour, alpha)
        total = max(1, sum(counts.values()))
        sides = {side: counts.get(side, 0) / total for side in SIDE_NAMES}
        image = _photo(_over(base, colour, alpha), rng)
        views.append(RenderedView(image, alpha >= 0.5, yaw, sides))
    for _ in range(n_distractor_only):
        moved = [props[i] for i in rng.permutation(len(props))]
        centres = _pack([p.half_width for p in moved], rng)
        image = _photo(_scene_base(camera, shelf, moved, centres, light, None), rng)
        views.append(RenderedView(image, np.zeros((height, width), bool), None, {}))
    (x, y), = camera.project(np.array([[0.0, 0.52 * h, d / 2]]))  # plain blue, under "MILK"
    return SpinSet(views, 0, (round(float(x)), round(float(y))))


def write_sample_set(out_dir: Path, spin: SpinSet) -> Path:
    """Write a spin set as images, ground-truth masks and a ``sample.json`` index.

    Product views go to ``images/view_000.jpg`` ..., shelf-only views to
    ``images/shelf_000.jpg`` ... (JPEG quality 92); each mask to ``ground_truth/<stem>.png``
    (uint8, 0 or 255). ``sample.json`` holds the reference image, the click and, per view,
    the image, mask, yaw and visible sides, with paths relative to ``out_dir``.

    Args:
        out_dir: the folder to write into; created if missing.
        spin: the rendered spin set.

    Returns:
        The path of ``sample.json``.
    """
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    (out_dir / "ground_truth").mkdir(parents=True, exist_ok=True)
    entries: list[dict[str, object]] = []
    counters = {"view": 0, "shelf": 0}
    for view in spin.views:
        kind = "shelf" if view.yaw_deg is None else "view"
        stem = f"{kind}_{counters[kind]:03d}"
        counters[kind] += 1
        Image.fromarray(view.image).save(out_dir / "images" / f"{stem}.jpg", quality=92)
        mask = Image.fromarray(view.mask.astype(np.uint8) * 255)
        mask.save(out_dir / "ground_truth" / f"{stem}.png")
        entries.append({"image": f"images/{stem}.jpg", "mask": f"ground_truth/{stem}.png",
                        "yaw_deg": view.yaw_deg, "visible_sides": view.visible_sides})
    index = {"reference": entries[spin.reference_index]["image"],
             "reference_point": list(spin.reference_point), "views": entries}
    path = out_dir / "sample.json"
    path.write_bytes(dump_bytes(index))
    return path
