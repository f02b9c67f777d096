"""The restructured decoder computes the stock SAM2 decoder's function.

SAM 2.1 hiera_t with seeded random weights, and the same model with its LayerNorms and
weights perturbed (random initialisation sets LayerNorm weights to 1 and biases to 0,
which could hide a mistake in how they are applied).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from prodseg.workers.models.builders import build_sam2_model
from prodseg.workers.segment.sam2_decoder import decode_points

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def encoded() -> tuple[object, object]:
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    model = build_sam2_model("hiera_tiny", "random", Path("/nonexistent"), "cpu", 0)
    predictor = SAM2ImagePredictor(model)
    rng = np.random.default_rng(0)
    predictor.set_image(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    return model, predictor


def stock_and_restructured(model: object, predictor: object, coords: np.ndarray,
                           labels: np.ndarray, dense_noise: float = 0.0
                           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    m, p = model, predictor
    with torch.inference_mode():
        pts = p._transforms.transform_coords(  # type: ignore[attr-defined]
            torch.as_tensor(coords, dtype=torch.float32), normalize=True, orig_hw=(120, 160))
        sparse, dense = m.sam_prompt_encoder(  # type: ignore[attr-defined]
            points=(pts, torch.as_tensor(labels, dtype=torch.int)), boxes=None, masks=None)
        if dense_noise:
            dense = dense + dense_noise * torch.randn_like(dense)
        feats = p._features  # type: ignore[attr-defined]
        high_res = [f[-1].unsqueeze(0) for f in feats["high_res_feats"]]
        embed = feats["image_embed"][-1].unsqueeze(0)
        low, iou, _, _ = m.sam_mask_decoder(  # type: ignore[attr-defined]
            image_embeddings=embed, image_pe=m.sam_prompt_encoder.get_dense_pe(),  # type: ignore[attr-defined]
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
            multimask_output=True, repeat_image=True, high_res_features=high_res)
        fast_low, fast_iou = decode_points(m, embed, high_res, sparse, dense)
    return low, iou, fast_low, fast_iou


def prompts(n: int, negatives: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    coords = rng.uniform([0, 0], [160, 120], size=(n, 1 + negatives, 2))
    labels = np.concatenate([np.ones((n, 1)), np.zeros((n, negatives))], axis=1)
    return coords.astype(np.float32), labels.astype(np.int64)


def assert_same(low: torch.Tensor, iou: torch.Tensor, fast_low: torch.Tensor,
                fast_iou: torch.Tensor) -> None:
    assert fast_low.shape == low.shape and fast_iou.shape == iou.shape
    scale = float(low.abs().max())
    assert float((fast_low - low).abs().max()) <= 1e-4 * scale
    assert float((fast_iou - iou).abs().max()) <= 1e-5


@pytest.mark.parametrize(("n", "negatives"), [(1, 0), (11, 0), (5, 2)])
def test_equals_the_stock_decoder(encoded: tuple[object, object], n: int,
                                  negatives: int) -> None:
    model, predictor = encoded
    assert_same(*stock_and_restructured(model, predictor, *prompts(n, negatives, n)))


def test_equals_the_stock_decoder_with_perturbed_weights(
        encoded: tuple[object, object]) -> None:
    model, predictor = encoded
    decoder = model.sam_mask_decoder  # type: ignore[attr-defined]
    saved = {k: v.clone() for k, v in decoder.state_dict().items()}
    g = torch.Generator().manual_seed(1)
    try:
        with torch.no_grad():
            for name, param in decoder.named_parameters():
                if "norm" in name or "output_upscaling.1" in name:
                    param.add_(0.3 * torch.randn(param.shape, generator=g))
                else:
                    param.mul_(1.5)
        assert_same(*stock_and_restructured(model, predictor, *prompts(7, 1, 3)))
    finally:
        decoder.load_state_dict(saved)


def test_mask_prompts_go_to_the_stock_decoder(encoded: tuple[object, object]) -> None:
    """Per-prompt dense embeddings (as mask inputs give) are not restructured: same output."""
    model, predictor = encoded
    torch.manual_seed(0)
    low, iou, fast_low, fast_iou = stock_and_restructured(model, predictor, *prompts(3, 0, 4),
                                                          dense_noise=0.01)
    assert torch.equal(fast_low, low) and torch.equal(fast_iou, iou)  # the very same call


def test_prompts_below_the_iou_threshold_skip_their_masks(
        encoded: tuple[object, object]) -> None:
    model, predictor = encoded
    low, iou, _, _ = stock_and_restructured(model, predictor, *prompts(6, 0, 5))
    # Half the prompts fall below: a cut midway between two prompts' best IoUs, so that
    # the decoders' last-bit differences cannot put a prompt on the other side of it.
    best = iou.max(dim=1).values.sort().values
    cut = float(best[2] + best[3]) / 2
    m, p = model, predictor
    with torch.inference_mode():
        pts = p._transforms.transform_coords(  # type: ignore[attr-defined]
            torch.as_tensor(prompts(6, 0, 5)[0]), normalize=True, orig_hw=(120, 160))
        sparse, dense = m.sam_prompt_encoder(  # type: ignore[attr-defined]
            points=(pts, torch.ones(6, 1, dtype=torch.int)), boxes=None, masks=None)
        feats = p._features  # type: ignore[attr-defined]
        high_res = [f[-1].unsqueeze(0) for f in feats["high_res_feats"]]
        skipped, skipped_iou = decode_points(m, feats["image_embed"][-1].unsqueeze(0),
                                             high_res, sparse, dense, skip_below=cut)
    kept = (iou > cut).any(dim=1)
    assert 0 < int(kept.sum()) < 6
    assert torch.allclose(skipped_iou, iou, atol=1e-5)
    assert_same(low[kept], iou[kept], skipped[kept], skipped_iou[kept])
    assert not skipped[~kept].any()
