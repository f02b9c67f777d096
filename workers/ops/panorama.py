"""Equirectangular panoramas: perspective tiles, projections between them, seam-safe boxes.

A 360° camera writes a ``(H, W)`` equirectangular image (``W ≈ 2 H``:
``is_panorama_size``). Pixel coordinates are continuous with integers at pixel centres
(as in ``cv2.remap``): column ``x`` in
``[-0.5, W - 0.5)`` is the longitude (yaw) ``θ = (x + 0.5) / W · 2π − π`` and row ``y`` in
``[-0.5, H - 0.5)`` the latitude (pitch) ``φ = π/2 − (y + 0.5) / H · π``. Yaw 0 is the
image's middle, yaw grows to the right and the left/right edges meet at yaw ±180° (the
seam); pitch +90° is the top row. The unit direction of ``(θ, φ)`` is
``(cos φ sin θ, sin φ, cos φ cos θ)``: x right, y up, z forward (yaw 0, pitch 0).

A ``Tile`` is a square pinhole (gnomonic) view of ``size`` pixels and ``fov`` degrees,
looking at ``(yaw, pitch)``; its right axis is horizontal, so it is never rolled. Tile
pixel ``(u, v)`` (integers at centres, v down) is the ray ``forward + a right + b up``
with ``a = (u + 0.5 − size/2) / f``, ``b = −(v + 0.5 − size/2) / f`` and
``f = size / 2 / tan(fov / 2)``. Segmenters made for ordinary photos run on tiles
(``workers.segment.panorama``); their masks come back to the panorama, where an object on the
seam is one mask in two pieces at the left and right edges (``ops.seam`` gives its box as
one interval on the circle).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

Shape = tuple[int, int]  # (H, W) of a panorama

@dataclass(frozen=True)
class Tile:
    """A square perspective view of the panorama.

    Attributes:
        yaw: where it looks, degrees (0 = panorama centre, + right, ±180 = seam).
        pitch: where it looks, degrees (+ up).
        fov: horizontal and vertical field of view, degrees (below 180).
        size: side in pixels.
    """

    yaw: float
    pitch: float
    fov: float
    size: int


@dataclass(frozen=True)
class Footprint:
    """The panorama pixels a tile sees and the tile pixel nearest each one, in raster order.

    Attributes:
        rows, cols: ``(K,)`` int64 panorama pixels inside the tile's field of view.
        tile_rows, tile_cols: ``(K,)`` int64 nearest tile pixel of each.
    """

    rows: np.ndarray
    cols: np.ndarray
    tile_rows: np.ndarray
    tile_cols: np.ndarray


# -- directions and pixels --------------------------------------------------------------


def pixel_to_angles(x: npt.ArrayLike, y: npt.ArrayLike, shape: Shape
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Panorama pixels (any shape, float) -> ``(yaw, pitch)`` in radians."""
    h, w = shape
    return ((np.asarray(x, np.float64) + 0.5) / w * 2 * np.pi - np.pi,
            np.pi / 2 - (np.asarray(y, np.float64) + 0.5) / h * np.pi)


def angles_to_pixel(yaw: npt.ArrayLike, pitch: npt.ArrayLike, shape: Shape
                    ) -> tuple[np.ndarray, np.ndarray]:
    """``(yaw, pitch)`` radians -> panorama ``(x, y)``, x wrapped into ``[-0.5, W - 0.5)``."""
    h, w = shape
    x = np.mod((np.asarray(yaw, np.float64) + np.pi) / (2 * np.pi) * w, w) - 0.5
    return x, (np.pi / 2 - np.asarray(pitch, np.float64)) / np.pi * h - 0.5


def angles_to_vectors(yaw: npt.ArrayLike, pitch: npt.ArrayLike) -> np.ndarray:
    """``(yaw, pitch)`` radians, shape S -> unit directions ``S + (3,)`` float64."""
    cp = np.cos(pitch)
    return np.stack([cp * np.sin(yaw), np.sin(pitch) * np.ones_like(yaw), cp * np.cos(yaw)], -1)


