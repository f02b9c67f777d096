"""Tight bounds on the areas of full-resolution masks: only the *mixed* cells' pixels.

Near a level that many logits sit close to (SAM2's stability score asks about
``mask_threshold +/- offset``; with a small offset both levels lie in the thick of the
logits) whole-cell bounds (``sam2_lowres.area_bounds``) settle nothing. The cells a level
crosses (a few percent of the image, an eighth on a cluttered shelf) are the only ones
whose pixels need interpolating; every other cell lies wholly above every level or wholly
below, and counts whole. Their pixels are interpolated to PyTorch's values up to rounding
(its kernels order their products differently, about 1e-6 apart): a pixel is surely in
above ``t + margin`` and possibly in above ``t - margin``, with a margin far above any
rounding. The bounds differ by the handful of pixels within the margin.

All functions are pure and work on any device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from prodseg.workers.segment.sam2_lowres import Taps

_MIXED_CHUNK = 16  # masks per step: keeps their pixels' values in cache
_MARGIN = 1e-5  # relative to the largest logit magnitude; rounding is about 1e-7 of it


@dataclass(frozen=True)
class CellLines:
    """The output lines (rows or columns) of each source cell along one axis.

    Attributes:
        frac: ``(P, in)`` float32, the bilinear weight ``frac`` of each of the cell's output
            lines (padded to ``P``, the most lines any cell has, with NaN: a padding
            entry then interpolates to NaN, which is above no level). Line-major, so that
            the cells' values are laid out with the cells innermost.
        valid: ``(P, in)`` bool, which of the ``P`` entries are real lines.
        nxt: ``(in,)`` int64, the second source index of the cell (``i + 1``, clamped).
        regular: how many lines every cell but the ``wide`` ones has at most.
        wide: ``(in,)`` bool, the cells with more lines than ``regular`` (at an edge,
            where clamped output lines join the first cell).
    """

    frac: torch.Tensor
    valid: torch.Tensor
    nxt: torch.Tensor
    regular: int
    wide: torch.Tensor


def cell_lines(taps: Taps) -> CellLines:
    """Group one axis' output lines by the cell (``lo`` source index) they read from."""
    n_in = taps.count.shape[0]
    width = max(1, int(taps.count.max()))
    start = torch.cumsum(taps.count, 0) - taps.count  # taps.lo is non-decreasing
    k = torch.arange(width, device=taps.lo.device)
    valid = k[:, None] < taps.count[None, :]
    index = (start[None, :] + k[:, None]).clamp(max=max(0, taps.frac.shape[0] - 1))
    frac = torch.where(valid, taps.frac[index],
                       torch.full((), float("nan"), device=taps.frac.device))
    nxt = (torch.arange(n_in, device=taps.lo.device) + 1).clamp(max=n_in - 1)
    inner = taps.count[1:-1] if n_in > 2 else taps.count
    regular = max(1, int(inner.max()))
    return CellLines(frac.contiguous(), valid, nxt, regular, taps.count > regular)


def _count_cells(cells: torch.Tensor, rows: Taps, cols: Taps) -> torch.Tensor:
    """Output pixels in the flagged cells: ``(n, h, w)`` bool -> ``(n,)`` int64."""
    per_row = cells.to(torch.float32) @ cols.count.to(torch.float32)  # exact below 2**24
    return (per_row.to(torch.float64) @ rows.count.to(torch.float64)).round().long()


def _corners(above: torch.Tensor, every: bool) -> torch.Tensor:
    """Per cell, whether any (or every) one of its four source logits is flagged.

    Args:
        above: ``(n, h, w)`` bool, one flag per source logit.
        every: all four instead of any.

    Returns:
        ``(n, h, w)`` bool; cell ``(i, j)`` reads ``[i, i+1] x [j, j+1]``, clamped.
    """
    join = torch.logical_and if every else torch.logical_or
    across = above.clone()
    join(above[:, :, :-1], above[:, :, 1:], out=across[:, :, :-1])
    cells = across.clone()
    join(across[:, :-1], across[:, 1:], out=cells[:, :-1])
    return cells


