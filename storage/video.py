"""Video captures: decoding a video's frames, and how a job names the frames it took.

A capture may be one video (a phone walked around the product, a turntable filmed)
instead of a folder of stills. Decoding is PyAV's (FFmpeg's libraries, which its wheels
carry: every container and codec a phone writes, no system FFmpeg to install), the
``[video]`` extra, imported only where a video is decoded. The frames a job takes become
its views ``frame_0000``, ``frame_0001``, ... in the order they were filmed; a frame's
source, as results name it, is ``<video>/<view id>``.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from prodseg.errors import ImageReadError, InputError
from prodseg.extras import MissingExtraError

VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi")
"""File name endings taken as videos (lower case)."""


def is_video(name: str) -> bool:
    """Whether ``name`` (a path, key or URL) ends like a video file."""
    return name.lower().endswith(VIDEO_SUFFIXES)


def frame_view_id(position: int) -> str:
    """The view id of the ``position``-th frame a job takes: ``frame_0000``, ..."""
    return f"frame_{position:04d}"


@dataclass(frozen=True)
class VideoFrame:
    """One frame a job takes from its video.

    Attributes:
        view_id: the job's view id (``frame_0000``, ...).
        index: the frame's position among the video's decoded frames, from 0.
        time_s: its presentation time, seconds from the video's start.
    """

    view_id: str
    index: int
    time_s: float


@dataclass(frozen=True)
class VideoCapture:
    """A video and the frames a job takes from it, in the order they were filmed.

    Attributes:
        source: the video as the user named it (a local path or an ``s3://`` URL).
        frames: the frames taken.
    """

    source: str
    frames: tuple[VideoFrame, ...]

    def frame_source(self, frame: VideoFrame) -> str:
        """How results name a frame: ``<video>/<view id>``."""
        return f"{self.source}/{frame.view_id}"

    @property
    def sources(self) -> list[str]:
        """Every frame's source, in order."""
        return [self.frame_source(f) for f in self.frames]

    def frame_of(self, source: str) -> VideoFrame | None:
        """The frame whose source is ``source``, or None."""
        for frame in self.frames:
            if self.frame_source(frame) == source:
                return frame
        return None

    def named(self, name: str) -> VideoFrame:
        """The frame ``name`` names: its view id or source, its position among the frames
        taken (``3``) or a time in seconds (``2.5s``: the frame taken nearest to it). A
        name's last path segment counts (a catalog makes ``frame_0000`` a path).

        Raises:
            InputError: ``name`` names no frame.
        """
        text = name.strip().rstrip("/").rsplit("/", 1)[-1]
        for frame in self.frames:
            if text == frame.view_id or name == self.frame_source(frame):
                return frame
        if text.isdigit() and int(text) < len(self.frames):
            return self.frames[int(text)]
        if text.endswith("s"):
            try:
                when = float(text[:-1])
            except ValueError:
                when = float("nan")
            if np.isfinite(when):
                return min(self.frames, key=lambda f: (abs(f.time_s - when), f.index))
        raise InputError(f"{self.source}: {name!r} names none of the {len(self.frames)} "
                         f"frames taken ({self.frames[0].view_id} to "
                         f"{self.frames[-1].view_id}); give a view id, a position or a "
                         "time such as 2.5s")

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form, as the job manifest and ``results.json`` hold it."""
        return {"source": self.source,
                "frames": [{"view": f.view_id, "index": f.index, "time_s": round(f.time_s, 6)}
                           for f in self.frames]}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> VideoCapture:
        """The inverse of ``to_json``."""
        return cls(str(doc["source"]), tuple(
            VideoFrame(str(f["view"]), int(f["index"]), float(f["time_s"]))
            for f in doc["frames"]))


VideoInput = str | Path | bytes
"""A video to decode: a local file, or its bytes."""


def iter_video_frames(video: VideoInput, source: str, max_pixels: int,
                      wanted: Collection[int] | None = None
                      ) -> Iterator[tuple[int, float, np.ndarray]]:
    """Decode a video's frames in order (the first video stream's).

    Args:
        video: the file or its bytes.
        source: the video's name, for messages.
        max_pixels: largest accepted width x height (setting ``max_image_pixels``),
            checked before any frame is decoded.
        wanted: yield only these frame indices (and stop after the last of them);
            every frame when None.

    Yields:
        ``(index, time_s, pixels)``: the frame's index from 0, its presentation time in
        seconds and its ``(H, W, 3)`` uint8 RGB pixels.

    Raises:
        ImageReadError: not a video PyAV can read, no video stream, too many pixels or
            no frame at all; the reason says which.
        MissingExtraError: PyAV (the ``[video]`` extra) is not installed.
    """
    last = max(wanted) if wanted else None
    with _opened(video, source, max_pixels) as (container, stream):
        rate = float(stream.average_rate or stream.guessed_rate or 30)
        count = 0
        for count, frame in enumerate(container.decode(stream), start=1):
            index = count - 1
            if wanted is not None and index not in wanted:
                continue
            time_s = float(frame.time) if frame.time is not None else index / rate
            yield index, time_s, upright_rgb(frame)
            if last is not None and index >= last:
                return
        if count == 0:
            raise ImageReadError(source, "the video holds no frame")
    if last is not None:
        raise ImageReadError(source, f"the video has no frame {last}")


def read_video_frame(video: VideoInput, source: str, frame: VideoFrame,
                     max_pixels: int) -> np.ndarray:
    """One frame of a video: ``(H, W, 3)`` uint8 RGB.

    The frame is sought by its time (from the keyframe before it, so a worker decodes
    a few frames, not the video up to it) and, if no frame has exactly that time,
    found by its index, decoding from the start.

    Raises:
        ImageReadError: the video is unreadable or has no such frame.
    """
    with _opened(video, source, max_pixels) as (container, stream):
        if stream.time_base:
            target = round(frame.time_s / stream.time_base)
            container.seek(target, stream=stream, backward=True, any_frame=False)
            for decoded in container.decode(stream):
                if decoded.pts is None or decoded.pts > target:
                    break
                if decoded.pts == target:
                    return upright_rgb(decoded)
    for _, _, pixels in iter_video_frames(video, source, max_pixels, {frame.index}):
        return pixels
    raise ImageReadError(source, f"the video has no frame {frame.index}")


def upright_rgb(frame: Any) -> np.ndarray:
    """A decoded frame as it is displayed: ``(H, W, 3)`` uint8 RGB.

    A phone filming upright stores landscape frames and records beside them the quarter
    turn that shows them (the stream's display matrix: PyAV's ``VideoFrame.rotation``,
    counter-clockwise); that turn is applied here, as a photo's EXIF orientation is.
    """
    pixels = frame.to_ndarray(format="rgb24")
    turns = round(float(getattr(frame, "rotation", 0) or 0) / 90) % 4
    return np.ascontiguousarray(np.rot90(pixels, turns) if turns else pixels)


@contextlib.contextmanager
def _opened(video: VideoInput, source: str,
            max_pixels: int) -> Iterator[tuple[Any, Any]]:
    """The open container and its first video stream; every PyAV failure becomes one
    ``ImageReadError`` naming ``source``."""
    try:
        import av
    except ModuleNotFoundError:
        raise MissingExtraError("video", "av", f"reading the video {source}") from None
    handle = io.BytesIO(video) if isinstance(video, bytes) else str(video)
    try:
        with av.open(handle, mode="r") as container:
            if not container.streams.video:
                raise ImageReadError(source, "has no video stream")
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            if width * height > max_pixels:
                raise ImageReadError(source, f"video frames of {width} x {height} pixels are "
                                     f"more than max_image_pixels ({max_pixels})")
            yield container, stream
    except av.FFmpegError as error:
        raise ImageReadError(source, f"not a readable video ({error.strerror or error})"
                             ) from None
    except FileNotFoundError:
        raise ImageReadError(source, "file not found") from None