def vectors_to_angles(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Directions ``(..., 3)`` (any length) -> ``(yaw, pitch)`` radians."""
    norm = np.linalg.norm(v, axis=-1)
    return np.arctan2(v[..., 0], v[..., 2]), np.arcsin(np.clip(v[..., 1] / norm, -1.0, 1.0))


def tile_basis(tile: Tile) -> np.ndarray:
    """``(3, 3)`` float64 rows: the tile's right, up and forward unit vectors."""
    yaw, pitch = math.radians(tile.yaw), math.radians(tile.pitch)
    forward = angles_to_vectors(np.float64(yaw), np.float64(pitch))
    right = np.array([math.cos(yaw), 0.0, -math.sin(yaw)])
    return np.stack([right, np.cross(forward, right), forward])


def _focal(tile: Tile) -> float:
    return tile.size / 2 / math.tan(math.radians(tile.fov) / 2)


def tile_to_vectors(u: npt.ArrayLike, v: npt.ArrayLike, tile: Tile) -> np.ndarray:
    """Tile pixels ``(u, v)`` (any shape S, float) -> ``S + (3,)`` float64 rays (not unit)."""
    f, half = _focal(tile), tile.size / 2
    a = (np.asarray(u, np.float64) + 0.5 - half) / f
    b = -(np.asarray(v, np.float64) + 0.5 - half) / f
    right, up, forward = tile_basis(tile)
    return forward + a[..., None] * right + b[..., None] * up


def tile_rays(tile: Tile) -> np.ndarray:
    """``(size, size, 3)`` float64 rays (not unit) of the tile's pixel centres."""
    v, u = np.mgrid[0:tile.size, 0:tile.size]
    return tile_to_vectors(u, v, tile)


def vectors_to_tile(v: np.ndarray, tile: Tile) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Directions ``(..., 3)`` -> tile ``(u, v)`` float64 and ``inside`` bool, same shape.

    ``inside`` holds where the direction is in the tile's field of view (``u`` and ``v`` in
    ``[-0.5, size - 0.5]``); elsewhere ``u`` and ``v`` are meaningless.
    """
    cam = v @ tile_basis(tile).T
    z = cam[..., 2]
    safe = np.where(z > 1e-9, z, 1.0)
    f, half = _focal(tile), tile.size / 2
    u = cam[..., 0] / safe * f + half - 0.5
    vv = -cam[..., 1] / safe * f + half - 0.5
    lim = tile.size - 0.5
    inside = (z > 1e-9) & (u >= -0.5) & (u <= lim) & (vv >= -0.5) & (vv <= lim)
    return u, vv, inside


def angular_margin(v: np.ndarray, tile: Tile) -> np.ndarray:
    """Signed angle, degrees, from directions ``(..., 3)`` to the tile's nearest edge.

    Positive inside the field of view: a margin of ``m`` means the whole cap of radius
    ``m`` around the direction is inside the tile.
    """
    right, up, forward = tile_basis(tile)
    t = math.tan(math.radians(tile.fov) / 2)
    normals = np.stack([t * forward - right, t * forward + right, t * forward - up,
                        t * forward + up]) / math.sqrt(1 + t * t)
    unit = v / np.linalg.norm(v, axis=-1, keepdims=True)
    return np.degrees(np.arcsin(np.clip(unit @ normals.T, -1, 1))).min(axis=-1)


def panorama_point_to_tile(x: float, y: float, tile: Tile, shape: Shape
                           ) -> tuple[float, float] | None:
    """Panorama pixel -> tile pixel ``(u, v)``, or None when the tile does not see it."""
    d = angles_to_vectors(*pixel_to_angles(np.float64(x), np.float64(y), shape))
    u, v, inside = vectors_to_tile(d, tile)
    return (float(u), float(v)) if bool(inside) else None


def tile_point_to_panorama(u: float, v: float, tile: Tile, shape: Shape) -> tuple[float, float]:
    """Tile pixel ``(u, v)`` -> panorama ``(x, y)``, x in ``[-0.5, W - 0.5)``."""
    x, y = angles_to_pixel(*vectors_to_angles(tile_to_vectors(u, v, tile)), shape)
    return float(x), float(y)


# -- tiles ----------------------------------------------------------------------------


def tile_layout(fov_deg: float = 90.0, overlap_deg: float = 30.0, size: int = 512,
                max_abs_pitch_deg: float = 90.0, yaw_offset_deg: float = 0.0) -> list[Tile]:
    """Overlapping tiles covering the sphere (or the band ``|pitch| <= max_abs_pitch_deg``).

    With ``s = fov − overlap``, rings sit at pitches ``0, ±d, ±2d, ...`` with
    ``d = 90 / ceil(90 / s) <= s``, and a tile looks at each pole. A ring has enough tiles
    that neighbours are at most ``s`` apart where its band (``±d/2`` around it) is widest.
    Neighbouring tiles' centres are therefore at most ``s`` apart, so they overlap by at
    least ``overlap`` along the arc joining them (a tile holds the cone of half-angle
    ``fov / 2``). An object of angular radius up to about ``0.45 overlap`` is whole in some
    tile (``angular_margin``; for the defaults, 14.2° of the 15° half-overlap).

    Args:
        fov_deg: each tile's field of view, degrees, in (0, 180).
        overlap_deg: angular overlap of neighbouring tiles, degrees, in [0, fov).
        size: tile side, pixels (``native_tile_size`` matches the panorama's resolution).
        max_abs_pitch_deg: leave out rings (and poles) whose band lies wholly beyond it.
        yaw_offset_deg: yaw of each ring's first tile.

    Returns:
        Tiles ring by ring from the equator out (upper ring before lower), each ring from
        ``yaw_offset_deg`` rightwards with yaws in [-180, 180); the poles last.
    """
    if not 0 < fov_deg < 180 or not 0 <= overlap_deg < fov_deg:
        raise ValueError(f"need 0 < fov < 180 and 0 <= overlap < fov, got {fov_deg}, "
                         f"{overlap_deg}")
    step = fov_deg - overlap_deg
    rings = math.ceil(90 / step - 1e-9)
    spacing = 90 / rings
    tiles: list[Tile] = []
    for j in range(rings):
        pitch = j * spacing
        if pitch - spacing / 2 > max_abs_pitch_deg:
            break
        widest = math.cos(math.radians(max(0.0, pitch - spacing / 2)))
        n = max(3, math.ceil(360 * widest / step - 1e-9))
        for sign in (1, -1) if j else (1,):
            tiles += [Tile((yaw_offset_deg + 360 * k / n + 180) % 360 - 180, sign * pitch,
                           fov_deg, size)
                      for k in range(n)]
    if 90 - spacing / 2 <= max_abs_pitch_deg:
        tiles += [Tile(0.0, 90.0, fov_deg, size), Tile(0.0, -90.0, fov_deg, size)]
    return tiles


def native_tile_size(pano_width: int, fov_deg: float, multiple: int = 16) -> int:
    """Tile side whose centre has the panorama's pixels per degree, rounded up to ``multiple``."""
    return int(math.ceil(pano_width * fov_deg / 360 / multiple) * multiple)


def tile_maps(tile: Tile, shape: Shape) -> tuple[np.ndarray, np.ndarray]:
    """``cv2.remap`` maps from the panorama to the tile.

    Returns:
        ``map_x`` and ``map_y``, ``(size, size)`` float32 panorama coordinates; x is in
        ``[-0.5, W - 0.5)`` and wraps (sample with ``render_tile``, which pads the seam).
    """
    x, y = angles_to_pixel(*vectors_to_angles(tile_rays(tile)), shape)
    return x.astype(np.float32), y.astype(np.float32)


def render_tile(pano: np.ndarray, tile: Tile, pad: int = 4) -> np.ndarray:
    """The tile's view of a ``(H, W, C)`` or ``(H, W)`` panorama, bilinear, seam-safe.

    Returns:
        ``(size, size, C)`` (or ``(size, size)``), the panorama's dtype.
    """
    map_x, map_y = tile_maps(tile, (pano.shape[0], pano.shape[1]))
    padded = np.concatenate([pano[:, -pad:], pano, pano[:, :pad]], axis=1)
    return cv2.remap(padded, map_x + pad, map_y, cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def tile_footprint(tile: Tile, shape: Shape) -> Footprint:
    """Which panorama pixels a tile sees and their nearest tile pixels.

    Only the rows and columns within the tile's circumscribed cone are examined.
    """
    h, w = shape
    reach = math.degrees(math.atan(math.sqrt(2) * math.tan(math.radians(tile.fov) / 2))) + 1
    pitch_hi, pitch_lo = min(90.0, tile.pitch + reach), max(-90.0, tile.pitch - reach)
    rows = np.arange(max(0, int((90 - pitch_hi) / 180 * h) - 1),
                     min(h, math.ceil((90 - pitch_lo) / 180 * h) + 1))
    if pitch_hi >= 90 or pitch_lo <= -90:
        cols = np.arange(w)
    else:
        half = min(180.0, math.degrees(math.asin(min(1.0, math.sin(math.radians(reach)) /
                                                     math.cos(math.radians(tile.pitch))))))
        centre = (tile.yaw + 180) / 360 * w
        span = math.ceil(half / 360 * w) + 2
        cols = np.unique(np.arange(int(centre) - span, int(centre) + span + 1) % w)
    yy, xx = np.meshgrid(rows, cols, indexing="ij")
    u, v, inside = vectors_to_tile(angles_to_vectors(*pixel_to_angles(xx, yy, shape)), tile)
    last = tile.size - 1
    return Footprint(yy[inside], xx[inside], np.clip(np.rint(v[inside]), 0, last).astype(np.int64),
                     np.clip(np.rint(u[inside]), 0, last).astype(np.int64))


def tile_mask_to_panorama(mask: np.ndarray, tile: Tile, shape: Shape,
                          footprint: Footprint | None = None) -> np.ndarray:
    """A tile mask on the panorama: each pixel the tile sees takes its nearest tile pixel.

    Args:
        mask: ``(size, size)`` bool.
        tile: the tile it was found on.
        shape: ``(H, W)`` of the panorama.
        footprint: ``tile_footprint(tile, shape)`` if already computed.

    Returns:
        ``(H, W)`` bool; False outside the tile's field of view.
    """
    fp = footprint if footprint is not None else tile_footprint(tile, shape)
    out = np.zeros(shape, bool)
    out[fp.rows, fp.cols] = mask[fp.tile_rows, fp.tile_cols]
    return out
