"""Panoramas in the pipeline: ``capture=auto`` sees a 2:1 image as a panorama, proposes on
tiles and reports a product across the seam as one match with a wrapped box; a panorama
a pixel row off 2:1 is one too, by the same rule everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from prodseg.producer.samples.panorama import render_panorama
from prodseg.settings import load_settings
from prodseg.workers.models.factory import build_backends
from prodseg.workers.ops.masks import mask_iou
from prodseg.workers.plan.pipeline import ProductSegmentationPipeline


def odd_rows(image: np.ndarray, rows: int) -> np.ndarray:
    """``image`` with its last row repeated ``rows`` times: a panorama ``rows`` pixels
    taller than 2:1, as some cameras and editors write them."""
    return np.concatenate([image, np.repeat(image[-1:], rows, axis=0)])


@pytest.mark.parametrize("rows", [0, 1], ids=["2:1", "one row more"])
def test_a_product_across_the_seam_is_found_whole(tmp_path: Path, rows: int) -> None:
    scene = render_panorama(width=1024, product_yaw_deg=180.0, seed=0)
    pano, ref = tmp_path / "aisle.png", tmp_path / "product.png"
    truth = odd_rows(scene.mask, rows)
    Image.fromarray(odd_rows(scene.image, rows)).save(pano)
    Image.fromarray(scene.reference).save(ref)
    settings = load_settings(backend="classic", panorama_tile_size=320,
                             dinov2_input_size=1022)
    segmenter, embedder, _ = build_backends(settings)  # capture=auto wraps the segmenter
    assert type(segmenter).__name__ == "PanoramaSegmenter"
    out = tmp_path / "out"
    result = ProductSegmentationPipeline(settings, segmenter, embedder).run(
        [pano], ref, reference_point=scene.reference_point, output_dir=out)
    (found,) = result.images
    best = found.matches[0]
    assert mask_iou(best.mask, truth) >= 0.92  # measured 0.976
    w = truth.shape[1]
    assert best.mask[:, 0].any() and best.mask[:, -1].any()  # both sides of the seam
    assert best.wrapped_bbox is not None and best.wrapped_bbox[2] > w
    assert result.meta["capture"] == "panorama"
    entry = json.loads((out / "results.json").read_text())["images"][0]
    assert entry["matches"][0]["wrapped_bbox"] == list(best.wrapped_bbox)
    assert entry["matches"][0]["bbox"][0] == 0 and entry["matches"][0]["bbox"][2] == w
