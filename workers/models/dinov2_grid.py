"""DINOv2's position embedding on any patch grid, resized as Meta's own ViT resizes it.

DINOv2 learns one position embedding per patch of its 518 px training crop, a 37×37 grid
(``M = 37``). Any other grid (a 4:3 photo with long side 518 px is 37×28) needs that
embedding resized, by bicubic interpolation, and Meta's ViT (facebookresearch/dinov2,
``interpolate_pos_encoding``) does it differently for its two published families:

- plain models (hub ``dinov2_vit*14``, timm ``vit_*_patch14_dinov2``): ``interpolate_offset
  = 0.1``, ``interpolate_antialias = False``. The output is requested by *scale factor*
  ``(n + 0.1) / M`` per axis, not by size, so PyTorch samples the source at
  ``(i + 0.5) · M / (n + 0.1) − 0.5``; the output still has ``n`` positions. Plain
  (not antialiased) bicubic, whose kernel has ``a = −0.75``.
- register models (hub ``dinov2_vit*14_reg``, timm ``vit_*_patch14_reg4_dinov2``):
  ``interpolate_offset = 0``, ``interpolate_antialias = True``: requested by size,
  antialiased (PyTorch's antialiased bicubic kernel has ``a = −0.5``).

timm resizes every model the second way, so its plain DINOv2 computes other tokens than
Meta's at every grid but 37×37. ``follow_reference_grid`` gives a timm DINOv2 the resize of
its family. The 37×37 grid is never resized, by either implementation.
"""

from __future__ import annotations

import math
import types
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class GridResize:
    """How a position embedding is resized to another patch grid (always bicubic).

    Attributes:
        offset: > 0: the output is requested by scale factor ``(n + offset) / M`` per axis;
            0: by size ``n``.
        antialias: PyTorch's antialiased bicubic (``a = −0.5``) instead of plain (``−0.75``).
    """

    offset: float
    antialias: bool


PLAIN = GridResize(offset=0.1, antialias=False)
REGISTERS = GridResize(offset=0.0, antialias=True)


def family_grid_resize(model: Any) -> GridResize:
    """The resize Meta's ViT uses for the family of a timm DINOv2 model.

    Args:
        model: a timm ``VisionTransformer`` of DINOv2 (register models have
            ``num_reg_tokens > 0``).
    """
    return REGISTERS if int(getattr(model, "num_reg_tokens", 0) or 0) else PLAIN


def resize_grid(pos: torch.Tensor, grid: tuple[int, int], how: GridResize) -> torch.Tensor:
    """A square grid's position embedding resized to another grid.

    Args:
        pos: ``(1, M * M, D)``, row-major over the ``M × M`` grid.
        grid: ``(h, w)``, rows and columns of the new grid.
        how: the family's resize.

    Returns:
        ``(1, h * w, D)`` in the dtype of ``pos`` (interpolated in float32); ``pos`` itself
        when the grid is ``M × M``.
    """
    h, w = grid
    _, n, dim = pos.shape
    m = math.isqrt(n)
    if m * m != n:
        raise ValueError(f"position embedding of {n} patches is not a square grid")
    if h == m and w == m:
        return pos
    square = pos.float().reshape(1, m, m, dim).permute(0, 3, 1, 2)
    if how.offset:
        scale = ((h + how.offset) / m, (w + how.offset) / m)
        out = F.interpolate(square, scale_factor=scale, mode="bicubic", antialias=how.antialias)
    else:
        out = F.interpolate(square, size=(h, w), mode="bicubic", antialias=how.antialias)
    if tuple(out.shape[-2:]) != (h, w):
        raise ValueError(f"resize of a {m}x{m} grid gave {tuple(out.shape[-2:])}, not {grid}")
    return out.permute(0, 2, 3, 1).reshape(1, h * w, dim).to(pos.dtype)


def _pos_embed(model: Any, x: torch.Tensor) -> torch.Tensor:
    """timm's ``VisionTransformer._pos_embed`` with the grid resize in ``model.grid_resize``.

    Args:
        model: the timm ViT (built with ``dynamic_img_size=True``).
        x: ``(B, h, w, D)`` patch embeddings.

    Returns:
        ``(B, prefix + h * w, D)``: class and register tokens, then the patches, with
        position embeddings added.
    """
    if x.ndim != 4:
        raise ValueError("the grid resize needs a timm ViT built with dynamic_img_size=True")
    b, h, w, dim = x.shape
    how: GridResize = model.grid_resize
    prefix = [t.expand(b, -1, -1) for t in (model.cls_token, model.reg_token) if t is not None]
    patches = x.reshape(b, h * w, dim)
    pos = model.pos_embed
    if model.no_embed_class:
        # timm's layout of the register models: pos_embed covers the patches only (the
        # class position is folded into cls_token when Meta's checkpoint is converted).
        patches = patches + resize_grid(pos, (h, w), how)
        tokens = torch.cat([*prefix, patches], dim=1)
    else:
        k = int(model.num_prefix_tokens)
        full = torch.cat([pos[:, :k], resize_grid(pos[:, k:], (h, w), how)], dim=1)
        tokens = torch.cat([*prefix, patches], dim=1) + full
    out: torch.Tensor = model.pos_drop(tokens)
    return out


def follow_reference_grid(model: Any) -> Any:
    """Make a timm DINOv2 resize its position embedding as Meta's ViT of its family does.

    Sets ``model.grid_resize`` and replaces the model's ``_pos_embed`` by one that uses
    it (a bound method, so a copy of the model keeps its own); the weights and the state
    dict are untouched.

    Args:
        model: a timm DINOv2 ``VisionTransformer`` built with ``dynamic_img_size=True``.

    Returns:
        ``model``.
    """
    model.grid_resize = family_grid_resize(model)
    model._pos_embed = types.MethodType(_pos_embed, model)
    return model
