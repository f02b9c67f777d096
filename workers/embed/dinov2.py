"""DINOv2 through timm as a ``PatchBackbone``: a thin wrapper, preprocessing from the model.

Mean, std and patch size come from the model's own pretrained config, not hard-coded
numbers. Patch tokens are ``forward_features(x)[:, num_prefix_tokens:]`` (class and
register tokens dropped). A model from ``build_dinov2_model`` resizes its position
embedding to the image's patch grid as Meta's ViT of its family does
(``models.dinov2_grid``), so the tokens are Meta's at any image size.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from prodseg.workers.models.builders import autocast_for


class DinoV2Backbone:
    """Patch features of a timm DINOv2 ViT.

    Args:
        model: a timm ``VisionTransformer`` built with ``dynamic_img_size=True`` (typed
            ``Any``: timm's attributes are not typed precisely enough for mypy).
        device: where the model lives.
        name: shown in outputs.
    """

    def __init__(self, model: Any, device: torch.device, name: str) -> None:
        self.model = model.eval()
        self.device = device
        self.name = name
        patch = model.patch_embed.patch_size
        self.patch_size = int(patch[0] if isinstance(patch, tuple | list) else patch)
        cfg = model.pretrained_cfg
        self._mean = torch.tensor(cfg["mean"], device=device).view(1, 3, 1, 1)
        self._std = torch.tensor(cfg["std"], device=device).view(1, 3, 1, 1)
        self._prefix = int(model.num_prefix_tokens)

    @torch.inference_mode()
    def patch_tokens(self, images: np.ndarray) -> np.ndarray:
        """Patch features of a batch of same-size images.

        Args:
            images: ``(B, h, w, 3)`` uint8 RGB, ``h`` and ``w`` multiples of the patch size.

        Returns:
            ``(B, h // patch, w // patch, D)`` float32.
        """
        b, h, w, _ = images.shape
        p = self.patch_size
        x = torch.from_numpy(np.ascontiguousarray(images)).to(self.device)
        x = x.permute(0, 3, 1, 2).float().div_(255.0)
        x = (x - self._mean) / self._std
        with autocast_for(self.device):
            feats = self.model.forward_features(x)
        tokens = feats[:, self._prefix :].float()
        return tokens.reshape(b, h // p, w // p, -1).cpu().numpy()
