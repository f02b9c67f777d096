"""Real architectures, small variants, seeded random weights (no downloads, no GPU).

SAM 2.1 hiera_t and DINOv2 ViT-S/14 are built through the same loaders users run; a
checkpoint written in each official format loads back through them to identical outputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from prodseg.errors import WeightsError
from prodseg.prompts import Prompt
from prodseg.workers.embed.dinov2 import DinoV2Backbone
from prodseg.workers.embed.ffa_embedder import FFAEmbedder
from prodseg.workers.models.builders import build_dinov2_model, build_sam2_model
from prodseg.workers.models.weights import weight_file
from prodseg.workers.segment.sam2_candidates import ProposalParams
from prodseg.workers.segment.sam2_image import Sam2Segmenter

pytestmark = pytest.mark.slow

CPU = torch.device("cpu")
NO_FILTER = ProposalParams(points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    rng = np.random.default_rng(0)
    img = np.full((120, 160, 3), 200, dtype=np.uint8)
    img[30:90, 50:110] = rng.integers(0, 255, (60, 60, 3), dtype=np.uint8)
    return img


@pytest.fixture(scope="module")
def sam_tiny(tmp_path_factory: pytest.TempPathFactory) -> torch.nn.Module:
    return build_sam2_model("hiera_tiny", "random", tmp_path_factory.mktemp("c"), "cpu", 0)


def test_sam2_prompt_and_proposals(sam_tiny: torch.nn.Module, image: np.ndarray) -> None:
    seg = Sam2Segmenter(sam_tiny, NO_FILTER, "sam2.1_hiera_tiny")
    out = seg.segment(image, Prompt.from_point(80, 60))
    assert out.mask.shape == (120, 160) and out.mask.dtype == bool
    assert 0.0 <= out.score <= 1.5
    boxed = seg.segment(image, Prompt.from_box(50, 30, 110, 90))
    assert boxed.mask.shape == (120, 160)
    props = seg.propose(image)
    assert props.masks.ndim == 3 and props.masks.shape[1:] == (120, 160)
    assert props.masks.dtype == bool
    assert props.scores.shape == (len(props),)
    assert len(props) >= 1


def test_sam2_random_weights_are_seeded(tmp_path: Path) -> None:
    a = build_sam2_model("hiera_tiny", "random", tmp_path, "cpu", 7)
    b = build_sam2_model("hiera_tiny", "random", tmp_path / "other", "cpu", 7)
    c = build_sam2_model("hiera_tiny", "random", tmp_path, "cpu", 8)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_sam2_official_checkpoint_round_trip(tmp_path: Path, image: np.ndarray) -> None:
    random_model = build_sam2_model("hiera_tiny", "random", tmp_path / "r", "cpu", 3)
    path = weight_file("hiera_tiny").path(tmp_path)
    path.parent.mkdir(parents=True)
    torch.save({"model": random_model.state_dict()}, path)  # Meta's checkpoint layout
    loaded = build_sam2_model("hiera_tiny", "pretrained", tmp_path, "cpu", 0)
    assert loaded is not random_model
    prompt = Prompt.from_point(80, 60)
    want = Sam2Segmenter(random_model, NO_FILTER, "a").segment(image, prompt)
    got = Sam2Segmenter(loaded, NO_FILTER, "b").segment(image, prompt)
    assert np.array_equal(want.mask, got.mask)
    assert got.score == want.score


def test_missing_weights_name_the_download_command(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="prodseg models download hiera_small"):
        build_sam2_model("hiera_small", "pretrained", tmp_path, "cpu", 0)
    with pytest.raises(WeightsError, match="prodseg models download vit_base_patch14_dinov2"):
        build_dinov2_model("vit_base_patch14_dinov2", "pretrained", tmp_path, "cpu", 0)


def test_dinov2_patch_tokens_shape_and_preprocessing(tmp_path: Path) -> None:
    model = build_dinov2_model("vit_small_patch14_dinov2", "random", tmp_path, "cpu", 0)
    bb = DinoV2Backbone(model, CPU, "vit_small_patch14_dinov2")
    assert bb.patch_size == 14
    assert bb._mean.flatten().tolist() == pytest.approx(list(model.pretrained_cfg["mean"]))
    tokens = bb.patch_tokens(np.zeros((2, 56, 84, 3), np.uint8))
    assert tokens.shape == (2, 4, 6, 384) and tokens.dtype == np.float32


@pytest.mark.parametrize("name", ["vit_small_patch14_dinov2", "vit_small_patch14_reg4_dinov2"])
def test_dinov2_official_checkpoint_round_trip(tmp_path: Path, name: str) -> None:
    random_model = build_dinov2_model(name, "random", tmp_path / "r", "cpu", 5)
    sd = {k: v.clone() for k, v in random_model.state_dict().items()}
    # Meta's layout: a mask token, registers as 'register_tokens', class token position
    # included in pos_embed.
    sd["mask_token"] = torch.zeros(1, sd["cls_token"].shape[-1])
    if "reg_token" in sd:
        sd["register_tokens"] = sd.pop("reg_token")
        pos0 = torch.zeros_like(sd["cls_token"])
        sd["pos_embed"] = torch.cat([pos0, sd["pos_embed"]], dim=1)
    path = weight_file(name).path(tmp_path)
    path.parent.mkdir(parents=True)
    torch.save(sd, path)
    loaded = build_dinov2_model(name, "pretrained", tmp_path, "cpu", 0)
    images = np.random.default_rng(1).integers(0, 255, (1, 70, 98, 3), dtype=np.uint8)
    want = DinoV2Backbone(random_model, CPU, name).patch_tokens(images)
    got = DinoV2Backbone(loaded, CPU, name).patch_tokens(images)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["full", "crop"])
def test_ffa_embeddings_with_dinov2(tmp_path: Path, mode: str, image: np.ndarray) -> None:
    model = build_dinov2_model("vit_small_patch14_dinov2", "random", tmp_path, "cpu", 0)
    emb = FFAEmbedder(DinoV2Backbone(model, CPU, "s"), mode=mode, input_size=112)  # type: ignore[arg-type]
    masks = np.zeros((3, 120, 160), dtype=bool)
    masks[0, 30:90, 50:110] = True
    masks[1, 0:20, 0:20] = True
    masks[2, 100:120, 140:160] = True
    out = emb.embed(image, masks)
    assert out.shape == (3, 384) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    assert not np.allclose(out[0], out[1])


def test_compiled_dinov2_gives_the_same_tokens(tmp_path: Path) -> None:
    """``compile_models``: torch.compile'd DINOv2 (inductor, about a minute to compile on
    a CPU) computes what the eager model does."""
    eager = build_dinov2_model("vit_small_patch14_dinov2", "random", tmp_path, "cpu", 0)
    compiled = build_dinov2_model("vit_small_patch14_dinov2", "random", tmp_path, "cpu", 0, True)
    x = torch.randn(1, 3, 56, 84, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        assert torch.allclose(compiled.forward_features(x), eager.forward_features(x), atol=1e-4)


def test_sam2_reports_its_three_candidates_and_takes_the_one_asked_for(
        sam_tiny: torch.nn.Module, image: np.ndarray) -> None:
    seg = Sam2Segmenter(sam_tiny, NO_FILTER, "sam2.1_hiera_tiny")
    best = seg.segment(image, Prompt.from_point(80, 60))
    assert len(best.candidate_areas) == len(best.candidate_scores) == 3
    assert list(best.candidate_areas) == sorted(best.candidate_areas)
    assert best.candidate is not None
    assert best.score == max(best.candidate_scores)  # by default, the best predicted IoU
    assert int(best.mask.sum()) == best.candidate_areas[best.candidate]
    for k in range(3):
        asked = seg.segment(image, Prompt(((80.0, 60.0),), (1,), candidate=k))
        assert asked.candidate == k and int(asked.mask.sum()) == best.candidate_areas[k]
        assert asked.score == pytest.approx(best.candidate_scores[k])