def _unravel(flat: torch.Tensor, h: int, w: int
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(mask, row, column)`` of flat indices into ``(n, h, w)``: shifts where ``h`` and
    ``w`` are powers of two (SAM2's 256 x 256), int64 division (several times slower)
    elsewhere."""
    if h & (h - 1) == 0 and w & (w - 1) == 0:
        row_bits, col_bits = h.bit_length() - 1, w.bit_length() - 1
        return (flat >> (row_bits + col_bits), (flat >> col_bits) & (h - 1), flat & (w - 1))
    rest = flat % (h * w)
    return flat // (h * w), rest // w, rest % w


def _mixed_pixels(logits: torch.Tensor, flat: torch.Tensor, rows: CellLines, cols: CellLines,
                  lines: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Interpolated values of every pixel of the given cells, cells innermost.

    Args:
        logits: ``(n, h, w)`` float32, contiguous.
        flat: ``(K,)`` int64 flat indices into ``logits`` of the cells' first corners.
        rows: the cells' output rows.
        cols: the cells' output columns.
        lines: ``(P, Q)``, the rows and columns per cell to interpolate (the first ``P``
            and ``Q`` of ``rows`` and ``cols``; entries past a cell's lines are NaN).

    Returns:
        ``(mask, values)``: ``(K,)`` int64 mask index of each cell and ``(P * Q, K)``
        float32 values of its pixels; NaN where padded, so no comparison counts them.
        Every operand is laid out with the cells innermost: elementwise work on long
        rows, where broadcasting a cell's few lines would leave rows of 3 or 4 values.
    """
    _, h, w = logits.shape
    n_rows, n_cols = lines
    owner, i, j = _unravel(flat, h, w)
    right = flat + (cols.nxt.index_select(0, j) - j)
    down = flat + (rows.nxt.index_select(0, i) - i) * w
    corner = logits.reshape(-1)
    a, b = corner.index_select(0, flat), corner.index_select(0, right)
    c = corner.index_select(0, down)
    d = corner.index_select(0, down + (right - flat))
    # Within rounding of PyTorch's kernel (the margin of the caller covers it).
    g = cols.frac[:n_cols].index_select(1, j)  # (Q, K)
    top = g.mul((b - a)[None]).add_(a)
    bottom = g.mul((d - c)[None]).add_(c)
    f = rows.frac[:n_rows].index_select(1, i)  # (P, K)
    values = (bottom - top)[None] * f[:, None]  # (P, Q, K), NaN where padded
    return owner, values.add_(top[None]).reshape(n_rows * n_cols, -1)


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
    n_all, h, w = logits.shape
    lower = torch.zeros((len(thresholds), n_all), dtype=torch.long, device=logits.device)
    upper = torch.zeros_like(lower)
    if n_all == 0 or not thresholds:
        return lower, upper
    row_lines, col_lines = cell_lines(rows), cell_lines(cols)
    # Cells with more lines than the rest (at most the first and last of an axis) are
    # interpolated apart, so that the others are not padded to their width.
    wide = torch.nonzero((row_lines.wide[:, None] | col_lines.wide[None, :]).reshape(-1))
    wide = wide.flatten()
    shapes = ((row_lines.regular, col_lines.regular),
              (row_lines.frac.shape[0], col_lines.frac.shape[0]))
    pixels_per_cell = shapes[1][0] * shapes[1][1]
    cell_sum = torch.uint8 if pixels_per_cell <= 255 else torch.int32
    least, most = min(thresholds), max(thresholds)
    for start in range(0, n_all, _MIXED_CHUNK):
        part = logits[start : start + _MIXED_CHUNK].float().contiguous()
        n = part.shape[0]
        lo_value, hi_value = torch.aminmax(part)
        margin = _MARGIN * (1.0 + max(abs(float(lo_value)), abs(float(hi_value))))
        # Cells whose range meets [least, most] (within the margin): every cell a level
        # crosses, and the few between close levels; their pixels are interpolated once.
        # Any other cell lies wholly above every level or wholly below. A cell's range
        # is that of its four corners, so flags per logit, joined per cell, decide it.
        above_all = _corners(part > most + margin, every=True)  # surely above every level
        crossed = _corners(part > least - margin, every=False) & ~above_all
        lower[:, start : start + n] = upper[:, start : start + n] = _count_cells(
            above_all, rows, cols)
        per_mask = crossed.reshape(n, h * w)
        groups = [torch.nonzero(per_mask.index_select(1, wide).reshape(-1)).flatten()]
        if len(wide):  # (mask, wide cell) -> flat index
            groups[0] = groups[0] // len(wide) * (h * w) + wide[groups[0] % len(wide)]
            per_mask.index_fill_(1, wide, False)
        groups.insert(0, torch.nonzero(per_mask.reshape(-1)).flatten())
        for cells, lines in zip(groups, shapes, strict=True):
            if len(cells) == 0:
                continue
            owner, values = _mixed_pixels(part, cells, row_lines, col_lines, lines)
            for k, t in enumerate(thresholds):
                for bound, level in ((lower, t + margin), (upper, t - margin)):
                    # bools summed as bytes, in bytes where a cell's pixels fit: a bool
                    # sum() first copies to int64, a wider sum first widens every byte
                    per_cell = (values > level).view(torch.uint8).sum(0, dtype=cell_sum)
                    bound[k, start : start + n].index_add_(0, owner, per_cell.long())
    return lower, upper
