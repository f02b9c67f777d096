"""prodseg's DINOv2 against Meta's, from one seeded checkpoint in Meta's published format.

``python -m tests.support.dinov2_parity`` prints, for each family and grid, the largest
absolute difference between the patch tokens of the reference (``dinov2_reference``) and
those of prodseg's loader, and of the same checkpoint in timm with timm's own resize.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prodseg.workers.embed.dinov2 import DinoV2Backbone
from prodseg.workers.models.builders import build_dinov2_model
from prodseg.workers.models.weights import weight_file
from tests.support import dinov2_reference

FAMILIES = {"plain": "vit_small_patch14_dinov2", "reg4": "vit_small_patch14_reg4_dinov2"}
GRIDS = ((37, 37), (37, 28), (28, 37), (16, 16))  # (rows, columns) of patches
CPU = torch.device("cpu")


def write_checkpoint(cache_dir: Path, name: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Save a seeded Meta-format checkpoint where prodseg's loader looks for ``name``."""
    sd = dinov2_reference.seeded_checkpoint(seed, registers="reg4" in name)
    path = weight_file(name).path(cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(sd, path)
    return sd


def with_timm_resize(model: Any) -> Any:
    """A copy of a built model that resizes its position embedding as stock timm does."""
    stock = copy.deepcopy(model)
    del stock._pos_embed  # the class's own method again
    return stock


def grid_images(grid: tuple[int, int], seed: int = 1) -> np.ndarray:
    """``(1, 14 h, 14 w, 3)`` uint8 noise for a ``(h, w)`` patch grid."""
    h, w = grid
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (1, 14 * h, 14 * w, 3), dtype=np.uint8)


def main() -> None:
    """Print the table (a few minutes on two CPU cores)."""
    with tempfile.TemporaryDirectory() as tmp:
        for family, name in FAMILIES.items():
            sd = write_checkpoint(Path(tmp), name)
            model = build_dinov2_model(name, "pretrained", Path(tmp), "cpu")
            prodseg = DinoV2Backbone(model, CPU, name)
            stock = DinoV2Backbone(with_timm_resize(model), CPU, name)
            for grid in GRIDS:
                images = grid_images(grid)
                want = dinov2_reference.patch_tokens(sd, images)
                before = np.abs(stock.patch_tokens(images) - want).max()
                after = np.abs(prodseg.patch_tokens(images) - want).max()
                print(f"{family:5s} {grid[0]}x{grid[1]}: max |diff| timm resize {before:.2e}, "
                      f"prodseg {after:.2e} (|token| max {np.abs(want).max():.2f})")


if __name__ == "__main__":
    main()
