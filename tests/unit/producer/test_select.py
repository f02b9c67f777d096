"""``prodseg select``: the prompt editor, the selector window driven by synthetic events,
and the command line it prints (checked by parsing it with ``prodseg.producer.cli``'s parser)."""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.backend_bases import CloseEvent, Event, KeyEvent, MouseButton, MouseEvent
from PIL import Image

from prodseg.producer.cli.main import build_parser
from prodseg.producer.cli.prompt_flags import lookalikes_from_args, prompt_from_args
from prodseg.producer.ui.select import Selector
from prodseg.producer.ui.selection import PromptEditor, Selection, command_line
from prodseg.prompts import Prompt
from prodseg.workers.segment.protocol import SegmentedMask

REPO = Path(__file__).resolve().parents[3]


# ----- helpers ------------------------------------------------------------------------------


def fire(event: Event) -> None:
    """Deliver a synthetic event to the figure's callbacks, as a GUI backend would."""
    if hasattr(event, "_process"):
        event._process()
    else:  # older/newer matplotlib without Event._process
        event.canvas.callbacks.process(event.name, event)


LEFT, RIGHT = MouseButton.LEFT, MouseButton.RIGHT
MakeSelector = Callable[..., Selector]


def to_display(selector: Selector, x: float, y: float) -> tuple[int, int]:
    """Display pixels of image point (x, y); events carry whole pixels (~0.25 image px here)."""
    dx, dy = selector.main_axes.transData.transform((x, y))
    return round(dx), round(dy)


def click(selector: Selector, x: float, y: float, button: MouseButton = LEFT) -> None:
    dx, dy = to_display(selector, x, y)
    canvas = selector.figure.canvas
    fire(MouseEvent("button_press_event", canvas, dx, dy, button=button))
    fire(MouseEvent("button_release_event", canvas, dx, dy, button=button))


