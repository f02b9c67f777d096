"""Bounding boxes of full-resolution masks read off SAM2's low-resolution logits, exactly.

A mask at the image's size is ``bilinear_upsample(logits) > threshold``
(``sam2_lowres.upsample``). An output line (row or column) blends two source lines with
weights ``1 - f`` and ``f``, and no pixel of it exceeds ``(1 - f) * max(first) + f *
max(second)``: only where that bound reaches the threshold can the line hold a pixel of
the mask. Those are the *possible* lines, usually a small part of the image. Each box
edge is the first output line, from its side, holding a pixel above the threshold; it is
found by interpolating the possible lines exactly, in search order, one line per mask in
the first rounds and more in later ones (the first possible line holds a hit for about a
quarter of the masks, the fifth for most). Masks whose first possible lines hold no pixel
above the threshold (scattered, faint masks) take more rounds; no mask is ever upsampled
whole, and a mask whose possible lines hold no hit at all is empty.

All functions are pure and work on any device.
"""

from __future__ import annotations

import torch

from prodseg.workers.segment.sam2_lowres import Taps, bilinear_taps

_CHUNK = 256  # masks per step: bounds temporary memory
_MARGIN = 1e-5  # relative to the largest logit magnitude; rounding is about 1e-7 of it


def _line_values(logits: torch.Tensor, masks: torch.Tensor, lines: torch.Tensor, along: Taps,
                 across: Taps) -> torch.Tensor:
    """Exact interpolated values of chosen output lines of chosen masks.

    Args:
        logits: ``(N, a, b)``; lines run along dim 1.
        masks: ``(P,)`` int64 indices into ``logits``.
        lines: ``(P, L)`` int64 output line indices, per mask.
        along: taps of dim 1 (the lines).
        across: taps of dim 2 (within a line).

    Returns:
        ``(P, L, n_across)`` float32, the upsampled values on those lines.
    """
    idx = masks[:, None]  # only the source lines are gathered, never a whole mask
    f = along.frac[lines][..., None]  # (P, L, 1)
    src_lo = logits[idx, along.lo[lines]]  # (P, L, b)
    src_hi = logits[idx, along.hi[lines]]
    # Across-interpolate each source line, then combine: PyTorch's order of operations.
    g = across.frac
    lo_line = src_lo.index_select(2, across.lo) * (1 - g) + src_lo.index_select(2, across.hi) * g
    hi_line = src_hi.index_select(2, across.lo) * (1 - g) + src_hi.index_select(2, across.hi) * g
    return lo_line * (1 - f) + hi_line * f


def _first_hits(logits: torch.Tensor, threshold: float, along: Taps, across: Taps, band: int,
                from_end: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """First output line (along dim 1 of ``logits``) holding a pixel above ``threshold``.

    Args:
        logits: ``(N, a, b)``; lines run along dim 1.
        threshold: the mask threshold.
        along: taps of dim 1 (the lines).
        across: taps of dim 2 (within a line).
        band: possible lines interpolated per mask in the first two rounds; it doubles
            every two rounds after.
        from_end: search from the last line backwards.

    Returns:
        ``(index, found)``: ``(N,)`` int64 output line index and ``(N,)`` bool, False
        where the mask is empty (no line holds a pixel above the threshold).
    """
    n, device = logits.shape[0], logits.device
    n_out = along.lo.shape[0]
    index = torch.zeros(n, dtype=torch.long, device=device)
    found = torch.zeros(n, dtype=torch.bool, device=device)
    line_max = logits.amax(dim=2)  # (N, a)
    margin = _MARGIN * (1.0 + float(line_max.abs().max())) if n else 0.0
    # The bound on each output line's pixels, less a margin for rounding: a line it rules
    # out holds no pixel above the threshold.
    bound = line_max[:, along.lo] * (1 - along.frac) + line_max[:, along.hi] * along.frac
    possible = bound > threshold - margin  # (N, n_out)
    if from_end:
        possible = possible.flip(1)
    n_possible = possible.sum(dim=1)
    # Possible lines first, each group in search order (a stable sort keeps the order).
    order = torch.argsort((~possible).to(torch.uint8), dim=1, stable=True)
    pending = torch.nonzero(n_possible > 0).flatten()
    first, rounds = 0, 0
    while len(pending):
        width = min(band << (rounds // 2), n_out - first)
        rounds += 1
        ranks = first + torch.arange(width, device=device)
        taken = order[pending, first:first + width]  # (P, width) positions in search order
        lines = (n_out - 1 - taken) if from_end else taken
        values = _line_values(logits, pending, lines, along, across)
        hits = (values > threshold).any(dim=2) & (ranks[None, :] < n_possible[pending, None])
        hit = hits.any(dim=1)
        at = hits.to(torch.uint8).argmax(dim=1)  # first hit in search order
        done = pending[hit]
        index[done] = lines[hit, at[hit]]
        found[done] = True
        first += width
        pending = pending[~hit & (n_possible[pending] > first)]
    return index, found


def exact_boxes(logits: torch.Tensor, threshold: float, size: tuple[int, int],
                band: int | None = None) -> torch.Tensor:
    """Bounding boxes of ``upsample(logits) > threshold`` without upsampling the masks.

    Same convention as SAM2's ``batched_mask_to_box``: XYXY with inclusive max edges,
    ``[0, 0, 0, 0]`` for an empty mask.

    Args:
        logits: ``(N, h, w)``.
        threshold: the mask threshold (SAM2's is 0).
        size: ``(H, W)`` of the image.
        band: possible lines interpolated per mask in a side's first round (default 1).
            Any band gives the same boxes; it trades rounds for work.

    Returns:
        ``(N, 4)`` int64.
    """
    logits = logits.float()
    n, h, w = logits.shape
    height, width = size
    rows = bilinear_taps(h, height, logits.device)
    cols = bilinear_taps(w, width, logits.device)
    band = band or 1
    boxes = torch.zeros((n, 4), dtype=torch.long, device=logits.device)
    for start in range(0, n, _CHUNK):
        part = logits[start : start + _CHUNK]
        top, found = _first_hits(part, threshold, rows, cols, band, from_end=False)
        bottom, _ = _first_hits(part, threshold, rows, cols, band, from_end=True)
        turned = part.transpose(1, 2).contiguous()
        left, _ = _first_hits(turned, threshold, cols, rows, band, from_end=False)
        right, _ = _first_hits(turned, threshold, cols, rows, band, from_end=True)
        sides = torch.stack([left, top, right, bottom], dim=1)
        boxes[start : start + _CHUNK] = torch.where(found[:, None], sides, 0)
    return boxes


def mask_boxes(masks: torch.Tensor) -> torch.Tensor:
    """XYXY boxes (inclusive) of ``(N, H, W)`` bool masks; ``[0, 0, 0, 0]`` when empty."""
    n, height, width = masks.shape
    if n == 0:
        return torch.zeros((0, 4), dtype=torch.long, device=masks.device)
    rows = masks.any(dim=2)
    cols = masks.any(dim=1)
    empty = ~rows.any(dim=1)
    r = torch.arange(height, device=masks.device)
    c = torch.arange(width, device=masks.device)
    top = torch.where(rows, r, height).amin(dim=1)
    bottom = torch.where(rows, r, -1).amax(dim=1)
    left = torch.where(cols, c, width).amin(dim=1)
    right = torch.where(cols, c, -1).amax(dim=1)
    boxes = torch.stack([left, top, right, bottom], dim=1)
    boxes[empty] = 0
    return boxes
