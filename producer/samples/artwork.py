"""Procedural artwork for the rendered spin set: the textures printed on each product.

``samples.scene`` builds the scene's geometry and paints these textures onto it. Here
live the milk carton's four sides and roof, the labels of the other products (a cola can, a
berry-juice bottle, a cereal box, a tea box), none of which shares the carton's blue, sky,
butter-yellow or mint, and the small drawing helpers behind them. Textures are drawn flat,
upright and unshaded, at a given resolution in pixels per centimetre. Every random choice
comes from the ``numpy.random.Generator`` passed in, drawn in a fixed order.
"""

from __future__ import annotations

import math
from typing import Literal

import cv2
import numpy as np

Colour = tuple[int, ...]
Box = tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of a texture
_FONT = cv2.FONT_HERSHEY_DUPLEX
_WHITE, _INK, _SILVER, _CAP = (245, 245, 240), (30, 30, 30), (185, 185, 190), (50, 50, 55)


def jitter(rng: np.random.Generator, colour: Colour, amount: int = 10) -> Colour:
    """The colour with each channel moved by up to ``amount``.

    Args:
        rng: source of the per-channel offsets (one integer draw per channel).
        colour: RGB (or any number of channels), each 0..255.
        amount: the largest offset either way.

    Returns:
        The moved colour, each channel clipped to 0..255.
    """
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in colour)


def _canvas(w_cm: float, h_cm: float, px_per_cm: float, colour: Colour) -> np.ndarray:
    """A plain ``(th, tw, 3)`` uint8 texture for a w_cm x h_cm panel."""
    size = (max(8, round(h_cm * px_per_cm)), max(8, round(w_cm * px_per_cm)), 3)
    return np.full(size, colour, np.uint8)


def draw_text(img: np.ndarray, text: str, box: Box, colour: Colour, weight: float = 0.12
              ) -> None:
    """Draw ``text`` as large as fits, centred in ``box``.

    Args:
        img: ``(th, tw, 3)`` uint8 texture, drawn on in place.
        text: the words to write.
        box: ``(x0, y0, x1, y1)`` as fractions of the texture's width and height.
        colour: RGB of the letters.
        weight: stroke width as a fraction of the letters' height.
    """
    th, tw = img.shape[:2]
    x0, y0, x1, y1 = box[0] * tw, box[1] * th, box[2] * tw, box[3] * th
    (w1, h1), base = cv2.getTextSize(text, _FONT, 1.0, 1)
    scale = min((x1 - x0) / w1, (y1 - y0) / (h1 + base))
    thickness = max(1, round(scale * h1 * weight))
    (w2, h2), _ = cv2.getTextSize(text, _FONT, scale, thickness)
    org = (round(x0 + (x1 - x0 - w2) / 2), round(y0 + (y1 - y0 + h2) / 2))
    cv2.putText(img, text, org, _FONT, scale, colour, thickness, cv2.LINE_AA)


def _rect(img: np.ndarray, box: Box, colour: Colour) -> None:
    """Fill ``box`` (fractions of the texture) with ``colour``."""
    th, tw = img.shape[:2]
    p0, p1 = (round(box[0] * tw), round(box[1] * th)), (round(box[2] * tw), round(box[3] * th))
    cv2.rectangle(img, p0, p1, colour, -1)


def _small_print(img: np.ndarray, rng: np.random.Generator, box: Box, rows: int, colour: Colour
                 ) -> None:
    """Bars of random length standing for lines of small print inside ``box``."""
    x0, y0, x1, y1 = box
    step = (y1 - y0) / rows
    for r in range(rows):
        end = x0 + (x1 - x0) * rng.uniform(0.45, 1.0)
        _rect(img, (x0, y0 + r * step, end, y0 + (r + 0.45) * step), colour)