def drag(selector: Selector, start: tuple[float, float], end: tuple[float, float]) -> None:
    canvas = selector.figure.canvas
    (sx, sy), (ex, ey) = to_display(selector, *start), to_display(selector, *end)
    fire(MouseEvent("button_press_event", canvas, sx, sy, button=LEFT))
    fire(MouseEvent("motion_notify_event", canvas, (sx + ex) // 2, (sy + ey) // 2, button=LEFT))
    fire(MouseEvent("motion_notify_event", canvas, ex, ey, button=LEFT))
    fire(MouseEvent("button_release_event", canvas, ex, ey, button=LEFT))


def press_key(selector: Selector, key: str) -> None:
    fire(KeyEvent("key_press_event", selector.figure.canvas, key))


class FakePreview:
    """Records its calls; the mask is a 10-px square around the first point (or the box)."""

    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[tuple[Path, tuple[int, ...], Prompt]] = []
        self.error = error

    def __call__(self, path: Path, image: np.ndarray, prompt: Prompt) -> SegmentedMask:
        self.calls.append((path, image.shape, prompt))
        if self.error is not None:
            raise self.error
        mask = np.zeros(image.shape[:2], dtype=bool)
        if prompt.box is not None:
            x0, y0, x1, y1 = (int(v) for v in prompt.box)
            mask[y0:y1, x0:x1] = True
        else:
            x, y = (int(v) for v in prompt.points[0])
            mask[max(0, y - 5) : y + 5, max(0, x - 5) : x + 5] = True
        return SegmentedMask(mask=mask, score=0.9)


@pytest.fixture
def photos(tmp_path: Path) -> list[Path]:
    """Three small photos, the second of another size, named so sorting keeps the order."""
    rng = np.random.default_rng(0)
    paths = []
    for k, (width, height) in enumerate([(200, 150), (160, 120), (200, 150)]):
        path = tmp_path / f"photo {k}.png"
        Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def make_selector(photos: list[Path]) -> Iterator[MakeSelector]:
    def make(preview: FakePreview | None = None, **kwargs: Any) -> Selector:
        return Selector(photos, preview or FakePreview(), **kwargs)

    yield make
    plt.close("all")


def assert_prompt(prompt: Prompt | None, points: list[tuple[float, float]],
                  labels: tuple[int, ...]) -> None:
    """Points within 0.5 px: synthetic events carry whole display pixels (~0.25 px here)."""
    assert prompt is not None and prompt.labels == labels and prompt.box is None
    assert np.allclose(prompt.points, points, atol=0.5), prompt.points


def overlay_images(selector: Selector) -> list[np.ndarray]:
    """The RGBA mask overlays drawn on the photo (every image artist but the photo)."""
    return [np.asarray(im.get_array()) for im in selector.main_axes.images[1:]]


# ----- PromptEditor -------------------------------------------------------------------------


def test_editor_builds_prompt_and_undoes_newest_first() -> None:
    editor = PromptEditor(image_count=2)
    assert editor.prompt is None
    editor.add_point(10.04, 20.06)
    editor.add_point(3, 4, positive=False)
    assert editor.set_box(50, 40, 5, 6)  # corners in any order
    assert editor.set_box(1, 1, 30, 30)  # replaces the first box
    assert editor.prompt == Prompt(points=((10.0, 20.1), (3.0, 4.0)), labels=(1, 0),
                                   box=(1.0, 1.0, 30.0, 30.0))
    assert editor.undo() and editor.box == (5.0, 6.0, 50.0, 40.0)
    assert editor.undo() and editor.box is None
    assert editor.undo() and editor.labels == [1]
    assert editor.undo() and editor.prompt is None
    assert not editor.undo()


def test_editor_rejects_flat_boxes_and_reports_problems() -> None:
    editor = PromptEditor(image_count=1)
    assert not editor.set_box(5, 5, 5, 50)
    assert editor.prompt is None and not editor.undo()
    assert "click on the product" in (editor.problem(100, 100) or "")
    editor.add_point(1, 1, positive=False)
    assert "positive" in (editor.problem(100, 100) or "")
    editor.add_point(150, 1)
    assert "outside the image" in (editor.problem(100, 100) or "")
    editor.undo()
    editor.add_point(50, 50)
    assert editor.problem(100, 100) is None


def test_editor_changing_image_clears_prompt_and_stops_at_ends() -> None:
    editor = PromptEditor(image_count=3, start=1)
    editor.add_point(1, 1)
    assert editor.step(1) and editor.index == 2 and editor.prompt is None
    assert not editor.undo()  # changing image is not undoable
    assert not editor.step(1) and editor.index == 2
    assert not editor.go_to(2)
    with pytest.raises(IndexError):
        editor.go_to(3)
    with pytest.raises(IndexError):
        PromptEditor(image_count=3, start=5)


# ----- Selector -----------------------------------------------------------------------------


def test_click_adds_positive_point_previews_and_draws_overlay(
    make_selector: MakeSelector, photos: list[Path]
) -> None:
    preview = FakePreview()
    selector = make_selector(preview)
    assert preview.calls == [] and overlay_images(selector) == []
    click(selector, 50.3, 40.7)
    assert_prompt(selector.editor.prompt, [(50.3, 40.7)], (1,))
    assert preview.calls == [(photos[0], (150, 200, 3), selector.editor.prompt)]
    x, y = selector.editor.points[0]
    assert (x * 10).is_integer() and (y * 10).is_integer()  # rounded to 0.1 px
    [overlay] = overlay_images(selector)
    assert overlay.shape == (150, 200, 4)
    assert (overlay[..., 3] > 0).sum() == 100 and overlay[40, 50, 3] > 0
    assert [line.get_marker() for line in selector.main_axes.lines] == ["+"]
    assert "score 0.900" in selector.status_text


def test_right_click_adds_negative_point(make_selector: MakeSelector) -> None:
    selector = make_selector()
    click(selector, 60, 50)
    click(selector, 120.2, 30, button=RIGHT)
    assert_prompt(selector.editor.prompt, [(60, 50), (120.2, 30)], (1, 0))
    assert [line.get_marker() for line in selector.main_axes.lines] == ["+", "x"]


def test_clicks_off_the_photo_are_ignored(make_selector: MakeSelector) -> None:
    preview = FakePreview()
    selector = make_selector(preview)
    click(selector, 205, 40)  # right of the 200-px-wide photo, still inside the axes area
    click(selector, 40, -3)
    assert selector.editor.prompt is None and preview.calls == []


def test_drag_draws_a_box_not_a_point(make_selector: MakeSelector) -> None:
    preview = FakePreview()
    selector = make_selector(preview)
    canvas = selector.figure.canvas
    (sx, sy), (ex, ey) = to_display(selector, 30, 20), to_display(selector, 170, 120)
    fire(MouseEvent("button_press_event", canvas, sx, sy, button=LEFT))
    fire(MouseEvent("motion_notify_event", canvas, ex, ey, button=LEFT))
    [dragging] = selector.main_axes.patches  # the rubber band shows while dragging
    assert dragging.get_linestyle() == "--"
    fire(MouseEvent("button_release_event", canvas, ex, ey, button=LEFT))
    prompt = selector.editor.prompt
    assert prompt is not None and prompt.points == () and prompt.box is not None
    assert np.allclose(prompt.box, (30, 20, 170, 120), atol=1.0)
    [box] = selector.main_axes.patches
    assert box.get_linestyle() == "-"
    assert preview.calls[-1][2] == prompt


def test_drag_past_the_edge_is_clamped_onto_the_photo(make_selector: MakeSelector) -> None:
    selector = make_selector()
    drag(selector, (150, 100), (230, 170))
    box = selector.editor.box
    assert box is not None and box[2:] == (200.0, 150.0)


def test_u_undoes_in_order(make_selector: MakeSelector) -> None:
    selector = make_selector()
    click(selector, 60, 50)
    click(selector, 120, 30, button=RIGHT)
    drag(selector, (30, 20), (170, 120))
    press_key(selector, "u")
    assert selector.editor.box is None and selector.editor.labels == [1, 0]
    press_key(selector, "u")
    assert selector.editor.labels == [1]
    assert len(overlay_images(selector)) == 1
    press_key(selector, "u")
    assert selector.editor.prompt is None
    assert overlay_images(selector) == [] and len(selector.main_axes.lines) == 0
    press_key(selector, "u")  # nothing left: no error
    assert selector.editor.prompt is None


def test_arrow_keys_and_thumbnails_switch_photo_and_clear_prompt(
    make_selector: MakeSelector, photos: list[Path]
) -> None:
    preview = FakePreview()
    selector = make_selector(preview)
    click(selector, 60, 50)
    press_key(selector, "right")
    assert selector.editor.index == 1 and selector.editor.prompt is None
    assert photos[1].name in selector.main_axes.get_title()
    assert overlay_images(selector) == [] and len(selector.main_axes.lines) == 0
    click(selector, 150, 100)  # the second photo is 160 x 120
    assert preview.calls[-1][:2] == (photos[1], (120, 160, 3))
    press_key(selector, "left")
    press_key(selector, "left")  # stops at the first photo
    assert selector.editor.index == 0 and selector.editor.prompt is None
    third = selector.thumbnail_axes[2]
    x, y = third.transAxes.transform((0.5, 0.5))
    fire(MouseEvent("button_press_event", selector.figure.canvas, x, y, button=LEFT))
    assert selector.editor.index == 2 and photos[2].name in selector.main_axes.get_title()


def test_escape_cancels(make_selector: MakeSelector) -> None:
    results: list[Selection | None] = []
    selector = make_selector(on_done=results.append)
    click(selector, 60, 50)
    press_key(selector, "escape")
    assert selector.done and selector.result is None and results == [None]
    press_key(selector, "enter")  # too late: nothing changes
    assert selector.result is None and results == [None]


def test_closing_the_window_cancels(make_selector: MakeSelector) -> None:
    selector = make_selector()
    fire(CloseEvent("close_event", selector.figure.canvas))
    assert selector.done and selector.result is None


def test_enter_needs_a_valid_prompt(make_selector: MakeSelector) -> None:
    selector = make_selector()
    press_key(selector, "enter")
    assert not selector.done and "click on the product" in selector.status_text
    click(selector, 10, 10, button=RIGHT)
    press_key(selector, "enter")
    assert not selector.done and "positive" in selector.status_text


def test_enter_confirms_the_selection(
    make_selector: MakeSelector, photos: list[Path]
) -> None:
    results: list[Selection | None] = []
    selector = make_selector(start=2, on_done=results.append)
    click(selector, 60, 50)
    click(selector, 10, 10, button=RIGHT)
    press_key(selector, "enter")
    assert selector.done and results == [selector.result]
    selection = selector.result
    assert selection is not None
    assert selection.image == photos[2]
    assert_prompt(selection.prompt, [(60, 50), (10, 10)], (1, 0))
    assert selection.prompt == selector.editor.prompt
    assert selection.score == pytest.approx(0.9)
    assert selection.mask is not None and selection.mask.shape == (150, 200)
    assert selection.mask[50, 60] and selection.mask.sum() == 100


def test_failing_preview_shows_the_error_and_keeps_working(make_selector: MakeSelector) -> None:
    selector = make_selector(FakePreview(error=RuntimeError("CUDA out of memory")))
    click(selector, 60, 50)
    assert "preview failed" in selector.status_text
    assert "CUDA out of memory" in selector.status_text
    assert overlay_images(selector) == []
    press_key(selector, "enter")
    assert selector.result is not None and selector.result.mask is None
    assert selector.result.score is None


def test_unreadable_photo_shows_the_reason(tmp_path: Path, photos: list[Path]) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    selector = Selector([broken, *photos], FakePreview())
    try:
        assert "cannot read broken.jpg" in selector.status_text
        click(selector, 10, 10)
        press_key(selector, "enter")
        assert not selector.done and selector.editor.prompt is None
        press_key(selector, "right")
        assert selector.status_text.startswith("click on the product")
    finally:
        plt.close(selector.figure)


def test_classic_segmenter_preview_contains_the_click(tmp_path: Path) -> None:
    from prodseg.workers.classic.segmenter import ContourSegmenter

    out = tmp_path / "sample"
    subprocess.run([sys.executable, "-m", "prodseg", "sample", "--output", str(out),
                    "--views", "2", "--shelf-only", "0", "--size", "320x240"],
                   check=True, cwd=REPO, capture_output=True)
    sample = json.loads((out / "sample.json").read_text())
    images = sorted((out / "images").iterdir())
    reference = out / sample["reference"]
    x, y = sample["reference_point"]
    segmenter = ContourSegmenter()
    selector = Selector(images, lambda _path, image, prompt: segmenter.segment(image, prompt),
                        start=images.index(reference))
    try:
        click(selector, x, y)
        press_key(selector, "enter")
        selection = selector.result
        assert selection is not None and selection.image == reference
        assert selection.mask is not None and selection.mask[y, x]
        assert 0.0 < (selection.score or 0.0) <= 1.0
    finally:
        plt.close(selector.figure)


# ----- command_line ---------------------------------------------------------------------------


def parse(command: str) -> argparse.Namespace:
    argv = shlex.split(command)
    assert argv[0] == "prodseg"
    return build_parser().parse_args(argv[1:])


def test_command_line_round_trips_through_the_cli_parser() -> None:
    prompt = Prompt(points=((120.0, 80.0), (10.25, 10.0), (7.0, 3.5)), labels=(1, 0, 1),
                    box=(5.0, 5.0, 200.0, 150.0))
    selection = Selection(image=Path("my photos/a.jpg"), prompt=prompt, mask=None, score=None)
    command = command_line(selection, ["my photos/a.jpg", "b.jpg"], "out dir",
                           extra=["--backend", "classic"])
    assert "--ref-point 120,80" in command and "--ref-bbox 5,5,200,150" in command
    args = parse(command)
    assert args.command == "run" and args.images == ["my photos/a.jpg", "b.jpg"]
    assert args.reference == "my photos/a.jpg" and args.output == Path("out dir")
    assert args.setting_backend == "classic"
    parsed = prompt_from_args(args)
    # The CLI lists positive points before negative ones; the points themselves survive.
    assert parsed.box == prompt.box
    assert sorted(zip(parsed.points, parsed.labels, strict=True)) == sorted(
        zip(((120.0, 80.0), (10.2, 10.0), (7.0, 3.5)), prompt.labels, strict=True))


def test_command_line_for_submit_and_odd_paths() -> None:
    prompt = Prompt.from_point(3, 4)
    selection = Selection(image=Path("-x.jpg"), prompt=prompt, mask=None, score=None)
    command = command_line(selection, ["-x.jpg", "$(rm -rf ~).jpg"], None, submit=True)
    args = parse(command)
    assert args.command == "submit" and args.reference == "./-x.jpg"
    assert args.images == ["./-x.jpg", "$(rm -rf ~).jpg"]
    assert prompt_from_args(args) == prompt
    with pytest.raises(ValueError, match="no --output"):
        command_line(selection, ["a.jpg"], "out", submit=True)
    with pytest.raises(ValueError, match="needs an --output"):
        command_line(selection, ["a.jpg"], None)


def test_lookalike_clicks_are_undoable_and_become_distractor_points(
        make_selector: MakeSelector) -> None:
    selector = make_selector()
    click(selector, 60, 50)
    click(selector, 150, 40, button=MouseButton.MIDDLE)
    dx, dy = to_display(selector, 30, 100)  # shift + left click: also a lookalike
    canvas = selector.figure.canvas
    fire(MouseEvent("button_press_event", canvas, dx, dy, button=LEFT, key="shift"))
    fire(MouseEvent("button_release_event", canvas, dx, dy, button=LEFT, key="shift"))
    assert_prompt(selector.editor.prompt, [(60, 50)], (1,))  # the prompt is unchanged
    assert np.allclose(selector.editor.distractors, [(150, 40), (30, 100)], atol=0.5)
    markers = [line for line in selector.main_axes.lines if line.get_marker() == "D"]
    assert len(markers) == 2
    press_key(selector, "u")
    assert np.allclose(selector.editor.distractors, [(150, 40)], atol=0.5)
    press_key(selector, "enter")
    selection = selector.result
    assert selection is not None and len(selection.distractors) == 1
    command = command_line(selection, ["a.jpg"], "out")
    args = parse(command)
    assert np.allclose(lookalikes_from_args(args), selection.distractors, atol=0.05)
    submitted = parse(command_line(selection, ["a.jpg"], None, submit=True))
    assert np.allclose(lookalikes_from_args(submitted), selection.distractors, atol=0.05)


# ----- the prodseg select command ---------------------------------------------------------


@pytest.fixture
def sample_set(tmp_path: Path) -> tuple[Path, Path, tuple[float, float]]:
    from prodseg.producer.cli.main import main

    root = tmp_path / "sample"
    assert main(["sample", "--output", str(root), "--views", "3", "--shelf-only", "0",
                 "--size", "320x240"]) == 0
    doc = json.loads((root / "sample.json").read_text())
    return root / "images", root / doc["reference"], tuple(doc["reference_point"])


def _drive(monkeypatch: pytest.MonkeyPatch, act: Callable[[Selector], None]) -> list[Selector]:
    """Make ``Selector.run`` play ``act`` (synthetic events) instead of waiting for a person."""
    import prodseg.producer.cli.windows

    monkeypatch.setattr(prodseg.producer.cli.windows, "require_display", lambda: None)
    shown: list[Selector] = []

    def run(self: Selector, block: bool = True) -> Selection | None:
        shown.append(self)
        act(self)
        return self.result

    monkeypatch.setattr(Selector, "run", run)
    return shown


def test_enter_runs_the_job_the_printed_command_describes(
        sample_set: tuple[Path, Path, tuple[float, float]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from prodseg.producer.cli.main import main

    images, ref, (x, y) = sample_set

    def act(selector: Selector) -> None:
        click(selector, x, y)
        press_key(selector, "enter")

    shown = _drive(monkeypatch, act)
    out = tmp_path / "out"
    code = main(["select", "--images", str(images), "--reference", str(ref), "--output",
                 str(out), "--backend", "classic"])
    assert code == 0
    printed = capsys.readouterr().out.splitlines()[0]
    selection = shown[0].result
    assert selection is not None and selection.mask is not None
    assert printed == command_line(selection, [str(images)], str(out),
                                   extra=["--backend", "classic"])
    assert shlex.split(printed)[:2] == ["prodseg", "run"]
    results = json.loads((out / "results.json").read_text())
    clicked = results["reference"]["prompt"]["points"][0]
    assert abs(clicked[0] - x) <= 0.5 and abs(clicked[1] - y) <= 0.5
    stored = np.array(Image.open(out / "reference" / "mask.png")) > 127
    assert np.array_equal(stored, selection.mask)  # the preview is the job's reference mask


def test_escape_starts_no_job(sample_set: tuple[Path, Path, tuple[float, float]],
                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    from prodseg.producer.cli.main import main

    images, _, (x, y) = sample_set

    def act(selector: Selector) -> None:
        click(selector, x, y)
        press_key(selector, "escape")

    _drive(monkeypatch, act)
    out = tmp_path / "out"
    assert main(["select", "--images", str(images), "--output", str(out), "--backend",
                 "classic"]) == 1
    assert "no job was started" in capsys.readouterr().err
    assert not out.exists()


def test_select_without_a_display_says_what_to_do_instead(
        sample_set: tuple[Path, Path, tuple[float, float]], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from prodseg.producer.cli.main import main

    images, _, _ = sample_set
    assert main(["select", "--images", str(images), "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "no window can be opened here" in err and "--ref-point" in err
