"""Meta's DINOv2 ViT-S/14 as its checkpoint defines it, computed independently of timm.

Written from the documented behaviour of facebookresearch/dinov2 (``vision_transformer.py``
and ``hub/backbones.py``), not from its code:

- a checkpoint (``dinov2_vits14[_reg4]_pretrain.pth``) is a flat state dict: ``cls_token``
  ``(1, 1, D)``, ``pos_embed`` ``(1, 1 + 37², D)`` (the class position first, then the
  37×37 grid of the 518 px training crop), ``mask_token`` ``(1, D)``, ``register_tokens``
  ``(1, 4, D)`` in the register models, ``patch_embed.proj`` (a 14×14 stride-14 conv),
  ``blocks.{i}.{norm1, attn.qkv, attn.proj, ls1.gamma, norm2, mlp.fc1, mlp.fc2,
  ls2.gamma}`` and ``norm``;
- tokens: the class token, then the patches, plus the (resized) position embedding; the
  register tokens go in after the class token, with no position; pre-norm blocks
  (LayerNorm eps 1e-6, scaled dot-product attention, GELU MLP, layer scale); a final
  LayerNorm; the patch tokens are the last ``h · w``;
- the position grid is resized by bicubic interpolation: plain models request the scale
  factor ``(n + 0.1) / 37`` per axis without antialiasing, register models the size ``n``
  with antialiasing. Both resizes are built here as explicit interpolation matrices in
  float64 (PyTorch's two bicubic kernels), not through ``torch.nn.functional.interpolate``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

DIM, DEPTH, HEADS, PATCH, GRID, REGISTERS = 384, 12, 6, 14, 37, 4
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BLOCK_KEYS = {
    "norm1.weight": (DIM,), "norm1.bias": (DIM,),
    "attn.qkv.weight": (3 * DIM, DIM), "attn.qkv.bias": (3 * DIM,),
    "attn.proj.weight": (DIM, DIM), "attn.proj.bias": (DIM,), "ls1.gamma": (DIM,),
    "norm2.weight": (DIM,), "norm2.bias": (DIM,),
    "mlp.fc1.weight": (4 * DIM, DIM), "mlp.fc1.bias": (4 * DIM,),
    "mlp.fc2.weight": (DIM, 4 * DIM), "mlp.fc2.bias": (DIM,), "ls2.gamma": (DIM,),
}


def checkpoint_shapes(registers: bool) -> dict[str, tuple[int, ...]]:
    """Keys and shapes of Meta's ViT-S/14 checkpoint, plain or with 4 registers."""
    shapes: dict[str, tuple[int, ...]] = {"cls_token": (1, 1, DIM),
                                          "pos_embed": (1, 1 + GRID * GRID, DIM)}
    if registers:
        shapes["register_tokens"] = (1, REGISTERS, DIM)
    shapes["mask_token"] = (1, DIM)
    shapes["patch_embed.proj.weight"] = (DIM, 3, PATCH, PATCH)
    shapes["patch_embed.proj.bias"] = (DIM,)
    for i in range(DEPTH):
        shapes.update({f"blocks.{i}.{k}": s for k, s in BLOCK_KEYS.items()})
    shapes["norm.weight"] = (DIM,)
    shapes["norm.bias"] = (DIM,)
    return shapes


def seeded_checkpoint(seed: int, registers: bool) -> dict[str, torch.Tensor]:
    """A Meta-format state dict with seeded weights of trained-like magnitudes.

    Norm weights and layer scales near 1, matrices with unit-variance outputs, tokens and
    a position embedding of std 0.5 (large enough that a wrong resize shows).
    """
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape in checkpoint_shapes(registers).items():
        r = torch.randn(shape, generator=g)
        if key.endswith(("norm1.weight", "norm2.weight", "norm.weight", "gamma")):
            r = 1.0 + 0.1 * r
        elif len(shape) >= 2 and key.endswith("weight"):
            r = r / math.sqrt(math.prod(shape[1:]))
        else:
            r = 0.5 * r
        sd[key] = r
    return sd