def carton_art(rng: np.random.Generator, w: float, d: float, h: float, g: float,
               px_per_cm: float) -> dict[str, np.ndarray]:
    """Textures of the milk carton: a blue front, sky right, butter-yellow back, mint left.

    Args:
        rng: source of the colours' jitter, the ribbon's phase, small print and barcode.
        w: width of the front and back, cm.
        d: depth, the width of the sides, cm.
        h: height of the walls below the roof, cm.
        g: height of the gable roof, cm.
        px_per_cm: texture resolution.

    Returns:
        Face name -> ``(th, tw, 3)`` float32 RGB in [0, 255], for ``front``, ``right``,
        ``back``, ``left``, ``front_roof``, ``back_roof``, ``right_gable`` and ``left_gable``.
    """
    blue, sun = jitter(rng, (25, 70, 175)), jitter(rng, (250, 205, 40))
    sky, butter = jitter(rng, (110, 190, 230)), jitter(rng, (245, 210, 90))
    mint, navy, green = jitter(rng, (130, 210, 150)), (20, 40, 90), (25, 105, 55)
    front = _canvas(w, h, px_per_cm, blue)
    draw_text(front, "FARM FRESH", (0.12, 0.08, 0.88, 0.16), _WHITE, 0.08)
    draw_text(front, "MILK", (0.05, 0.19, 0.95, 0.38), _WHITE, 0.16)
    th, tw = front.shape[:2]
    xs = np.linspace(0.06 * tw, 0.94 * tw, 32)  # a wavy ribbon, kept off the edges
    wave = th * (0.58 + 0.025 * np.sin(3 * np.pi * xs / tw + rng.uniform(0, 2 * np.pi)))
    ribbon = np.concatenate([np.stack([xs, wave], 1), np.stack([xs, wave + 0.09 * th], 1)[::-1]])
    cv2.fillPoly(front, [ribbon.astype(np.int32)], _WHITE)
    centre, radius = (tw // 2, round(0.8 * th)), round(0.22 * tw)
    cv2.circle(front, centre, radius, sun, -1, cv2.LINE_AA)
    cv2.circle(front, centre, round(0.7 * radius), blue, max(1, radius // 6), cv2.LINE_AA)
    draw_text(front, "1 L", (0.3, 0.92, 0.7, 0.99), _WHITE)
    right = _canvas(d, h, px_per_cm, sky)  # a nutrition table
    _rect(right, (0.0, 0.05, 1.0, 0.14), navy)
    draw_text(right, "NUTRITION", (0.1, 0.06, 0.9, 0.13), _WHITE, 0.08)
    _rect(right, (0.1, 0.18, 0.9, 0.62), _WHITE)
    for r in range(1, 9):
        _rect(right, (0.1, 0.18 + r * 0.049, 0.9, 0.184 + r * 0.049), navy)
    _small_print(right, rng, (0.14, 0.19, 0.6, 0.61), 9, navy)
    _small_print(right, rng, (0.1, 0.7, 0.9, 0.92), 6, navy)
    back = _canvas(w, h, px_per_cm, butter)  # small print and a barcode
    _small_print(back, rng, (0.1, 0.08, 0.9, 0.45), 10, _INK)
    _rect(back, (0.15, 0.6, 0.85, 0.86), _WHITE)
    x = 0.2
    while x < 0.8:
        bar = rng.uniform(0.008, 0.03)
        _rect(back, (x, 0.62, min(x + bar, 0.8), 0.8), _INK)
        x += bar + rng.uniform(0.01, 0.03)
    left = _canvas(d, h, px_per_cm, mint)
    _rect(left, (0.0, 0.2, 1.0, 0.36), green)
    draw_text(left, "ORGANIC", (0.08, 0.22, 0.92, 0.34), _WHITE, 0.1)
    _small_print(left, rng, (0.12, 0.45, 0.88, 0.62), 5, green)
    lh, lw = left.shape[:2]
    cv2.circle(left, (lw // 2, round(0.78 * lh)), lw // 5, green, max(1, lw // 25), cv2.LINE_AA)
    slant = math.hypot(d / 2, g)
    front_roof, back_roof = _canvas(w, slant, px_per_cm, blue), _canvas(w, slant, px_per_cm, butter)
    draw_text(front_roof, "FRESH", (0.15, 0.3, 0.85, 0.8), _WHITE, 0.1)
    _small_print(back_roof, rng, (0.15, 0.3, 0.85, 0.8), 3, _INK)
    art = {"front": front, "right": right, "back": back, "left": left, "front_roof": front_roof,
           "back_roof": back_roof, "right_gable": _canvas(d, g, px_per_cm, sky),
           "left_gable": _canvas(d, g, px_per_cm, mint)}
    return {name: tex.astype(np.float32) for name, tex in art.items()}


def can_art(rng: np.random.Generator, radius: float, height: float, px_per_cm: float
            ) -> tuple[np.ndarray, Colour]:
    """The label of a cola can and the colour of its lid.

    Args:
        rng: source of the red's jitter.
        radius: the can's radius, cm; the label spans the visible half, ``pi * radius`` wide.
        height: the can's height, cm.
        px_per_cm: texture resolution.

    Returns:
        ``(th, tw, 3)`` float32 RGB label in [0, 255], and the lid's RGB.
    """
    tex = _canvas(np.pi * radius, height, px_per_cm, jitter(rng, (200, 25, 35)))
    _rect(tex, (0, 0.55, 1, 0.62), _WHITE)
    draw_text(tex, "COLA", (0.15, 0.25, 0.85, 0.5), _WHITE, 0.15)
    _rect(tex, (0, 0, 1, 0.04), _SILVER)
    _rect(tex, (0, 0.96, 1, 1), _SILVER)
    return tex.astype(np.float32), _SILVER


def bottle_art(rng: np.random.Generator, radius: float, height: float, px_per_cm: float
               ) -> tuple[np.ndarray, Colour]:
    """The label of a berry-juice bottle and the colour of its cap.

    Args:
        rng: source of the two purples' jitter.
        radius: the body's radius, cm; the label spans the visible half, ``pi * radius`` wide.
        height: the bottle's height, cm.
        px_per_cm: texture resolution.

    Returns:
        ``(th, tw, 3)`` float32 RGB label in [0, 255], and the cap's RGB.
    """
    tex = _canvas(np.pi * radius, height, px_per_cm, jitter(rng, (120, 25, 95)))
    _rect(tex, (0, 0.5, 1, 0.88), jitter(rng, (225, 110, 170)))
    draw_text(tex, "BERRY", (0.15, 0.6, 0.85, 0.78), _WHITE, 0.12)
    _rect(tex, (0, 0, 1, 0.1), _CAP)
    return tex.astype(np.float32), _CAP


def box_art(rng: np.random.Generator, brand: Literal["corn", "tea"], w: float, d: float,
            h: float, px_per_cm: float) -> dict[str, np.ndarray]:
    """Textures of a cereal box (orange, ``"corn"``) or a tea box (charcoal, ``"tea"``).

    Args:
        rng: source of the main colour's jitter and the sides' small print.
        brand: which of the two products.
        w: width of the front and back, cm.
        d: depth, the width of the sides, cm.
        h: height, cm.
        px_per_cm: texture resolution.

    Returns:
        Face name -> ``(th, tw, 3)`` float32 RGB in [0, 255], for ``front``, ``back``,
        ``right``, ``left`` and ``top``; the back repeats the front, the other faces share
        one side panel.
    """
    corn = brand == "corn"
    main = jitter(rng, (235, 125, 25) if corn else (45, 42, 48))
    accent = (190, 35, 30) if corn else (165, 20, 55)
    front = _canvas(w, h, px_per_cm, main)
    _rect(front, (0, 0.1, 1, 0.32), accent)
    draw_text(front, "CORN" if corn else "TEA", (0.1, 0.12, 0.9, 0.3), _WHITE, 0.15)
    th, tw = front.shape[:2]
    cv2.ellipse(front, (tw // 2, round(0.68 * th)), (round(0.35 * tw), round(0.12 * th)),
                0, 0, 360, (120, 65, 25) if corn else accent, -1, cv2.LINE_AA)
    side = _canvas(d, h, px_per_cm, main)
    _small_print(side, rng, (0.15, 0.15, 0.85, 0.7), 8, accent)
    art = {"front": front, "back": front, "right": side, "left": side, "top": side}
    return {name: tex.astype(np.float32) for name, tex in art.items()}
