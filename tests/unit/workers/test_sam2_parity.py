"""SAM 2.1 through prodseg against the stock ``sam2`` predictors, at several image shapes.

One seeded hiera_t checkpoint in Meta's ``{"model": state_dict}`` format is loaded twice:
by ``sam2.build_sam`` directly (the stock ``SAM2ImagePredictor`` and
``SAM2VideoPredictor``), and by prodseg's pretrained loaders (``Sam2Segmenter``,
``Sam2VideoTracker``). Images are decoded from a JPEG file, as the stock video predictor
reads its frames.

- prompted masks and scores equal the stock image predictor's (best of three by
  predicted IoU), for a click, a box and a click with a negative, on a landscape and a
  portrait image;
- the tracker's reference frame equals the stock image predictor's mask (portrait):
  prodseg feeds the video predictor frames made by the image predictor's own transform;
- the stock video predictor, reading a JPEG folder, resizes frames with PIL's bicubic on
  uint8 instead: on a 1024² frame (the model's input size, no resize) its first frame is
  prodseg's exactly; on the portrait one it differs by that resize only (IoU 0.993 here).

Earlier tests cover other parts: the proposal generator against SAM2's automatic mask
generator (``test_proposals``), the restructured decoder against the stock decoder
(``test_sam2_decoder``), and the tracker's reference frame against ``Sam2Segmenter`` at
96×128 (``test_propagation``).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from prodseg.producer.samples.scene import render_spin_set
from prodseg.prompts import Prompt
from prodseg.workers.capture.sam2_video import Sam2VideoTracker, build_sam2_video_model
from prodseg.workers.models.builders import SAM2_CONFIGS, build_sam2_model
from prodseg.workers.models.weights import weight_file
from prodseg.workers.segment.sam2_image import ProposalParams, Sam2Segmenter

pytestmark = pytest.mark.slow

CONFIG = SAM2_CONFIGS["hiera_tiny"]
SHAPES = {"landscape": (84, 150), "portrait": (150, 84), "square-1024": (1024, 1024)}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache directory holding a seeded hiera_t checkpoint in Meta's format."""
    from sam2.build_sam import build_sam2

    cache = tmp_path_factory.mktemp("sam2-cache")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(11)
        model = build_sam2(CONFIG, ckpt_path=None, device="cpu")
    path = weight_file("hiera_tiny").path(cache)
    path.parent.mkdir(parents=True)
    torch.save({"model": model.state_dict()}, path)
    return cache


@pytest.fixture(scope="module")
def stock_image(checkpoint: Path) -> object:
    from sam2.build_sam import build_sam2
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    ckpt = str(weight_file("hiera_tiny").path(checkpoint))
    return SAM2ImagePredictor(build_sam2(CONFIG, ckpt_path=ckpt, device="cpu"))


@pytest.fixture(scope="module")
def stock_video(checkpoint: Path) -> object:
    from sam2.build_sam import build_sam2_video_predictor

    ckpt = str(weight_file("hiera_tiny").path(checkpoint))
    return build_sam2_video_predictor(CONFIG, ckpt_path=ckpt, device="cpu")


