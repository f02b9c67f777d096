"""Spin export on rendered turntable spins: does the product stay put and fill the frame?

Each spin is a carton turning on a shelf (``prodseg.producer.samples.scene``), N views,
plus one shelf photo without it. Two sources of masks per spin:

- ``truth``: the renderer's own masks, cut out with ``cutout_png`` (the export alone);
- ``classic+track``: ``prodseg run --backend classic --propagation track`` from the
  sample's click (the whole way, with the masks a job really gives).

Each is exported with ``prodseg export spin``'s code at the default size and fill, and it
prints, per spin and source:

- frames: frames written (views with the product), and views left out;
- centre step: the largest move of the product's centroid between neighbouring frames
  (the last and the first are neighbours too), in % of the frame's side (target <= 2 %);
- fill error: the largest ``|fill / target - 1|`` over the frames, in % (target <= 5 %);
- s/frame: export seconds per frame (read, crop, resample, encode; the zip and viewer).

    python benchmarks/bench_spin_export.py --views 24 36 --seeds 0 1 --size 640x480
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def truth_job(spin: object, root: Path) -> dict[str, object]:
    """A job folder from the renderer's masks: ``results.json``'s fields the export reads."""
    from prodseg.storage.image_encoding import cutout_png
    from prodseg.storage.local import LocalStore
    from prodseg.workers.ops.masks import mask_to_box

    store = LocalStore(root)
    entries: list[dict[str, object]] = []
    for k, view in enumerate(spin.views):  # type: ignore[attr-defined]
        name = f"view_{k:03d}" if view.yaw_deg is not None else f"shelf_{k:03d}"
        matches = []
        if view.mask.any():
            box = [int(v) for v in mask_to_box(view.mask)]
            store.put(f"cutouts/{name}_0.png", cutout_png(view.image, view.mask, box))
            matches.append({"bbox": box, "score": 1.0, "cutout": f"cutouts/{name}_0.png"})
        entries.append({"image": name, "status": "ok", "error": None, "matches": matches})
    first = entries.pop(0)
    return {"capture": "spin", "images": entries,
            "reference": {"image": first["image"], **first["matches"][0]}}  # type: ignore[index]


def classic_job(sample: Path, root: Path) -> dict[str, object]:
    """``prodseg run`` with the classic backend and tracking on the written sample."""
    doc = json.loads((sample / "sample.json").read_text())
    x, y = doc["reference_point"]
    subprocess.run([sys.executable, "-m", "prodseg", "run", "--images", str(sample / "images"),
                    "--reference", str(sample / doc["reference"]), "--ref-point", f"{x},{y}",
                    "--output", str(root), "--backend", "classic", "--propagation", "track",
                    "-q", "--no-progress"], check=True, capture_output=True)
    return dict(json.loads((root / "results.json").read_text()))


def measure(root: Path, doc: dict[str, object], out: Path) -> dict[str, float]:
    """Export ``root``'s job into ``out``; its frames, steadiness, fill and cost."""
    from prodseg.producer.spin_export import SpinOptions, empty_output, export_spin
    from prodseg.storage.layout import JobLayout
    from prodseg.storage.local import LocalStore

    options = SpinOptions()
    start = time.perf_counter()
    summary = export_spin(LocalStore(root), JobLayout(), doc, empty_output(out), "bench",
                          options)
    seconds = time.perf_counter() - start
    centres = np.array([f.centre for f in summary.frames])
    steps = np.hypot(*(np.roll(centres, -1, axis=0) - centres).T) if len(centres) > 1 else [0]
    fills = np.array([f.fill for f in summary.frames])
    return {"frames": len(summary.frames), "left_out": len(summary.left_out),
            "centre_step_pct": 100 * float(np.max(steps)),
            "fill_error_pct": 100 * float(np.max(np.abs(fills / options.fill - 1))),
            "s_per_frame": seconds / max(len(summary.frames), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--views", type=int, nargs="+", default=[24, 36])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--size", default="640x480", help="render size WxH")
    parser.add_argument("--sources", nargs="+", default=["truth", "classic+track"],
                        choices=["truth", "classic+track"])
    args = parser.parse_args()
    from prodseg.producer.samples.scene import render_spin_set, write_sample_set

    width, height = (int(v) for v in args.size.split("x"))
    print(f"{'views':>5} {'seed':>4}  {'source':<14} {'frames':>6} {'left':>4} "
          f"{'centre step %':>13} {'fill err %':>10} {'s/frame':>8}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for views in args.views:
            for seed in args.seeds:
                spin = render_spin_set(n_views=views, height=height, width=width,
                                       n_distractor_only=1, seed=seed)
                base = Path(tmp) / f"v{views}-s{seed}"
                for source in args.sources:
                    root = base / source / "job"
                    if source == "truth":
                        doc = truth_job(spin, root)
                    else:
                        write_sample_set(base / "sample", spin)
                        doc = classic_job(base / "sample", root)
                    row = {"views": views, "seed": seed, "source": source,
                           **measure(root, doc, base / source / "spin")}
                    rows.append(row)
                    print(f"{views:>5} {seed:>4}  {source:<14} {row['frames']:>6} "
                          f"{row['left_out']:>4} {row['centre_step_pct']:>13.2f} "
                          f"{row['fill_error_pct']:>10.2f} {row['s_per_frame']:>8.3f}",
                          flush=True)
    for row in rows:
        print(json.dumps({"bench": "spin_export", **row}))


if __name__ == "__main__":
    main()
