"""The classic backends on rendered shelves: proposals, prompted masks, matching features."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from prodseg.producer.samples.scene import SpinSet, render_spin_set
from prodseg.prompts import Prompt
from prodseg.workers.classic.backbone import ColourTextureBackbone
from prodseg.workers.classic.segmenter import ContourSegmenter, _keep_distinct
from prodseg.workers.embed.protocol import PatchBackbone
from prodseg.workers.segment.protocol import Proposals, Segmenter
from tests.support.protocols import mismatches

SEEDS = (0, 1)
MATCH_THRESHOLD = 0.65
TRUE_MARGIN = 0.1  # views of the product must clear the threshold by this much
DISTRACTOR_MARGIN = 0.2  # and other objects stay this far below it


@pytest.fixture(scope="module")
def spins() -> dict[int, SpinSet]:
    return {seed: render_spin_set(n_views=12, seed=seed) for seed in SEEDS}


@pytest.fixture(scope="module")
def proposals(spins: dict[int, SpinSet]) -> dict[int, list[Proposals]]:
    segmenter = ContourSegmenter()
    return {seed: [segmenter.propose(v.image) for v in spin.views] for seed, spin in spins.items()}



def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def _ffa(backbone: PatchBackbone, image: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Foreground feature averages of ``(N, H, W)`` bool masks -> ``(N, D)`` unit vectors.

    The image is resized so that its long side is 518 px and both sides are multiples of
    the patch size; each patch token is weighted by the fraction of the patch the mask
    covers.
    """
    height, width = image.shape[:2]
    p = backbone.patch_size
    scale = 518 / max(height, width)
    gh, gw = max(1, round(height * scale / p)), max(1, round(width * scale / p))
    resized = cv2.resize(image, (gw * p, gh * p), interpolation=cv2.INTER_AREA)
    tokens = backbone.patch_tokens(resized[None])[0]
    embeddings = []
    for mask in masks:
        cover = cv2.resize(mask.astype(np.float32), (gw * p, gh * p), interpolation=cv2.INTER_AREA)
        weights = cover.reshape(gh, p, gw, p).mean(axis=(1, 3))
        pooled = (tokens * weights[..., None]).sum(axis=(0, 1)) / max(float(weights.sum()), 1e-6)
        embeddings.append(pooled / max(float(np.linalg.norm(pooled)), 1e-12))
    return np.asarray(embeddings)


def test_the_classes_fill_the_protocols() -> None:
    segmenter: Segmenter = ContourSegmenter()
    backbone: PatchBackbone = ColourTextureBackbone()
    assert backbone.patch_size == 14 and backbone.name == "colour-texture"
    assert mismatches(Segmenter, segmenter) == []
    assert mismatches(PatchBackbone, backbone) == []


def test_the_protocol_check_sees_a_wrong_signature() -> None:
    class Renamed:
        def segment(self, picture: np.ndarray, prompt: object) -> None: ...

    problems = mismatches(Segmenter, Renamed())
    assert problems[0].startswith("segment(picture") and "differs from" in problems[0]
    assert problems[1:] == ["no propose", "no propose_at"]


def test_proposals_have_the_documented_shapes(spins: dict[int, SpinSet],
                                              proposals: dict[int, list[Proposals]]) -> None:
    image = spins[0].views[0].image
    found = proposals[0][0]
    assert len(found) > 0
    assert found.masks.shape == (len(found), *image.shape[:2]) and found.masks.dtype == bool
    assert found.scores.shape == (len(found),) and found.scores.dtype == np.float32
    assert np.all((found.scores >= 0) & (found.scores <= 1))
    assert np.all(np.diff(found.scores) <= 0)


def test_a_plain_image_has_no_proposals() -> None:
    found = ContourSegmenter().propose(np.full((96, 128, 3), 120, np.uint8))
    assert found.masks.shape == (0, 96, 128) and found.scores.shape == (0,)


def test_a_proposal_matches_the_product_on_every_front_view(
    spins: dict[int, SpinSet], proposals: dict[int, list[Proposals]]
) -> None:
    for seed, spin in spins.items():
        for view, found in zip(spin.views, proposals[seed], strict=True):
            if view.yaw_deg is None or view.visible_sides["front"] < 0.5:
                continue
            best = max(_iou(mask, view.mask) for mask in found.masks)
            assert best >= 0.9, f"seed {seed}, yaw {view.yaw_deg}: best IoU {best:.3f}"


def test_segment_at_the_reference_click(spins: dict[int, SpinSet]) -> None:
    segmenter = ContourSegmenter()
    for spin in spins.values():
        reference = spin.views[spin.reference_index]
        result = segmenter.segment(reference.image, Prompt.from_point(*spin.reference_point))
        assert result.mask.shape == reference.mask.shape and result.mask.dtype == bool
        assert _iou(result.mask, reference.mask) >= 0.9
        assert 0 < result.score <= 1


