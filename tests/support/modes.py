"""Both modes side by side: a job submitted, watched and fetched through the real CLI, and
the check that its outputs are ``prodseg run``'s."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from tests.support.cluster import Cluster


def submit_watch_fetch(c: Cluster, images: Path, ref: Path, point: str, *flags: str,
                       output: Path | None = None) -> Path:
    """Submit a job with ``flags``, watch it to its end and fetch it into ``output``
    (``fetched`` in the cluster's folder by default); the job id is in ``output/.job``."""
    done = c.cli("submit", "--images", str(images), "--reference", str(ref), "--ref-point",
                 point, "--no-progress", *flags)
    assert done.returncode == 0, done.stderr
    job = done.stdout.strip()
    watched = c.cli("watch", job, timeout=600)
    assert watched.returncode == 0, watched.stderr + watched.stdout
    assert f"{job}: done" in watched.stdout
    out = output or c.tmp / "fetched"
    fetched = c.cli("fetch", job, "--output", str(out))
    assert fetched.returncode == 0, fetched.stderr
    (out / ".job").write_text(job)
    return out


def files_of(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} - {".job"}


def assert_same_outputs(local: Path, fetched: Path) -> None:
    """Same files; identical masks and cutouts; equal boxes and edge residues; scores
    within 1e-5; the same capture mode, bank members and way each view was found."""
    assert files_of(local) == files_of(fetched)
    for rel in sorted(files_of(local)):
        if rel.startswith(("masks/", "cutouts/", "reference/mask", "reference/cutout")):
            a, b = np.array(Image.open(local / rel)), np.array(Image.open(fetched / rel))
            assert np.array_equal(a, b), rel
    np.testing.assert_allclose(np.load(local / "reference/embedding.npy"),
                               np.load(fetched / "reference/embedding.npy"), atol=1e-5)
    ra = json.loads((local / "results.json").read_text())
    rb = json.loads((fetched / "results.json").read_text())
    assert ra["reference"]["bbox"] == rb["reference"]["bbox"]
    assert [e["image"] for e in ra["images"]] == [e["image"] for e in rb["images"]]
    for ea, eb in zip(ra["images"], rb["images"], strict=True):
        assert (ea["status"], ea["num_proposals"]) == (eb["status"], eb["num_proposals"])
        assert [m["bbox"] for m in ea["matches"]] == [m["bbox"] for m in eb["matches"]]
        np.testing.assert_allclose([m["score"] for m in ea["matches"]],
                                   [m["score"] for m in eb["matches"]], atol=1e-5)
        assert ([m.get("edge_residue") for m in ea["matches"]]
                == [m.get("edge_residue") for m in eb["matches"]]), ea["image"]
        assert ea["found_by"] == eb["found_by"], ea["image"]
    assert ra["summary"] == rb["summary"]
    assert ra.get("capture") == rb.get("capture")
    assert ra.get("prototype_bank") == rb.get("prototype_bank")
    assert rb["job"] == (fetched / ".job").read_text()
    # Each coco.json names the photos relative to itself: the same photos from both.
    for out in (local, fetched):
        names = [e["file_name"] for e in json.loads((out / "coco.json").read_text())["images"]]
        # a photo, or a frame of a video: ``<video>/frame_0001``
        assert all((out / n).resolve().is_file() or (out / n).resolve().parent.is_file()
                   for n in names), (out, names)
    ca, cb = (json.loads((d / "coco.json").read_text()) for d in (local, fetched))
    assert [(local / e["file_name"]).resolve() for e in ca["images"]] == [
        (fetched / e["file_name"]).resolve() for e in cb["images"]]
