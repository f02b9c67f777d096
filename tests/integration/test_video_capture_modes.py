"""A video capture acts as its frames given as stills, in both modes and in a catalog:
a rendered spin (``prodseg sample``) encoded here as a lossless H.264 MP4, run with
``prodseg run`` and through ``submit -> watch -> fetch`` and ``catalog submit`` (real
Valkey, SeaweedFS and a ``prodseg worker``); the same matches as the rendered frames
given as stills, with each frame's time in ``results.json``. A bad video is refused in
one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support.cluster import Cluster, render
from tests.support.modes import assert_same_outputs, submit_watch_fetch
from tests.support.video import encode_video

pytestmark = pytest.mark.integration

VIEWS = 8


def _results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def _matches(doc: dict) -> list[tuple[str, list[list[int]]]]:
    return [(e["status"], [m["bbox"] for m in e["matches"]]) for e in doc["images"]]


def _run(c: Cluster, images: str, ref: str, point: str, out: Path, *flags: str) -> dict:
    done = c.cli("run", "--images", images, "--reference", ref, "--ref-point", point,
                 "--backend", "classic", "--output", str(out), "--no-progress", *flags)
    assert done.returncode == 0, done.stderr
    return _results(out)


def test_a_video_gives_its_stills_matches_in_both_modes_and_a_catalog(cluster: Cluster) -> None:
    cluster.worker("w1", PRODSEG_BACKEND="classic")
    images, ref, point = render(cluster, VIEWS, 0, "320x240")
    stills = sorted(images.glob("*.jpg"))
    video = encode_video([np.asarray(Image.open(p).convert("RGB")) for p in stills],
                         cluster.tmp / "capture.mp4", fps=4)
    by_stills = _run(cluster, str(images), str(ref), point, cluster.tmp / "stills")
    flags = ("--frames", str(VIEWS))
    local = cluster.tmp / "run"
    by_video = _run(cluster, str(video), "frame_0000", point, local, *flags)
    assert sum(bool(m) for _, m in _matches(by_stills)) >= 2  # the product is found
    assert _matches(by_video) == _matches(by_stills)
    assert [e["image"] for e in by_video["images"]] == [f"frame_{k:04d}" for k in
                                                        range(1, VIEWS)]
    assert by_video["capture"] == by_stills["capture"] == "spin"
    assert by_video["video"]["frames"][2] == {"view": "frame_0002", "index": 2, "time_s": 0.5}
    masks = sorted((cluster.tmp / "stills").glob("[mc]*/view_*.png"))
    assert len(masks) >= 4
    for still in masks:  # masks/view_003_0.png -> masks/frame_0003_0.png
        k = int(still.name.split("_")[1])
        frame = local / still.parent.name / still.name.replace(f"view_{k:03d}",
                                                               f"frame_{k:04d}")
        assert np.array_equal(np.asarray(Image.open(frame)), np.asarray(Image.open(still)))

    fetched = submit_watch_fetch(cluster, video, Path("frame_0000"), point, "--backend",
                                 "classic", *flags, output=cluster.tmp / "fetched")
    assert_same_outputs(local, fetched)
    assert _results(fetched)["video"] == {**by_video["video"], "source": str(video)}
    job = (fetched / ".job").read_text()
    inputs = list(cluster.store.list(f"jobs/{job}/inputs/"))
    assert inputs == [f"jobs/{job}/inputs/video.mp4"]  # the video, once; not its frames

    catalog = cluster.tmp / "catalog.csv"
    catalog.write_text(f'product_id,images,reference,point,setting.frames\n'
                       f'sku-video,capture.mp4,2,"{point}",{VIEWS}\n')
    done = cluster.cli("catalog", "submit", str(catalog), "--watch", "--no-progress",
                       "--backend", "classic", timeout=600)
    assert done.returncode == 0, done.stderr + done.stdout
    jobs = {k.split("/")[1] for k in cluster.store.list("jobs/") if "sku-video" in k}
    assert len(jobs) == 1
    doc = json.loads(cluster.store.get(f"jobs/{jobs.pop()}/results.json"))
    assert doc["reference"]["image"] == "frame_0002"  # the row names the frame by position
    assert doc["video"]["frames"] == by_video["video"]["frames"]


def test_a_bad_video_is_refused_in_one_line(cluster: Cluster) -> None:
    bad = cluster.tmp / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    for command in ("run", "submit"):
        extra = ["--output", str(cluster.tmp / "out")] if command == "run" else []
        done = cluster.cli(command, "--images", str(bad), "--reference", "frame_0000",
                           "--ref-point", "5,5", "--backend", "classic", "--no-progress",
                           *extra)
        assert done.returncode == 2, (command, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and str(bad) in lines[0], (command, done.stderr)
    assert list(cluster.store.list("jobs/")) == []
