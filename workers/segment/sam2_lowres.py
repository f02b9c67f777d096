"""Facts about full-resolution masks read off SAM2's low-resolution logits, exactly.

SAM2's decoder gives ``(N, h, w)`` logits (``h = w = 256``); a mask at the image's size is
``bilinear_upsample(logits) > threshold`` (``F.interpolate``, ``align_corners=False``).
Upsampling thousands of candidates is what makes the official automatic mask generator
slow, and most candidates are thrown away. These functions answer the generator's
questions (how many pixels, which bounding box) without upsampling, and are exact:

- every upsampled pixel is a convex combination of at most four neighbouring logits, so
  it lies between their minimum and maximum. Counting pixels per *cell* (the block of
  output pixels sharing the same four source logits) gives a lower and an upper bound of
  each mask's area; where a decision (a stability threshold) falls between the bounds,
  the caller upsamples just that mask.
- a bounding box edge can only lie on an output row whose source rows hold a logit above
  the threshold; those few rows are interpolated exactly.

All functions are pure and work on any device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

_CHUNK = 256  # masks per step in the exact box search: bounds temporary memory


@dataclass(frozen=True)
class Taps:
    """Bilinear taps of one axis (PyTorch's ``align_corners=False`` rule).

    Output index ``o`` reads source indices ``lo[o]`` and ``hi[o]`` with weights
    ``1 - frac[o]`` and ``frac[o]``.

    Attributes:
        lo: ``(out,)`` int64.
        hi: ``(out,)`` int64, ``lo + 1`` except at the last source index.
        frac: ``(out,)`` float32 in [0, 1).
        count: ``(in,)`` int64, how many output indices have each ``lo``.
    """

    lo: torch.Tensor
    hi: torch.Tensor
    frac: torch.Tensor
    count: torch.Tensor


def bilinear_taps(in_size: int, out_size: int, device: torch.device | str = "cpu") -> Taps:
    """The source indices and weights ``F.interpolate(mode="bilinear")`` uses on one axis.

    Args:
        in_size: source length (e.g. 256).
        out_size: output length (the image's height or width).
        device: where the tensors live.
    """
    scale = in_size / out_size
    # float32 arithmetic, as in PyTorch's kernels.
    step = torch.tensor(scale, dtype=torch.float32)
    src = ((torch.arange(out_size, dtype=torch.float32) + 0.5) * step - 0.5).clamp(min=0.0)
    lo = src.floor().long().clamp(max=in_size - 1)
    hi = (lo + 1).clamp(max=in_size - 1)
    frac = (src - lo).float()
    count = torch.bincount(lo, minlength=in_size)
    return Taps(lo.to(device), hi.to(device), frac.to(device), count.to(device))


def upsample(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Exactly what SAM2 does to its logits: ``(N, h, w)`` -> ``(N, H, W)`` float32."""
    if logits.shape[0] == 0:
        return logits.new_zeros((0, *size), dtype=torch.float32)
    return F.interpolate(logits.float()[:, None], size, mode="bilinear", align_corners=False)[:, 0]


def _cell_extrema(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Min and max over each cell's source logits ``[i, i+1] x [j, j+1]`` (clamped).

    Args:
        logits: ``(N, h, w)``.

    Returns:
        Two ``(N, h, w)`` tensors; cell ``(i, j)`` is where the output pixels with
        ``lo == (i, j)`` read from.
    """
    right = torch.cat([logits[:, :, 1:], logits[:, :, -1:]], dim=2)
    high = torch.maximum(logits, right)
    low = torch.minimum(logits, right)
    high = torch.maximum(high, torch.cat([high[:, 1:], high[:, -1:]], dim=1))
    low = torch.minimum(low, torch.cat([low[:, 1:], low[:, -1:]], dim=1))
    return low, high


def area_bounds(
    logits: torch.Tensor, thresholds: tuple[float, ...], rows: Taps, cols: Taps
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds on ``(upsample(logits) > t).sum()`` for each mask and threshold.

    Args:
        logits: ``(N, h, w)`` low-resolution logits.
        thresholds: the levels ``t`` to count above.
        rows: taps from ``h`` to the output height.
        cols: taps from ``w`` to the output width.

    Returns:
        ``(lower, upper)``, each ``(len(thresholds), N)`` int64; the exact count lies in
        ``[lower, upper]``.
    """
    col_count = cols.count.to(torch.float32)
    row_count = rows.count.to(torch.float64)

    def count(above: torch.Tensor) -> torch.Tensor:
        per_row = above.to(torch.float32) @ col_count  # (n, h); exact below 2**24
        return (per_row.to(torch.float64) @ row_count).round().long()

    n = logits.shape[0]
    lower = torch.zeros((len(thresholds), n), dtype=torch.long, device=logits.device)
    upper = torch.zeros_like(lower)
    for start in range(0, n, _CHUNK):
        low, high = _cell_extrema(logits[start : start + _CHUNK].float())
        for k, t in enumerate(thresholds):
            lower[k, start : start + _CHUNK] = count(low > t)
            upper[k, start : start + _CHUNK] = count(high > t)
    return lower, upper


def exact_areas(logits: torch.Tensor, thresholds: tuple[float, ...], size: tuple[int, int],
                chunk: int = 16) -> torch.Tensor:
    """``(upsample(logits) > t).sum()`` by upsampling, a few masks at a time.

    Returns:
        ``(len(thresholds), N)`` int64.
    """
    out = torch.zeros((len(thresholds), logits.shape[0]), dtype=torch.long,
                      device=logits.device)
    for start in range(0, logits.shape[0], chunk):
        full = upsample(logits[start : start + chunk], size)
        for k, t in enumerate(thresholds):
            out[k, start : start + chunk] = (full > t).flatten(1).sum(1)
    return out


def _first_hits(
    logits: torch.Tensor, threshold: float, along: Taps, across: Taps, band: int,
    from_end: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """First output line (row of ``logits``' dim 1) holding a pixel above ``threshold``.

    A line can only hold one if one of its two source lines has a logit above the
    threshold; the ``band`` lines from the first such line on are interpolated exactly.

    Args:
        logits: ``(N, a, b)``; lines run along dim 1.
        along: taps of dim 1 (the lines).
        across: taps of dim 2 (within a line).
        band: lines examined exactly.
        from_end: search from the last line backwards.

    Returns:
        ``(index, found)``: ``(N,)`` int64 output line index and ``(N,)`` bool; where
        ``found`` is False the answer was not in the band (or the mask is empty).
    """
    n = logits.shape[0]
    n_out = along.lo.shape[0]
    if n == 0:
        return torch.zeros(0, dtype=torch.long, device=logits.device), torch.zeros(
            0, dtype=torch.bool, device=logits.device)
    line_pos = logits.amax(dim=2) > threshold  # (N, a)
    possible = line_pos[:, along.lo] | line_pos[:, along.hi]  # (N, n_out)
    if from_end:
        possible = possible.flip(1)
    start = possible.int().argmax(dim=1)  # first possible (in search order)
    steps = torch.arange(band, device=logits.device)
    order = (start[:, None] + steps[None, :]).clamp(max=n_out - 1)  # (N, band)
    lines = (n_out - 1 - order) if from_end else order
    f = along.frac[lines][..., None]  # (N, band, 1)
    idx = torch.arange(n, device=logits.device)[:, None]
    src_lo = logits[idx, along.lo[lines]]  # (N, band, b)
    src_hi = logits[idx, along.hi[lines]]
    # Across-interpolate each source line, then combine: PyTorch's order of operations.
    g = across.frac
    lo_line = src_lo[..., across.lo] * (1 - g) + src_lo[..., across.hi] * g
    hi_line = src_hi[..., across.lo] * (1 - g) + src_hi[..., across.hi] * g
    values = lo_line * (1 - f) + hi_line * f  # (N, band, n_out_across)
    hits = (values > threshold).any(dim=2)  # (N, band)
    found = hits.any(dim=1) & possible.any(dim=1)
    first = hits.int().argmax(dim=1)
    return lines[torch.arange(n, device=logits.device), first], found


def exact_boxes(logits: torch.Tensor, threshold: float, size: tuple[int, int],
                band: int | None = None) -> torch.Tensor:
    """Bounding boxes of ``upsample(logits) > threshold`` without upsampling the masks.

    Same convention as SAM2's ``batched_mask_to_box``: XYXY with inclusive max edges,
    ``[0, 0, 0, 0]`` for an empty mask.

    Args:
        logits: ``(N, h, w)``.
        threshold: the mask threshold (SAM2's is 0).
        size: ``(H, W)`` of the image.
        band: output lines interpolated exactly from the first candidate line; defaults
            to two source lines' worth. Masks not settled in the band are upsampled.

    Returns:
        ``(N, 4)`` int64.
    """
    logits = logits.float()
    n, h, w = logits.shape
    height, width = size
    rows = bilinear_taps(h, height, logits.device)
    cols = bilinear_taps(w, width, logits.device)
    band_rows = band or int(2 * -(-height // h)) + 2
    band_cols = band or int(2 * -(-width // w)) + 2
    boxes = torch.zeros((n, 4), dtype=torch.long, device=logits.device)
    settled = torch.ones(n, dtype=torch.bool, device=logits.device)
    for start in range(0, n, _CHUNK):
        part = logits[start : start + _CHUNK]
        top, ok_t = _first_hits(part, threshold, rows, cols, band_rows, from_end=False)
        bottom, ok_b = _first_hits(part, threshold, rows, cols, band_rows, from_end=True)
        turned = part.transpose(1, 2)
        left, ok_l = _first_hits(turned, threshold, cols, rows, band_cols, from_end=False)
        right, ok_r = _first_hits(turned, threshold, cols, rows, band_cols, from_end=True)
        boxes[start : start + _CHUNK] = torch.stack([left, top, right, bottom], dim=1)
        # A mask with no logit above the threshold is empty: its box stays zero.
        empty = part.flatten(1).amax(dim=1) <= threshold
        boxes[start : start + _CHUNK][empty] = 0
        settled[start : start + _CHUNK] = (ok_t & ok_b & ok_l & ok_r) | empty
    unsettled = torch.nonzero(~settled).flatten()
    if len(unsettled):
        boxes[unsettled] = mask_boxes(upsample(logits[unsettled], size) > threshold)
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
