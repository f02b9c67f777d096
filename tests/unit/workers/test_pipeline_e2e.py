"""The whole pipeline on rendered spin sets with known ground truth.

The pipeline is given the simple deterministic backends (contour proposals, fixed
colour/texture patch features) so that what is tested is the pipeline's own logic:
reference segmentation, FFA, matching, NMS/top-K, output writing, failure handling.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from prodseg.errors import InputError, PromptError
from prodseg.producer.samples.scene import SpinSet, render_spin_set, write_sample_set
from prodseg.settings import load_settings
from prodseg.workers.classic.backbone import ColourTextureBackbone
from prodseg.workers.classic.segmenter import ContourSegmenter
from prodseg.workers.embed.ffa_embedder import FFAEmbedder
from prodseg.workers.ops.masks import mask_iou
from prodseg.workers.plan.pipeline import ProductSegmentationPipeline
from tests.support.classic import classic_pipeline
from tests.support.outcomes import record, without_dirs


@pytest.fixture(scope="module", params=[0, 1])
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    spin = render_spin_set(n_views=12, height=480, width=640, n_distractor_only=2,
                           seed=request.param)
    root = tmp_path_factory.mktemp(f"spin{request.param}")
    write_sample_set(root, spin)
    return spin, root


def sources(root: Path) -> list[Path]:
    return sorted((root / "images").glob("*.jpg"))


def gt_mask(root: Path, image_id: str) -> np.ndarray:
    return np.array(Image.open(root / "ground_truth" / f"{image_id}.png")) > 0


@pytest.mark.parametrize("mode", ["full", "crop"])
def test_finds_every_view_showing_the_clicked_side(rendered: tuple[SpinSet, Path],
                                                   mode: str, tmp_path: Path) -> None:
    spin, root = rendered
    ref_path = root / "images" / "view_000.jpg"
    result = classic_pipeline(embedding_mode=mode).run(
        sources(root), ref_path, reference_point=spin.reference_point, output_dir=tmp_path)

    assert mask_iou(result.reference.mask, gt_mask(root, "view_000")) >= 0.9
    by_id = {r.image_id: r for r in result}
    assert "view_000" not in by_id  # never matched against itself
    assert len(by_id) == len(spin.views) - 1
    checked = 0
    for i, view in enumerate(spin.views):
        image_id = f"view_{i:03d}" if view.yaw_deg is not None else None
        if image_id is None or image_id == "view_000":
            continue
        r = by_id[image_id]
        assert r.status == "ok"
        if view.visible_sides.get("front", 0.0) >= 0.5:
            assert r.matches, f"{image_id} shows the front but nothing matched"
            iou = mask_iou(r.matches[0].mask, view.mask)
            assert iou >= 0.9, f"{image_id}: IoU {iou:.3f}"
            checked += 1
    assert checked >= 2
    for shelf_id in ("shelf_000", "shelf_001"):
        assert by_id[shelf_id].status == "ok"
        assert by_id[shelf_id].matches == [], f"{shelf_id} has no product but matched"

    doc = json.loads((tmp_path / "results.json").read_text())
    assert [e["image"] for e in doc["images"]] == [r.image_id for r in result]
    for r in result:
        for k, m in enumerate(r.matches):
            saved = np.array(Image.open(tmp_path / "masks" / f"{r.image_id}_{k}.png")) > 0
            assert np.array_equal(saved, m.mask)


def test_reference_outside_the_image_list(rendered: tuple[SpinSet, Path], tmp_path: Path) -> None:
    spin, root = rendered
    ref = tmp_path / "ref.jpg"
    ref.write_bytes((root / "images" / "view_000.jpg").read_bytes())
    targets = [root / "images" / "view_001.jpg", root / "images" / "shelf_000.jpg"]
    result = classic_pipeline().run(targets, ref, reference_point=spin.reference_point)
    assert [r.image_id for r in result] == ["view_001", "shelf_000"]
    assert result.reference.image_id == "ref"
    assert result.images[0].matches and not result.images[1].matches


@pytest.mark.parametrize("image_batch_size", [1, 3])
def test_bad_images_are_reported_and_the_rest_goes_on(rendered: tuple[SpinSet, Path],
                                                     tmp_path: Path,
                                                     image_batch_size: int) -> None:
    spin, root = rendered
    broken = tmp_path / "truncated.jpg"
    broken.write_bytes((root / "images" / "view_001.jpg").read_bytes()[:2000])
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    missing = tmp_path / "missing.jpg"
    images = [broken, empty, missing, root / "images" / "view_001.jpg"]
    out = tmp_path / "out"
    result = classic_pipeline(image_batch_size=image_batch_size).run(
        images, root / "images" / "view_000.jpg", reference_point=spin.reference_point,
        output_dir=out)
    status = {r.image_id: (r.status, r.error or "") for r in result}
    assert status["truncated"][0] == "error" and "truncated.jpg" in status["truncated"][1]
    assert status["empty"][0] == "error" and "empty" in status["empty"][1]
    assert status["missing"][0] == "error" and "not found" in status["missing"][1]
    assert status["view_001"] == ("ok", "")
    assert [r.image_id for r in result.failed] == ["truncated", "empty", "missing"]
    doc = json.loads((out / "results.json").read_text())
    assert doc["summary"]["error"] == 3
    record("bad input", "a job with a truncated, an empty and a missing image",
           "each recorded as an error naming its file (e.g. "
           f"'{without_dirs(status['empty'][1], tmp_path)}'); the good image was matched; "
           "results.json counts 3 errors")


class ExplodingSegmenter(ContourSegmenter):
    """Proves that input errors are raised before any model work starts."""

    def segment(self, image, prompt):  # type: ignore[no-untyped-def]
        raise AssertionError("the segmenter must not run")

    def propose(self, image):  # type: ignore[no-untyped-def]
        raise AssertionError("the segmenter must not run")


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"reference_point": (10_000, 5)}, PromptError, "outside the image"),
        ({"reference_bbox": (50, 50, 40, 80)}, PromptError, "inverted"),
        ({"reference_bbox": (50, 50, 50, 80)}, PromptError, "zero area"),
        ({}, PromptError, "exactly one"),
    ],
)
def test_bad_prompts_fail_before_heavy_work(rendered: tuple[SpinSet, Path], kwargs: dict,
                                            error: type[Exception], words: str) -> None:
    _, root = rendered
    pipe = ProductSegmentationPipeline(load_settings(backend="classic"), ExplodingSegmenter(),
                                       FFAEmbedder(ColourTextureBackbone()))
    with pytest.raises(error, match=words):
        pipe.run(sources(root), root / "images" / "view_000.jpg", **kwargs)


def test_empty_image_list_and_unreadable_reference(rendered: tuple[SpinSet, Path],
                                                   tmp_path: Path) -> None:
    _, root = rendered
    pipe = classic_pipeline()
    with pytest.raises(InputError, match="no images") as caught:
        pipe.run([], root / "images" / "view_000.jpg", reference_point=(5, 5))
    record("bad input", "empty image list", f"refused before any model work: {caught.value}")
    bad = tmp_path / "ref.jpg"
    bad.write_text("not an image")
    with pytest.raises(InputError, match=r"ref\.jpg"):
        pipe.run(sources(root), bad, reference_point=(5, 5))


def test_click_that_yields_no_mask_is_a_clear_error(tmp_path: Path) -> None:
    flat = tmp_path / "flat.png"
    Image.new("RGB", (200, 100), (128, 128, 128)).save(flat)
    with pytest.raises(PromptError, match="empty mask"):
        classic_pipeline().run([flat], flat, reference_point=(100, 50))


def test_api_results_save_masks_and_cutouts(rendered: tuple[SpinSet, Path],
                                            tmp_path: Path) -> None:
    spin, root = rendered
    result = classic_pipeline().run([root / "images" / "view_001.jpg"],
                                    root / "images" / "view_000.jpg",
                                    reference_point=spin.reference_point)
    r = result.images[0]
    r.save_mask(tmp_path / "m.png")
    r.save_cutout(tmp_path / "c.png")
    mask = np.array(Image.open(tmp_path / "m.png")) > 0
    cut = np.array(Image.open(tmp_path / "c.png"))
    x0, y0, x1, y1 = r.matches[0].bbox
    assert np.array_equal(mask, r.matches[0].mask)
    assert np.array_equal(cut[..., 3] > 0, mask[y0:y1, x0:x1])
    with pytest.raises(IndexError, match="no match #5"):
        r.save_mask(tmp_path / "x.png", k=5)


def test_guided_prompting_finds_the_same_matches_as_the_grid(rendered: tuple[SpinSet, Path],
                                                             tmp_path: Path) -> None:
    """Prompting only at similarity peaks (with the fall-back to the grid where they find
    nothing) gives the grid's matches, image for image."""
    spin, root = rendered
    ref = root / "images" / "view_000.jpg"
    runs = {
        mode: {r.image_id: r for r in classic_pipeline(proposals=mode).run(
            sources(root), ref, reference_point=spin.reference_point,
            output_dir=tmp_path / mode)}
        for mode in ("grid", "guided")
    }
    for image_id, grid in runs["grid"].items():
        guided = runs["guided"][image_id]
        assert grid.found_by == "grid"
        assert len(guided.matches) == len(grid.matches), image_id
        for a, b in zip(grid.matches, guided.matches, strict=True):
            assert mask_iou(a.mask, b.mask) > 0.99 and abs(a.score - b.score) < 1e-5, image_id
        # Guided stops at the peaks when they match, and only then.
        assert guided.found_by == ("guided" if grid.matches else "guided+grid"), image_id
    assert sum(r.found_by == "guided" for r in runs["guided"].values()) >= 3
    written = json.loads((tmp_path / "guided" / "results.json").read_text())
    assert {e["found_by"] for e in written["images"]} == {"guided", "guided+grid"}


