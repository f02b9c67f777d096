"""The one palette of overlays: the gallery, thumbnails and the windows draw with it."""

from __future__ import annotations

RGB = tuple[int, int, int]

REFERENCE: RGB = (0, 110, 230)
"""The reference mask and its card."""
MATCHES: tuple[RGB, ...] = (
    (20, 200, 80), (255, 160, 0), (220, 60, 220), (0, 190, 210), (240, 220, 0)
)
"""The k-th match of an image: green for the best, then one colour per match."""
STATUS: dict[str, RGB] = {
    "reference": REFERENCE,
    "matched": (20, 170, 70),
    "unmatched": (150, 150, 150),
    "error": (210, 40, 40),
}
"""The border of an image's card in the contact sheet, by its status."""
POSITIVE_POINT = "lime"
NEGATIVE_POINT = "red"
LOOKALIKE_POINT = "orange"
"""Prompt markers of ``prodseg select`` (matplotlib colour names)."""


def match_colour(k: int, is_reference: bool = False) -> RGB:
    """Overlay colour of the k-th match (0 = best) or of the reference mask."""
    return REFERENCE if is_reference else MATCHES[k % len(MATCHES)]


def hex_colour(rgb: RGB) -> str:
    """``#rrggbb`` of an RGB triple, for HTML and CSS."""
    return "#{:02x}{:02x}{:02x}".format(*rgb)
