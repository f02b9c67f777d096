"""A rendered spin set: a milk carton turning on a cluttered supermarket shelf, with ground truth.

It stands in for a real capture wherever no photos are at hand (tests, demos, benchmarks).
Lengths in the scene are centimetres; world axes are x right, y up and z towards the camera.
The focal length and camera distance follow from the image size, so the scene looks the same
at any resolution. The carton turns on the spot (a turntable) between other products that
stay put. This module holds the camera, the products' geometry, the shelf, the shadows and the
painting of textured faces into the image; the textures themselves come from
``prodseg.producer.samples.artwork``. Every random choice comes from one ``numpy.random.Generator``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from prodseg.producer.samples.artwork import (
    Colour,
    bottle_art,
    box_art,
    can_art,
    carton_art,
    draw_text,
    jitter,
)

SIDE_NAMES = ("front", "right", "back", "left")
_AMBIENT, _DIFFUSE = 0.5, 0.55  # Lambertian shading: ambient + diffuse * max(0, normal . light)


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


@dataclass(frozen=True)
class _Camera:
    position: np.ndarray  # (3,) float64, world cm
    rotation: np.ndarray  # (3, 3) float64, rows: camera right, up, forward in world axes
    focal: float  # pixels
    centre: tuple[float, float]  # principal point, pixels

    def project(self, points: np.ndarray) -> np.ndarray:
        """``(N, 3)`` world points -> ``(N, 2)`` float32 pixels (x right, y down)."""
        cam = (np.asarray(points, np.float64) - self.position) @ self.rotation.T
        x = self.centre[0] + self.focal * cam[:, 0] / cam[:, 2]
        y = self.centre[1] - self.focal * cam[:, 1] / cam[:, 2]
        return np.stack([x, y], axis=1).astype(np.float32)

    def row(self, y: float, z: float, height: int) -> int:
        """Image row of the world line at height ``y`` and depth ``z``, clipped to the image."""
        return int(np.clip(round(float(self.project(np.array([[0.0, y, z]]))[0, 1])), 0, height))


@dataclass(frozen=True)
class _Face:
    side: str  # the side of the object the face belongs to
    corners: np.ndarray  # (4, 3) texture's top-left, top-right, bottom-right, bottom-left
    outline: np.ndarray  # (K, 3) the painted polygon, in the corners' plane
    texture: np.ndarray  # (th, tw, 3) float32 RGB


@dataclass(frozen=True)
class _Prop:
    """A distractor: a box (``faces``) or a body of revolution (``texture``, ``radius``)."""

    half_width: float  # half its extent along x, cm
    height: float
    faces: list[_Face]
    yaw: float = 0.0  # radians
    texture: np.ndarray | None = None  # label wrapped around the visible half
    radius: Callable[[np.ndarray], np.ndarray] | None = None  # height fraction -> radius, cm
    cap: Colour | None = None


def _look_at(position: np.ndarray, target: np.ndarray, focal: float, size: tuple[int, int]
             ) -> _Camera:
    """A level camera at ``position`` looking at ``target``; ``size`` is (H, W) pixels."""
    forward = (target - position) / np.linalg.norm(target - position)
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return _Camera(position, np.stack([right, up, forward]), focal, (size[1] / 2, size[0] / 2))


def _box_faces(w: float, d: float, h: float, art: dict[str, np.ndarray], gable: float = 0.0
               ) -> list[_Face]:
    """The faces of a box standing on y = 0, centred on the y axis, front towards +z.

    With ``gable`` > 0 it has a milk-carton roof: slopes that continue the front and back,
    triangles that continue the sides. Otherwise it has a flat top (``art["top"]``).
    """
    x, z, g = w / 2, d / 2, gable
    quads = {
        "front": [(-x, h, z), (x, h, z), (x, 0, z), (-x, 0, z)],
        "right": [(x, h, z), (x, h, -z), (x, 0, -z), (x, 0, z)],
        "back": [(x, h, -z), (-x, h, -z), (-x, 0, -z), (x, 0, -z)],
        "left": [(-x, h, -z), (-x, h, z), (-x, 0, z), (-x, 0, -z)],
        "front_roof": [(-x, h + g, 0), (x, h + g, 0), (x, h, z), (-x, h, z)],
        "back_roof": [(x, h + g, 0), (-x, h + g, 0), (-x, h, -z), (x, h, -z)],
        "top": [(-x, h, -z), (x, h, -z), (x, h, z), (-x, h, z)],
    }
    names = ["front", "right", "back", "left"] + (["front_roof", "back_roof"] if g > 0 else ["top"])
    faces = [_Face(n.split("_")[0], np.array(quads[n], float), np.array(quads[n], float), art[n])
             for n in names]
    for side, sx, sz in (("right", x, z), ("left", -x, -z)) if g > 0 else ():
        rect = np.array([(sx, h + g, sz), (sx, h + g, -sz), (sx, h, -sz), (sx, h, sz)], float)
        triangle = np.array([(sx, h, sz), (sx, h, -sz), (sx, h + g, 0)], float)
        faces.append(_Face(side, rect, triangle, art[f"{side}_gable"]))
    return faces


def _paint_faces(faces: list[_Face], yaw: float, position: np.ndarray, camera: _Camera,
                 light: np.ndarray, colour: np.ndarray, alpha: np.ndarray) -> dict[str, int]:
    """Add the camera-facing faces of a convex object to a premultiplied layer.

    Args:
        faces: the object's faces in its own frame.
        yaw: turn about the vertical axis, radians (positive turns the right side to view).
        position: ``(3,)`` where the object's origin goes, world cm.
        camera: the view.
        light: ``(3,)`` unit vector towards the light.
        colour: ``(H, W, 3)`` float32 premultiplied colour, added to in place.
        alpha: ``(H, W)`` float32 coverage, added to in place.

    Returns:
        side name -> number of pixels the side covers at least half.
    """
    c, s = math.cos(yaw), math.sin(yaw)
    turn = np.array([[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]])
    counts: dict[str, int] = {}
    height, width = alpha.shape
    for face in faces:
        corners, outline = face.corners @ turn.T + position, face.outline @ turn.T + position
        normal = np.cross(corners[3] - corners[0], corners[1] - corners[0])
        normal /= np.linalg.norm(normal)
        if normal @ (camera.position - outline.mean(axis=0)) <= 1e-6:
            continue  # faces away from the camera: hidden, as the object is convex
        quad_px, outline_px = camera.project(corners), camera.project(outline)
        x0, y0 = np.maximum(np.floor(outline_px.min(axis=0)).astype(int) - 1, 0)
        x1, y1 = np.minimum(np.ceil(outline_px.max(axis=0)).astype(int) + 2, (width, height))
        if x1 <= x0 or y1 <= y0:
            continue
        th, tw = face.texture.shape[:2]
        src = np.array([[0, 0], [tw, 0], [tw, th], [0, th]], np.float32)
        hom = cv2.getPerspectiveTransform(src, quad_px - np.array([x0, y0], np.float32))
        warped = cv2.warpPerspective(face.texture, hom, (int(x1 - x0), int(y1 - y0)),
                                     flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        cover = np.zeros((y1 - y0, x1 - x0), np.uint8)
        points = np.round((outline_px - [x0, y0]) * 16).astype(np.int32)
        cv2.fillPoly(cover, [points], 255, cv2.LINE_AA, shift=4)
        a = cover.astype(np.float32) / 255.0
        shade = _AMBIENT + _DIFFUSE * max(0.0, float(normal @ light))
        colour[y0:y1, x0:x1] += warped * (a * shade)[..., None]
        alpha[y0:y1, x0:x1] += a
        counts[face.side] = counts.get(face.side, 0) + int((a >= 0.5).sum())
    return counts


def _paint_turned(prop: _Prop, position: np.ndarray, camera: _Camera, light: np.ndarray,
                  colour: np.ndarray, alpha: np.ndarray) -> None:
    """Add a can or bottle to a premultiplied layer (arguments as for ``_paint_faces``)."""
    assert prop.texture is not None and prop.radius is not None
    top = position + np.array([0.0, prop.height, 0.0])
    (bx, by), (tx, ty) = camera.project(np.stack([position, top]))
    depth = float(((position + top) / 2 - camera.position) @ camera.rotation[2])
    to_cam = (camera.position - position) * [1.0, 0.0, 1.0]
    to_cam /= np.linalg.norm(to_cam)
    right = np.array([to_cam[2], 0.0, -to_cam[0]])
    tilt = [float((camera.position - p)[1] / np.linalg.norm(camera.position - p))
            for p in (position, top)]  # how flat the rim ellipses look
    half_bottom, half_top = (camera.focal * float(prop.radius(np.array(v))) / depth for v in (0, 1))
    r_max = float(prop.radius(np.linspace(0, 1, 64)).max()) * camera.focal / depth
    height, width = alpha.shape
    x0, x1 = max(int(min(bx, tx) - r_max) - 2, 0), min(int(max(bx, tx) + r_max) + 3, width)
    y0, y1 = max(int(ty - r_max * tilt[1]) - 2, 0), min(int(by + r_max * tilt[0]) + 3, height)
    if x1 <= x0 or y1 <= y0:
        return
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    t = (by - ys) / (by - ty)  # height fraction, linear in the row
    half = camera.focal * prop.radius(np.clip(t, 0, 1)) / depth
    u = (xs - (bx + (tx - bx) * t)) / half  # -1 .. 1 across the body
    root = np.sqrt(np.clip(1 - u * u, 0, 1))
    inside = (ys >= ty + tilt[1] * half_top * root) & (ys <= by + tilt[0] * half_bottom * root)
    a = np.clip((1 - np.abs(u)) * half + 0.5, 0, 1) * inside
    th, tw = prop.texture.shape[:2]
    phi = np.arcsin(np.clip(u, -1, 1))
    map_x = ((phi / np.pi + 0.5) * (tw - 1)).astype(np.float32)
    map_y = ((1 - np.clip(t, 0, 1)) * (th - 1)).astype(np.float32)
    tex = cv2.remap(prop.texture, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    n_dot_l = np.sin(phi) * (right @ light) + np.cos(phi) * (to_cam @ light)
    halfway = (light + to_cam) / np.linalg.norm(light + to_cam)
    gloss = np.clip(np.sin(phi) * (right @ halfway) + np.cos(phi) * (to_cam @ halfway), 0, 1) ** 30
    rgb = tex * (_AMBIENT + _DIFFUSE * np.clip(n_dot_l, 0, 1))[..., None] + 90 * gloss[..., None]
    rgb *= a[..., None]
    if prop.cap is not None:  # the lid, an ellipse seen from slightly above
        cap = np.zeros(a.shape, np.uint8)
        axes = (max(1, round(half_top)), max(1, round(half_top * tilt[1])))
        cv2.ellipse(cap, (round(tx - x0), round(ty - y0)), axes, 0, 0, 360, 255, -1, cv2.LINE_AA)
        c = cap.astype(np.float32) / 255.0
        lid = np.array(prop.cap, np.float32) * (_AMBIENT + _DIFFUSE * max(0.0, float(light[1])))
        rgb, a = rgb * (1 - c[..., None]) + lid * c[..., None], a * (1 - c) + c
    colour[y0:y1, x0:x1] += rgb
    alpha[y0:y1, x0:x1] += a


def _can_radius(t: np.ndarray) -> np.ndarray:
    """Radius in cm of a can at height fractions ``t``."""
    return np.full_like(t, 3.3, dtype=np.float32)


def _bottle_radius(t: np.ndarray) -> np.ndarray:
    """Radius in cm of a bottle at height fractions ``t``: body, shoulder, neck."""
    shoulder = np.clip((t - 0.55) / 0.2, 0, 1)
    return (3.8 - 2.4 * shoulder * shoulder * (3 - 2 * shoulder)).astype(np.float32)


def _distractors(rng: np.random.Generator, px_per_cm: float) -> list[_Prop]:
    """Two to four other products, none sharing the carton's blue, sky, yellow or mint."""
    props = []
    for kind in rng.choice(4, size=int(rng.integers(2, 5)), replace=False):
        if kind == 0:  # a cola can
            label, lid = can_art(rng, 3.3, 12.2, px_per_cm)
            props.append(_Prop(3.3, 12.2, [], 0.0, label, _can_radius, lid))
        elif kind == 1:  # a berry-juice bottle
            label, lid = bottle_art(rng, 3.8, 24.0, px_per_cm)
            props.append(_Prop(3.8, 24.0, [], 0.0, label, _bottle_radius, lid))
        else:  # a cereal box or a tea box
            w, d, h = (13.0, 5.0, 24.0) if kind == 2 else (8.0, 6.0, 13.5)
            art = box_art(rng, "corn" if kind == 2 else "tea", w, d, h, px_per_cm)
            yaw = math.radians(rng.uniform(10, 25) * rng.choice([-1, 1]))
            half = (w * abs(math.cos(yaw)) + d * abs(math.sin(yaw))) / 2
            props.append(_Prop(half, h, _box_faces(w, d, h, art), yaw))
    return props


