"""Building SAM 2.1 and DINOv2: the real loaders, pretrained or seeded-random, cached.

Pretrained weights load through the libraries' own code paths: ``sam2.build_sam.build_sam2``
with the official ``{"model": state_dict}`` checkpoint, and ``timm.create_model`` with the
official DINOv2 checkpoint as its pretrained file. A DINOv2 model resizes its position
embedding to other patch grids as Meta's ViT of its family does (``dinov2_grid``), so its
tokens are Meta's at every grid. ``weights="random"`` builds the very
same architectures with seeded random weights: for smoke runs and compute benchmarks,
never for results.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import torch

from prodseg.workers.models.dinov2_grid import follow_reference_grid
from prodseg.workers.models.weights import RANDOM_WEIGHTS_WARNING, require_weights

__all__ = [
    "RANDOM_WEIGHTS_WARNING",
    "autocast_for",
    "build_dinov2_model",
    "build_sam2_model",
    "resolve_device",
]

SAM2_CONFIGS = {
    "hiera_tiny": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "hiera_small": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "hiera_base_plus": "configs/sam2.1/sam2.1_hiera_b+.yaml",
    "hiera_large": "configs/sam2.1/sam2.1_hiera_l.yaml",
}


def resolve_device(setting: str) -> torch.device:
    """``auto`` picks CUDA when present, else CPU; anything else is taken as given."""
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(setting)
    if device.type == "cuda" and not torch.cuda.is_available():
        from prodseg.errors import SettingsError

        raise SettingsError(
            "invalid setting device (PRODSEG_DEVICE / --device): CUDA was asked for but "
            "torch sees no GPU"
        )
    return device


def autocast_for(device: torch.device) -> AbstractContextManager[object]:
    """bf16 autocast on CUDA (fp16 where bf16 is missing); full precision elsewhere."""
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return nullcontext()


def build_with_weights(builder: Callable[..., Any], size: str, weights: str,
                       cache_dir: Path, device: str, seed: int) -> Any:
    """``builder(config, ckpt_path=..., device=...)`` (a ``sam2.build_sam`` function) with
    the official checkpoint of ``size`` from ``cache_dir``, or seeded random weights."""
    config = SAM2_CONFIGS[size]
    if weights == "random":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return builder(config, ckpt_path=None, device=device)
    checkpoint = require_weights(size, cache_dir)
    return builder(config, ckpt_path=str(checkpoint), device=device)


@functools.lru_cache(maxsize=4)
def build_sam2_model(
    size: str, weights: str, cache_dir: Path, device: str, seed: int = 0, compile: bool = False
) -> torch.nn.Module:
    """SAM 2.1 of the given size, in eval mode, on ``device``; built once per arguments.

    Args:
        size: ``hiera_tiny``, ``hiera_small``, ``hiera_base_plus`` or ``hiera_large``.
        weights: ``"pretrained"`` (the checkpoint in ``cache_dir``) or ``"random"``.
        cache_dir: the model cache directory.
        device: a torch device string.
        seed: seed of random weights.
        compile: ``torch.compile`` the image encoder (the first image pays for it).

    Raises:
        WeightsError: pretrained weights are not in the cache (names the download command).
    """
    from sam2.build_sam import build_sam2

    model = build_with_weights(build_sam2, size, weights, cache_dir, device, seed)
    if compile:
        encoder = model.image_encoder
        encoder.forward = torch.compile(encoder.forward, dynamic=False)
    return model


@functools.lru_cache(maxsize=4)
def build_dinov2_model(
    name: str, weights: str, cache_dir: Path, device: str, seed: int = 0, compile: bool = False
) -> torch.nn.Module:
    """DINOv2 ViT from timm (any input size a multiple of 14), eval mode, on ``device``.

    Its position embedding is resized to other patch grids as Meta's ViT resizes it for
    the model's family (plain or registers; see ``dinov2_grid``).

    Args:
        name: timm architecture, e.g. ``vit_large_patch14_dinov2``.
        weights: ``"pretrained"`` (Meta's checkpoint in ``cache_dir``) or ``"random"``.
        cache_dir: the model cache directory.
        device: a torch device string.
        seed: seed of random weights.
        compile: ``torch.compile`` its ``forward_features`` (dynamic shapes: images of
            different aspect ratios give different patch grids).

    Raises:
        WeightsError: pretrained weights are not in the cache (names the download command).
    """
    import timm

    kwargs: dict[str, Any] = {"num_classes": 0, "dynamic_img_size": True}
    if weights == "random":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = timm.create_model(f"{name}.lvd142m", pretrained=False, **kwargs)
    else:
        checkpoint = require_weights(name, cache_dir)
        model = timm.create_model(
            f"{name}.lvd142m",
            pretrained=True,
            pretrained_cfg_overlay={"file": str(checkpoint)},
            **kwargs,
        )
    built: Any = follow_reference_grid(model).to(device).eval()
    if compile:
        built.forward_features = torch.compile(built.forward_features, dynamic=True)
    return built
