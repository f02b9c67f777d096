"""``prodseg view``: browsing a real job directory written by ``prodseg run``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.backend_bases import Event, KeyEvent
from matplotlib.backends.backend_agg import FigureCanvasAgg

from prodseg.errors import InputError
from prodseg.producer.ui.viewer import ResultsViewer, load_job, order_by_best_score
from prodseg.storage.images import read_mask_png

REPO = Path(__file__).resolve().parents[3]


def prodseg(*args: str, expect: int = 0) -> None:
    done = subprocess.run([sys.executable, "-m", "prodseg", *args], cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == expect, done.stdout + done.stderr


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A classic-backend job on a rendered spin set plus one broken JPEG (so exit code 1)."""
    root = tmp_path_factory.mktemp("viewer")
    sample = root / "sample"
    prodseg("sample", "--output", str(sample), "--views", "6", "--shelf-only", "1",
            "--size", "320x240")
    index = json.loads((sample / "sample.json").read_text())
    good = (sample / "images" / "view_001.jpg").read_bytes()
    (sample / "images" / "broken.jpg").write_bytes(good[: len(good) // 3])
    x, y = index["reference_point"]
    out = root / "out"
    # A low threshold gives several matched photos with different scores.
    prodseg("run", "--images", str(sample / "images"), "--reference",
            str(sample / index["reference"]), "--ref-point", f"{x},{y}", "--output", str(out),
            "--backend", "classic", "--no-progress", "--similarity-threshold", "0.3", expect=1)
    return out


@pytest.fixture(scope="module")
def results(job: Path) -> dict[str, Any]:
    return json.loads((job / "results.json").read_text())


@pytest.fixture
def viewer(job: Path) -> Iterator[ResultsViewer]:
    made = ResultsViewer(job)
    yield made
    plt.close("all")


def press_key(viewer: ResultsViewer, key: str) -> None:
    event: Event = KeyEvent("key_press_event", viewer.figure.canvas, key)
    if hasattr(event, "_process"):
        event._process()
    else:
        event.canvas.callbacks.process(event.name, event)


def shown_name(viewer: ResultsViewer) -> str:
    return viewer.title_text.split()[0]


def test_fixture_job_has_matches_and_an_error(results: dict[str, Any]) -> None:
    statuses = [entry["status"] for entry in results["images"]]
    assert "error" in statuses
    scores = [m["score"] for entry in results["images"] for m in entry["matches"][:1]]
    assert len(set(scores)) >= 2, "need photos with different best scores to test sorting"


def test_missing_results_json_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=str(tmp_path / "results.json")):
        ResultsViewer(tmp_path)
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(InputError, match="not a readable prodseg results"):
        load_job(tmp_path)


def test_browsing_shows_each_photo_with_its_matches(viewer: ResultsViewer, results: dict[str, Any],
                                                    job: Path) -> None:
    reference = results["reference"]
    assert shown_name(viewer) == reference["image"]
    assert "reference" in viewer.info_text
    assert f"mask quality {reference['score']:.3f}" in viewer.info_text
    assert len(viewer.axes.images) == 2 and len(viewer.axes.patches) == 1  # photo + mask
    for entry in results["images"]:
        press_key(viewer, "right")
        assert shown_name(viewer) == entry["image"]
        if entry["status"] == "error":
            assert "ERROR" in viewer.info_text and "truncated" in viewer.info_text
            assert any("truncated" in text.get_text() for text in viewer.axes.texts)
            assert len(viewer.axes.images) == 0
            continue
        assert "original not found" not in viewer.info_text
        matches = entry["matches"]
        assert len(viewer.axes.patches) == len(matches)
        if not matches:
            assert "no match" in viewer.info_text and len(viewer.axes.images) == 1
            continue
        for match in matches:
            assert f"{match['score']:.3f}" in viewer.info_text
        overlay = np.asarray(viewer.axes.images[1].get_array())
        union = np.zeros(overlay.shape[:2], dtype=bool)
        for match in matches:
            union |= read_mask_png((job / match["mask"]).read_bytes())
        assert union.any() and np.array_equal(overlay[..., 3] > 0, union)
    press_key(viewer, "right")  # stops at the last photo
    assert shown_name(viewer) == results["images"][-1]["image"]


def test_overlay_changes_the_rendered_pixels(
    viewer: ResultsViewer, results: dict[str, Any]
) -> None:
    matched = next(e for e in results["images"] if e["matches"])
    while shown_name(viewer) != matched["image"]:
        press_key(viewer, "n")
    canvas = viewer.figure.canvas
    assert isinstance(canvas, FigureCanvasAgg)
    canvas.draw()
    with_overlay = np.asarray(canvas.buffer_rgba()).copy()
    viewer.axes.images[1].set_visible(False)
    canvas.draw()
    without = np.asarray(canvas.buffer_rgba())
    assert (np.abs(with_overlay.astype(int) - without).sum(axis=2) > 30).sum() > 100


def test_s_toggles_sorting_by_best_score(viewer: ResultsViewer, results: dict[str, Any]) -> None:
    entries = results["images"]
    matched = sorted((e for e in entries if e["matches"]),
                     key=lambda e: -e["matches"][0]["score"])
    unmatched = [e for e in entries if e["status"] == "ok" and not e["matches"]]
    failed = [e for e in entries if e["status"] != "ok"]
    expected = [results["reference"]["image"]] + [e["image"] for e in matched + unmatched + failed]
    input_order = [results["reference"]["image"]] + [e["image"] for e in entries]
    assert expected != input_order
    press_key(viewer, "right")
    showing = shown_name(viewer)
    press_key(viewer, "s")
    assert [viewer.entries[i].name for i in viewer.order] == expected
    assert shown_name(viewer) == showing and "by best score" in viewer.title_text
    while viewer.position > 0:
        press_key(viewer, "p")
    seen = [shown_name(viewer)]
    for _ in expected[1:]:
        press_key(viewer, "right")
        seen.append(shown_name(viewer))
    assert seen == expected
    press_key(viewer, "s")
    assert [viewer.entries[i].name for i in viewer.order] == input_order
    assert shown_name(viewer) == expected[-1] and "input order" in viewer.title_text


def test_order_by_best_score_ranks_failed_photos_last(job: Path) -> None:
    entries = load_job(job)
    order = order_by_best_score(entries)
    assert entries[order[0]].status == "reference" and entries[order[-1]].status == "error"


def test_q_closes_and_savefig_works(viewer: ResultsViewer, tmp_path: Path) -> None:
    press_key(viewer, "right")
    target = tmp_path / "view.png"
    viewer.figure.savefig(target)
    assert target.stat().st_size > 1000
    number = viewer.figure.number
    assert plt.fignum_exists(number)
    press_key(viewer, "q")
    assert viewer.closed and not plt.fignum_exists(number)


def test_without_originals_the_thumbnails_are_shown(job: Path, results: dict[str, Any],
                                                   tmp_path: Path) -> None:
    fetched = tmp_path / "fetched"
    shutil.copytree(job, fetched)
    document = json.loads((fetched / "results.json").read_text())
    for entry in [document["reference"], *document["images"]]:
        entry["source"] = "s3://bucket/jobs/abc/images/" + Path(entry["source"]).name
    (fetched / "results.json").write_text(json.dumps(document))
    matched = next(e for e in results["images"] if e["matches"])
    viewer = ResultsViewer(fetched)
    try:
        while shown_name(viewer) != matched["image"]:
            press_key(viewer, "right")
        assert "the thumbnail (original not found)" in viewer.info_text
        [photo] = viewer.axes.images  # the thumbnail has the masks tinted in already
        thumbnail = plt.imread(fetched / matched["thumbnail"])
        shown = photo.get_array()
        assert shown is not None and shown.shape == thumbnail.shape
        assert len(viewer.axes.patches) == len(matched["matches"])
        assert photo.get_extent() == [0, matched["width"], matched["height"], 0]
    finally:
        plt.close(viewer.figure)
    images = Path(results["reference"]["source"]).parent
    viewer = ResultsViewer(fetched, image_dirs=[images])
    try:
        assert "original not found" not in viewer.info_text and len(viewer.axes.images) == 2
    finally:
        plt.close(viewer.figure)


def test_view_command_names_a_directory_without_results(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from prodseg.producer.cli.main import main

    assert main(["view", str(tmp_path)]) == 2
    assert f"{tmp_path / 'results.json'}" in capsys.readouterr().err