def _pack(half_widths: list[float], rng: np.random.Generator) -> np.ndarray:
    """x centres, cm, of objects standing side by side left to right with small gaps."""
    edges = np.cumsum([0.0] + [2 * hw for hw in half_widths])
    gaps = np.concatenate([[0.0], np.cumsum(rng.uniform(1.6, 2.3, len(half_widths) - 1))])
    centres = edges[:-1] + np.asarray(half_widths) + gaps
    return centres - (edges[-1] + gaps[-1]) / 2


def _shelf(rng: np.random.Generator, camera: _Camera, size: tuple[int, int], plank_front: float,
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


def _scene_base(camera: _Camera, shelf: np.ndarray, props: list[_Prop], centres: np.ndarray,
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
            _paint_faces(prop.faces, prop.yaw, position, camera, light, colour, alpha)
        else:
            _paint_turned(prop, position, camera, light, colour, alpha)
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
                    n_distractor_only: int = 2, seed: int = 0) -> SpinSet:
    """Render a milk carton turning on a shelf between other products, with ground truth.

    Args:
        n_views: product views, ``360 / n_views`` degrees apart; view 0 shows the front.
        height: image height in pixels.
        width: image width in pixels.
        n_distractor_only: extra views of the shelf with the other products rearranged and
            no carton.
        seed: seeds the ``numpy.random.Generator`` behind every random choice.

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
    target = np.array([0.0, 0.55 * (h + gable), 0.0])
    view_dir = np.array([0.0, math.sin(elevation), math.cos(elevation)])
    camera = _look_at(target + distance * view_dir, target, focal, (height, width))
    light = np.array([-0.45 + rng.uniform(-0.1, 0.1), 0.75, 0.55])
    light /= np.linalg.norm(light)
    px_per_cm = 1.5 * focal / distance  # textures a little finer than the screen
    carton = _box_faces(w, d, h, carton_art(rng, w, d, h, gable, px_per_cm), gable)
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
        counts = _paint_faces(carton, math.radians(yaw), np.zeros(3), camera, light, colour, alpha)
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
    path.write_text(json.dumps(index, indent=2) + "\n")
    return path
