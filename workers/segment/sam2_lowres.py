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
  logits) whole-cell bounds settle nothing. ``tight_area_bounds`` then interpolates only
  the pixels of the *mixed* cells (a few percent of the image), to PyTorch's values up to
  rounding (its kernels order their products differently, about 1e-6 apart): a pixel is
  surely in above ``t + margin`` and possibly in above ``t - margin``, with a margin far
  above any rounding. The bounds differ by the handful of pixels within the margin.

Boxes, read off the logits the same way, are ``sam2_boxes``'.

All functions are pure and work on any device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

_CHUNK = 256  # masks per step of the whole-cell bounds: bounds temporary memory
_MIXED_CHUNK = 64  # masks per step of the tight bounds: bounds the gathered pixels' memory
_MARGIN = 1e-5  # relative to the largest logit magnitude; rounding is about 1e-7 of it


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


@dataclass(frozen=True)
class CellLines:
    """The output lines (rows or columns) of each source cell along one axis.

    Attributes:
        frac: ``(in, P)`` float32, the bilinear weight ``frac`` of each of the cell's output
            lines (padded to ``P``, the most lines any cell has, with NaN: a padding
            entry then interpolates to NaN, which is above no level).
        valid: ``(in, P)`` bool, which of the ``P`` entries are real lines.
        nxt: ``(in,)`` int64, the second source index of the cell (``i + 1``, clamped).
    """

    frac: torch.Tensor
    valid: torch.Tensor
    nxt: torch.Tensor


def cell_lines(taps: Taps) -> CellLines:
    """Group one axis' output lines by the cell (``lo`` source index) they read from."""
    n_in = taps.count.shape[0]
    width = max(1, int(taps.count.max()))
    start = torch.cumsum(taps.count, 0) - taps.count  # taps.lo is non-decreasing
    k = torch.arange(width, device=taps.lo.device)
    valid = k[None, :] < taps.count[:, None]
    index = (start[:, None] + k[None, :]).clamp(max=max(0, taps.frac.shape[0] - 1))
    frac = torch.where(valid, taps.frac[index],
                       torch.full((), float("nan"), device=taps.frac.device))
    nxt = (torch.arange(n_in, device=taps.lo.device) + 1).clamp(max=n_in - 1)
    return CellLines(frac, valid, nxt)


def _count_cells(cells: torch.Tensor, rows: Taps, cols: Taps) -> torch.Tensor:
    """Output pixels in the flagged cells: ``(n, h, w)`` bool -> ``(n,)`` int64."""
    per_row = cells.to(torch.float32) @ cols.count.to(torch.float32)  # exact below 2**24
    return (per_row.to(torch.float64) @ rows.count.to(torch.float64)).round().long()


def _mixed_pixels(logits: torch.Tensor, cells: torch.Tensor, rows: CellLines,
                  cols: CellLines) -> tuple[torch.Tensor, torch.Tensor]:
    """Interpolated values of every pixel of the flagged cells.

    Args:
        logits: ``(n, h, w)`` float32, contiguous.
        cells: ``(n, h, w)`` bool, the cells to interpolate.

    Returns:
        ``(mask, values)``: ``(K,)`` int64 mask index of each flagged cell and
        ``(K, P * Q)`` float32 values of its pixels (``P`` rows by ``Q`` columns; padding
        entries, where a cell has fewer lines, are NaN, so no comparison counts them).
    """
    _, h, w = logits.shape
    flat = torch.nonzero(cells.reshape(-1)).flatten()
    n, rest = flat // (h * w), flat % (h * w)
    i, j = rest // w, rest % w
    right = flat + (cols.nxt.index_select(0, j) - j)
    down = n * (h * w) + rows.nxt.index_select(0, i) * w + j
    corner = logits.reshape(-1)
    a, b = corner.index_select(0, flat)[:, None], corner.index_select(0, right)[:, None]
    c = corner.index_select(0, down)[:, None]
    d = corner.index_select(0, down + (right - flat))[:, None]
    # Within rounding of PyTorch's kernel (the margin of the caller covers it).
    g = cols.frac.index_select(0, j)  # (K, Q)
    top = torch.lerp(a, b, g)
    bottom = torch.lerp(c, d, g)
    f = rows.frac.index_select(0, i)[:, :, None]  # (K, P, 1)
    values = torch.lerp(top[:, None, :], bottom[:, None, :], f)  # NaN where padded
    return n, values.flatten(1)


def tight_area_bounds(logits: torch.Tensor, thresholds: tuple[float, ...], rows: Taps,
                      cols: Taps) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds on ``(upsample(logits) > t).sum()``, tight but for pixels within the margin.

    Args:
        logits: ``(N, h, w)`` low-resolution logits.
        thresholds: the levels ``t`` to count above.
        rows: taps from ``h`` to the output height.
        cols: taps from ``w`` to the output width.

    Returns:
        ``(lower, upper)``, each ``(len(thresholds), N)`` int64; the exact count lies in
        ``[lower, upper]``.
    """
    n_all = logits.shape[0]
    lower = torch.zeros((len(thresholds), n_all), dtype=torch.long, device=logits.device)
    upper = torch.zeros_like(lower)
    if n_all == 0 or not thresholds:
        return lower, upper
    row_lines, col_lines = cell_lines(rows), cell_lines(cols)
    pixels_per_cell = row_lines.frac.shape[1] * col_lines.frac.shape[1]
    cell_sum = torch.uint8 if pixels_per_cell <= 255 else torch.int32
    least, most = min(thresholds), max(thresholds)
    for start in range(0, n_all, _MIXED_CHUNK):
        part = logits[start : start + _MIXED_CHUNK].float().contiguous()
        n = part.shape[0]
        lo_value, hi_value = torch.aminmax(part)
        margin = _MARGIN * (1.0 + max(abs(float(lo_value)), abs(float(hi_value))))
        low, high = cell_extrema(part)
        # Cells whose range meets [least, most] (within the margin): every cell a level
        # crosses, and the few between close levels; their pixels are interpolated once.
        # Any other cell lies wholly above every level or wholly below.
        crossed = (high > least - margin) & (low <= most + margin)
        base = _count_cells(low > most + margin, rows, cols)  # surely above every level
        owner, values = _mixed_pixels(part, crossed, row_lines, col_lines)
        for k, t in enumerate(thresholds):
            for bound, level in ((lower, t + margin), (upper, t - margin)):
                # bools summed as bytes, in bytes where a cell's pixels fit: a bool sum()
                # first copies to int64, a sum into a wider type first widens every byte
                per_cell = (values > level).view(torch.uint8).sum(1, dtype=cell_sum).long()
                bound[k, start : start + n] = base + torch.zeros_like(base).index_add_(
                    0, owner, per_cell)
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
