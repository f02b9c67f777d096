"""Is a product ready for a storefront? Flags a reviewer should look at, from ``results.json``.

A spin capture's matched views, in rotation order (``spin_export.rotation_order``), are
read from their boxes alone (no image is read, so a catalog report stays cheap):

- **jumps**: a view whose box differs from each of its two neighbours' boxes, in area by
  more than ``AREA_JUMP`` (a ratio) or in centre by more than ``CENTRE_JUMP`` of the
  product's typical size (the median box's longer side): a wrong match, a part, or two
  products merged, which makes a spin's frame jump. Differing from both neighbours, not
  one, keeps the neighbours of such a view unflagged;
- **fill**: a view whose frame would be filled outside ``FILL_TOLERANCE`` of the target
  (``spin_frames.DEFAULT_FILL``), with the one crop ``spin_frames.spin_crop`` gives the
  spin's views that do not jump: too small or too large beside the others.

And, for any capture, read from each match's ``edge_residue`` in ``results.json``
(measured on the view's pixels when its outputs were written,
``workers.ops.edge_residue``):

- **residue**: a view whose best match shows the background along more than
  ``RESIDUE_LIMIT`` of its rim: a mask a few pixels too large, whose halo of shelf shows
  on a white page.

The first and the last matched views are neighbours (the spin closes). A spin with fewer
than ``MIN_VIEWS`` matched views is not judged: its neighbours are too far apart in angle
to tell a jump from a turn (a storefront spin has 24 to 72 frames).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from prodseg.producer.spin_export import rotation_order
from prodseg.storage.exports.spin_frames import DEFAULT_FILL, SpinView, frame_fill, spin_crop

AREA_JUMP = 1.6
CENTRE_JUMP = 0.25
FILL_TOLERANCE = 0.10
MIN_VIEWS = 8
RESIDUE_LIMIT = 0.5
"""On rendered 640x480 spins the true masks' residue is at most 0.12, a mask one pixel
too large all round 0.29 to 0.38, two pixels 0.64 to 0.74, three 0.93 to 0.99
(benchmarks/bench_edge_residue.py): the bar flags a halo of two pixels or more."""


def spin_boxes(doc: Mapping[str, Any]) -> list[tuple[str, tuple[int, int, int, int]]]:
    """The matched views' best boxes in rotation order, the reference among them."""
    found = []
    for entry in rotation_order(doc):
        if entry is doc["reference"]:
            box = entry.get("bbox")
        elif entry.get("status") == "ok" and entry.get("matches"):
            box = entry["matches"][0]["bbox"]
        else:
            continue
        if box:
            found.append((str(entry["image"]), (int(box[0]), int(box[1]), int(box[2]),
                                                int(box[3]))))
    return found


def jumping_views(boxes: list[tuple[str, tuple[int, int, int, int]]]) -> list[str]:
    """Views whose box area or centre jumps against its neighbours (see the module)."""
    if len(boxes) < MIN_VIEWS:
        return []
    b = np.array([box for _, box in boxes], dtype=np.float64)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    centre = np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], axis=1)
    size = float(np.median(np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])))
    area = np.maximum(area, 1.0)
    jumps = np.ones(len(boxes), dtype=bool)
    for shift in (1, -1):  # against the previous view, then the next one
        ratio = np.maximum(area / np.roll(area, shift), np.roll(area, shift) / area)
        off = np.hypot(*(centre - np.roll(centre, shift, axis=0)).T) / max(size, 1.0)
        jumps &= (ratio > AREA_JUMP) | (off > CENTRE_JUMP)
    return [view for (view, _), jump in zip(boxes, jumps, strict=True) if jump]


def fill_outliers(boxes: list[tuple[str, tuple[int, int, int, int]]],
                  fill: float = DEFAULT_FILL) -> list[str]:
    """Views whose frame's fill share would be outside ``FILL_TOLERANCE`` of ``fill``, in
    the crop of the views that do not jump."""
    if len(boxes) < MIN_VIEWS:
        return []
    jumps = set(jumping_views(boxes))
    steady = [box for view, box in boxes if view not in jumps] or [b for _, b in boxes]
    crop = spin_crop([SpinView(b, ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)) for b in steady],
                     fill)
    return [view for (view, box) in boxes
            if abs(frame_fill(box, crop) / fill - 1) > FILL_TOLERANCE]


def spin_reasons(doc: Mapping[str, Any]) -> tuple[str, ...]:
    """The review report's reasons for a spin capture's storefront use (none otherwise)."""
    if doc.get("capture") != "spin":
        return ()
    boxes = spin_boxes(doc)
    reasons = []
    jumps = jumping_views(boxes)
    if jumps:
        reasons.append(f"spin views that jump against their neighbours: {_views(jumps)}")
    outliers = fill_outliers(boxes)
    if outliers:
        reasons.append(f"spin views filling the frame outside {FILL_TOLERANCE:.0%} of "
                       f"{DEFAULT_FILL:.0%}: {_views(outliers)}")
    return tuple(reasons)


def residue_views(doc: Mapping[str, Any]) -> list[str]:
    """Views whose best match's edge residue is above ``RESIDUE_LIMIT``, in input order."""
    return [str(entry["image"]) for entry in doc.get("images", [])
            if entry.get("status") == "ok" and entry.get("matches")
            and (entry["matches"][0].get("edge_residue") or 0.0) > RESIDUE_LIMIT]


def storefront_reasons(doc: Mapping[str, Any]) -> tuple[str, ...]:
    """The review report's storefront reasons: a spin's jumps and fill
    (``spin_reasons``), and for any capture the views with background along the edge."""
    reasons = list(spin_reasons(doc))
    residue = residue_views(doc)
    if residue:
        reasons.append(f"views with background along the cutout's edge (over "
                       f"{RESIDUE_LIMIT:.0%} of the rim): {_views(residue)}")
    return tuple(reasons)


def _views(views: list[str], most: int = 4) -> str:
    shown = ", ".join(views[:most])
    return shown + (f" and {len(views) - most} more" if len(views) > most else "")