@pytest.fixture(scope="module")
def frame(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> tuple[str, Path, np.ndarray]:
    """``(shape name, a JPEG folder holding frame 0, that frame as decoded)``."""
    height, width = SHAPES[request.param]
    scene = render_spin_set(n_views=1, height=240, width=320, seed=0).views[0].image
    folder = tmp_path_factory.mktemp(f"frames-{request.param}")
    resized = cv2.resize(scene, (width, height), interpolation=cv2.INTER_AREA)
    Image.fromarray(resized).save(folder / "0.jpg", quality=95)
    return request.param, folder, np.array(Image.open(folder / "0.jpg").convert("RGB"))


def prompts(image: np.ndarray) -> list[Prompt]:
    """A click on the rendered product, a box round it, the click with a negative."""
    height, width = image.shape[:2]
    x, y = width * 0.5, height * 0.55
    return [
        Prompt.from_point(x, y),
        Prompt.from_box(width * 0.2, height * 0.25, width * 0.8, height * 0.9),
        Prompt(points=((x, y), (width * 0.05, height * 0.05)), labels=(1, 0)),
    ]


@pytest.fixture(scope="module")
def stock(stock_image: object, frame: tuple[str, Path, np.ndarray]
          ) -> list[tuple[np.ndarray, float]]:
    """The stock image predictor's best of three masks (by predicted IoU) and its score,
    for each of ``prompts(frame)``: the image is encoded once."""
    p: Any = stock_image
    _, _, image = frame
    p.set_image(image)
    out = []
    for prompt in prompts(image):
        masks, ious, _ = p.predict(
            point_coords=np.asarray(prompt.points, np.float32) if prompt.points else None,
            point_labels=np.asarray(prompt.labels, np.int32) if prompt.points else None,
            box=np.asarray(prompt.box, np.float32) if prompt.box is not None else None,
            multimask_output=True)
        best = int(np.argmax(ious))
        out.append((masks[best] > 0, float(ious[best])))
    return out


@pytest.mark.parametrize("frame", ["landscape", "portrait"], indirect=True)
def test_prompted_masks_equal_the_stock_image_predictor(
        checkpoint: Path, frame: tuple[str, Path, np.ndarray],
        stock: list[tuple[np.ndarray, float]]) -> None:
    _, _, image = frame
    segmenter = Sam2Segmenter(build_sam2_model("hiera_tiny", "pretrained", checkpoint, "cpu"),
                              ProposalParams(), "sam2.1_hiera_tiny")
    for prompt, (want, want_score) in zip(prompts(image), stock, strict=True):
        got = segmenter.segment(image, prompt)
        assert got.mask.shape == image.shape[:2]
        assert 0.02 < want.mean() < 0.98  # a mask with an edge, not an empty or full one
        assert np.array_equal(got.mask, want), prompt
        assert got.score == want_score


def first_frames(checkpoint: Path, stock_video: object, frame: tuple[str, Path, np.ndarray]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Frame 0's mask for the click of ``prompts``: ``(prodseg's tracker on the decoded
    frame, the stock video predictor on the JPEG folder)``."""
    _, folder, image = frame
    prompt = prompts(image)[0]
    tracker = Sam2VideoTracker(build_sam2_video_model("hiera_tiny", "pretrained", checkpoint,
                                                      "cpu"))
    ours = tracker.track([image], 0, prompt)[0]
    assert ours is not None
    video: Any = stock_video
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no sam2._C: hole filling is skipped, with a warning
        state = video.init_state(video_path=str(folder))
        _, _, logits = video.add_new_points_or_box(
            state, frame_idx=0, obj_id=1, points=np.asarray(prompt.points, np.float32),
            labels=np.asarray(prompt.labels, np.int32))
    theirs = (logits[0, 0] > 0).numpy()
    assert theirs.shape == ours.shape == image.shape[:2]
    return ours, theirs


@pytest.mark.parametrize("frame", ["portrait"], indirect=True)
def test_tracker_reference_frame_is_the_stock_image_predictors(
        checkpoint: Path, stock_video: object, frame: tuple[str, Path, np.ndarray],
        stock: list[tuple[np.ndarray, float]]) -> None:
    ours, from_jpegs = first_frames(checkpoint, stock_video, frame)
    assert np.array_equal(ours, stock[0][0])
    iou = (from_jpegs & ours).sum() / (from_jpegs | ours).sum()
    assert iou >= 0.98, f"IoU {iou:.4f} with the stock video predictor"


@pytest.mark.parametrize("frame", ["square-1024"], indirect=True)
def test_tracker_reference_frame_is_the_stock_video_predictors_without_a_resize(
        checkpoint: Path, stock_video: object, frame: tuple[str, Path, np.ndarray]) -> None:
    ours, from_jpegs = first_frames(checkpoint, stock_video, frame)
    assert 0.02 < ours.mean() < 0.98
    assert np.array_equal(ours, from_jpegs)