def _cubic(t: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic convolution kernel with parameter ``a``."""
    t = np.abs(t)
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((t - 5) * t + 8) * t * a - 4 * a
    return np.where(t <= 1, near, np.where(t < 2, far, 0.0))


def plain_bicubic_matrix(m: int, n: int, scale: float) -> np.ndarray:
    """``(n, m)``: PyTorch's bicubic (``a = -0.75``, no antialias, half-pixel centres,
    edge samples repeated) at output scale ``scale``."""
    out = np.zeros((n, m))
    for i in range(n):
        src = (i + 0.5) / scale - 0.5
        x0 = math.floor(src)
        for k in range(-1, 3):
            out[i, min(max(x0 + k, 0), m - 1)] += _cubic(np.array(src - (x0 + k)), -0.75)
    return out


def antialiased_bicubic_matrix(m: int, n: int) -> np.ndarray:
    """``(n, m)``: PyTorch's antialiased bicubic (``a = -0.5``, the kernel widened by the
    reduction factor when shrinking, weights normalised to sum 1) from size m to n."""
    ratio = m / n
    stretch = max(ratio, 1.0)
    out = np.zeros((n, m))
    for i in range(n):
        centre = ratio * (i + 0.5)
        lo = max(int(centre - 2 * stretch + 0.5), 0)
        hi = min(int(centre + 2 * stretch + 0.5), m)
        j = np.arange(lo, hi)
        w = _cubic((j - centre + 0.5) / stretch, -0.5)
        out[i, lo:hi] = w / w.sum()
    return out


def resized_positions(pos: torch.Tensor, h: int, w: int, registers: bool) -> torch.Tensor:
    """Meta's position embedding ``(1, 1 + M², D)`` for an ``h × w`` grid: ``(1, 1 + hw, D)``."""
    grid = pos[0, 1:].double().reshape(GRID, GRID, -1).numpy()
    if (h, w) != (GRID, GRID):
        if registers:
            rows, cols = antialiased_bicubic_matrix(GRID, h), antialiased_bicubic_matrix(GRID, w)
        else:
            rows = plain_bicubic_matrix(GRID, h, (h + 0.1) / GRID)
            cols = plain_bicubic_matrix(GRID, w, (w + 0.1) / GRID)
        grid = np.einsum("ia,abd,jb->ijd", rows, grid, cols)
    patches = torch.from_numpy(grid.reshape(h * w, -1)).float()
    return torch.cat([pos[0, :1], patches])[None]


def _block(x: torch.Tensor, sd: dict[str, torch.Tensor], i: int) -> torch.Tensor:
    p = f"blocks.{i}."
    b, n, _ = x.shape
    y = F.layer_norm(x, (DIM,), sd[p + "norm1.weight"], sd[p + "norm1.bias"], eps=1e-6)
    qkv = F.linear(y, sd[p + "attn.qkv.weight"], sd[p + "attn.qkv.bias"])
    q, k, v = qkv.reshape(b, n, 3, HEADS, DIM // HEADS).permute(2, 0, 3, 1, 4)
    y = F.scaled_dot_product_attention(q, k, v)  # softmax(q kᵀ / √d) v, as Meta computes it
    y = y.transpose(1, 2).reshape(b, n, DIM)
    x = x + sd[p + "ls1.gamma"] * F.linear(y, sd[p + "attn.proj.weight"], sd[p + "attn.proj.bias"])
    y = F.layer_norm(x, (DIM,), sd[p + "norm2.weight"], sd[p + "norm2.bias"], eps=1e-6)
    y = F.gelu(F.linear(y, sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"]))
    return x + sd[p + "ls2.gamma"] * F.linear(y, sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"])


@torch.inference_mode()
def patch_tokens(sd: dict[str, torch.Tensor], images: np.ndarray) -> np.ndarray:
    """Meta's ``forward_features(x)["x_norm_patchtokens"]`` for uint8 RGB images.

    Args:
        sd: a checkpoint from ``seeded_checkpoint`` (or any ViT-S/14 in Meta's format).
        images: ``(B, H, W, 3)`` uint8, ``H`` and ``W`` multiples of 14.

    Returns:
        ``(B, H // 14, W // 14, 384)`` float32.
    """
    b, height, width, _ = images.shape
    h, w = height // PATCH, width // PATCH
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    x = (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0 - mean) / std
    x = F.conv2d(x, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=PATCH)
    x = torch.cat([sd["cls_token"].expand(b, -1, -1), x.flatten(2).transpose(1, 2)], dim=1)
    registers = "register_tokens" in sd
    x = x + resized_positions(sd["pos_embed"], h, w, registers)
    if registers:
        x = torch.cat([x[:, :1], sd["register_tokens"].expand(b, -1, -1), x[:, 1:]], dim=1)
    for i in range(DEPTH):
        x = _block(x, sd, i)
    x = F.layer_norm(x, (DIM,), sd["norm.weight"], sd["norm.bias"], eps=1e-6)
    return x[:, x.shape[1] - h * w :].reshape(b, h, w, DIM).numpy()
