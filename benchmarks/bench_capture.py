"""Single reference, prototype bank and spin tracking on rendered spin sets.

Each spin set is a carton turning on a shelf between other products, its four sides with
different artwork, plus shelf photos without it (``prodseg.producer.samples.scene``). With the
deterministic classic backbones, every configuration runs ``prodseg run``'s pipeline from
the same click on view 0. Per configuration, over all seeds, it prints:

- recall: views showing the product whose best match has IoU >= 0.5 with the truth;
- precision: of the views with a match, those whose best match is correct;
- mean IoU: of those correct best matches;
- matches/view: matches per view that shows the product (there is exactly one instance)
  and has any match; one instance should give one match (1.0);
- on product: of those, the matches on the product (intersection with the truth at
  least half the smaller area): the rest are other products;
- part share: of those views, the share where a kept match is a part of the product (it
  lies at least 80 % inside the truth with IoU < 0.7) while a proposal on the image had
  IoU >= 0.9 (the whole product was there to take);
- kept IoU: the mean IoU with the truth of every kept match on the product (its
  intersection with the truth at least half the smaller of the two areas), so a part kept
  beside the whole, or instead of it, lowers it;
- best IoU: over the views of mean IoU, the best IoU any of the view's proposals has with
  the truth: what a perfect choice among the proposals would give (mean IoU equals it
  when every correct match keeps the best mask there was);
- s/view: wall seconds per target view of the whole job (reference included).

With ``--distributed`` every configuration runs as a distributed job instead, through
real processes: a redis-server, SeaweedFS (S3) and ``--workers`` worker processes on
loopback (``submit``, ``watch``, then the fetched outputs are scored). The table is then
the same as in-process, since both modes execute one job plan.

    python benchmarks/bench_capture.py --seeds 0 1 2 3 4 --views 12
    python benchmarks/bench_capture.py --seeds 0 1 2 3 4 --views 12 --distributed
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CONFIGS: dict[str, dict[str, object]] = {
    "single reference": {},
    "prototype bank": {"bank_size": 8, "bank_add_threshold": 0.75, "bank_margin": 0.05},
    "tracking": {"propagation": "track"},
    "tracking, chained": {"propagation": "track", "propagation_step_threshold": 0.7},
    "tracking + bank": {"propagation": "track", "bank_size": 8, "bank_add_threshold": 0.75,
                        "bank_margin": 0.05},
}


@dataclass
class Found:
    """One target view's result, from either mode: its id, its file, its kept masks."""

    image_id: str
    source: str
    masks: list[np.ndarray]


Runner = Callable[[list[Path], Path, tuple[int, int], dict[str, object]], list[Found]]
"""Runs one job (images, reference, click, settings) and returns its views' results."""


def run_in_process(images: list[Path], reference: Path, point: tuple[int, int],
                   settings: dict[str, object]) -> list[Found]:
    from prodseg.settings import load_settings
    from prodseg.workers.classic.backbone import ColourTextureBackbone
    from prodseg.workers.classic.segmenter import ContourSegmenter
    from prodseg.workers.embed.ffa_embedder import FFAEmbedder
    from prodseg.workers.plan.pipeline import ProductSegmentationPipeline

    s = load_settings(backend="classic", **settings)
    pipeline = ProductSegmentationPipeline(s, ContourSegmenter(),
                                           FFAEmbedder(ColourTextureBackbone()))
    result = pipeline.run(images, reference, reference_point=point)
    return [Found(r.image_id, r.source, [m.mask for m in r.matches]) for r in result]


def distributed_runner(tmp: Path, workers: int) -> tuple[Runner, Callable[[], None]]:
    """A runner that submits each job to ``workers`` worker processes (classic backend)
    and reads the fetched outputs; and the function that stops the processes."""
    sys.path.insert(0, str(Path(__file__).parent))
    from local_services import CLASSIC_ENV, LocalServices

    tmp.mkdir(parents=True, exist_ok=True)
    services = LocalServices(tmp, {**os.environ, **CLASSIC_ENV})
    services.start_broker_and_store()
    for w in range(workers):
        services.worker(f"capture{w}")
    from PIL import Image

    from prodseg.producer.client import JobClient
    from prodseg.prompts import Prompt
    from prodseg.settings import load_settings

    def run(images: list[Path], reference: Path, point: tuple[int, int],
            settings: dict[str, object]) -> list[Found]:
        client = JobClient(load_settings(backend="classic", **settings))
        job = client.submit(images, reference, Prompt.from_point(*point))
        client.watch(job, interval=0.05)
        out = tmp / job
        client.fetch(job, out)
        doc = json.loads((out / "results.json").read_text())
        return [Found(e["image"], e["source"],
                      [np.array(Image.open(out / m["mask"])) > 0 for m in e["matches"]])
                for e in doc["images"]]

    return run, services.stop


