"""A small renderer for the sample scenes: a pinhole camera, textured box faces and
turned solids (cans, bottles), Lambertian shading, painted into an image.

Lengths are centimetres; world axes are x right, y up and z towards the camera.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from prodseg.producer.samples.artwork import Colour

AMBIENT, DIFFUSE = 0.5, 0.55  # Lambertian shading: ambient + diffuse * max(0, normal . light)


@dataclass(frozen=True)
class Camera:
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
class Face:
    side: str  # the side of the object the face belongs to
    corners: np.ndarray  # (4, 3) texture's top-left, top-right, bottom-right, bottom-left
    outline: np.ndarray  # (K, 3) the painted polygon, in the corners' plane
    texture: np.ndarray  # (th, tw, 3) float32 RGB


@dataclass(frozen=True)
class Prop:
    """A distractor: a box (``faces``) or a body of revolution (``texture``, ``radius``)."""

    half_width: float  # half its extent along x, cm
    height: float
    faces: list[Face]
    yaw: float = 0.0  # radians
    texture: np.ndarray | None = None  # label wrapped around the visible half
    radius: Callable[[np.ndarray], np.ndarray] | None = None  # height fraction -> radius, cm
    cap: Colour | None = None


def look_at(position: np.ndarray, target: np.ndarray, focal: float, size: tuple[int, int]
             ) -> Camera:
    """A level camera at ``position`` looking at ``target``; ``size`` is (H, W) pixels."""
    forward = (target - position) / np.linalg.norm(target - position)
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return Camera(position, np.stack([right, up, forward]), focal, (size[1] / 2, size[0] / 2))


def box_faces(w: float, d: float, h: float, art: dict[str, np.ndarray], gable: float = 0.0
               ) -> list[Face]:
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
    faces = [Face(n.split("_")[0], np.array(quads[n], float), np.array(quads[n], float), art[n])
             for n in names]
    for side, sx, sz in (("right", x, z), ("left", -x, -z)) if g > 0 else ():
        rect = np.array([(sx, h + g, sz), (sx, h + g, -sz), (sx, h, -sz), (sx, h, sz)], float)
        triangle = np.array([(sx, h, sz), (sx, h, -sz), (sx, h + g, 0)], float)
        faces.append(Face(side, rect, triangle, art[f"{side}_gable"]))
    return faces


def paint_faces(faces: list[Face], yaw: float, position: np.ndarray, camera: Camera,
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
        shade = AMBIENT + DIFFUSE * max(0.0, float(normal @ light))
        colour[y0:y1, x0:x1] += warped * (a * shade)[..., None]
        alpha[y0:y1, x0:x1] += a
        counts[face.side] = counts.get(face.side, 0) + int((a >= 0.5).sum())
    return counts


def paint_turned(prop: Prop, position: np.ndarray, camera: Camera, light: np.ndarray,
                  colour: np.ndarray, alpha: np.ndarray) -> None:
    """Add a can or bottle to a premultiplied layer (arguments as for ``paint_faces``)."""
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
    rgb = tex * (AMBIENT + DIFFUSE * np.clip(n_dot_l, 0, 1))[..., None] + 90 * gloss[..., None]
    rgb *= a[..., None]
    if prop.cap is not None:  # the lid, an ellipse seen from slightly above
        cap = np.zeros(a.shape, np.uint8)
        axes = (max(1, round(half_top)), max(1, round(half_top * tilt[1])))
        cv2.ellipse(cap, (round(tx - x0), round(ty - y0)), axes, 0, 0, 360, 255, -1, cv2.LINE_AA)
        c = cap.astype(np.float32) / 255.0
        lid = np.array(prop.cap, np.float32) * (AMBIENT + DIFFUSE * max(0.0, float(light[1])))
        rgb, a = rgb * (1 - c[..., None]) + lid * c[..., None], a * (1 - c) + c
    colour[y0:y1, x0:x1] += rgb
    alpha[y0:y1, x0:x1] += a
