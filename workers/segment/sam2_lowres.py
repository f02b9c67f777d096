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
- near a level that many logits sit close to (SAM2's stability score asks about
  ``mask_threshold +/- offset``; with a small offset both levels lie in the thick of the
  logits) whole-cell bounds settle nothing; ``sam2_mixed_cells`` interpolates just the
  pixels of the cells a level crosses.

Boxes, read off the logits the same way, are ``sam2_boxes``'.

All functions are pure and work on any device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

_CHUNK = 256  # masks per step of the whole-cell bounds: bounds temporary memory


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


def cell_extrema(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Min and max over each cell's source logits ``[i, i+1] x [j, j+1]`` (clamped).

    Args:
        logits: ``(N, h, w)``.

    Returns:
        Two ``(N, h, w)`` tensors; cell ``(i, j)`` is where the output pixels with
        ``lo == (i, j)`` read from.
    """
    # Written into preallocated outputs (no concatenated copies): a memory-bound pass.
    across_hi, across_lo = torch.empty_like(logits), torch.empty_like(logits)
    torch.maximum(logits[:, :, :-1], logits[:, :, 1:], out=across_hi[:, :, :-1])
    torch.minimum(logits[:, :, :-1], logits[:, :, 1:], out=across_lo[:, :, :-1])
    across_hi[:, :, -1] = across_lo[:, :, -1] = logits[:, :, -1]
    high, low = torch.empty_like(logits), torch.empty_like(logits)
    torch.maximum(across_hi[:, :-1], across_hi[:, 1:], out=high[:, :-1])
    torch.minimum(across_lo[:, :-1], across_lo[:, 1:], out=low[:, :-1])
    high[:, -1], low[:, -1] = across_hi[:, -1], across_lo[:, -1]
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
        low, high = cell_extrema(logits[start : start + _CHUNK].float())
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
