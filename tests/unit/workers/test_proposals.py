"""prodseg's proposal generator against SAM2's official automatic mask generator.

Same model (SAM 2.1 hiera_t, seeded random weights), same image, same parameters: every
official mask must have one of ours with IoU >= 0.95 and the counts must agree within 5%
(in fact they are identical). Random weights give logits within about +/-0.3, so the
comparisons use a mask threshold and stability offset at that scale; with the default
threshold and offset every random-weight mask would be unstable and the test empty.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch

from prodseg.producer.samples.clutter import render_cluttered_shelf
from prodseg.producer.samples.scene import render_spin_set
from prodseg.workers.models.builders import build_sam2_model
from prodseg.workers.segment.sam2_candidates import ProposalParams, point_grid
from prodseg.workers.segment.sam2_proposals import ProposalGenerator

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sam_tiny(tmp_path_factory: pytest.TempPathFactory) -> torch.nn.Module:
    return build_sam2_model("hiera_tiny", "random", tmp_path_factory.mktemp("c"), "cpu", 0)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return render_spin_set(n_views=2, height=240, width=320, seed=0).views[1].image


def official(model: torch.nn.Module, image: np.ndarray, p: ProposalParams) -> np.ndarray:
    from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)
        amg = SAM2AutomaticMaskGenerator(
            model, points_per_side=p.points_per_side, points_per_batch=p.points_per_batch,
            pred_iou_thresh=p.pred_iou_thresh, stability_score_thresh=p.stability_score_thresh,
            stability_score_offset=p.stability_score_offset, mask_threshold=p.mask_threshold,
            box_nms_thresh=p.box_nms_thresh, output_mode="binary_mask")
    records = amg.generate(image)
    masks = np.stack([r["segmentation"] for r in records]) if records else np.zeros(
        (0, *image.shape[:2]), bool)
    return masks[masks.reshape(len(masks), -1).any(axis=1)]  # ours never returns empties


def best_ious(theirs: np.ndarray, ours: np.ndarray) -> np.ndarray:
    a = torch.as_tensor(theirs.reshape(len(theirs), -1), dtype=torch.float32)
    b = torch.as_tensor(ours.reshape(len(ours), -1), dtype=torch.float32)
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    return (inter / union.clamp(min=1)).amax(dim=1).numpy()


@pytest.mark.parametrize("nms", [0.8, 0.95])
def test_survivors_match_the_official_generator(sam_tiny: torch.nn.Module, image: np.ndarray,
                                                nms: float) -> None:
    params = ProposalParams(points_per_side=6, pred_iou_thresh=0.45, stability_score_thresh=0.1,
                            mask_threshold=0.25, stability_score_offset=0.01,
                            box_nms_thresh=nms, points_per_batch=16)
    theirs = official(sam_tiny, image, params)
    generator = ProposalGenerator(sam_tiny, params)
    ours = generator.propose(image)

    assert len(theirs) >= 10  # the filters and NMS had real work to do
    assert abs(len(ours) - len(theirs)) <= 0.05 * len(theirs)
    assert float(best_ious(theirs, ours.masks).min()) >= 0.95
    timing = generator.last_timing
    assert timing.prompts == 36 and timing.candidates == 108
    assert timing.encoder > 0 and timing.decoder > 0


def test_many_survivors_match_the_official_generator(sam_tiny: torch.nn.Module) -> None:
    """A cluttered shelf, where dozens of candidates survive every filter and NMS: the
    work after the decoder (boxes of hundreds of filtered candidates, NMS, the survivors'
    masks) gives SAM2's masks, one for one."""
    shelf = render_cluttered_shelf(height=240, width=320, shelves=3, seed=0)
    params = ProposalParams(points_per_side=12, pred_iou_thresh=0.0, stability_score_thresh=0.3,
                            mask_threshold=0.25, stability_score_offset=0.01,
                            box_nms_thresh=0.95, points_per_batch=48)
    theirs = official(sam_tiny, shelf.image, params)
    generator = ProposalGenerator(sam_tiny, params)
    ours = generator.propose(shelf.image)

    assert len(theirs) >= 30
    assert generator.last_timing.filtered > 3 * len(theirs)  # NMS had real work to do
    assert len(ours) == len(theirs) == generator.last_timing.survivors
    assert float(best_ious(theirs, ours.masks).min()) >= 0.99
    assert float(best_ious(ours.masks, theirs).min()) >= 0.99


