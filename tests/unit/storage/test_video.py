"""Video captures' decoding and frame naming (``storage.video``): a video encoded here
with PyAV is read back frame for frame, a bad one is one line naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from prodseg.errors import ImageReadError, InputError
from prodseg.settings import load_settings
from prodseg.storage.video import (
    VideoCapture,
    VideoFrame,
    is_video,
    iter_video_frames,
    read_video_frame,
)
from prodseg.workers.capture.video_frames import the_video, video_inputs
from tests.support.video import encode_video

pytest.importorskip("av")


def _frames(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(n)]


def test_a_lossless_video_gives_back_its_frames_and_their_times(tmp_path: Path) -> None:
    frames = _frames(6)
    path = encode_video(frames, tmp_path / "spin.mp4", fps=4)
    decoded = list(iter_video_frames(path, "spin.mp4", 10**6))
    assert [i for i, _, _ in decoded] == list(range(6))
    assert [t for _, t, _ in decoded] == pytest.approx([k / 4 for k in range(6)])
    assert all(np.array_equal(d, f) for (_, _, d), f in zip(decoded, frames, strict=True))
    data = path.read_bytes()
    for k in (0, 4, 5):  # sought by time
        assert np.array_equal(read_video_frame(data, "spin.mp4", VideoFrame("v", k, k / 4),
                                               10**6), frames[k])
    # a time that is no frame's: found by index
    assert np.array_equal(read_video_frame(data, "spin.mp4", VideoFrame("v", 3, 0.6), 10**6),
                          frames[3])
    with pytest.raises(ImageReadError, match=r"spin\.mp4: the video has no frame 9"):
        read_video_frame(data, "spin.mp4", VideoFrame("v", 9, 9.1), 10**6)
    with pytest.raises(ImageReadError, match="more than max_image_pixels"):
        next(iter_video_frames(data, "spin.mp4", 1000))


@pytest.mark.parametrize("degrees", [90, -90, 180])
def test_frames_come_upright_with_the_display_rotation_applied(tmp_path: Path,
                                                                degrees: int) -> None:
    stored = _frames(3)  # as a phone stores them: landscape, with the turn beside them
    path = encode_video(stored, tmp_path / "phone.mp4", fps=4, display_rotation=degrees)
    shown = [np.rot90(frame, degrees // 90) for frame in stored]  # counter-clockwise
    decoded = [pixels for _, _, pixels in iter_video_frames(path, "phone.mp4", 10**6)]
    assert [d.shape for d in decoded] == [s.shape for s in shown]
    assert all(np.array_equal(d, s) for d, s in zip(decoded, shown, strict=True))
    assert np.array_equal(read_video_frame(path.read_bytes(), "phone.mp4",
                                           VideoFrame("v", 2, 0.5), 10**6), shown[2])


@pytest.mark.parametrize("data", [b"", b"not a video at all" * 50])
def test_a_bad_video_is_one_line_naming_it(data: bytes) -> None:
    with pytest.raises(ImageReadError) as caught:
        list(iter_video_frames(data, "bad.mp4", 10**6))
    assert str(caught.value).startswith("bad.mp4: ") and "\n" not in str(caught.value)


def test_frames_are_named_by_view_id_position_source_or_time() -> None:
    capture = VideoCapture("cap.mp4", tuple(VideoFrame(f"frame_{k:04d}", 3 * k, 0.5 * k)
                                            for k in range(4)))
    assert capture.sources[1] == "cap.mp4/frame_0001"
    assert capture.named("frame_0002").index == 6
    assert capture.named("/catalog/dir/frame_0002").index == 6
    assert capture.named("cap.mp4/frame_0003").index == 9
    assert capture.named("1").view_id == "frame_0001"
    assert capture.named("1.1s").view_id == "frame_0002"
    assert capture.frame_of("cap.mp4/frame_0000") == capture.frames[0]
    for bad in ("frame_0009", "7", "xs", "nope"):
        with pytest.raises(InputError, match=r"cap\.mp4: .* names none of the 4 frames"):
            capture.named(bad)
    assert VideoCapture.from_json(capture.to_json()) == capture


def test_a_video_is_a_capture_on_its_own() -> None:
    assert is_video("a/B.MOV") and not is_video("a.jpg")
    assert the_video(["a.jpg", "b.jpg"]) is None
    assert the_video(["s3://b/k/cap.mp4"]) == "s3://b/k/cap.mp4"
    with pytest.raises(InputError, match=r"cap\.mp4: a video is a whole capture"):
        the_video(["cap.mp4", "a.jpg"])


def test_video_inputs_take_the_frames_the_settings_ask_for(tmp_path: Path) -> None:
    frames = _frames(24)
    frames[6] = np.full_like(frames[6], 128)  # a flat, "blurred" frame at an even position
    frames[5] = frames[5] // 4 + 96           # a softer neighbour than frame 7
    path = encode_video(frames, tmp_path / "cap.mp4", fps=6)
    inputs = video_inputs([str(path)], "1s", load_settings(frames=4), Path)
    assert inputs is not None
    taken = inputs.capture.frames
    assert [f.view_id for f in taken] == ["frame_0000", "frame_0001", "frame_0002", "frame_0003"]
    assert [f.index for f in taken] == [0, 7, 12, 18]  # 6 was blurred: its sharper neighbour
    assert [f.time_s for f in taken] == pytest.approx([0, 7 / 6, 2, 3])
    assert inputs.reference == f"{path}/frame_0001"  # 1 s is nearest frame 7
    assert np.array_equal(inputs.read(f"{path}/frame_0001"), frames[7])
    every = video_inputs([str(path)], "frame_0000", load_settings(every=10), Path)
    assert every is not None and [f.index for f in every.capture.frames] == [0, 10, 20]
    with pytest.raises(InputError, match="not one of the frames"):
        inputs.read("elsewhere.jpg")


def test_an_input_is_decoded_as_its_frame_or_its_image(tmp_path: Path) -> None:
    from prodseg.storage.image_encoding import encode_png
    from prodseg.storage.manifest import InputImage, JobManifest, decode_input

    frames = _frames(3)
    data = encode_video(frames, tmp_path / "cap.mp4", fps=2).read_bytes()
    frame = InputImage("frame_0001", "jobs/j/inputs/video.mp4", "cap.mp4/frame_0001",
                       VideoFrame("frame_0001", 2, 1.0))
    assert np.array_equal(decode_input(data, frame, 10**6), frames[2])
    still = InputImage("a", "jobs/j/inputs/a.png", "a.png")
    assert np.array_equal(decode_input(encode_png(frames[0]), still, 10**6), frames[0])
    manifest = JobManifest("j", still, {"points": []}, [frame], {})
    assert JobManifest.from_bytes(manifest.to_bytes()).images == [frame]
