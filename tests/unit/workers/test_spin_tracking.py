"""``propagation=track`` in the pipeline: accepted tracked views become results, the
others are matched as usual, and the outputs are written for both."""

from __future__ import annotations

import json
from pathlib import Path

from prodseg.producer.samples.scene import render_spin_set, write_sample_set
from prodseg.workers.ops.masks import mask_iou
from tests.support.classic import classic_pipeline


def test_tracked_views_are_results_and_the_rest_is_matched(tmp_path: Path) -> None:
    spin = render_spin_set(n_views=12, height=240, width=320, n_distractor_only=1, seed=0)
    write_sample_set(tmp_path / "set", spin)
    images = sorted((tmp_path / "set" / "images").glob("*.jpg"))
    pipeline = classic_pipeline(capture="spin", propagation="track", similarity_threshold=0.75)
    out = tmp_path / "out"
    reference = tmp_path / "set" / "images" / "view_000.jpg"
    result = pipeline.run(images, reference, reference_point=spin.reference_point,
                          output_dir=out)
    assert [r.image_id for r in result] == [p.stem for p in images if p != reference]
    by_id = {r.image_id: r for r in result}
    tracked = [r for r in result if r.found_by == "tracked"]
    assert {"view_001", "view_011"} <= {r.image_id for r in tracked}
    for r in tracked:  # on the product (a side's face may be tracked alone)
        truth = spin.views[int(r.image_id.split("_")[1])].mask
        mask = r.matches[0].mask
        assert (mask & truth).sum() >= 0.9 * mask.sum()
        if r.image_id in ("view_001", "view_011"):
            assert mask_iou(mask, truth) >= 0.9
    assert by_id["shelf_000"].found_by == "grid"  # no product there: matched as usual
    assert len(tracked) < len(result)
    doc = json.loads((out / "results.json").read_text())
    entries = {e["image"]: e for e in doc["images"]}
    assert entries["view_001"]["found_by"] == "tracked"
    assert (out / entries["view_001"]["matches"][0]["mask"]).is_file()
    assert doc["capture"] == "spin"


def test_chained_tracking_follows_the_product_to_other_sides(tmp_path: Path) -> None:
    spin = render_spin_set(n_views=12, height=240, width=320, n_distractor_only=1, seed=0)
    write_sample_set(tmp_path / "set", spin)
    images = sorted((tmp_path / "set" / "images").glob("*.jpg"))
    reference = tmp_path / "set" / "images" / "view_000.jpg"

    def tracked(**settings: object) -> dict[str, float]:
        """Tracked views and the share of their mask that lies on the product."""
        pipeline = classic_pipeline(capture="spin", propagation="track",
                                    similarity_threshold=0.75, **settings)
        result = pipeline.run(images, reference, reference_point=spin.reference_point)
        out = {}
        for r in result:
            if r.found_by == "tracked":
                mask = r.matches[0].mask
                truth = spin.views[int(r.image_id.split("_")[1])].mask
                out[r.image_id] = float((mask & truth).sum() / mask.sum())
        return out

    plain, chained = tracked(), tracked(propagation_step_threshold=0.7)
    assert set(plain) < set(chained)  # measured: 4 views, then 6 (30-120 degrees away)
    assert min(chained.values()) >= 0.9  # every kept mask lies on the carton
