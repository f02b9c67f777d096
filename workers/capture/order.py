"""What kind of capture a set of photos is, and in which order to visit its views.

- ``spin``: photos taken walking around the product, in order (numbered files in one
  folder). Neighbours of the reference look most like it, so views are visited outward
  from it, alternating sides, wrapping around the circle.
- ``unordered``: any photos. Views are visited most similar first (their best patch
  similarity to the reference).
- ``panorama``: equirectangular 360° images (2:1, ``ops.equirectangular.is_panorama_size``).

``auto`` picks one: every target a panorama is a panorama set (the reference may be an ordinary
photo), numbered files in one folder a spin set, anything else unordered.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

from prodseg.workers.ops.equirectangular import is_panorama_size

CAPTURES = ("spin", "unordered", "panorama")
_NUMBER = re.compile(r"(\d+)")


def natural_key(path: Path) -> tuple[object, ...]:
    """Sort key that puts ``img_2`` before ``img_10``."""
    return tuple(int(part) if part.isdigit() else part.lower()
                 for part in _NUMBER.split(path.name))


def detect_capture(paths: Sequence[Path], sizes: Sequence[tuple[int, int]]) -> str:
    """``spin``, ``unordered`` or ``panorama`` for these images.

    Args:
        paths: the capture's images (the reference among them or not).
        sizes: ``(width, height)`` of each, in the same order (of the targets alone for
            panoramas: the reference may be an ordinary photo of the product).
    """
    if sizes and all(is_panorama_size(w, h) for w, h in sizes):
        return "panorama"
    folders = {p.parent for p in paths}
    if len(paths) >= 3 and len(folders) == 1 and all(_NUMBER.search(p.stem) for p in paths):
        return "spin"
    return "unordered"


def spin_order(positions: Sequence[int], reference: int, length: int) -> list[int]:
    """Targets in the order to visit them around a spin: nearest the reference first.

    Args:
        positions: each target's place in the spin (0 .. ``length - 1``).
        reference: the reference's place.
        length: how many places the spin has (views wrap around after the last).

    Returns:
        Indices into ``positions``: by circular distance from the reference, the view
        after it before the view before it at equal distance, then by position.
    """
    def key(i: int) -> tuple[int, int, int]:
        ahead = (positions[i] - reference) % length
        behind = (reference - positions[i]) % length
        return (min(ahead, behind), 0 if ahead <= behind else 1, positions[i])

    return sorted(range(len(positions)), key=key)


def similarity_order(similarities: Sequence[float]) -> list[int]:
    """Indices by decreasing similarity (ties in input order)."""
    return sorted(range(len(similarities)), key=lambda i: (-similarities[i], i))


def visit_order(capture: str, reference: Path, targets: Sequence[Path],
                similarity: Callable[[], Sequence[float]]) -> list[int]:
    """The order in which to match ``targets`` when a prototype bank grows.

    Args:
        capture: ``spin``, ``unordered`` or ``panorama``.
        reference: the reference image.
        targets: the target images.
        similarity: how much each target looks like the product, in ``targets`` order
            (called for unordered captures only).

    Returns:
        Indices into ``targets``.
    """
    if capture == "spin":
        sequence = sorted({reference, *targets}, key=natural_key)
        place = {p: i for i, p in enumerate(sequence)}
        return spin_order([place[t] for t in targets], place[reference], len(sequence))
    if capture == "unordered":
        return similarity_order(similarity())
    return list(range(len(targets)))