def test_masks_at_mask_threshold_zero_are_sam2s_bit_for_bit(sam_tiny: torch.nn.Module,
                                                            image: np.ndarray) -> None:
    """Every threshold at zero and NMS keeping all 108 candidates, so that a logit within
    rounding of zero anywhere in any candidate shows: with the stock decoder's logits
    (bit-identical to SAM2's), the work after the decoder gives SAM2's masks bit for bit,
    in SAM2's order. The restructured decoder's logits differ from the stock module's by
    float rounding (about 1e-7, as SAM2's own between batch sizes 64 and 1), which puts a
    few of these pixels on the other side of zero (docs/performance.md)."""
    params = ProposalParams(points_per_side=6, pred_iou_thresh=0.0, stability_score_thresh=0.0,
                            mask_threshold=0.0, stability_score_offset=1.0,
                            box_nms_thresh=1.0, points_per_batch=16)
    theirs = official(sam_tiny, image, params)
    ours = ProposalGenerator(sam_tiny, params, restructured_decoder=False).propose(image)

    assert len(theirs) == 108  # IoU never exceeds 1: NMS drops nothing
    assert ours.masks.shape == theirs.shape
    assert np.array_equal(ours.masks, theirs)


def test_grid_is_sam2s_grid() -> None:
    from sam2.utils.amg import build_point_grid

    np.testing.assert_allclose(point_grid(5, 30, 40), build_point_grid(5) * [40, 30], rtol=1e-6)


def test_prompts_at_points_give_masks_holding_them(sam_tiny: torch.nn.Module,
                                                   image: np.ndarray) -> None:
    params = ProposalParams(pred_iou_thresh=0.0, stability_score_thresh=0.0, mask_threshold=0.1,
                            box_nms_thresh=1.0)
    generator = ProposalGenerator(sam_tiny, params)
    positives = np.array([[80.0, 60.0], [240.0, 180.0]], np.float32)
    proposals = generator.propose_at(image, positives, np.array([[5.0, 5.0]], np.float32))
    assert generator.last_timing.prompts == 2
    assert generator.last_timing.candidates == 6  # three candidates per prompt
    assert proposals.masks.shape[1:] == image.shape[:2] and len(proposals) <= 6
    assert proposals.masks.dtype == bool and proposals.scores.dtype == np.float32


def test_area_ratio_filter(sam_tiny: torch.nn.Module, image: np.ndarray) -> None:
    base = ProposalParams(points_per_side=3, pred_iou_thresh=0.0, stability_score_thresh=0.0,
                          mask_threshold=0.1, box_nms_thresh=1.0)
    everything = ProposalGenerator(sam_tiny, base).propose(image)
    areas = everything.masks.reshape(len(everything), -1).mean(axis=1)
    cut = float(np.median(areas))
    small = ProposalGenerator(sam_tiny, replace(base, max_area_ratio=cut)).propose(image)
    assert len(small) == int((areas <= cut).sum())
    assert bool((small.masks.reshape(len(small), -1).mean(axis=1) <= cut).all())


def test_sam2_segmenter_uses_the_generator(sam_tiny: torch.nn.Module,
                                           image: np.ndarray) -> None:
    from prodseg.workers.segment.sam2_image import Sam2Segmenter

    seg = Sam2Segmenter(sam_tiny, ProposalParams(points_per_side=2, pred_iou_thresh=0.0,
                                                 stability_score_thresh=0.0), "t")
    props = seg.propose(image)
    assert seg.last_timing.prompts == 4 and props.masks.shape[1:] == image.shape[:2]


def test_clicks_on_the_same_image_reuse_its_features(sam_tiny: torch.nn.Module,
                                                     image: np.ndarray,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """An interactive selection clicks many times on one image: the encoder runs once per
    distinct image, and a changed pixel counts as a new image."""
    from prodseg.prompts import Prompt
    from prodseg.workers.segment.sam2_image import Sam2Segmenter

    seg = Sam2Segmenter(sam_tiny, ProposalParams(points_per_side=2), "t")
    encoded: list[int] = []
    original = seg.predictor.set_image
    monkeypatch.setattr(seg.predictor, "set_image",
                        lambda img: (encoded.append(1), original(img))[1])
    first = seg.segment(image, Prompt.from_point(160, 120))
    again = seg.segment(image.copy(), Prompt.from_point(160, 120))
    assert len(encoded) == 1
    assert np.array_equal(first.mask, again.mask) and first.score == again.score
    changed = image.copy()
    changed[0, 0, 0] ^= 1
    seg.segment(changed, Prompt.from_point(160, 120))
    seg.propose(changed)
    assert len(encoded) == 2