@dataclass
class Tally:
    """Counts over the views of one configuration (see the module docstring)."""

    hits: int = 0
    wrong: int = 0
    present: int = 0
    matched_present: int = 0
    matches_on_present: int = 0
    on_product: int = 0
    part_views: int = 0
    hit_ious: list[float] = field(default_factory=list)
    kept_ious: list[float] = field(default_factory=list)
    best_ious: list[float] = field(default_factory=list)
    seconds: float = 0.0
    views: int = 0

    def add(self, other: Tally) -> None:
        for name in ("hits", "wrong", "present", "matched_present", "matches_on_present",
                     "on_product", "part_views"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.hit_ious += other.hit_ious
        self.kept_ious += other.kept_ious
        self.best_ious += other.best_ious
        self.seconds += other.seconds
        self.views += other.views

    def row(self) -> dict[str, float]:
        matched = max(self.matched_present, 1)
        return {
            "recall": self.hits / max(self.present, 1),
            "precision": self.hits / max(self.hits + self.wrong, 1),
            "mean_iou": float(np.mean(self.hit_ious)) if self.hit_ious else 0.0,
            "matches_per_view": self.matches_on_present / matched,
            "on_product_per_view": self.on_product / matched,
            "part_share": self.part_views / matched,
            "kept_iou": float(np.mean(self.kept_ious)) if self.kept_ious else 0.0,
            "best_iou": float(np.mean(self.best_ious)) if self.best_ious else 0.0,
            "s_per_view": self.seconds / max(self.views, 1),
        }


def _overlaps(masks: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """IoU and intersection over the smaller area of ``(N, H, W)`` masks with ``(H, W)``.

    Returns:
        Two ``(N,)`` float64 arrays.
    """
    flat = masks.reshape(len(masks), -1)
    t = truth.reshape(-1)
    inter = (flat & t).sum(axis=1).astype(np.float64)
    areas = flat.sum(axis=1).astype(np.float64)
    union = areas + t.sum() - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    smaller = np.minimum(areas, float(t.sum()))
    return iou, np.divide(inter, smaller, out=np.zeros_like(inter), where=smaller > 0)


def evaluate(root: Path, seed: int, views: int, settings: dict[str, object],
             runner: Runner) -> Tally:
    """The counts of one configuration on one spin set."""
    from prodseg.producer.samples.scene import render_spin_set, write_sample_set
    from prodseg.settings import load_settings
    from prodseg.storage.images import read_image_file
    from prodseg.workers.classic.segmenter import ContourSegmenter
    from prodseg.workers.ops.masks import area_filter

    spin = render_spin_set(n_views=views, height=240, width=320, n_distractor_only=2,
                           seed=seed)
    folder = root / f"seed{seed}"
    if not folder.exists():
        write_sample_set(folder, spin)
    images = sorted((folder / "images").glob("*.jpg"))
    settings = {"capture": "spin", **settings}
    s = load_settings(backend="classic", **settings)
    segmenter = ContourSegmenter()
    started = time.perf_counter()
    result = runner(images, folder / "images" / "view_000.jpg", spin.reference_point, settings)
    truth = {f"view_{i:03d}": v.mask for i, v in enumerate(spin.views)}
    tally = Tally(seconds=time.perf_counter() - started, views=len(result))
    for r in result:
        mask = truth.get(r.image_id)
        shown = mask is not None and bool(mask.any())
        tally.present += shown
        if not r.masks:
            continue
        if not shown or mask is None:
            tally.wrong += 1
            continue
        kept = np.stack(r.masks)
        iou, nested = _overlaps(kept, mask)
        hit = bool(iou[0] >= 0.5)
        tally.hits += hit
        tally.wrong += not hit
        if hit:
            tally.hit_ious.append(float(iou[0]))
        tally.matched_present += 1
        tally.matches_on_present += len(r.masks)
        tally.on_product += int((nested >= 0.5).sum())
        tally.kept_ious += [float(v) for v in iou[nested >= 0.5]]
        proposals = segmenter.propose(read_image_file(Path(r.source))).masks
        proposals = proposals[area_filter(proposals, s.min_mask_area_ratio,
                                          s.max_mask_area_ratio)]
        best_there = float(_overlaps(proposals, mask)[0].max()) if proposals.size else 0.0
        if hit:
            tally.best_ious.append(best_there)
        whole_there = best_there >= 0.9
        inside = _overlaps(kept, mask)[1]  # the smaller area is the part's
        part = (iou < 0.7) & (inside >= 0.8) & (kept.reshape(len(kept), -1).sum(1) < mask.sum())
        tally.part_views += bool(whole_there and part.any())
    return tally


def _nothing_to_stop() -> None:
    """In-process runs start no processes."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--views", type=int, default=12)
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                        help="settings added to every configuration")
    parser.add_argument("--distributed", action="store_true",
                        help="run every job on local worker processes instead")
    parser.add_argument("--workers", type=int, default=2, help="with --distributed")
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.set)
    root = Path(tempfile.mkdtemp(prefix="prodseg-capture-"))
    runner: Runner = run_in_process
    stop = _nothing_to_stop
    if args.distributed:
        runner, stop = distributed_runner(root / "services", args.workers)
    mode = f"distributed, {args.workers} workers" if args.distributed else "in-process"
    print(f"{'configuration':<18} {'recall':>7} {'precision':>10} {'mean IoU':>9} "
          f"{'matches/view':>13} {'on product':>11} {'part share':>11} {'kept IoU':>9} "
          f"{'best IoU':>9} {'s/view':>7}   ({mode})")
    try:
        for name, settings in CONFIGS.items():
            total = Tally()
            for seed in args.seeds:
                total.add(evaluate(root, seed, args.views, {**settings, **extra}, runner))
            row = total.row()
            print(f"{name:<18} {row['recall']:>7.2f} {row['precision']:>10.2f} "
                  f"{row['mean_iou']:>9.3f} {row['matches_per_view']:>13.2f} "
                  f"{row['on_product_per_view']:>11.2f} "
                  f"{row['part_share']:>11.2f} {row['kept_iou']:>9.3f} "
                  f"{row['best_iou']:>9.3f} {row['s_per_view']:>7.3f}")
            print(json.dumps({"configuration": name, "mode": mode, "seeds": args.seeds,
                              "views": args.views, "settings": extra, **row,
                              "hits": total.hits, "wrong": total.wrong,
                              "views_with_product": total.present,
                              "matched_views_with_product": total.matched_present}))
    finally:
        stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