def test_batched_dinov2_passes_give_the_same_results(rendered: tuple[SpinSet, Path],
                                                    tmp_path: Path) -> None:
    spin, root = rendered
    images = sources(root)[:5]
    ref = root / "images" / "view_000.jpg"
    runs = [classic_pipeline(image_batch_size=size).run(
        images, ref, reference_point=spin.reference_point, output_dir=tmp_path / str(size))
        for size in (1, 4)]
    for one, batched in zip(*runs, strict=True):
        assert one.image_id == batched.image_id
        assert [m.score for m in one.matches] == [m.score for m in batched.matches]
        for a, b in zip(one.matches, batched.matches, strict=True):
            assert np.array_equal(a.mask, b.mask)


def test_the_same_image_given_twice_is_processed_once(rendered: tuple[SpinSet, Path],
                                                      tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    spin, root = rendered
    view = root / "images" / "view_001.jpg"
    same = tmp_path / "link.jpg"
    same.symlink_to(view)
    result = classic_pipeline().run(
        [view, view, same, root / "images" / "view_000.jpg"], root / "images" / "view_000.jpg",
        reference_point=spin.reference_point, output_dir=tmp_path / "out")
    assert [r.image_id for r in result] == ["view_001"]
    assert "view_001.jpg was given more than once" in caplog.text
    record("bad input", "the same image given twice (and once more through a symlink)",
           "processed once, with a warning: "
           f"'{without_dirs(caplog.records[-1].getMessage(), tmp_path)}'")


def test_a_rerun_rewrites_identical_bytes(rendered: tuple[SpinSet, Path], tmp_path: Path) -> None:
    """Outputs are pure functions of the inputs: running the same job again into the same
    directory leaves every file byte for byte as it was (documents included)."""
    spin, root = rendered
    out = tmp_path / "out"
    images = [root / "images" / f"view_00{i}.jpg" for i in range(3)]

    def run_and_read() -> dict[str, bytes]:
        classic_pipeline().run(images, images[0], reference_point=spin.reference_point,
                               output_dir=out)
        return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
                if p.is_file()}

    first = run_and_read()
    second = run_and_read()
    assert any(k.startswith("masks/") for k in first) and "results.json" in first
    assert first.keys() == second.keys()
    changed = [k for k in first if first[k] != second[k]]
    assert changed == []
    record("fault", "the same job run again into the same output directory",
           f"all {len(first)} files (masks, cutouts, thumbnails, results.json, coco.json, "
           "gallery) rewritten with identical bytes")