def test_segment_with_a_box(spins: dict[int, SpinSet]) -> None:
    reference = spins[0].views[0]
    ys, xs = np.nonzero(reference.mask)
    box = Prompt.from_box(xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    assert _iou(ContourSegmenter().segment(reference.image, box).mask, reference.mask) >= 0.9


def test_segment_gives_an_empty_mask_when_nothing_fits(spins: dict[int, SpinSet]) -> None:
    spin = spins[0]
    x, y = spin.reference_point
    prompt = Prompt(points=((x, y), (x, y + 3)), labels=(1, 0))
    result = ContourSegmenter().segment(spin.views[0].image, prompt)
    assert not result.mask.any() and result.score == 0.0


def test_fragments_and_duplicates_are_dropped() -> None:
    whole = np.zeros((60, 80), bool)
    whole[10:50, 20:40] = True
    fragment = whole.copy()
    fragment[38:50] = False  # the same object, cut short by a broken edge
    twins = np.zeros_like(whole)
    twins[10:50, 20:40] = twins[30:50, 44:60] = True  # the object merged with its neighbour
    nearly_whole = whole.copy()
    nearly_whole[10, 20] = False
    masks = np.stack([whole, nearly_whole, fragment, twins])
    scores = np.array([1.0, 1.0, 1.0, 0.8], np.float32)
    # the near-copy and the fragment go; the merged pair is less compact, so the object
    # inside it is not its fragment, and both stay
    assert _keep_distinct(masks, scores, duplicate_iou=0.95, fragment_growth=1.6) == [0, 3]


def test_patch_tokens_have_the_documented_shape() -> None:
    backbone = ColourTextureBackbone()
    images = np.random.default_rng(0).integers(0, 256, (2, 56, 84, 3), dtype=np.uint8)
    tokens = backbone.patch_tokens(images)
    assert tokens.shape == (2, 4, 6, backbone.dim) and tokens.dtype == np.float32
    assert np.array_equal(tokens, backbone.patch_tokens(images))
    assert np.array_equal(tokens[1], backbone.patch_tokens(images[1:])[0])
    with pytest.raises(ValueError):
        backbone.patch_tokens(images[:, :50])


def test_patch_tokens_of_a_plain_image_are_all_alike() -> None:
    tokens = ColourTextureBackbone().patch_tokens(np.full((1, 42, 42, 3), (30, 90, 200), np.uint8))
    assert np.allclose(tokens, tokens[0, 0, 0], atol=1e-6)


def test_front_views_match_the_reference_and_distractors_do_not(
    spins: dict[int, SpinSet], proposals: dict[int, list[Proposals]]
) -> None:
    backbone = ColourTextureBackbone()
    true_scores, distractor_scores = [], []
    for seed, spin in spins.items():
        reference = spin.views[spin.reference_index]
        anchor = _ffa(backbone, reference.image, reference.mask[None])[0]
        for view, found in zip(spin.views, proposals[seed], strict=True):
            if view.yaw_deg is None:
                distractor_scores += list(_ffa(backbone, view.image, found.masks) @ anchor)
            elif view.visible_sides["front"] >= 0.5:
                true_scores.append(float(_ffa(backbone, view.image, view.mask[None])[0] @ anchor))
    assert len(distractor_scores) > 10
    print(f"min cosine of true views {min(true_scores):.3f}, "
          f"max cosine of distractor proposals {max(distractor_scores):.3f}")
    assert min(true_scores) >= MATCH_THRESHOLD + TRUE_MARGIN
    assert max(distractor_scores) < MATCH_THRESHOLD - DISTRACTOR_MARGIN


def _jpeg(image: np.ndarray) -> np.ndarray:
    """The image after a JPEG round trip at quality 92, as the pipeline reads it."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=92)
    return np.asarray(Image.open(buffer))


def test_the_best_match_on_each_front_view_is_the_whole_product(
    spins: dict[int, SpinSet],
) -> None:
    segmenter, backbone = ContourSegmenter(), ColourTextureBackbone()
    for seed, spin in spins.items():
        reference = _jpeg(spin.views[spin.reference_index].image)
        clicked = segmenter.segment(reference, Prompt.from_point(*spin.reference_point)).mask
        anchor = _ffa(backbone, reference, clicked[None])[0]
        for view in spin.views:
            if view.yaw_deg is None or view.visible_sides["front"] < 0.5:
                continue
            image = _jpeg(view.image)
            found = segmenter.propose(image)
            best = found.masks[int(np.argmax(_ffa(backbone, image, found.masks) @ anchor))]
            iou = _iou(best, view.mask)
            assert iou >= 0.9, f"seed {seed}, yaw {view.yaw_deg}: best match IoU {iou:.3f}"


def test_batched_image_tokens_equal_one_at_a_time() -> None:
    from prodseg.workers.embed.ffa_embedder import FFAEmbedder

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, shape, dtype=np.uint8)
              for shape in ((120, 160, 3), (240, 320, 3), (90, 200, 3), (120, 160, 3))]
    embedder = FFAEmbedder(ColourTextureBackbone(), input_size=112)
    batched = embedder.image_tokens_batch(images)
    for image, tokens in zip(images, batched, strict=True):
        np.testing.assert_allclose(tokens, embedder.image_tokens(image), atol=1e-6)
